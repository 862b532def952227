"""Gravity/floor alignment of a calibration's world frame from the triangulated subject (numpy).

Many calibrations (Caliscope: the world is camera 1's frame; a charuco board held at an angle; ...) give a world
frame that is not Z-up and has no floor at ``z = 0``, while the body model, the fitter's initialisation and the
gait metrics assume ``Z`` up and the floor at ``z = 0`` (contract). :func:`estimate_world_alignment` finds the
rigid transform ``X' = R_a X + t_a`` from the calibration world ``X`` to such a world ``X'``;
:func:`transform_rig` re-expresses a camera rig in it so that every projection is unchanged.

Method (``points`` are the subject's triangulated keypoints, all trials concatenated along time):

- **Up** (``+Z'``): the mean over frames of the unit vector from the mid-ankle to the mid-shoulder
  (``up_source = "ankle->shoulder"``). A standing or walking person's ankle-to-shoulder line is vertical to a
  few degrees on average (the neutral body model leans 1° back). Frames where both ankles and both shoulders are
  present are used when there are at least ``min_frames``; otherwise per-frame midpoints of whichever side is
  present. Without ankles, mid-hip to mid-shoulder (``"hip->shoulder"``, the trunk: less reliable, it leans).
  Mid-heel / mid-toe stand in for missing ankles.
  **Level cameras** (``camera_rotations`` given, preferred when usable; ``up_source = "level cameras"``): tripod
  and desk cameras are mounted without roll, so one image axis of each camera is horizontal: its x axis, or its
  y axis when the camera is mounted sideways (portrait). For each camera the image axis more nearly orthogonal to
  the subject's up above is taken as horizontal, and up is the direction most orthogonal to all of them (smallest
  eigenvector of ``sum h h^T``, signed like the subject's up). It is used when at least two cameras view from
  directions whose horizontal axes span the floor (second-smallest eigenvalue >= 0.2 per camera, i.e. the axes are
  not all parallel) and it lies within 45° of the subject's up. This matters when the subject is not standing
  upright: in the Caliscope recording the subject's knees are bent ~100°, and the ankle-to-shoulder line is 24°
  off the cameras' common vertical.
- **Floor**: for every foot keypoint (ankle, heel, toe) its height along ``up`` over time, the
  ``floor_quantile`` quantile (0.2: inside the stance phase of walking, robust to triangulation noise and
  outliers) minus the keypoint's typical height above the ground when standing (``FOOT_MARKER_HEIGHT_M``:
  ankle 6.5 cm, heel 3 cm, toe 2 cm; override with ``marker_heights``); the floor is the median of these
  estimates. ``floor_height`` is that plane's offset along ``up`` in the calibration world
  (floor = ``{X : up · X = floor_height}``). Without any foot keypoint: the mid-hip's median height minus
  ``hip_height_m`` (default 0.9 m) and ``floor_source = "hip height"``.
- **X' axis** (``heading``): ``"facing"`` (default): the mean horizontal facing direction,
  ``(left − right shoulder/hip) × up``, when its mean resultant length is at least 0.3 (the subject faces one
  way on average); otherwise ``"travel"``: the net horizontal displacement of the mid-hip (centroid) from its
  first to last seen frame when over 0.5 m; otherwise ``"world_x"``: the calibration's X axis projected on the
  floor (its Y, then Z, if X is nearly vertical). ``heading_source`` records which was used.
- **Origin**: on the floor, below the median of the subject's mid-hip (or of all keypoints).

So for a walking subject X' is the walking direction, as in the synthetic data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["WorldAlignment", "estimate_world_alignment", "transform_rig", "transform_extrinsics",
           "apply_alignment", "identity_alignment", "FOOT_MARKER_HEIGHT_M", "KEYPOINT_ALIASES"]

# Typical keypoint heights above the ground when standing (metres); see the body model's BLAZEPOSE33 sites.
FOOT_MARKER_HEIGHT_M: dict[str, float] = {"ankle": 0.065, "heel": 0.03, "toe": 0.02}

# Anatomical role -> (left names, right names) across the keypoint sets we import: MediaPipe BlazePose
# (left_shoulder), OpenPose BODY25/HALPE (LShoulder) and the MoVi marker names of MOVI87 (lsho); the
# sets themselves are in compute/markersets/.
KEYPOINT_ALIASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "shoulder": (("left_shoulder", "LShoulder", "lsho"), ("right_shoulder", "RShoulder", "rsho")),
    "hip": (("left_hip", "LHip", "lhip"), ("right_hip", "RHip", "rhip")),
    "ankle": (("left_ankle", "LAnkle", "lank"), ("right_ankle", "RAnkle", "rank")),
    "heel": (("left_heel", "LHeel", "lhee"), ("right_heel", "RHeel", "rhee")),
    "toe": (("left_foot_index", "LBigToe", "ltoe"), ("right_foot_index", "RBigToe", "rtoe")),
}


@dataclass(frozen=True)
class WorldAlignment:
    """Rigid transform from the calibration world to a Z-up, floor-at-zero world: ``X' = rotation @ X + translation``.

    rotation (3, 3) proper rotation; its rows are the new X', Y', Z' axes in calibration coordinates.
    translation (3,) metres. up_source / floor_source / heading_source: how each part was estimated
    ("none" for the identity). floor_height: the floor plane's offset along ``up`` in the calibration world (m).
    """

    rotation: np.ndarray
    translation: np.ndarray
    up_source: str
    floor_height: float
    floor_source: str = ""
    heading_source: str = ""

    @property
    def up(self) -> np.ndarray:
        """(3,) the estimated up direction in calibration-world coordinates."""
        return np.asarray(self.rotation)[2]

    def to_dict(self) -> dict:
        """JSON-friendly provenance record."""
        return dict(rotation=np.asarray(self.rotation).tolist(), translation=np.asarray(self.translation).tolist(),
                    up_source=self.up_source, floor_height=float(self.floor_height),
                    floor_source=self.floor_source, heading_source=self.heading_source)


def identity_alignment() -> WorldAlignment:
    """No change (the calibration is already Z-up with the floor at z = 0)."""
    return WorldAlignment(np.eye(3), np.zeros(3), "none", 0.0, "none", "none")


def apply_alignment(points, alignment: WorldAlignment) -> np.ndarray:
    """(..., 3) calibration-world points -> (..., 3) aligned-world points (NaN stays NaN)."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(alignment.rotation).T + np.asarray(alignment.translation)


