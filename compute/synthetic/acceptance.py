"""Joint-angle acceptance on synthetic truth: the degree-of-freedom groups, their targets and their errors.

The sparse-keypoint acceptance (8 cameras, 1.5 px noise, 10 % dropped, 3 % outliers) asks, per keypoint set and
activity: pelvis tilt, lumbar flexion/extension, hip/knee/ankle flexion RMSE <= 5 deg; hip adduction and
rotation <= 6 deg; shoulder and elbow <= 8 deg; with fewer than 8 cameras 1.5x those.  Humeral rotation is its
own group: it is seen only through the forearm, so not at all while the elbow is straight.

Used by the sparse-set tests and by the sparse benchmark, so both state the same numbers.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from compute.swaps import exchange_pairs, left_right_pairs
from compute.synthetic.config import SyntheticSessionConfig, SyntheticTrialSpec

__all__ = ["DOF_GROUPS", "FEWER_CAMERAS_FACTOR", "target_deg", "sparse_session_config",
           "swap_left_right", "angle_rmse_by_group", "group_sd_deg"]

# DoF group -> (OpenSim coordinates, RMSE target in deg with 8 cameras)
DOF_GROUPS: dict[str, tuple[tuple[str, ...], float]] = {
    "pelvis_tilt": (("pelvis_tilt",), 5.0),
    "lumbar_ext": (("lumbar_extension",), 5.0),
    "hip_flex": (("hip_flexion_r", "hip_flexion_l"), 5.0),
    "knee_flex": (("knee_angle_r", "knee_angle_l"), 5.0),
    "ankle_flex": (("ankle_angle_r", "ankle_angle_l"), 5.0),
    "hip_add": (("hip_adduction_r", "hip_adduction_l"), 6.0),
    "hip_rot": (("hip_rotation_r", "hip_rotation_l"), 6.0),
    "shoulder": (("arm_flex_r", "arm_flex_l", "arm_add_r", "arm_add_l"), 8.0),
    "arm_rot": (("arm_rot_r", "arm_rot_l"), 8.0),
    "elbow": (("elbow_flex_r", "elbow_flex_l"), 8.0),
}
FEWER_CAMERAS_FACTOR = 1.5


def target_deg(group: str, n_cameras: int) -> float:
    """Acceptance RMSE target (deg) of a DoF group: the 8-camera value, x1.5 with fewer than 8 cameras."""
    return DOF_GROUPS[group][1] * (1.0 if n_cameras >= 8 else FEWER_CAMERAS_FACTOR)


def sparse_session_config(marker_set: str, n_cameras: int, seed: int = 11, walk_s: float = 4.0,
                          static_s: float = 3.0, sit_to_stand_s: float = 3.0) -> SyntheticSessionConfig:
    """The acceptance session: a control subject's walk, quiet standing and sit-to-stand (a duration of 0 leaves
    the trial out) seen in ``marker_set`` keypoints by ``n_cameras`` cameras (1.5 px noise, 10 % dropped, 3 %
    outliers)."""
    trials = tuple(spec for spec in (SyntheticTrialSpec("walk01", "walk", walk_s),
                                     SyntheticTrialSpec("static01", "static", static_s),
                                     SyntheticTrialSpec("sts01", "sit_to_stand", sit_to_stand_s))
                   if spec.duration_s)
    return SyntheticSessionConfig(seed=seed, n_cameras=n_cameras, pixel_noise_px=1.5, drop_fraction=0.10,
                                  outlier_fraction=0.03, marker_set=marker_set, trials=trials)


def swap_left_right(keypoints: np.ndarray, confidence: np.ndarray, marker_names: Sequence[str], fraction: float,
                    camera: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies of ``keypoints`` (C, T, J, 2) px and ``confidence`` (C, T, J) with the left and right keypoints
    exchanged in ``round(fraction * T)`` random frames (at least one) of ``camera``, as a single-view detector's
    left/right swap; also returns the swapped frame indices (sorted)."""
    keypoints, confidence = np.array(keypoints), np.array(confidence)
    pairs = left_right_pairs(marker_names)
    n_frames = keypoints.shape[1]
    frames = np.sort(rng.choice(n_frames, max(1, int(round(fraction * n_frames))), replace=False))
    keypoints[camera, frames] = exchange_pairs(keypoints[camera, frames], pairs, axis=1)
    confidence[camera, frames] = exchange_pairs(confidence[camera, frames], pairs, axis=1)
    return keypoints, confidence, frames


def angle_rmse_by_group(fitted_qpos: np.ndarray, true_qpos: np.ndarray,
                        joint_names: Sequence[str]) -> dict[str, float]:
    """{group: RMSE deg} over the frames and the group's coordinates, for fitted and true qpos (T, Q) rad in
    ``joint_names`` order; groups whose coordinates the model lacks are left out."""
    out = {}
    for group, (names, _) in DOF_GROUPS.items():
        idx = [list(joint_names).index(n) for n in names if n in joint_names]
        if idx:
            err = np.asarray(fitted_qpos)[:, idx] - np.asarray(true_qpos)[:, idx]
            out[group] = float(np.rad2deg(np.sqrt(np.mean(err ** 2))))
    return out


def group_sd_deg(coordinate_sd_rad: np.ndarray, joint_names: Sequence[str]) -> dict[str, float]:
    """{group: largest posterior SD (deg) among the group's coordinates} from a fit's (Q,) SD in rad."""
    out = {}
    for group, (names, _) in DOF_GROUPS.items():
        idx = [list(joint_names).index(n) for n in names if n in joint_names]
        if idx:
            out[group] = float(np.rad2deg(np.max(np.asarray(coordinate_sd_rad)[idx])))
    return out
