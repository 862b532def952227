"""Two-stage baseline (the comparison of Cotton 2024): robust triangulation, then per-frame inverse kinematics.

Stage 1 triangulates every keypoint (``compute.triangulation.triangulate_points``: confidence-weighted DLT with
outlier rejection).  Stage 2 fits the same scaled body model to the 3D points: one qpos per frame (all frames of
all trials in one batch, ``jax.vmap``-ed kinematics) plus the shared log-scales, by Adam on a Huber loss of the
3D marker distances (metres), run by the shared fit loop (``compute.fit.loop``).  Marker offsets are not fitted
(zero) and cameras are not refined.  The output is a ``SessionFit`` with the same metrics as the end-to-end fit;
``TrialFit.network`` is empty (no trajectory network).
"""
from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from compute import kinematics as kin
from compute.cameras import Camera
from compute.fit.evaluation import compiled_markers_over_time, session_gc, trial_metrics
from compute.fit.initialisation import estimate_log_scale, initial_root_and_heading
from compute.fit.loop import run_loop
from compute.fit.observations import validate_inputs
from compute.fit.types import LOSS_HISTORY_COLUMNS, FitDivergedError, SessionFit, TrialFit, TrialObservations
from compute.losses import huber, safe_norm
from compute.params import BaselineConfig, ChecksConfig, FitParams
from compute.trajectory import latent_to_qpos, qpos_to_latent, unbounded_mask
from compute.triangulation import triangulate_points

__all__ = ["IKVariables", "ik_loss", "ik_step", "inverse_kinematics", "fit_two_stage"]


class IKVariables(eqx.Module):
    """Variables of the per-frame inverse kinematics: latent (F,Q) raw joint outputs (root translation residual
    in metres, see ``compute.trajectory.latent_to_qpos``) and log_scale (G,)."""

    latent: jax.Array
    log_scale: jax.Array


def ik_loss(variables: IKVariables, body: kin.BodyModel, targets: jax.Array, valid: jax.Array,
            root_init: jax.Array, limits: tuple[jax.Array, jax.Array, jax.Array], delta_m: float) -> jax.Array:
    """Mean Huber loss (threshold delta_m, metres) of the 3D distances between model markers and targets (F,J,3)
    over valid (F,J) entries; root_init (F,3) m; limits (lower (Q,), upper (Q,), unbounded (Q,))."""
    lower, upper, unbounded = limits
    qpos = latent_to_qpos(variables.latent, lower, upper, unbounded, root_init, 1.0)
    offsets = jnp.zeros((targets.shape[1], 3), jnp.float32)
    markers = kin.markers_over_time(body, qpos, variables.log_scale, offsets)
    distance = safe_norm(markers - targets)
    return jnp.sum(valid * huber(distance, delta_m)) / jnp.maximum(jnp.sum(valid), 1.0)


@eqx.filter_jit
def ik_step(variables: IKVariables, opt_state: optax.OptState, body: kin.BodyModel, targets: jax.Array,
            valid: jax.Array, root_init: jax.Array, limits, delta_m: float, optimizer: optax.GradientTransformation,
            ) -> tuple[IKVariables, optax.OptState, jax.Array]:
    """One compiled Adam step of ``ik_loss`` -> (variables, opt_state, loss before the step)."""
    loss, grads = jax.value_and_grad(ik_loss)(variables, body, targets, valid, root_init, limits, delta_m)
    updates, opt_state = optimizer.update(grads, opt_state, variables)
    return optax.apply_updates(variables, updates), opt_state, loss


