"""Frames missing in every camera keep their place in time: a gap is stored as frames without detection, so frame
``t`` of a trial stays at ``t / fps`` s (real server, through ``mmc ingest session``)."""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from compute.markersets import keypoint_names
from pipeline.cli import main

COCO17 = keypoint_names("COCO17")
CAMERAS = ("cam_1", "cam_2", "cam_3", "cam_4")  # as stored (normalised camera names)
FPS = 60.0


def write_npz_session(root: Path, subject_id: str, per_camera: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                      fps: float = FPS, keypoint_set: str = "COCO17") -> Path:
    """A session folder with one trial ``walk01`` in NPZ keypoints and an anipose calibration of
    ``per_camera``'s cameras. per_camera: {camera: (points (T, J, 2) float32 px, confidence (T, J) float32,
    frame_index (T,) int64)} with J the keypoints of ``keypoint_set``. Returns the manifest path."""
    root.mkdir(parents=True)
    (root / "npz").mkdir()
    calibration = []
    for c, (camera, (points, confidence, frame_index)) in enumerate(per_camera.items()):
        np.savez(root / "npz" / f"{camera}.npz", keypoints=points, confidence=confidence, frame_index=frame_index,
                 joint_names=np.array(keypoint_names(keypoint_set)))
        angle = 2 * np.pi * c / len(per_camera)
        calibration.append(f"""[cam_{c}]
name = "{camera}"
size = [1280, 720]
matrix = [[1000.0, 0.0, 640.0], [0.0, 1000.0, 360.0], [0.0, 0.0, 1.0]]
distortions = [0.0, 0.0, 0.0, 0.0]
rotation = [{1.2 * np.cos(angle):.6f}, {1.2 * np.sin(angle):.6f}, 1.2]
translation = [0.0, 0.8, 4.0]
""")
    (root / "calibration.toml").write_text("\n".join(calibration) + "\n[metadata]\nadjusted = false\n")
    manifest = root / "manifest.toml"
    manifest.write_text(f"""[subject]
id = "{subject_id}"
population = "control"

[session]
id = "2024-05-01"
calibration = "calibration.toml"
calibration_format = "anipose"
calibration_unit = "m"

[[trials]]
name = "walk01"
activity = "walk"
fps = {fps}
keypoints = "npz"
keypoints_format = "npz"
keypoint_set = "{keypoint_set}"
""")
    return manifest


def random_keypoints(n_frames: int, seed: int, n_joints: int = len(COCO17)) -> tuple[np.ndarray, np.ndarray]:
    """points (T, J, 2) float32 px inside a 1280 x 720 image, confidence (T, J) float32 in [0.5, 1]."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(100.0, 600.0, (n_frames, n_joints, 2)).astype(np.float32)
    confidence = rng.uniform(0.5, 1.0, (n_frames, n_joints)).astype(np.float32)
    return points, confidence


def stored_trial(subject_id: str) -> tuple[dict, dict[str, dict]]:
    """(Trial row, {camera: Keypoints row}) of the subject's trial ``walk01``."""
    from schemas import acquisition as acq

    key = {"subject_id": subject_id, "trial_name": "walk01"}
    rows = (acq.Keypoints & key).to_dicts(order_by="camera_name")
    return (acq.Trial & key).fetch1(), {row["camera_name"]: row for row in rows}


@pytest.fixture
def subject_id() -> str:
    return f"TA_{uuid.uuid4().hex[:8]}"


def test_frames_missing_in_every_camera_are_kept_as_frames_without_detection(tmp_path, db_prefix, subject_id,
                                                                              capsys):
    n_frames, gap = 40, np.arange(10, 20)
    kept = np.setdiff1d(np.arange(n_frames), gap)  # frames 10-19 are in no camera's file
    per_camera = {}
    for c, camera in enumerate(CAMERAS):
        points, confidence = random_keypoints(n_frames, seed=c)
        per_camera[camera] = (points[kept], confidence[kept], kept.astype(np.int64))
    manifest = write_npz_session(tmp_path / "session", subject_id, per_camera)
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0, capsys.readouterr().err

    trial, keypoints = stored_trial(subject_id)
    assert trial["n_frames"] == n_frames  # the full span, not the 30 frames some camera has
    for c, camera in enumerate(CAMERAS):
        row = keypoints[camera]
        np.testing.assert_array_equal(row["frame_index"], np.arange(n_frames))
        times = (row["frame_index"] - row["frame_index"][0]) / FPS  # how a fit places frame t: t / fps
        np.testing.assert_array_equal(times, np.arange(n_frames) / FPS)
        assert np.all(row["confidence"][gap] == 0) and np.all(np.isnan(row["points"][gap]))
        points, confidence = random_keypoints(n_frames, seed=c)
        np.testing.assert_array_equal(row["points"][kept], points[kept])
        np.testing.assert_array_equal(row["confidence"][kept], confidence[kept])
        assert row["n_missing_frames"] == len(gap)


def test_the_fit_reads_the_gap_at_its_time(tmp_path, db_prefix, subject_id, capsys):
    """What a fit reads (``trial_keypoints``): frame t of the (C, T, J, 2) array is source frame first + t."""
    from schemas.reads.observations import trial_keypoints

    frames = np.array([5, 6, 7, 12, 13], dtype=np.int64)  # 8-11 missing everywhere
    per_camera = {camera: (*random_keypoints(len(frames), seed=c), frames) for c, camera in enumerate(CAMERAS[:2])}
    manifest = write_npz_session(tmp_path / "session", subject_id, per_camera)
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0, capsys.readouterr().err
    trial, _ = stored_trial(subject_id)
    keypoints, confidence = trial_keypoints(dict(subject_id=subject_id, session_id="2024-05-01", trial_name="walk01"),
                                            list(CAMERAS[:2]), int(trial["n_frames"]), len(COCO17))
    assert keypoints.shape == (2, 9, len(COCO17), 2)
    assert np.all(confidence[:, 3:7] == 0) and np.all(confidence[:, [0, 1, 2, 7, 8]] > 0)
    np.testing.assert_array_equal(keypoints[0, 7], per_camera["cam_1"][0][3])  # source frame 12 at t = 7


def test_a_stray_frame_number_is_an_error_not_a_huge_trial(tmp_path, db_prefix, subject_id, capsys):
    from schemas import acquisition as acq

    frames = np.array([0, 1, 2, 900_000], dtype=np.int64)
    per_camera = {camera: (*random_keypoints(len(frames), seed=c), frames) for c, camera in enumerate(CAMERAS[:2])}
    manifest = write_npz_session(tmp_path / "session", subject_id, per_camera)
    before = len(acq.Keypoints())
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "frame_index" in err and "0..900000" in err, err
    assert len(acq.Keypoints()) == before
