"""Scores of a 3D reconstruction against synthetic truth: keypoint error (mm) and joint-angle RMSE (deg).

Pure numpy on arrays already in our conventions (world Z-up, metres, radians); the readers of Pose2Sim's files
convert from theirs. No Pose2Sim import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.exporters import is_translation, read_mot, read_trc

# Joint angles both models define from HALPE26 keypoints and that mean the same thing in both. Left out: the
# pelvis (its tilt/list/rotation are relative to the ground frame, and Pose2Sim's Y-up frame turns our
# walking direction +X into its +Z, so the two differ by a 90 deg heading by convention), and coordinates that
# 26 keypoints do not observe (subtalar, mtp, pronation, wrist, neck, arm rotation, the spine).
COMPARED_COORDINATES = tuple(f"{name}_{side}" for side in ("r", "l") for name in (
    "hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle", "arm_flex", "arm_add",
    "elbow_flex"))

__all__ = ["COMPARED_COORDINATES", "qpos_degrees", "pose2sim_yup_to_world", "KeypointScore", "AngleScore", "keypoint_error", "angle_rmse", "read_pose2sim_trc",
           "read_pose2sim_mot"]


@dataclass(frozen=True)
class KeypointScore:
    """3D keypoint error over the keypoints both sides name and the frames where both are finite.

    mean_mm / median_mm / p95_mm: Euclidean distance statistics (mm); n: distances counted; missing_fraction:
    the share of (frame, keypoint) pairs the estimate leaves NaN (counted as neither good nor bad)."""

    mean_mm: float
    median_mm: float
    p95_mm: float
    n: int
    missing_fraction: float


@dataclass(frozen=True)
class AngleScore:
    """Joint-angle RMSE (deg) per rotational coordinate named by both sides.

    rmse_deg: raw RMSE; shape_rmse_deg: RMSE after removing each coordinate's mean difference (models differ
    in their neutral pose, so an offset is partly a definition, the rest is shape); mean of each over the
    coordinates in ``names``."""

    per_coordinate: dict = field(default_factory=dict)   # name -> (rmse_deg, shape_rmse_deg)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.per_coordinate)

    @property
    def rmse_deg(self) -> float:
        return float(np.mean([v[0] for v in self.per_coordinate.values()])) if self.per_coordinate else float("nan")

    @property
    def shape_rmse_deg(self) -> float:
        return float(np.mean([v[1] for v in self.per_coordinate.values()])) if self.per_coordinate else float("nan")


def keypoint_error(estimate: np.ndarray, estimate_names, truth: np.ndarray, truth_names) -> KeypointScore:
    """``estimate`` (T, J, 3) m against ``truth`` (T, K, 3) m, matched by keypoint name (same frames)."""
    if estimate.shape[0] != truth.shape[0]:
        raise ValueError(f"keypoint_error: {estimate.shape[0]} estimated frames, {truth.shape[0]} true frames")
    common = [n for n in estimate_names if n in truth_names]
    if not common:
        raise ValueError(f"keypoint_error: no keypoint names in common ({list(estimate_names)[:5]}...)")
    est = estimate[:, [list(estimate_names).index(n) for n in common]]
    tru = truth[:, [list(truth_names).index(n) for n in common]]
    distance = np.linalg.norm(est - tru, axis=-1) * 1000.0
    finite = np.isfinite(distance)
    d = distance[finite]
    return KeypointScore(float(np.mean(d)), float(np.median(d)), float(np.percentile(d, 95)), int(d.size),
                         float(1.0 - finite.mean()))


def angle_rmse(estimate_deg: dict, truth_deg: dict, coordinates=COMPARED_COORDINATES) -> AngleScore:
    """RMSE per coordinate of ``coordinates`` present in both ``{name: (T,) degrees}`` dicts (NaN frames
    skipped)."""
    per = {}
    for name, values in estimate_deg.items():
        if name not in truth_deg or name not in coordinates or is_translation(name):
            continue
        diff = np.asarray(values, float) - np.asarray(truth_deg[name], float)
        diff = diff[np.isfinite(diff)]
        if diff.size == 0:
            continue
        per[name] = (float(np.sqrt(np.mean(diff ** 2))), float(np.std(diff)))
    return AngleScore(per)


def qpos_degrees(qpos: np.ndarray, joint_names) -> dict:
    """``{name: (T,) degrees}`` of the rotational coordinates of ``qpos`` (T, Q) radians."""
    return {n: np.degrees(np.asarray(qpos)[:, i]) for i, n in enumerate(joint_names) if not is_translation(n)}


def pose2sim_yup_to_world(points: np.ndarray) -> np.ndarray:
    """Undo Pose2Sim's ``zup2yup`` (its .trc columns are the Z-up world's (Y, Z, X)): (..., 3) -> world (X, Y, Z)."""
    points = np.asarray(points, float)
    return np.stack([points[..., 2], points[..., 0], points[..., 1]], axis=-1)


def read_pose2sim_trc(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """A Pose2Sim ``.trc``: (times (T,) s, markers (T, J, 3) metres in the calibration's Z-up world, names).
    Pose2Sim writes the time as frame index / frame rate, so ``round(times * fps)`` are the frame indices."""
    header, times, markers, names = read_trc(path)
    markers = markers / {"m": 1.0, "mm": 1000.0}[str(header.get("Units", "m"))]
    return times, pose2sim_yup_to_world(markers), names


def read_pose2sim_mot(path: str | Path) -> tuple[np.ndarray, dict]:
    """An OpenSim IK ``.mot``: (times (T,), {coordinate: (T,) degrees}) for rotational coordinates."""
    header, frame = read_mot(path)
    columns = [c.strip() for c in frame.columns]
    frame.columns = columns
    if header.get("inDegrees", "yes").lower() != "yes":
        frame = frame.apply(lambda col: np.degrees(col) if col.name != "time" else col)
    return frame["time"].to_numpy(), {c: frame[c].to_numpy() for c in columns
                                      if c != "time" and not is_translation(c)}
