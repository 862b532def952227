"""The session loss of the bilevel fit on one random batch of frames.

Every step samples the same number K of frames from every trial (stratified: one uniform draw in each of K equal
slices of the trial), so the step has fixed shapes and compiles once for trials of any length.  Frames map to
scaled time ``t = pi * i / (T - 1)`` in [0, pi] (the trajectory network's input).  The loss is

  ``L = L_reprojection + offset_weight L_offset + smoothness_weight L_smooth + equality_weight L_eq``

(``compute.losses``): Huber reprojection error through the gauge-projected refined cameras (px), mean squared
marker offset (m), mean squared second time derivative of qpos and the body model's equality residuals; plus, when
``LossConfig.priors`` has a positive weight, the joint-angle priors of ``compute.fit.priors`` (term ``"prior"``).
When the camera deltas carry time offsets, camera c's keypoints are taken at the fractional frame
``i - delta_c fps`` (``compute.fit.time_offsets``).
"""
from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from compute import kinematics as kin
from compute.fit.gauge import effective_camera_delta, project_with_delta
from compute.fit.priors import prior_loss
from compute.fit.time_offsets import session_time_offsets, shifted_observations
from compute.fit.types import FitVariables, SessionData
from compute.losses import equality_loss, offset_regularisation, reprojection_loss, smoothness_loss
from compute.params import LossConfig
from compute.trajectory import Trajectory, evaluate_stacked

__all__ = ["sample_frames", "frame_to_scaled_time", "qpos_second_derivative", "session_loss"]


def sample_frames(key: jax.Array, n_frames: jax.Array, k: int) -> jax.Array:
    """Stratified frame indices (N,k) int32 for trials of n_frames (N,): one uniform draw in each of k equal
    slices of every trial."""
    u = (jnp.arange(k)[None, :] + jax.random.uniform(key, (n_frames.shape[0], k))) / k
    idx = jnp.floor(u * n_frames[:, None]).astype(jnp.int32)
    return jnp.clip(idx, 0, n_frames[:, None] - 1)


def frame_to_scaled_time(idx: jax.Array, n_frames: jax.Array) -> jax.Array:
    """Frame index (N,K) -> scaled time in [0, pi] per trial (N,K)."""
    return jnp.pi * idx.astype(jnp.float32) / jnp.maximum(n_frames[:, None] - 1, 1).astype(jnp.float32)


def qpos_second_derivative(networks: Trajectory, t_scaled: jax.Array, durations: jax.Array) -> jax.Array:
    """d^2 qpos / dt^2 (N,K,Q) in physical units (per s^2) by forward-mode differentiation of the stacked
    networks at t_scaled (N,K); durations (N,) s."""

    def one(traj, t):
        def first(tt):
            return jax.jvp(traj, (tt,), (jnp.ones_like(tt),))[1]
        return jax.jvp(first, (t,), (jnp.ones_like(t),))[1]

    dd = eqx.filter_vmap(lambda traj, ts: jax.vmap(lambda t: one(traj, t))(ts))(networks, t_scaled)
    return dd * ((jnp.pi / durations) ** 2)[:, None, None]


def session_loss(train: FitVariables, frozen: FitVariables, body: kin.BodyModel, data: SessionData,
                 key: jax.Array, loss: LossConfig, time_points_per_trial: int) -> tuple[jax.Array, dict]:
    """Total loss (scalar) on one random batch of ``time_points_per_trial`` frames from every trial, and its terms
    ``{"loss", "reprojection", "offset", "smoothness", "equality"}`` (plus ``"prior"`` when priors are on).
    ``train``/``frozen``: the two halves of ``eqx.partition(FitVariables, ...)``."""
    variables = eqx.combine(train, frozen)
    n_frames = data.n_frames
    idx = sample_frames(key, n_frames, time_points_per_trial)                     # (N,K)
    t_scaled = frame_to_scaled_time(idx, n_frames)
    qpos = evaluate_stacked(variables.networks, t_scaled)                        # (N,K,Q)
    n, k, q = qpos.shape
    markers = kin.markers_over_time(body, qpos.reshape(n * k, q), variables.body.log_scale,
                                    variables.body.offsets)                      # (N*K,J,3)
    rotation, centre_shift = effective_camera_delta(variables.cameras, data.gauge_projection)
    predicted = project_with_delta(data.rig, rotation, centre_shift, markers)    # (C,N*K,J,2)
    if variables.cameras.time_offset is None:  # static branch: without offsets the loss is the synchronous one
        take = jax.vmap(lambda arr, i: arr[i])
        observed = take(data.keypoints, idx).reshape((n * k,) + data.keypoints.shape[2:])   # (N*K,C,J,2)
        weights = take(data.confidence, idx).reshape((n * k,) + data.confidence.shape[2:])  # (N*K,C,J)
    else:
        delta_s = session_time_offsets(variables.cameras, data.confidence)                  # (C,) s
        fps = jnp.maximum(n_frames - 1, 1).astype(jnp.float32) / data.durations             # (N,)
        observed, weights = shifted_observations(data.keypoints, data.confidence, idx, n_frames,
                                                 fps[:, None] * delta_s[None, :])
        observed = observed.reshape((n * k,) + data.keypoints.shape[2:])
        weights = weights.reshape((n * k,) + data.confidence.shape[2:])
    observed = jnp.moveaxis(observed, 1, 0)
    weights = jnp.moveaxis(weights, 1, 0)
    # shape-bucket padding (trial_mask, camera_mask 0) has no weight: every term averages over the real trials
    # and cameras only, so a padded session's loss equals the unpadded one (SessionData)
    trial_mask = jnp.ones((n,), jnp.float32) if data.trial_mask is None else data.trial_mask
    camera_mask = jnp.ones(data.rig.rvec.shape[:1], jnp.float32) if data.camera_mask is None else data.camera_mask
    n_real_trials = jnp.sum(trial_mask)
    trial_scale = n / n_real_trials
    camera_scale = camera_mask.shape[0] / jnp.sum(camera_mask)
    reprojection = reprojection_loss(predicted, observed, weights, loss.huber_delta_px) * (trial_scale * camera_scale)
    offset = offset_regularisation(variables.body.offsets)
    zero = jnp.zeros((), jnp.float32)
    smooth = zero
    if loss.smoothness_weight > 0:
        second = qpos_second_derivative(variables.networks, t_scaled, data.durations)
        smooth = smoothness_loss(second * trial_mask[:, None, None]) * trial_scale
    equality = zero
    if loss.equality_weight > 0:
        residuals = jax.vmap(lambda qp: kin.equality_residuals(body, qp))(qpos.reshape(n * k, q))
        equality = equality_loss(residuals * jnp.repeat(trial_mask, k)[:, None]) * trial_scale
    total = (reprojection + loss.offset_weight * offset + loss.smoothness_weight * smooth
             + loss.equality_weight * equality)
    terms = {"reprojection": reprojection, "offset": offset, "smoothness": smooth, "equality": equality}
    # static branch: with every prior weight 0 the traced loss is exactly the prior-free one
    if loss.priors.enabled:
        per_trial = jax.vmap(lambda qp: prior_loss(qp, body.joint_names, body.joint_lower, body.joint_upper,
                                                   loss.priors)[0])(qpos)            # (N,) mean over K frames
        prior = jnp.sum(per_trial * trial_mask) / n_real_trials
        total = total + prior
        terms["prior"] = prior
    return total, {"loss": total, **terms}
