"""Checking the observations of a session and moving them to the device as one padded ``SessionData``.

Shape buckets.  The compiled bilevel step depends on the shapes of its inputs: cameras C, trials N, padded
frames T_max and keypoints J.  Compiling it takes minutes on a small CPU, so a session is padded up to the
next bucket (``ShapeBuckets``: by default C in 4, 8, 12, 16 (then multiples of 8), N in 1, 2, 4, 8, 16 (then
multiples of 16), T_max in 512, 1024, 2048, ... frames, so trials up to 8.5 s at 60 fps fit the first) and every
session of a marker set (J) and parameter set that falls in one bucket shares one executable, in this process
and, through the persistent compilation cache, in every later one.  The padding is inert (see ``SessionData``):
padded cameras and trials have confidence 0, no gauge freedom and no weight in the loss's averages, so the fit is
the one without padding up to float rounding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from compute import kinematics as kin
from compute.cameras import Camera
from compute.fit.gauge import gauge_projection_matrix
from compute.fit.types import SessionData, TrialObservations

__all__ = ["ShapeBuckets", "DEFAULT_BUCKETS", "bucket_size", "session_shape", "validate_inputs",
           "prepare_session_data", "sanitize_observations_numpy", "pad_cameras", "pad_stacked_trials", "take_trials",
           "stacked_size"]


@dataclass(frozen=True)
class ShapeBuckets:
    """Sizes the session arrays are padded up to (see the module docstring).

    cameras, trials: increasing bucket sizes; a count above the last is rounded up to a multiple of
    ``cameras_beyond`` / ``trials_beyond``.  frames_min: the smallest T_max bucket; larger T_max doubles
    (frames_min * 2^k), so trials of any length fall into a few buckets at most 2x the longest trial (the step
    reads only a fixed number of sampled frames per trial, so a longer padded array costs memory, not time).
    """

    cameras: tuple[int, ...] = (4, 8, 12, 16)
    # 6 and 12 besides the powers of two: padded trials are computed like real ones, and 10 trials padded to 16
    # cost a 10-walk 8-camera fit 223 s against 191 s padded to 12 (both with compilation)
    trials: tuple[int, ...] = (1, 2, 4, 6, 8, 12, 16)
    frames_min: int = 512
    cameras_beyond: int = 8
    trials_beyond: int = 16

    def __post_init__(self) -> None:
        for name in ("cameras", "trials"):
            sizes = getattr(self, name)
            if not sizes or any(int(s) < 1 for s in sizes) or list(sizes) != sorted(sizes):
                raise ValueError(f"ShapeBuckets.{name}: expected increasing positive sizes, got {sizes}")
        if self.frames_min < 2 or self.cameras_beyond < 1 or self.trials_beyond < 1:
            raise ValueError("ShapeBuckets.frames_min >= 2, cameras_beyond >= 1, trials_beyond >= 1 expected")


DEFAULT_BUCKETS = ShapeBuckets()
"""The shape buckets of ``fit_session`` and of the warm-up (``pipeline.commands.warmup``)."""


def bucket_size(count: int, sizes: Sequence[int], beyond: int) -> int:
    """The smallest of ``sizes`` >= count, else count rounded up to a multiple of ``beyond``."""
    for size in sizes:
        if count <= size:
            return int(size)
    return int(math.ceil(count / beyond) * beyond)


def frames_bucket(t_max: int, frames_min: int) -> int:
    """frames_min * 2^k >= t_max (the smallest such)."""
    size = frames_min
    while size < t_max:
        size *= 2
    return size


def session_shape(n_cameras: int, n_trials: int, t_max: int,
                  buckets: ShapeBuckets | None = DEFAULT_BUCKETS) -> tuple[int, int, int]:
    """Padded (C, N, T_max) of a session with these counts under ``buckets`` (None: no padding).  Sessions with
    the same padded shape, marker set and parameter set share one compiled step."""
    if buckets is None:
        return n_cameras, n_trials, t_max
    return (bucket_size(n_cameras, buckets.cameras, buckets.cameras_beyond),
            bucket_size(n_trials, buckets.trials, buckets.trials_beyond), frames_bucket(t_max, buckets.frames_min))


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


def pad_cameras(rig: Camera, n_cam: int) -> Camera:
    """Rig Camera(C,) -> Camera(n_cam,) whose extra cameras repeat the last one (a valid camera keeps every
    projection, and so every masked-out gradient, finite)."""
    c = int(np.shape(rig.rvec)[0])
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], n_cam - c, axis=0)]), rig)


def stacked_size(stacked) -> int:
    """Length of the leading (N,) axis of a stacked pytree (e.g. the trajectory networks)."""
    return int(jax.tree.leaves(eqx.filter(stacked, eqx.is_array))[0].shape[0])


def pad_stacked_trials(stacked, n_trials: int):
    """A pytree stacked on a leading (N,) trial axis (e.g. the trajectory networks) -> (n_trials,) by repeating
    the last entry; unchanged when it already has n_trials.  The copies only fill padded trials (trial_mask 0)."""
    pad = n_trials - stacked_size(stacked)
    if pad == 0:
        return stacked
    if pad < 0:
        raise ValueError(f"compute.fit: {stacked_size(stacked)} stacked trials do not fit {n_trials} slots")
    return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)])
                        if eqx.is_array(x) else x, stacked)


def sanitize_observations_numpy(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``compute.losses.sanitize_observations`` in numpy (no per-shape device kernels to compile): NaN/inf
    keypoints (..., 2) px -> 0 with confidence (...) 0, confidence clipped to [0, 1]; float32."""
    kp = np.asarray(keypoints, np.float32)
    conf = np.asarray(confidence, np.float32)
    valid = np.all(np.isfinite(kp), axis=-1) & np.isfinite(conf)
    return np.where(valid[..., None], kp, 0.0).astype(np.float32), np.where(valid, np.clip(conf, 0.0, 1.0), 0.0
                                                                            ).astype(np.float32)


