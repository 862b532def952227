"""Per-camera time offsets of the bilevel fit: unsynchronised cameras seen by one continuous-time trajectory.

Model: camera c's frame i shows the body at time ``i / fps + delta_c`` (delta_c in seconds, mean zero over the
observed cameras - the gauge of ``compute.fit.gauge.effective_time_offsets``).  Equivalently, at body time
``tau`` camera c's observation is the one at the fractional frame ``tau * fps - delta_c * fps``.

Formulation (why the observations are shifted, not the prediction): the loss evaluates the trajectory and the
forward kinematics once per sampled frame and compares it, in camera c, with camera c's keypoints linearly
interpolated at the fractional frame ``i - delta_c fps`` (``shifted_observations``).  The extra cost is a gather,
independent of the camera count.  The two alternatives cost more or are less exact: evaluating the network at
C shifted times costs C forward-kinematics passes, and a first-order expansion
``markers(t + delta) ~ markers(t) + delta d markers/dt`` (one forward-mode pass) leaves an error
``delta^2 / 2 * acceleration`` - measured on a synthetic walk (0.9 Hz, hips and knees swinging) up to 4.3 cm at
the feet for a 3-frame (0.1 s) offset, ~8 px at 4 m - while linear interpolation between two frames errs by at
most ``acceleration / (8 fps^2)`` (1.2 mm on the same walk at 30 fps).  A neighbour without a detection is replaced by the other one and
weighs proportionally less; a fractional frame outside the trial has weight 0.

The reported metrics (``trial_metrics_with_offsets``) are exact instead: camera c's detection at frame i is
compared with the trajectory evaluated at body time ``i / fps + delta_c`` (NaN where that time lies outside the
trial).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from compute import kinematics as kin
from compute.cameras import Camera, project_to_rig_numpy
from compute.fit.evaluation import EVALUATION_CHUNK_FRAMES, TrialMetrics, _evaluate_chunk, metrics_from_errors
from compute.fit.gauge import effective_time_offsets, observed_camera_mask
from compute.fit.types import BodyParams, CameraDelta, TrialObservations
from compute.trajectory import Trajectory

__all__ = ["shifted_observations", "session_time_offsets", "camera_markers_at_offsets",
           "trial_metrics_with_offsets", "epipolar_initial_offsets"]


def shifted_observations(keypoints: jax.Array, confidence: jax.Array, idx: jax.Array, n_frames: jax.Array,
                         shift_frames: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Keypoints and weights of every camera at body frames ``idx`` for cameras shifted by ``shift_frames``.

    keypoints (N,T,C,J,2) px and confidence (N,T,C,J) (sanitised, padded); idx (N,K) int body frames;
    n_frames (N,) real frames per trial; shift_frames (N,C) = delta_c * fps_n (frames).  Returns observed
    (N,K,C,J,2) px and weights (N,K,C,J): camera c's keypoints linearly interpolated at frame
    ``idx - shift_frames[:, c]`` (differentiable in the shift), weight 0 outside ``[0, n_frames - 1]``.
    """
    n_cam = keypoints.shape[2]
    position = idx[:, :, None].astype(jnp.float32) - shift_frames[:, None, :]          # (N,K,C)
    last = (n_frames - 1).astype(jnp.float32)[:, None, None]
    inside = (position >= 0.0) & (position <= last)
    lower = jnp.floor(position)
    fraction = (position - lower)[..., None]                                             # (N,K,C,1)
    lo = jnp.clip(lower.astype(jnp.int32), 0, (n_frames - 1)[:, None, None])
    hi = jnp.clip(lo + 1, 0, (n_frames - 1)[:, None, None])
    cams = jnp.arange(n_cam)[None, :]

    def gather(kp, conf, frames):                      # one trial: (T,C,J,2), (T,C,J), (K,C) -> (K,C,J,2), (K,C,J)
        return kp[frames, cams], conf[frames, cams]

    x0, w0 = jax.vmap(gather)(keypoints, confidence, lo)
    x1, w1 = jax.vmap(gather)(keypoints, confidence, hi)
    x0_filled = jnp.where((w0 > 0)[..., None], x0, x1)
    x1_filled = jnp.where((w1 > 0)[..., None], x1, x0)
    observed = (1.0 - fraction[..., None]) * x0_filled + fraction[..., None] * x1_filled
    weights = ((1.0 - fraction) * w0 + fraction * w1) * inside[..., None]
    return observed, weights


