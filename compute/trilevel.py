"""Trilevel fit (DESIGN.md §6): many subjects, each with its own beta and trial trajectories, plus the base
model's marker sites as shared parameters.

Every subject is padded to common shapes (cameras C_max - padded cameras have confidence 0 -, trials N_max,
frames T_max) and its variables and optimizer state are stacked on a leading subject axis.  A step draws a
mini-batch of ``subjects_per_batch`` subjects, gathers their variables/states, evaluates the bilevel loss of
each (``compute.fit.session_loss``, vmapped over the batch) with the shared sites substituted into the body
model, updates the batch subjects with their own optimizer states and scatters them back; the shared sites get
their own Adam.  Activation memory therefore depends on the batch size, not on the number of subjects.
Heel sites are frozen by construction: ``sites = base + free_mask * delta``.  Cameras are not refined here.

Staging (identifiability): for the first ``site_start_fraction`` of the steps the sites are held (a dynamic 0/1
gate on their gradient, one compiled step) while every subject's trajectories and scales settle - released
early, the sites chase the pose errors of half-fitted trajectories.  At the release the site Adam is
re-initialised (fresh moments, warm-up then exponential decay).  Per-subject offsets stay at 0 until
``site_offset_start_fraction`` of each subject's steps: offsets are L2-penalised per subject, sites are shared
and free, so the displacement common to all subjects must go to the sites before the offsets can absorb it.
Synthetic check (tests/test_trilevel.py): 8 subjects, sites displaced by 2 cm -> 0.55 cm mean error.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from compute import kinematics as kin
from compute.cameras import Camera
from compute.fit import (CameraDelta, FitDivergedError, FitVariables, TrialObservations, initialise,
                         make_optimizer, prepare_session_data, project_to_ball, session_loss, validate_inputs)
from compute.params import FitParams
from compute.trajectory import trainable_filter

__all__ = ["TrilevelFit", "fit_trilevel", "TRILEVEL_HISTORY_COLUMNS"]

TRILEVEL_HISTORY_COLUMNS = ("step", "loss", "reprojection", "offset", "site_change_m")


@dataclass
class TrilevelFit:
    marker_sites: np.ndarray        # (J,3) new base-model sites (body frame, unscaled, metres)
    log_scales: np.ndarray          # (S,G)
    offsets: np.ndarray             # (S,J,3)
    loss_history: np.ndarray        # (H, len(loss_history_columns))
    iterations: int
    wall_time_s: float
    seed: int
    params: FitParams
    subjects_per_batch: int
    frozen_site_mask: np.ndarray    # (J,) bool, True where the site was not optimised
    site_history: np.ndarray        # (H,J,3) sites at each loss-history row
    loss_history_columns: tuple[str, ...] = TRILEVEL_HISTORY_COLUMNS


def _pad_trials(cameras: Camera, trials: Sequence[TrialObservations], n_cam: int, n_trials: int, n_frames: int,
                ) -> tuple[Camera, list[TrialObservations]]:
    """Pad a subject to (n_cam cameras, n_trials trials, n_frames frames) with zero-confidence observations."""
    c = int(np.shape(cameras.rvec)[0])
    rig = jax.tree.map(lambda x: np.concatenate([np.asarray(x), np.repeat(np.asarray(x)[:1], n_cam - c, 0)]), cameras)
    padded = []
    for tr in list(trials) + [trials[0]] * (n_trials - len(trials)):
        is_pad = len(padded) >= len(trials)
        kp = np.zeros((n_cam, n_frames, tr.keypoints.shape[2], 2), np.float32)
        conf = np.zeros((n_cam, n_frames, tr.keypoints.shape[2]), np.float32)
        t = tr.n_frames
        if not is_pad:
            kp[:c, :t] = np.nan_to_num(tr.keypoints, nan=0.0)
            conf[:c, :t] = np.nan_to_num(tr.confidence, nan=0.0) * np.all(np.isfinite(tr.keypoints), -1)
        padded.append(TrialObservations(name=tr.name, fps=tr.fps, keypoints=kp, confidence=conf))
    return rig, padded


def _trilevel_loss(train_batch, frozen_batch, site_delta, free_mask, body, data_batch, keys, params):
    sites = body.marker_sites + free_mask[:, None] * site_delta
    body_sites = eqx.tree_at(lambda b: b.marker_sites, body, sites)
    totals, terms = jax.vmap(session_loss, in_axes=(0, 0, None, 0, 0, None))(
        train_batch, frozen_batch, body_sites, data_batch, keys, params)
    site_term = jnp.mean(site_delta**2)
    loss = jnp.mean(totals) + params.site_weight * site_term
    return loss, {"loss": loss, "reprojection": jnp.mean(terms["reprojection"]),
                  "offset": jnp.mean(terms["offset"]),
                  "site_change_m": jnp.sqrt(jnp.mean(jnp.sum((free_mask[:, None] * site_delta) ** 2, -1)))}


def _take(tree, idx):
    return jax.tree.map(lambda x: x[idx], tree)


def _put(tree, idx, part):
    return jax.tree.map(lambda full, p: full.at[idx].set(p), tree, part)


@eqx.filter_jit
def _trilevel_step(train, frozen, opt_states, site_delta, site_state, free_mask, body, data, batch, key,
                   site_gate, subject_optimizer, site_optimizer, params):
    """One mini-batch step.  train/frozen/opt_states/data have a leading subject axis (S,); batch (B,) int32;
    site_gate: float32 scalar, 0 while the shared sites are held fixed (warm start), 1 after (dynamic, so both
    phases share one compiled step)."""
    train_b, frozen_b, states_b, data_b = _take(train, batch), _take(frozen, batch), _take(opt_states, batch), \
        _take(data, batch)
    keys = jax.random.split(key, batch.shape[0])
    (_, terms), (grads_b, grad_sites) = _grads(train_b, site_delta, frozen_b, free_mask, body, data_b, keys,
                                               params)
    grads_b = eqx.tree_at(lambda g: g.cameras, grads_b, jax.tree.map(jnp.zeros_like, grads_b.cameras))
    updates_b, states_b = jax.vmap(subject_optimizer.update)(grads_b, states_b, train_b)
    train_b = eqx.apply_updates(train_b, updates_b)
    train_b = eqx.tree_at(lambda v: v.body.offsets, train_b,
                          project_to_ball(train_b.body.offsets, params.max_offset_m))
    site_updates, site_state = site_optimizer.update(grad_sites * site_gate, site_state, site_delta)
    site_delta = optax.apply_updates(site_delta, site_updates)
    return _put(train, batch, train_b), _put(opt_states, batch, states_b), site_delta, site_state, terms


def _grads(train_b, site_delta, frozen_b, free_mask, body, data_b, keys, params):
    def loss(variables):
        tb, sd = variables
        return _trilevel_loss(tb, frozen_b, sd, free_mask, body, data_b, keys, params)

    (value, terms), grads = eqx.filter_value_and_grad(loss, has_aux=True)((train_b, site_delta))
    return (value, terms), grads


def fit_trilevel(body: kin.BodyModel, subjects: list[tuple[Camera, list[TrialObservations]]], params: FitParams,
                 seed: int = 0, subjects_per_batch: int = 4, steps: int | None = None,
                 progress: Callable[[int, dict], None] | None = None) -> TrilevelFit:
    """Optimise shared base-model marker sites over many subjects (plus each subject's beta and trajectories).

    body: base model whose ``marker_sites`` are the starting sites; subjects: (rig Camera(C_s,), trials) per
    subject (all with the body's marker set); params: FitParams (``site_learning_rate``, ``site_weight``,
    ``freeze_heel_sites``, ``site_start_fraction``, ``site_offset_start_fraction``; per-subject networks use
    the bilevel settings, camera refinement is off);
    subjects_per_batch: subjects per step (memory scales with this, not with len(subjects));
    steps: total mini-batch steps (default ``params.steps * ceil(S / B)`` so each subject sees ~params.steps).
    Raises FitDivergedError on a non-finite loss.
    """
    wall_start = time.perf_counter()
    n_subjects = len(subjects)
    if n_subjects == 0:
        raise ValueError("compute/trilevel.py fit_trilevel: subjects must not be empty")
    batch = int(min(max(subjects_per_batch, 1), n_subjects))
    for rig, trials in subjects:
        validate_inputs(body, rig, trials)
    n_cam = max(int(np.shape(r.rvec)[0]) for r, _ in subjects)
    n_trials = max(len(t) for _, t in subjects)
    n_frames = max(tr.n_frames for _, t in subjects for tr in t)
    total_steps = steps if steps is not None else params.steps * int(np.ceil(n_subjects / batch))
    subject_steps = int(np.ceil(total_steps * batch / n_subjects))
    # per-subject offsets join late (site_offset_start_fraction of each subject's steps): until then the
    # displacement common to all subjects can only be explained by the shared sites
    subject_params = params.replace(camera_start_fraction=0.0, steps=max(subject_steps, 1),
                                    offset_start_fraction=params.site_offset_start_fraction)
    site_start = min(int(round(params.site_start_fraction * total_steps)), total_steps)

    key = jax.random.PRNGKey(seed)
    key_init, key_fit = jax.random.split(key)
    init_keys = jax.random.split(key_init, n_subjects)
    variables, datas = [], []
    for (rig, trials), k in zip(subjects, init_keys):
        networks, beta, _ = initialise(body, rig, trials, subject_params, k)
        rig_p, trials_p = _pad_trials(rig, trials, n_cam, n_trials, n_frames)
        if len(trials) < n_trials:  # padded trials reuse the first trial's network init (never observed)
            networks = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], n_trials - len(trials), 0)]),
                                    networks)
        data = prepare_session_data(rig_p, trials_p)
        data = eqx.tree_at(lambda d: d.n_frames, data,
                           jnp.asarray([tr.n_frames for tr in trials] + [2] * (n_trials - len(trials)), jnp.int32))
        variables.append(FitVariables(networks=networks, body=beta,
                                      cameras=CameraDelta(rotation=jnp.zeros((n_cam, 3)),
                                                          centre=jnp.zeros((n_cam, 3)))))
        datas.append(data)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *variables)
    data_all = jax.tree.map(lambda *xs: jnp.stack(xs), *datas)
    spec = FitVariables(networks=trainable_filter(variables[0].networks),
                        body=jax.tree.map(lambda _: True, variables[0].body),
                        cameras=jax.tree.map(lambda _: True, variables[0].cameras))
    train, frozen = eqx.partition(stacked, spec)
    subject_optimizer = make_optimizer(subject_params)
    opt_states = jax.vmap(subject_optimizer.init)(train)

    n_markers = len(body.marker_names)
    frozen_mask = np.asarray(body.heel_marker_mask, bool) if params.freeze_heel_sites else np.zeros(n_markers, bool)
    free_mask = jnp.asarray(~frozen_mask, jnp.float32)
    # the site optimizer (and its step count) is re-initialised at the release step: warm-up then exponential
    # decay over the remaining steps, Adam moments free of the gated warm-start phase
    site_steps = max(total_steps - site_start, 1)
    site_warmup = max(min(params.warmup_steps, site_steps // 10), 1)
    site_optimizer = optax.adam(optax.warmup_exponential_decay_schedule(
        0.0, params.site_learning_rate, site_warmup, 1,
        (params.learning_rate_final / params.learning_rate) ** (1.0 / max(site_steps - site_warmup, 1))))
    site_delta = jnp.zeros((n_markers, 3), jnp.float32)
    site_state = site_optimizer.init(site_delta)

    rng = np.random.default_rng(seed)
    step_keys = jax.random.split(key_fit, total_steps)
    gate_off, gate_on = jnp.zeros((), jnp.float32), jnp.ones((), jnp.float32)
    history, pending, site_history = [], [], []
    for step in range(total_steps):
        if step == site_start:
            site_state = site_optimizer.init(site_delta)
        idx = jnp.asarray(np.sort(rng.choice(n_subjects, batch, replace=False)), jnp.int32)
        train, opt_states, site_delta, site_state, terms = _trilevel_step(
            train, frozen, opt_states, site_delta, site_state, free_mask, body, data_all, idx, step_keys[step],
            gate_on if step >= site_start else gate_off, subject_optimizer, site_optimizer, subject_params)
        if step % params.history_every == 0 or step == total_steps - 1:
            pending.append((step, terms))
            site_history.append(site_delta)
        if (step + 1) % params.divergence_check_every == 0 or step == total_steps - 1:
            for s, t in pending:
                row = [float(s)] + [float(t[c]) for c in TRILEVEL_HISTORY_COLUMNS[1:]]
                if not np.all(np.isfinite(row)):
                    raise FitDivergedError(f"compute/trilevel.py: loss became non-finite at step {s}")
                history.append(row)
                if progress is not None:
                    progress(s, dict(zip(TRILEVEL_HISTORY_COLUMNS, row)))
            pending.clear()
    final = eqx.combine(train, frozen)
    sites = np.asarray(body.marker_sites) + np.asarray(free_mask)[:, None] * np.asarray(site_delta)
    log_scales = np.asarray(final.body.log_scale)
    offsets = np.asarray(final.body.offsets)
    if not (np.all(np.isfinite(sites)) and np.all(np.isfinite(log_scales)) and np.all(np.isfinite(offsets))):
        raise FitDivergedError("compute/trilevel.py: non-finite values in the result")
    site_history = (np.asarray(body.marker_sites)[None] + np.asarray(free_mask)[None, :, None]
                    * np.stack([np.asarray(d) for d in site_history]))
    return TrilevelFit(marker_sites=sites, log_scales=log_scales, offsets=offsets, site_history=site_history,
                       loss_history=np.asarray(history, np.float64).reshape(-1, len(TRILEVEL_HISTORY_COLUMNS)),
                       iterations=total_steps, wall_time_s=time.perf_counter() - wall_start, seed=seed,
                       params=params, subjects_per_batch=batch, frozen_site_mask=frozen_mask)
