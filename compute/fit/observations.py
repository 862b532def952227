"""Checking the observations of a session and moving them to the device as one padded ``SessionData``."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from compute import kinematics as kin
from compute.cameras import Camera
from compute.fit.gauge import gauge_projection_matrix
from compute.fit.types import SessionData, TrialObservations
from compute.losses import sanitize_observations

__all__ = ["validate_inputs", "prepare_session_data"]


def validate_inputs(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations]) -> None:
    """Raise ValueError naming the trial and the expectation when shapes, frame counts or fps do not fit."""
    if len(trials) == 0:
        raise ValueError("compute.fit: trials must contain at least one TrialObservations")
    n_cam = int(np.shape(cameras.rvec)[0])
    n_markers = len(body.marker_names)
    for tr in trials:
        kp, conf = np.shape(tr.keypoints), np.shape(tr.confidence)
        if len(kp) != 4 or kp[0] != n_cam or kp[2] != n_markers or kp[3] != 2:
            raise ValueError(f"compute.fit TrialObservations {tr.name!r}: keypoints expected shape "
                             f"({n_cam}, T, {n_markers}, 2), got {kp}")
        if conf != kp[:3]:
            raise ValueError(f"compute.fit TrialObservations {tr.name!r}: confidence expected shape {kp[:3]}, "
                             f"got {conf}")
        if kp[1] < 2:
            raise ValueError(f"compute.fit TrialObservations {tr.name!r}: keypoints need >= 2 frames")
        if not tr.fps > 0:
            raise ValueError(f"compute.fit TrialObservations {tr.name!r}: fps must be > 0, got {tr.fps}")


def prepare_session_data(cameras: Camera, trials: Sequence[TrialObservations]) -> SessionData:
    """Sanitise (NaN -> weight 0) and pad the observations to a common T_max: see ``SessionData``."""
    n_frames = np.array([tr.n_frames for tr in trials], np.int32)
    t_max = int(n_frames.max())
    kps, confs = [], []
    for tr in trials:
        kp, conf = sanitize_observations(tr.keypoints, tr.confidence)
        kp, conf = np.asarray(kp), np.asarray(conf)
        pad = t_max - tr.n_frames
        kps.append(np.pad(np.moveaxis(kp, 1, 0), ((0, pad), (0, 0), (0, 0), (0, 0))))
        confs.append(np.pad(np.moveaxis(conf, 1, 0), ((0, pad), (0, 0), (0, 0))))
    rig = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), cameras)
    durations = np.array([max((tr.n_frames - 1) / tr.fps, 1e-3) for tr in trials], np.float32)
    return SessionData(keypoints=jnp.asarray(np.stack(kps)), confidence=jnp.asarray(np.stack(confs)),
                       n_frames=jnp.asarray(n_frames), durations=jnp.asarray(durations), rig=rig,
                       gauge_projection=jnp.asarray(gauge_projection_matrix(rig)))
