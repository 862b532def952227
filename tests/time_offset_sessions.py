"""Small synthetic walks seen by unsynchronised cameras, for the time-offset tests and benchmark.

Camera c's frame i shows the body at time ``i / fps + offset_c / fps`` (offset in frames): the motion is an
analytic walk (pelvis +X at 1.2 m/s, swinging hips and knees) evaluated at each camera's own times, so any
sub-frame offset is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tests.fit_fixtures import _look_at_camera, _markers_jit


@dataclass(frozen=True)
class OffsetSession:
    cameras: object              # compute.cameras.Camera (C,), exact calibration
    keypoints: np.ndarray        # (C, T, J, 2) px
    confidence: np.ndarray       # (C, T, J)
    fps: float
    offsets_frames: np.ndarray   # (C,) injected offsets, frames
    qpos: np.ndarray             # (T, Q) truth at body time i / fps


def walk_qpos(body, times_s: np.ndarray, phase0: float) -> np.ndarray:
    """(T, Q) qpos of the analytic walk at times (T,) s."""
    from compute.kinematics import neutral_qpos

    names = body.joint_names
    q = np.tile(np.asarray(neutral_qpos(body)), (len(times_s), 1))
    q[:, names.index("pelvis_tx")] = -1.0 + 1.2 * times_s
    phase = 2 * np.pi * 0.9 * times_s + phase0
    for side, sign in (("r", 1.0), ("l", -1.0)):
        q[:, names.index(f"hip_flexion_{side}")] = 0.35 * sign * np.sin(phase)
        q[:, names.index(f"knee_angle_{side}")] = np.clip(0.5 * (1 + sign * np.sin(phase + 1.0)), 0, 1.2)
    return q


def offset_session(body, offsets_frames, seed: int = 0, n_frames: int = 60, fps: float = 30.0,
                   noise_px: float = 1.0) -> OffsetSession:
    """A walk of ``n_frames`` seen by len(offsets_frames) cameras on a 4 m circle, camera c shifted by
    offsets_frames[c] frames; Gaussian pixel noise ``noise_px``, confidence 0.9.  Same seed -> same noise."""
    import jax.numpy as jnp

    from compute.cameras import make_camera, project_points, stack_cameras, unstack_cameras

    offsets = np.asarray(offsets_frames, np.float64)
    n_cam = len(offsets)
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, n_cam, endpoint=False) + 0.2
    cams = [_look_at_camera(np.array([4.0 * np.cos(a), 4.0 * np.sin(a), 1.5]), np.array([0.0, 0.0, 0.9]))
            for a in angles]
    rig = stack_cameras([make_camera(K, np.zeros(5), rvec, tvec, size) for K, rvec, tvec, size in cams])
    phase0 = float(rng.uniform(0, np.pi))
    log_scale = rng.normal(0, 0.02, len(body.scale_group_names))
    frames = np.arange(n_frames)
    times = (frames[None, :] + offsets[:, None]) / fps                                 # (C, T)
    q = walk_qpos(body, times.ravel(), phase0)
    markers = np.asarray(_markers_jit(body, jnp.asarray(q), jnp.asarray(log_scale),
                                      jnp.zeros((len(body.marker_names), 3)))).reshape(n_cam, n_frames, -1, 3)
    keypoints = np.stack([np.asarray(project_points(cam, jnp.asarray(markers[c])))
                          for c, cam in enumerate(unstack_cameras(rig))]).astype(np.float32)
    keypoints = keypoints + rng.normal(0, noise_px, keypoints.shape).astype(np.float32)
    confidence = np.full(keypoints.shape[:3], 0.9, np.float32)
    return OffsetSession(cameras=rig, keypoints=keypoints, confidence=confidence, fps=fps, offsets_frames=offsets,
                         qpos=walk_qpos(body, frames / fps, phase0))