def take_trials(stacked, n_trials: int):
    """The first ``n_trials`` entries of a pytree stacked on a leading trial axis (drops shape-bucket padding)."""
    return jax.tree.map(lambda x: x[:n_trials] if eqx.is_array(x) else x, stacked)


def prepare_session_data(cameras: Camera, trials: Sequence[TrialObservations],
                         buckets: ShapeBuckets | None = None) -> SessionData:
    """Sanitise (NaN -> weight 0) and pad the observations to a common T_max: see ``SessionData``.

    buckets: pad cameras, trials and T_max further up to these shape buckets (None: only to the longest trial
    and the session's own cameras and trials).  The masks of ``SessionData`` mark the real ones.
    """
    n_frames_real = np.array([tr.n_frames for tr in trials], np.int32)
    n_real, c_real = len(trials), int(np.shape(cameras.rvec)[0])
    c_pad, n_pad, t_pad = session_shape(c_real, n_real, int(n_frames_real.max()), buckets)
    n_markers = int(np.shape(trials[0].keypoints)[2])
    keypoints = np.zeros((n_pad, t_pad, c_pad, n_markers, 2), np.float32)
    confidence = np.zeros((n_pad, t_pad, c_pad, n_markers), np.float32)
    for i, tr in enumerate(trials):
        kp, conf = sanitize_observations_numpy(tr.keypoints, tr.confidence)
        keypoints[i, : tr.n_frames, :c_real] = np.moveaxis(kp, 1, 0)
        confidence[i, : tr.n_frames, :c_real] = np.moveaxis(conf, 1, 0)
    durations = np.array([max((tr.n_frames - 1) / tr.fps, 1e-3) for tr in trials], np.float32)
    # padded trials repeat the last real trial's length and duration: valid times, no weight
    n_frames = np.concatenate([n_frames_real, np.repeat(n_frames_real[-1:], n_pad - n_real)])
    durations = np.concatenate([durations, np.repeat(durations[-1:], n_pad - n_real)])
    rig = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), cameras)
    gauge = np.zeros((6 * c_pad, 6 * c_pad), np.float32)
    gauge[: 6 * c_real, : 6 * c_real] = gauge_projection_matrix(rig)  # padded cameras: no freedom at all
    return SessionData(keypoints=jnp.asarray(keypoints), confidence=jnp.asarray(confidence),
                       n_frames=jnp.asarray(n_frames, jnp.int32), durations=jnp.asarray(durations, jnp.float32),
                       rig=pad_cameras(rig, c_pad), gauge_projection=jnp.asarray(gauge),
                       camera_mask=jnp.asarray(np.arange(c_pad) < c_real, jnp.float32),
                       trial_mask=jnp.asarray(np.arange(n_pad) < n_real, jnp.float32))
