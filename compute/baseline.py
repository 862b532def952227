"""Two-stage baseline (the paper's comparison): robust triangulation, then per-frame inverse kinematics.

Stage 1 triangulates every keypoint (``compute.triangulation.triangulate_points``: confidence-weighted DLT with
outlier rejection).  Stage 2 fits the same scaled body model to the 3D points: one qpos per frame (all frames of
all trials in one batch, ``jax.vmap``-ed kinematics) plus the shared log-scales, by Adam on a Huber loss of the
3D marker distances (metres).  Marker offsets are not fitted (zero) and cameras are not refined.  The outputs are
a ``SessionFit`` with the same metrics as the end-to-end fit; ``TrialFit.network`` is empty (no trajectory net).
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
from compute.fit import (LOSS_HISTORY_COLUMNS, FitDivergedError, SessionFit, TrialFit, TrialObservations,
                         _markers_over_time, _per_camera_median, estimate_log_scale, initial_root_and_heading, reprojection_errors_px,
                         session_gc, validate_inputs)
from compute.losses import huber, safe_norm
from compute.params import FitParams
from compute.trajectory import latent_to_qpos, qpos_to_latent, unbounded_mask

__all__ = ["fit_two_stage", "inverse_kinematics"]


class _IKVariables(eqx.Module):
    latent: jax.Array      # (F,Q) raw outputs (root translation residual in metres)
    log_scale: jax.Array   # (G,)


def _ik_loss(variables: _IKVariables, body: kin.BodyModel, targets: jax.Array, valid: jax.Array,
             root_init: jax.Array, limits: tuple[jax.Array, jax.Array, jax.Array], delta_m: float) -> jax.Array:
    lower, upper, unbounded = limits
    qpos = latent_to_qpos(variables.latent, lower, upper, unbounded, root_init, 1.0)
    offsets = jnp.zeros((targets.shape[1], 3), jnp.float32)
    markers = kin.markers_over_time(body, qpos, variables.log_scale, offsets)
    distance = safe_norm(markers - targets)
    return jnp.sum(valid * huber(distance, delta_m)) / jnp.maximum(jnp.sum(valid), 1.0)


@eqx.filter_jit
def _ik_run(variables: _IKVariables, body: kin.BodyModel, targets: jax.Array, valid: jax.Array,
            root_init: jax.Array, limits, delta_m: float, steps: int, learning_rate: float):
    schedule = optax.exponential_decay(learning_rate, transition_steps=steps, decay_rate=0.01)
    optimizer = optax.adam(schedule)
    state = optimizer.init(variables)

    def body_fn(carry, _):
        v, s = carry
        loss, grads = jax.value_and_grad(_ik_loss)(v, body, targets, valid, root_init, limits, delta_m)
        updates, s = optimizer.update(grads, s, v)
        return (optax.apply_updates(v, updates), s), loss

    (variables, _), losses = jax.lax.scan(body_fn, (variables, state), None, length=steps)
    return variables, losses


def inverse_kinematics(body: kin.BodyModel, points: np.ndarray, root_init: np.ndarray, heading: np.ndarray,
                       log_scale: np.ndarray, params: FitParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame IK of the scaled model to 3D points.

    points (F,J,3) metres (NaN = missing); root_init (F,3) initial pelvis positions; heading (F,) rad;
    log_scale (G,) initial guess.  Returns (qpos (F,Q), log_scale (G,), loss per step (ik_steps,)).
    """
    lower = np.asarray(body.joint_lower, np.float32)
    upper = np.asarray(body.joint_upper, np.float32)
    unbounded = unbounded_mask(lower, upper)
    q0 = np.repeat(np.asarray(kin.neutral_qpos(body, root_xyz=(0.0, 0.0, 0.0), heading=0.0))[None], len(heading), 0)
    q0[:, body.joint_names.index("pelvis_rotation")] = heading
    latent = qpos_to_latent(q0, lower, upper, unbounded)
    valid = np.all(np.isfinite(points), axis=-1).astype(np.float32)
    targets = np.nan_to_num(points, nan=0.0).astype(np.float32)
    variables = _IKVariables(latent=jnp.asarray(latent), log_scale=jnp.asarray(log_scale, jnp.float32))
    limits = (jnp.asarray(lower), jnp.asarray(upper), jnp.asarray(unbounded))
    variables, losses = _ik_run(variables, body, jnp.asarray(targets), jnp.asarray(valid),
                                jnp.asarray(root_init, jnp.float32), limits, params.ik_huber_delta_m,
                                params.ik_steps, params.ik_learning_rate)
    qpos = latent_to_qpos(variables.latent, *limits, jnp.asarray(root_init, jnp.float32), 1.0)
    return np.asarray(qpos), np.asarray(variables.log_scale), np.asarray(losses)


def fit_two_stage(body: kin.BodyModel, cameras: Camera, trials: list[TrialObservations], params: FitParams,
                  seed: int = 0) -> SessionFit:
    """Triangulate + per-frame IK baseline with the same outputs and metrics as ``fit_session``.

    ``seed`` is recorded (the baseline is deterministic).  Raises FitDivergedError on non-finite results.
    """
    from compute.triangulation import triangulate_points
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
                                                     np.concatenate(headings), log_scale, params)
    if not (np.all(np.isfinite(qpos_all)) and np.all(np.isfinite(losses))):
        raise FitDivergedError("compute/baseline.py fit_two_stage: inverse kinematics produced non-finite values")
    offsets = np.zeros((len(body.marker_names), 3), np.float32)
    markers_all = np.asarray(_markers_over_time(body, jnp.asarray(qpos_all), jnp.asarray(log_scale),
                                                   jnp.asarray(offsets)))
    trial_fits, errors, confs = [], [], []
    start = 0
    for tr in trials:
        stop = start + tr.n_frames
        qpos, markers = qpos_all[start:stop], markers_all[start:stop]
        start = stop
        err = reprojection_errors_px(cameras, markers, tr.keypoints)
        conf = np.where(np.isfinite(err), np.nan_to_num(np.asarray(tr.confidence, np.float64), nan=0.0), 0.0)
        errors.append(err)
        confs.append(conf)
        gc = session_gc([err], [conf])
        final = float(np.mean(conf * np.asarray(huber(jnp.asarray(np.nan_to_num(err, nan=0.0)),
                                                      params.huber_delta_px))))
        trial_fits.append(TrialFit(name=tr.name, times=np.arange(tr.n_frames) / tr.fps, qpos=qpos, markers=markers,
                                   gc_curve=gc, gc5=float(gc[4]),
                                   per_camera_median_error_px=_per_camera_median([err], [conf]), network=b"",
                                   network_config={}, final_loss=final, reprojection_errors=err.astype(np.float32)))
    gc = session_gc(errors, confs)
    history = np.zeros((len(losses), len(LOSS_HISTORY_COLUMNS)))
    history[:, 0] = np.arange(len(losses))
    history[:, 1] = losses
    history[:, 2] = losses  # the IK loss is a 3D (metre) Huber loss, recorded in both columns
    n_cam = int(np.shape(cameras.rvec)[0])
    return SessionFit(log_scale=log_scale, offsets=offsets, cameras=rig_np, camera_rotation_change_deg=np.zeros(n_cam),
                      camera_translation_change_m=np.zeros(n_cam), trials=trial_fits, loss_history=history,
                      gc_curve=gc, gc5=float(gc[4]), iterations=int(params.ik_steps),
                      wall_time_s=time.perf_counter() - wall_start, seed=seed, params=params)