def inverse_kinematics(body: kin.BodyModel, points: np.ndarray, root_init: np.ndarray, heading: np.ndarray,
                       log_scale: np.ndarray, baseline: BaselineConfig, checks: ChecksConfig,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame IK of the scaled model to 3D points.

    points (F,J,3) metres (NaN = missing); root_init (F,3) initial pelvis positions; heading (F,) rad;
    log_scale (G,) initial guess.  Returns (qpos (F,Q), log_scale (G,), loss per step (ik_steps,)).
    Raises FitDivergedError on a non-finite loss.
    """
    lower = np.asarray(body.joint_lower, np.float32)
    upper = np.asarray(body.joint_upper, np.float32)
    unbounded = unbounded_mask(lower, upper)
    q0 = np.repeat(np.asarray(kin.neutral_qpos(body, root_xyz=(0.0, 0.0, 0.0), heading=0.0))[None], len(heading), 0)
    q0[:, body.joint_names.index("pelvis_rotation")] = heading
    latent = qpos_to_latent(q0, lower, upper, unbounded)
    valid = jnp.asarray(np.all(np.isfinite(points), axis=-1).astype(np.float32))
    targets = jnp.asarray(np.nan_to_num(points, nan=0.0).astype(np.float32))
    root = jnp.asarray(root_init, jnp.float32)
    variables = IKVariables(latent=jnp.asarray(latent), log_scale=jnp.asarray(log_scale, jnp.float32))
    limits = (jnp.asarray(lower), jnp.asarray(upper), jnp.asarray(unbounded))
    optimizer = optax.adam(optax.exponential_decay(baseline.ik_learning_rate, transition_steps=baseline.ik_steps,
                                                   decay_rate=0.01))
    zero = jnp.zeros((), jnp.float32)

    def step(i, state):
        v, s = state
        v, s, loss = ik_step(v, s, body, targets, valid, root, limits, baseline.ik_huber_delta_m, optimizer)
        # the IK loss is a 3D (metre) Huber loss, recorded as both the loss and the data term
        return (v, s), {"loss": loss, "reprojection": loss, "offset": zero, "smoothness": zero, "equality": zero}

    result = run_loop(step, (variables, optimizer.init(variables)), baseline.ik_steps, LOSS_HISTORY_COLUMNS,
                      history_every=1, check_every=checks.divergence_check_every)
    variables = result.state[0]
    qpos = latent_to_qpos(variables.latent, *limits, root, 1.0)
    return np.asarray(qpos), np.asarray(variables.log_scale), result.history[:, 1]


def fit_two_stage(body: kin.BodyModel, cameras: Camera, trials: list[TrialObservations], params: FitParams,
                  seed: int = 0) -> SessionFit:
    """Triangulate + per-frame IK baseline with the same outputs and metrics as ``fit_session``.

    Reads ``params.baseline``, ``params.checks`` and ``params.loss.huber_delta_px`` (for the reported
    reprojection loss).  ``seed`` is recorded (the baseline is deterministic).  Raises FitDivergedError on
    non-finite results.
    """
    wall_start = time.perf_counter()
    validate_inputs(body, cameras, trials)
    rig_np = jax.tree.map(np.asarray, cameras)
    points = []
    for tr in trials:
        conf = np.nan_to_num(np.asarray(tr.confidence, np.float64), nan=0.0)
        p, _ = triangulate_points(rig_np, np.asarray(tr.keypoints, np.float64), conf)
        points.append(np.asarray(p, np.float64))
    log_scale = estimate_log_scale(body, points)
    roots, headings = [], []
    for tr, p in zip(trials, points):
        root_base, heading, per_frame = initial_root_and_heading(body, p, log_scale)
        u = np.arange(tr.n_frames) / max(tr.n_frames - 1, 1)
        smooth = (u[:, None] ** np.arange(root_base.shape[0])) @ root_base
        roots.append(np.where(np.isfinite(per_frame), per_frame, smooth))
        headings.append(np.full(tr.n_frames, heading))
    qpos_all, log_scale, losses = inverse_kinematics(body, np.concatenate(points), np.concatenate(roots),
                                                     np.concatenate(headings), log_scale, params.baseline,
                                                     params.checks)
    if not np.all(np.isfinite(qpos_all)):
        raise FitDivergedError("compute.fit.baseline fit_two_stage: inverse kinematics produced non-finite values")
    offsets = np.zeros((len(body.marker_names), 3), np.float32)
    markers_all = np.asarray(compiled_markers_over_time(body, jnp.asarray(qpos_all), jnp.asarray(log_scale),
                                                        jnp.asarray(offsets)))
    trial_fits, errors, confs = [], [], []
    start = 0
    for tr in trials:
        stop = start + tr.n_frames
        qpos, markers = qpos_all[start:stop], markers_all[start:stop]
        start = stop
        metrics = trial_metrics(cameras, markers, tr, params.loss.huber_delta_px)
        errors.append(metrics.errors)
        confs.append(metrics.confidence)
        trial_fits.append(TrialFit(name=tr.name, times=np.arange(tr.n_frames) / tr.fps, qpos=qpos, markers=markers,
                                   gc_curve=metrics.gc_curve, gc5=float(metrics.gc_curve[4]),
                                   per_camera_median_error_px=metrics.per_camera_median_error_px, network=b"",
                                   network_config={}, final_loss=metrics.final_loss,
                                   reprojection_errors=metrics.errors.astype(np.float32)))
    gc = session_gc(errors, confs)
    history = np.zeros((len(losses), len(LOSS_HISTORY_COLUMNS)))
    history[:, 0] = np.arange(len(losses))
    history[:, 1] = losses
    history[:, 2] = losses  # the IK loss is a 3D (metre) Huber loss, recorded in both columns
    n_cam = int(np.shape(cameras.rvec)[0])
    return SessionFit(log_scale=log_scale, offsets=offsets, cameras=rig_np, camera_rotation_change_deg=np.zeros(n_cam),
                      camera_translation_change_m=np.zeros(n_cam), trials=trial_fits, loss_history=history,
                      gc_curve=gc, gc5=float(gc[4]), iterations=int(params.baseline.ik_steps),
                      wall_time_s=time.perf_counter() - wall_start, seed=seed, params=params)