def _indices(names: Sequence[str], role: str) -> tuple[int | None, int | None]:
    lookup = {name: i for i, name in enumerate(names)}
    left, right = KEYPOINT_ALIASES[role]
    return (next((lookup[n] for n in left if n in lookup), None), next((lookup[n] for n in right if n in lookup), None))


def _pair(points: np.ndarray, names: Sequence[str], role: str) -> tuple[np.ndarray, np.ndarray]:
    """(left (T,3), right (T,3)) of a role, NaN where missing or not in the keypoint set."""
    nan = np.full(points.shape[:1] + (3,), np.nan)
    i, j = _indices(names, role)
    return (points[:, i] if i is not None else nan, points[:, j] if j is not None else nan)


def _midpoint(points: np.ndarray, names: Sequence[str], role: str, both_only: bool) -> np.ndarray:
    left, right = _pair(points, names, role)
    mid = 0.5 * (left + right)
    if both_only:
        return mid
    return np.where(np.isfinite(mid), mid, np.where(np.isfinite(left), left, right))


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm > 0, norm, np.nan)


def _mean_direction(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray | None, int]:
    d = _unit(upper - lower)
    ok = np.all(np.isfinite(d), axis=-1)
    if not ok.any():
        return None, 0
    return _unit(d[ok].mean(0)), int(ok.sum())


def _estimate_up(points: np.ndarray, names: Sequence[str], min_frames: int) -> tuple[np.ndarray, str]:
    for lower_roles, label in ((("ankle", "heel", "toe"), "ankle->shoulder"), (("hip",), "hip->shoulder")):
        for both_only in (True, False):
            upper = _midpoint(points, names, "shoulder", both_only)
            lower = np.full_like(upper, np.nan)
            for role in lower_roles:  # ankles first; heels, then toes where the ankles are missing
                lower = np.where(np.isfinite(lower), lower, _midpoint(points, names, role, both_only))
            up, n = _mean_direction(lower, upper)
            if up is not None and n >= min_frames:
                return up, label
    raise ValueError("compute/world_alignment.py estimate_world_alignment: points: expected shoulders and "
                     f"ankles/heels/toes or hips triangulated in at least {min_frames} frames, got too few")


