"""Writes tests/data/pose2sim_multiperson_detections.npz: our own BlazePose detector (``pipeline.detection``,
default options, every frame) run over the 4 videos of Pose2Sim's multi-person demo (two participants, 100
frames each at 60 fps; the shared folder ``pose2sim_demo_multiperson`` of the team's data, see its SOURCE.md),
then tracked per camera. Run once; the output is committed so association tests need neither the models nor the
videos' decoding.

Stored per camera ``cNN`` (NN = 01..04): ``cNN_frame_index (T,)``, ``cNN_track_id (P,)``, ``cNN_keypoints_dpx
(P, T, 33, 2) int16`` = px × 10 rounded (-32768 where not detected), ``cNN_confidence_u8 (P, T, 33) uint8`` =
confidence × 255 rounded, ``cNN_score_u8 (P, T)`` likewise, ``cNN_video_sha256``; and ``detector``,
``detector_version``, ``model_checksum``, ``options`` (JSON). About 0.25 MB.

    python tests/data/make_multiperson_detections.py [/path/to/pose2sim_demo_multiperson]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "pose2sim_multiperson_detections.npz"
DEFAULT_DATA = Path("/work/shared/data/pose2sim_demo_multiperson")
MISSING = np.iinfo(np.int16).min


def encode(poses, prefix: str) -> dict[str, np.ndarray]:
    """Compact arrays of one camera's :class:`pipeline.detection.VideoPoses`."""
    keypoints = np.stack([t.keypoints for t in poses.tracks])
    return {f"{prefix}_frame_index": poses.frame_index.astype(np.int32),
            f"{prefix}_track_id": np.array([t.track_id for t in poses.tracks], np.int16),
            f"{prefix}_keypoints_dpx": np.where(np.isfinite(keypoints), np.round(np.nan_to_num(keypoints) * 10),
                                                MISSING).astype(np.int16),
            f"{prefix}_confidence_u8": np.round(np.stack([t.confidence for t in poses.tracks]) * 255).astype(np.uint8),
            f"{prefix}_score_u8": np.round(np.stack([t.score for t in poses.tracks]) * 255).astype(np.uint8),
            f"{prefix}_video_sha256": np.array(poses.video.sha256)}


def decode(data, camera: str) -> tuple[np.ndarray, list[dict]]:
    """(frame_index (T,), tracks as dicts of track_id, keypoints (T, 33, 2) px NaN where not detected,
    confidence (T, 33), score (T,)) of camera ``camera`` (e.g. "c01")."""
    keypoints = data[f"{camera}_keypoints_dpx"]
    points = np.where(keypoints == MISSING, np.nan, keypoints / 10.0)
    confidence = data[f"{camera}_confidence_u8"] / 255.0
    score = data[f"{camera}_score_u8"] / 255.0
    # a detected frame keeps a positive score even when it rounds to 0
    score = np.where(np.isfinite(points[..., 0, 0]) & (score == 0), 1 / 255, score)
    return data[f"{camera}_frame_index"].astype(np.int64), [
        dict(track_id=int(i), keypoints=points[p], confidence=confidence[p], score=score[p])
        for p, i in enumerate(data[f"{camera}_track_id"])]


def main(data_dir: Path) -> None:
    from pipeline.detection import BlazePoseDetector, BlazePoseOptions, TrackingOptions, detect_video

    detector = BlazePoseDetector.from_installed(BlazePoseOptions())
    arrays: dict[str, np.ndarray] = {}
    for n in range(1, 5):
        poses = detect_video(data_dir / "videos" / f"cam{n:02d}.mp4", detector, tracking=TrackingOptions())
        arrays.update(encode(poses, f"c{n:02d}"))
        print(f"cam{n:02d}: {len(poses.frame_index)} frames, tracks "
              f"{[(t.track_id, int(t.detected.sum())) for t in poses.tracks]}")
    np.savez_compressed(OUT, detector=np.array(detector.name), detector_version=np.array(detector.version),
                        model_checksum=np.array(detector.model_checksum),
                        options=np.array(json.dumps({"blazepose": {}, "tracking": {}})), **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA)
