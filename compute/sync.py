"""Camera synchronisation pre-check: do the cameras see the same instant in the same frame?

For every camera c and a reference camera r (the one with the most confident keypoints), and every lag L in
``-max_lag_frames..max_lag_frames``, the check pairs camera c's keypoints of frame i with the reference's keypoints
of frame ``i + L`` and measures how well each pair satisfies the calibrated epipolar geometry: the symmetric
epipolar distance (px, after undistortion), median over all frames and keypoints.  A moving subject is consistent
only at the lag that matches the cameras' time offset; the lag of the smallest median, refined to a fraction of a
frame by a parabola through the minimum, is the camera's lag.  Where the median varies by less than
``min_contrast`` (relative) over the lags - a subject that hardly moves - the lag is undetermined (NaN).

Why epipolar distances and not a cross-correlation of keypoint speeds: a speed signal (keypoints' image speed
summed over keypoints, standardised) depends on the view - a leg swinging towards a camera barely moves in its
image - and on a 2 s synthetic walk seen by five cameras its cross-correlation peak missed injected offsets of
1.5-3 frames by up to 5 frames, whereas the epipolar median needs only the calibration that ingest has anyway.

Sign convention (the one of the bilevel fit's time offsets): camera c's frame i shows the body at time
``i / fps + delta_c``; the lag of camera c is ``delta_c - delta_ref`` in frames, i.e. camera c's frame i shows
the instant of the reference's frame ``i + lag_c``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from compute.cameras import Camera, undistort_points

__all__ = ["SyncCheck", "epipolar_lag_costs", "check_sync", "sync_warning"]


@dataclass(frozen=True)
class SyncCheck:
    """Result of :func:`check_sync` for C cameras.

    reference: index of the reference camera; lags_frames (C,) lag of each camera against it, frames (0 for the
    reference, NaN where undetermined); costs_px (C, 2 max_lag + 1) median symmetric epipolar distance at each lag
    ``-max_lag..max_lag`` (NaN for the reference and where too few keypoint pairs overlap); clear (C,) bool: the
    median at lag 0 exceeds the one at the best lag by more than ``min_gain`` (the data prefer the lag to being in
    sync; a broad minimum - a subject moving little - is not).
    """

    reference: int
    lags_frames: np.ndarray
    costs_px: np.ndarray
    clear: np.ndarray


def _camera(rig: Camera, c: int) -> Camera:
    """Camera c of the rig with float64 numpy leaves."""
    return Camera(*(np.asarray(getattr(rig, name), np.float64)[c] for name in ("K", "dist", "rvec", "tvec", "size")))


def _rotation(rvec: np.ndarray) -> np.ndarray:
    """Rodrigues vector (3,) -> rotation matrix (3,3), numpy."""
    theta = float(np.linalg.norm(rvec))
    if theta < 1e-12:
        return np.eye(3)
    k = rvec / theta
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * skew + (1 - np.cos(theta)) * skew @ skew


def _essential(cam_c: Camera, cam_r: Camera) -> np.ndarray:
    """E (3,3) with ``x_c^T E x_r = 0`` for normalised homogeneous points of one world point in c and r."""
    rot_c, rot_r = _rotation(np.asarray(cam_c.rvec)), _rotation(np.asarray(cam_r.rvec))
    relative = rot_c @ rot_r.T
    t = np.asarray(cam_c.tvec) - relative @ np.asarray(cam_r.tvec)
    skew = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return skew @ relative


def epipolar_lag_costs(rig: Camera, keypoints: np.ndarray, confidence: np.ndarray, camera: int, reference: int,
                       max_lag: int, min_confidence: float = 0.3, min_pairs: int = 50) -> np.ndarray:
    """Median symmetric epipolar distance (2 max_lag + 1,) px between camera ``camera``'s keypoints of frame i
    and camera ``reference``'s of frame i + L, L = -max_lag..max_lag.

    rig: Camera(C,) calibration (OpenCV model); keypoints (C,T,J,2) px; confidence (C,T,J).  The distance is
    measured in normalised undistorted coordinates and scaled by each camera's focal length; NaN where fewer
    than ``min_pairs`` keypoint pairs are confident in both.
    """
    cam_c, cam_r = _camera(rig, camera), _camera(rig, reference)
    essential = _essential(cam_c, cam_r)
    focal_c = 0.5 * (cam_c.K[0, 0] + cam_c.K[1, 1])
    focal_r = 0.5 * (cam_r.K[0, 0] + cam_r.K[1, 1])
    conf = np.nan_to_num(np.asarray(confidence, np.float64), nan=0.0)
    kp = np.asarray(keypoints, np.float64)
    ok_c = (conf[camera] > min_confidence) & np.all(np.isfinite(kp[camera]), axis=-1)      # (T,J)
    ok_r = (conf[reference] > min_confidence) & np.all(np.isfinite(kp[reference]), axis=-1)
    x_c = np.concatenate([undistort_points(cam_c, np.nan_to_num(kp[camera])), np.ones(ok_c.shape + (1,))], -1)
    x_r = np.concatenate([undistort_points(cam_r, np.nan_to_num(kp[reference])), np.ones(ok_r.shape + (1,))], -1)
    n = kp.shape[1]
    costs = np.full(2 * max_lag + 1, np.nan)
    for k, lag in enumerate(range(-max_lag, max_lag + 1)):
        i = np.arange(max(0, -lag), min(n, n - lag))
        both = ok_c[i] & ok_r[i + lag]
        if both.sum() < min_pairs:
            continue
        a, b = x_c[i][both], x_r[i + lag][both]                     # (P,3) each
        line_c = b @ essential.T                                     # epipolar lines in c: E x_r
        line_r = a @ essential                                       # in r: E^T x_c
        residual = np.abs(np.sum(a * line_c, axis=-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = 0.5 * (focal_c * residual / np.linalg.norm(line_c[:, :2], axis=-1)
                              + focal_r * residual / np.linalg.norm(line_r[:, :2], axis=-1))
        distance = distance[np.isfinite(distance)]
        if distance.size >= min_pairs:
            costs[k] = float(np.median(distance))
    return costs


def _parabolic_minimum(values: np.ndarray, k: int) -> float:
    """Sub-sample offset in [-0.5, 0.5] of the minimum at index k of ``values`` (0 at the ends or when flat)."""
    if k == 0 or k == len(values) - 1 or not np.all(np.isfinite(values[k - 1:k + 2])):
        return 0.0
    left, mid, right = values[k - 1], values[k], values[k + 1]
    curvature = left - 2 * mid + right
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5)) if curvature > 0 else 0.0


def check_sync(rig: Camera, keypoints: np.ndarray, confidence: np.ndarray, max_lag_frames: int = 10,
               min_contrast: float = 0.2, min_gain: float = 0.1, min_confidence: float = 0.3) -> SyncCheck:
    """Lag of every camera against the reference camera (see the module docstring).

    rig: Camera(C,) calibration; keypoints (C,T,J,2) px; confidence (C,T,J); max_lag_frames: lags searched in
    +-this many frames; min_contrast: the lag is undetermined (NaN) unless the largest median distance over the
    lags exceeds the smallest by this fraction of it; min_gain: see ``SyncCheck.clear``.
    """
    conf = np.nan_to_num(np.asarray(confidence, np.float64), nan=0.0)
    n_cam = conf.shape[0]
    reference = int(np.argmax((conf > min_confidence).sum(axis=(1, 2))))
    lags = np.full(n_cam, np.nan)
    costs = np.full((n_cam, 2 * max_lag_frames + 1), np.nan)
    lags[reference] = 0.0
    clear = np.zeros(n_cam, bool)
    for c in range(n_cam):
        if c == reference:
            continue
        costs[c] = epipolar_lag_costs(rig, keypoints, confidence, c, reference, max_lag_frames, min_confidence)
        if not np.any(np.isfinite(costs[c])):
            continue
        k = int(np.nanargmin(costs[c]))
        if np.nanmax(costs[c]) > (1.0 + min_contrast) * costs[c, k]:
            lags[c] = k - max_lag_frames + _parabolic_minimum(costs[c], k)
            clear[c] = costs[c, max_lag_frames] > (1.0 + min_gain) * costs[c, k]
    return SyncCheck(reference=reference, lags_frames=lags, costs_px=costs, clear=clear)


def sync_warning(check: SyncCheck, camera_names: Sequence[str], fps: float, threshold_frames: float = 1.0) -> str:
    """One line naming the cameras whose |lag| exceeds ``threshold_frames`` (frames and ms against the reference)
    and is clear (``SyncCheck.clear``), or "" when there are none."""
    late = [(name, lag) for name, lag, clear in zip(camera_names, check.lags_frames, check.clear)
            if clear and np.isfinite(lag) and abs(lag) > threshold_frames]
    if not late:
        return ""
    parts = ", ".join(f"{name} {lag:+.1f} frames ({1000.0 * lag / fps:+.0f} ms)" for name, lag in late)
    return (f"cameras look out of sync against {camera_names[check.reference]} (epipolar consistency of the "
            f"keypoints over frame lags): {parts}; consider BundleAdjustmentConfig.fit_time_offsets")