def _level_camera_up(camera_rotations: np.ndarray, subject_up: np.ndarray) -> np.ndarray | None:
    """Up from roll-free cameras (module docstring); None when the cameras do not determine it."""
    R = np.asarray(camera_rotations, np.float64).reshape(-1, 3, 3)
    if len(R) < 2:
        return None
    x_axes, y_axes = R[:, 0], R[:, 1]  # image right / image down, in world coordinates
    horizontal = np.where((np.abs(x_axes @ subject_up) <= np.abs(y_axes @ subject_up))[:, None], x_axes, y_axes)
    values, vectors = np.linalg.eigh(horizontal.T @ horizontal)
    if values[1] < 0.2 * len(R) / 2:
        return None
    up = vectors[:, 0] * np.sign(vectors[:, 0] @ subject_up)
    if up @ subject_up < np.cos(np.deg2rad(45.0)):
        return None
    return up


def _estimate_floor(points: np.ndarray, names: Sequence[str], up: np.ndarray, quantile: float,
                    heights: Mapping[str, float], hip_height_m: float) -> tuple[float, str]:
    estimates, used = [], []
    for role in ("ankle", "heel", "toe"):
        for side in _pair(points, names, role):
            h = side @ up
            h = h[np.isfinite(h)]
            if h.size >= 3:
                estimates.append(float(np.quantile(h, quantile)) - float(heights[role]))
                used.append(role)
    if estimates:
        return float(np.median(estimates)), "foot keypoints (" + ", ".join(sorted(set(used))) + ")"
    hip = _midpoint(points, names, "hip", both_only=False) @ up
    hip = hip[np.isfinite(hip)]
    if hip.size == 0:
        raise ValueError("compute/world_alignment.py estimate_world_alignment: points: expected foot keypoints "
                         "or hips triangulated in some frame to place the floor, got none")
    return float(np.median(hip)) - hip_height_m, "hip height"