def session_time_offsets(delta: CameraDelta, confidence: jax.Array) -> jax.Array:
    """Effective (gauge-fixed, bounded) time offsets (C,) s of the camera deltas; confidence (N,T,C,J) tells
    which cameras observe anything.  Requires ``delta.time_offset`` (not None)."""
    return effective_time_offsets(delta.time_offset, observed_camera_mask(confidence), delta.max_time_offset_s)


def camera_markers_at_offsets(networks: Trajectory, n_frames: list[int], fps: list[float], body: kin.BodyModel,
                              beta: BodyParams, time_offset_s: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per trial: (markers (C,T,J,3) m, valid (C,T) bool) - the fitted markers at the body time
    ``i / fps + time_offset_s[c]`` of camera c's frame i (valid: that time lies inside the trial; elsewhere the
    markers are those of the nearest end).  Evaluated in fixed chunks of ``EVALUATION_CHUNK_FRAMES`` frames."""
    n_frames_arr = np.asarray(n_frames)
    n_slots = int(networks.frequencies.shape[0])  # stacked networks may be padded beyond the real trials
    n_frames_arr = np.concatenate([n_frames_arr, np.full(n_slots - len(n_frames_arr), n_frames_arr[-1])])
    fps = list(fps) + [fps[-1]] * (n_slots - len(fps))
    last = np.maximum(n_frames_arr - 1, 1).astype(np.float64)
    t_max = int(n_frames_arr.max())
    out = []
    per_camera = []
    for c, offset in enumerate(np.asarray(time_offset_s, np.float64)):
        position = np.arange(t_max)[None, :] + offset * np.asarray(fps, np.float64)[:, None]     # (N,T_max)
        valid = (position >= 0) & (position <= last[:, None])
        position = np.clip(position, 0.0, last[:, None])
        parts = []
        for start in range(0, t_max, EVALUATION_CHUNK_FRAMES):
            chunk = position[:, start:start + EVALUATION_CHUNK_FRAMES]
            width = chunk.shape[1]
            chunk = np.pad(chunk, ((0, 0), (0, EVALUATION_CHUNK_FRAMES - width)), mode="edge")
            t_scaled = np.pi * chunk / last[:, None]
            # the compiled chunk of evaluate_all_frames (same shapes): no second compilation
            _, markers = _evaluate_chunk(networks, jnp.asarray(t_scaled, jnp.float32), body, beta, len(n_frames))
            parts.append(np.asarray(markers)[:, :width])
        per_camera.append((np.concatenate(parts, axis=1), valid))
    for i, n in enumerate(n_frames_arr[:len(n_frames)]):
        markers = np.stack([m[i, :n] for m, _ in per_camera])
        valid = np.stack([v[i, :n] for _, v in per_camera])
        out.append((markers, valid))
    return out


def trial_metrics_with_offsets(rig: Camera, camera_markers: np.ndarray, valid: np.ndarray, trial: TrialObservations,
                               huber_delta_px: float) -> TrialMetrics:
    """``compute.fit.evaluation.TrialMetrics`` of a trial whose camera c sees ``camera_markers[c]`` (C,T,J,3) m;
    errors are NaN where ``valid`` (C,T) is False (the camera's frame lies outside the fitted time span)."""
    predicted = project_to_rig_numpy(rig, camera_markers, per_camera=True)                 # (C,T,J,2)
    err = np.linalg.norm(predicted - np.asarray(trial.keypoints), axis=-1)                 # (C,T,J)
    return metrics_from_errors(np.where(valid[..., None], err, np.nan), trial, huber_delta_px)


def epipolar_initial_offsets(rig: Camera, trials: list[TrialObservations], bound_s: float) -> np.ndarray:
    """Raw time offsets (C,) s to start the fit from: per camera the median over trials of the epipolar
    pre-check's lag (``compute.sync.check_sync``, frames / fps = seconds; NaN lags, e.g. a still subject, are
    skipped, a camera without any starts at 0), centred on the mean, and mapped through the inverse of the
    bounded parameterisation ``delta = B tanh(raw / B)`` (``compute.fit.gauge.effective_time_offsets``) with
    offsets clipped to 95 % of ``bound_s`` = B."""
    from compute.sync import check_sync

    lags_s = np.stack([check_sync(rig, t.keypoints, t.confidence).lags_frames / float(t.fps) for t in trials])
    with np.errstate(all="ignore"):
        delta = np.nanmedian(np.where(np.isfinite(lags_s), lags_s, np.nan), axis=0) if len(trials) > 1 \
            else lags_s[0]
    delta = np.where(np.isfinite(delta), delta, 0.0)
    delta = np.clip(delta - delta.mean(), -0.95 * bound_s, 0.95 * bound_s)
    return bound_s * np.arctanh(delta / bound_s)
