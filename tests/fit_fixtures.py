"""Helpers for the fit-table tests: tiny synthetic sessions inserted straight into the acquisition tables,
and a test-only parameter set that makes a fit take seconds (the fit's accuracy is tested in test_fit*.py).

Inserting rows directly (rather than through file importers) keeps these tests about the computed tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compute.params import PARAMETER_SETS

# very few steps, tiny network: a fit of a 2-trial, 3-camera, 1 s session takes a few seconds after compiling
TEST_PARAMS_NAME = "test_tiny"
TEST_PARAMS = PARAMETER_SETS["cpu_default"].replace(
    hidden_widths=(16, 16), steps=30, time_points_per_trial=8, warmup_steps=5, history_every=5,
    divergence_check_every=5)
# an absurd learning rate: the loss overflows to inf/NaN within the first steps -> FitDivergedError
DIVERGING_PARAMS_NAME = "test_diverge"
DIVERGING_PARAMS = TEST_PARAMS.replace(learning_rate=1e30, body_learning_rate=1e30, learning_rate_final=1e30,
                                       grad_clip_norm=1e30)


@dataclass(frozen=True)
class TinyTrial:
    name: str
    activity: str
    fps: float
    keypoints: np.ndarray   # (C, T, J, 2) px
    confidence: np.ndarray  # (C, T, J)
    footfalls: tuple = ()


@dataclass(frozen=True)
class TinySession:
    population: str
    camera_names: tuple[str, ...]
    cameras_given: object   # compute.cameras.Camera (C,)
    trials: tuple[TinyTrial, ...]


def _look_at_camera(center: np.ndarray, target: np.ndarray, focal_px: float = 800.0, size=(1280, 720)):
    """(K, rvec, tvec, size) of a camera at ``center`` looking at ``target`` (world Z up, image y down)."""
    from compute.cameras import matrix_to_rodrigues

    forward = (target - center) / np.linalg.norm(target - center)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera axes in world
    K = np.array([[focal_px, 0, size[0] / 2], [0, focal_px, size[1] / 2], [0, 0, 1.0]])
    return K, np.asarray(matrix_to_rodrigues(R)).ravel(), -R @ center, np.asarray(size, float)


def _markers_jit(body, qpos, log_scale, offsets):
    """Jitted ``markers_over_time`` (eager MJX kinematics is slow); compiled once per process."""
    global _MARKERS_JIT
    if _MARKERS_JIT is None:
        import equinox as eqx

        from compute.kinematics import markers_over_time

        _MARKERS_JIT = eqx.filter_jit(markers_over_time)
    return _MARKERS_JIT(body, qpos, log_scale, offsets)


_MARKERS_JIT = None


def tiny_session(seed: int, population: str = "control", n_frames: int = 24, n_cameras: int = 3,
                 n_trials: int = 1, marker_set: str = "MOVI87", keypoint_scale: float = 1.0) -> TinySession:
    """A short walk (pelvis +X at 1.2 m/s, swinging hips and knees) seen by ``n_cameras`` cameras, 30 fps.

    Shapes depend only on the arguments (not on the seed), so every session shares one compiled fit step.
    ``keypoint_scale`` multiplies every pixel coordinate (e.g. 1e30 to make a fit diverge).
    """
    import jax.numpy as jnp

    from compute.cameras import make_camera, project_to_rig, stack_cameras
    from compute.kinematics import load_body_model, neutral_qpos

    rng = np.random.default_rng(seed)
    body = load_body_model(marker_set)
    fps = 30.0
    angles = np.linspace(0, 2 * np.pi, n_cameras, endpoint=False) + rng.uniform(0, 0.3)
    cams = [_look_at_camera(np.array([4.0 * np.cos(a), 4.0 * np.sin(a), 1.5]), np.array([0.0, 0.0, 0.9]))
            for a in angles]
    # one make_camera per camera: a stacked (3, 3) rvec of a 3-camera rig would read as a rotation matrix
    rig = stack_cameras([make_camera(K, np.zeros(5), rvec, tvec, size) for K, rvec, tvec, size in cams])
    names = body.joint_names
    trials = []
    for i in range(n_trials):
        t = np.arange(n_frames) / fps
        q = np.tile(np.asarray(neutral_qpos(body)), (n_frames, 1))
        q[:, names.index("pelvis_tx")] = -0.6 + 1.2 * t + rng.normal(0, 0.01)
        phase = 2 * np.pi * 0.9 * t + rng.uniform(0, np.pi)
        for side, sign in (("r", 1.0), ("l", -1.0)):
            q[:, names.index(f"hip_flexion_{side}")] = 0.35 * sign * np.sin(phase)
            q[:, names.index(f"knee_angle_{side}")] = np.clip(0.5 * (1 + sign * np.sin(phase + 1.0)), 0, 1.2)
        log_scale = rng.normal(0, 0.02, len(body.scale_group_names))
        markers = _markers_jit(body, jnp.asarray(q), jnp.asarray(log_scale), jnp.zeros((len(body.marker_names), 3)))
        keypoints = np.asarray(project_to_rig(rig, markers), np.float32)          # (C, T, J, 2)
        keypoints = keypoints + rng.normal(0, 1.0, keypoints.shape).astype(np.float32)
        confidence = np.full(keypoints.shape[:3], 0.9, np.float32)
        trials.append(TinyTrial(name=f"walk{i + 1:02d}", activity="walk", fps=fps,
                                keypoints=(keypoints * keypoint_scale).astype(np.float32), confidence=confidence))
    return TinySession(population=population, camera_names=tuple(f"cam_{c + 1}" for c in range(n_cameras)),
                       cameras_given=rig, trials=tuple(trials))


def insert_synthetic_session(session, subject_id: str, session_id: str = "2024-01-01",
                             keypoint_set: str = "MOVI87") -> dict:
    """Insert a ``compute.synthetic.SyntheticSession`` into Subject/Session/Camera/Trial/Keypoints/WalkwaySteps.

    The camera calibration inserted is ``cameras_given`` (the perturbed one a lab would have). Returns the
    session key.
    """
    from schemas import acquisition as acq

    acq.Subject.insert1(dict(subject_id=subject_id, population=session.population), skip_duplicates=True)
    key = dict(subject_id=subject_id, session_id=session_id)
    acq.Session.insert1(dict(key, location="synthetic"))
    rig = session.cameras_given
    for c, name in enumerate(session.camera_names):
        size = np.asarray(rig.size[c])
        acq.Camera.insert1(dict(
            key, camera_name=name, image_width=int(size[0]), image_height=int(size[1]),
            intrinsics=np.asarray(rig.K[c], np.float64), distortion=np.asarray(rig.dist[c], np.float64),
            rotation=np.asarray(rig.rvec[c], np.float64), translation=np.asarray(rig.tvec[c], np.float64),
            calibration_file="synthetic", calibration_format="anipose", calibration_unit="m", unit_inferred=False))
    for trial in session.trials:
        keypoints = np.asarray(trial.keypoints, np.float32)
        confidence = np.asarray(trial.confidence, np.float32)
        n_frames = keypoints.shape[1]
        acq.Trial.insert1(dict(key, trial_name=trial.name, activity=trial.activity, keypoint_set=keypoint_set,
                               fps=float(trial.fps), n_frames=n_frames, keypoints_file="synthetic",
                               keypoints_format="npz"))
        for c, name in enumerate(session.camera_names):
            acq.Keypoints.insert1(dict(key, trial_name=trial.name, camera_name=name, points=keypoints[c],
                                       confidence=confidence[c], frame_index=np.arange(n_frames),
                                       n_missing_frames=0, detector="synthetic"))
        footfalls = list(getattr(trial, "footfalls", []) or [])
        if footfalls:
            acq.WalkwaySteps.insert1(dict(key, trial_name=trial.name, source_file="synthetic",
                                          n_footfalls=len(footfalls)))
            acq.WalkwaySteps.Footfall.insert([
                dict(key, trial_name=trial.name, footfall_index=i, foot=f["foot"],
                     contact_time=float(f["contact_time"]),
                     toe_off_time=None if f.get("toe_off_time") is None else float(f["toe_off_time"]),
                     heel_x=float(f["heel_walkway"][0]), heel_y=float(f["heel_walkway"][1]),
                     toe_x=float(f["toe_walkway"][0]), toe_y=float(f["toe_walkway"][1]))
                for i, f in enumerate(footfalls)])
    return key


def add_test_params() -> None:
    """The tiny and the diverging parameter sets (idempotent)."""
    from schemas.fitting import FitParams

    FitParams.insert_params(TEST_PARAMS_NAME, TEST_PARAMS, "tests: few steps, tiny network")
    FitParams.insert_params(DIVERGING_PARAMS_NAME, DIVERGING_PARAMS, "tests: absurd learning rate")