def _horizontal(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    return v - (v @ up)[..., None] * up


def _estimate_heading(points: np.ndarray, names: Sequence[str], up: np.ndarray, heading: str,
                      centre_track: np.ndarray) -> tuple[np.ndarray, str]:
    if heading not in ("facing", "travel", "world_x"):
        raise ValueError(f"compute/world_alignment.py estimate_world_alignment: heading: expected 'facing', "
                         f"'travel' or 'world_x', got {heading!r}")
    if heading == "facing":
        lateral = []
        for role in ("shoulder", "hip"):
            left, right = _pair(points, names, role)
            lateral.append(_unit(_horizontal(left - right, up)))
        lateral = np.concatenate(lateral)
        forward = np.cross(lateral, up)  # left x up = forward (model: +Y x +Z = +X)
        ok = np.all(np.isfinite(forward), axis=-1)
        if ok.sum() >= 1:
            mean = forward[ok].mean(0)
            if np.linalg.norm(mean) >= 0.3:
                return _unit(_horizontal(mean, up)), "facing"
        heading = "travel"
    if heading == "travel":
        seen = np.flatnonzero(np.all(np.isfinite(centre_track), axis=-1))
        if seen.size >= 2:
            travel = _horizontal(centre_track[seen[-1]] - centre_track[seen[0]], up)
            if np.linalg.norm(travel) > 0.5:
                return _unit(travel), "travel"
    for axis in np.eye(3):
        horizontal = _horizontal(axis, up)
        if np.linalg.norm(horizontal) > 0.3:
            return _unit(horizontal), "world_x" if axis[0] == 1 else "world_" + "xyz"[int(np.argmax(axis))]
    raise AssertionError("unreachable: some world axis is not vertical")


def estimate_world_alignment(points, keypoint_names: Sequence[str], *, camera_rotations=None,
                             heading: str = "facing",
                             floor_quantile: float = 0.2, marker_heights: Mapping[str, float] | None = None,
                             hip_height_m: float = 0.9, min_frames: int = 5) -> WorldAlignment:
    """Rigid transform from the calibration world to a Z-up world with the floor at z = 0 (module docstring).

    points: (T, J, 3) triangulated keypoints in the calibration world, metres, NaN where missing (concatenate
    trials along T). keypoint_names: (J,) names of the keypoint set (BLAZEPOSE33, HALPE26, BODY25(B), MOVI87 ...).
    camera_rotations: optional (C, 3, 3) world->camera rotation matrices of the rig: up from level cameras when
    they determine it (module docstring), else from the subject.
    heading: "facing" | "travel" | "world_x", the preferred way to choose X' (fallbacks in the module docstring).
    floor_quantile: quantile of each foot keypoint's height taken as its standing height. marker_heights:
    {"ankle", "heel", "toe"} -> height above the ground (m), default FOOT_MARKER_HEIGHT_M.
    Raises ValueError naming ``points`` when too few keypoints are triangulated.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[1] != len(keypoint_names):
        raise ValueError(f"compute/world_alignment.py estimate_world_alignment: points: expected shape "
                         f"(T, {len(keypoint_names)}, 3), got {points.shape}")
    heights = dict(FOOT_MARKER_HEIGHT_M, **(marker_heights or {}))
    up, up_source = _estimate_up(points, keypoint_names, min_frames)
    if camera_rotations is not None:
        camera_up = _level_camera_up(camera_rotations, up)
        if camera_up is not None:
            up, up_source = camera_up, "level cameras"
    floor, floor_source = _estimate_floor(points, keypoint_names, up, floor_quantile, heights, hip_height_m)
    centre_track = _midpoint(points, keypoint_names, "hip", both_only=False)
    if not np.isfinite(centre_track).any():
        centre_track = np.nanmean(points, axis=1)
    x_axis, heading_source = _estimate_heading(points, keypoint_names, up, heading, centre_track)
    y_axis = np.cross(up, x_axis)
    rotation = np.stack([x_axis, y_axis, up])
    centre = np.nanmedian(centre_track, axis=0)
    origin = centre - (centre @ up - floor) * up
    translation = -rotation @ origin
    return WorldAlignment(rotation, translation, up_source, floor, floor_source, heading_source)


def transform_extrinsics(rvec, tvec, alignment: WorldAlignment) -> tuple[np.ndarray, np.ndarray]:
    """World->camera extrinsics in the aligned world, projections unchanged (float64 numpy).

    rvec (..., 3) Rodrigues, tvec (..., 3) m with ``x_cam = R X + t``. With ``X = R_a^T (X' - t_a)``:
    ``R' = R R_a^T``, ``t' = t - R' t_a``. Returns (rvec' (..., 3), tvec' (..., 3)).
    """
    rvec = np.asarray(rvec, np.float64)
    tvec = np.asarray(tvec, np.float64)
    R = Rotation.from_rotvec(rvec.reshape(-1, 3)).as_matrix()
    R_new = R @ np.asarray(alignment.rotation, np.float64).T
    t_new = tvec.reshape(-1, 3) - np.einsum("cij,j->ci", R_new, np.asarray(alignment.translation, np.float64))
    return Rotation.from_matrix(R_new).as_rotvec().reshape(rvec.shape), t_new.reshape(tvec.shape)


def transform_rig(rig, alignment: WorldAlignment):
    """Camera (single or rig with leading (C,) axes) -> the same cameras in the aligned world.

    ``project_points(transform_rig(rig, a), apply_alignment(X, a)) == project_points(rig, X)``. Intrinsics,
    distortion and size are unchanged; leaves are built by ``compute.cameras.make_camera`` (default dtype).
    """
    from compute.cameras import make_camera

    rvec, tvec = transform_extrinsics(np.asarray(rig.rvec), np.asarray(rig.tvec), alignment)
    return make_camera(np.asarray(rig.K), np.asarray(rig.dist), rvec, tvec, np.asarray(rig.size))
