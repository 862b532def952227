"""Trilevel fit: many subjects, each with its own beta and trial trajectories, plus the base model's marker sites
as parameters shared by all of them (the third level of Cotton 2024, "Differentiable Biomechanics Unlocks
Opportunities for Markerless Motion Capture").

Every subject is padded to common shapes (cameras C_max - padded cameras have confidence 0 -, trials N_max,
frames T_max) and its variables and optimiser state are stacked on a leading subject axis.  A step draws a
mini-batch of ``subjects_per_batch`` subjects, gathers their variables/states, evaluates the bilevel loss of
each (``compute.fit.loss.session_loss``, vmapped over the batch) with the shared sites substituted into the body
model, updates the batch subjects with their own optimiser states and scatters them back; the shared sites get
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

import dataclasses
import time
from dataclasses import dataclass
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from compute import kinematics as kin
from compute.cameras import Camera
from compute.fit.bilevel import commit_to_default_device, partition_variables
from compute.fit.initialisation import initialise
from compute.fit.loop import ProgressCallback, run_loop
from compute.fit.loss import session_loss
from compute.fit.observations import prepare_session_data, validate_inputs
from compute.fit.optimiser import make_optimizer, project_to_ball
from compute.fit.types import CameraDelta, FitDivergedError, FitVariables, TrialObservations
from compute.params import FitParams, LossConfig, OptimiserConfig, TrilevelConfig

__all__ = ["TrilevelFit", "fit_trilevel", "TRILEVEL_HISTORY_COLUMNS", "pad_subject", "trilevel_loss",
           "trilevel_step"]

TRILEVEL_HISTORY_COLUMNS = ("step", "loss", "reprojection", "offset", "site_change_m")
"""Columns of ``TrilevelFit.loss_history``; site_change_m is the RMS change of the free sites (m)."""


@dataclass
class TrilevelFit:
    """Result of ``fit_trilevel``: S subjects, J markers, G scale groups, H history rows."""

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


def pad_subject(cameras: Camera, trials: Sequence[TrialObservations], n_cam: int, n_trials: int, n_frames: int,
                ) -> tuple[Camera, list[TrialObservations]]:
    """Pad a subject to (n_cam cameras, n_trials trials, n_frames frames) with zero-confidence observations
    (padded cameras repeat camera 0, padded trials repeat trial 0's name and fps)."""
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


def trilevel_loss(train_batch, frozen_batch, site_delta: jax.Array, free_mask: jax.Array, body: kin.BodyModel,
                  data_batch, keys: jax.Array, loss: LossConfig, time_points_per_trial: int,
                  trilevel: TrilevelConfig) -> tuple[jax.Array, dict]:
    """Mean bilevel loss over a batch of B subjects (leading axis on train/frozen/data, keys (B,2)) with the sites
    ``base + free_mask (J,) * site_delta (J,3)`` m, plus ``site_weight * mean(site_delta^2)``; and its terms."""
    sites = body.marker_sites + free_mask[:, None] * site_delta
    body_sites = eqx.tree_at(lambda b: b.marker_sites, body, sites)

    def subject_loss(train, frozen, data, key):
        return session_loss(train, frozen, body_sites, data, key, loss, time_points_per_trial)

    totals, terms = jax.vmap(subject_loss)(train_batch, frozen_batch, data_batch, keys)
    site_term = jnp.mean(site_delta**2)
    total = jnp.mean(totals) + trilevel.site_weight * site_term
    return total, {"loss": total, "reprojection": jnp.mean(terms["reprojection"]),
                   "offset": jnp.mean(terms["offset"]),
                   "site_change_m": jnp.sqrt(jnp.mean(jnp.sum((free_mask[:, None] * site_delta) ** 2, -1)))}


def _take(tree, idx):
    return jax.tree.map(lambda x: x[idx], tree)


def _put(tree, idx, part):
    return jax.tree.map(lambda full, p: full.at[idx].set(p), tree, part)


@eqx.filter_jit
def trilevel_step(train, frozen, opt_states, site_delta, site_state, free_mask, body, data, batch, key,
                  site_gate, subject_optimizer, site_optimizer, loss: LossConfig, optimiser: OptimiserConfig,
                  trilevel: TrilevelConfig):
    """One compiled mini-batch step -> (train, opt_states, site_delta, site_state, terms).

    train/frozen/opt_states/data have a leading subject axis (S,); batch (B,) int32 subject indices; site_gate:
    float32 scalar, 0 while the shared sites are held fixed (warm start), 1 after (dynamic, so both phases share
    one compiled step).  Camera gradients are zeroed: cameras are not refined in the trilevel fit.
    """
    train_b, frozen_b, states_b, data_b = _take(train, batch), _take(frozen, batch), _take(opt_states, batch), \
        _take(data, batch)
    keys = jax.random.split(key, batch.shape[0])

    def objective(variables):
        tb, sd = variables
        return trilevel_loss(tb, frozen_b, sd, free_mask, body, data_b, keys, loss, optimiser.time_points_per_trial,
                             trilevel)

    (_, terms), (grads_b, grad_sites) = eqx.filter_value_and_grad(objective, has_aux=True)((train_b, site_delta))
    grads_b = eqx.tree_at(lambda g: g.cameras, grads_b, jax.tree.map(jnp.zeros_like, grads_b.cameras))
    updates_b, states_b = jax.vmap(subject_optimizer.update)(grads_b, states_b, train_b)
    train_b = eqx.apply_updates(train_b, updates_b)
    train_b = eqx.tree_at(lambda v: v.body.offsets, train_b,
                          project_to_ball(train_b.body.offsets, optimiser.max_offset_m))
    site_updates, site_state = site_optimizer.update(grad_sites * site_gate, site_state, site_delta)
    site_delta = optax.apply_updates(site_delta, site_updates)
    return _put(train, batch, train_b), _put(opt_states, batch, states_b), site_delta, site_state, terms


def fit_trilevel(body: kin.BodyModel, subjects: list[tuple[Camera, list[TrialObservations]]], params: FitParams,
                 seed: int = 0, subjects_per_batch: int = 4, steps: int | None = None,
                 progress: ProgressCallback | None = None) -> TrilevelFit:
    """Optimise shared base-model marker sites over many subjects (plus each subject's beta and trajectories).

    body: base model whose ``marker_sites`` are the starting sites; subjects: (rig Camera(C_s,), trials) per
    subject (all with the body's marker set); params: FitParams (``params.trilevel``; per-subject networks use
    the bilevel settings with offsets starting at ``site_offset_start_fraction``, camera refinement is off);
    subjects_per_batch: subjects per step (memory scales with this, not with len(subjects));
    steps: total mini-batch steps (default ``params.optimiser.steps * ceil(S / B)`` so each subject sees about
    ``params.optimiser.steps``); progress(step, total_steps, loss) is called with each loss-history row.
    Raises FitDivergedError on a non-finite loss.
    """
    wall_start = time.perf_counter()
    n_subjects = len(subjects)
    if n_subjects == 0:
        raise ValueError("compute.fit.trilevel fit_trilevel: subjects must not be empty")
    batch = int(min(max(subjects_per_batch, 1), n_subjects))
    for rig, trials in subjects:
        validate_inputs(body, rig, trials)
    n_cam = max(int(np.shape(r.rvec)[0]) for r, _ in subjects)
    n_trials = max(len(t) for _, t in subjects)
    n_frames = max(tr.n_frames for _, t in subjects for tr in t)
    total_steps = steps if steps is not None else params.optimiser.steps * int(np.ceil(n_subjects / batch))
    subject_steps = int(np.ceil(total_steps * batch / n_subjects))
    # each subject's own schedule spans the steps it takes part in; its offsets join late (at
    # site_offset_start_fraction): until then the displacement common to all subjects can only go to the sites
    subject_optimiser = dataclasses.replace(params.optimiser, steps=max(subject_steps, 1),
                                            offset_start_fraction=params.trilevel.site_offset_start_fraction)
    site_start = min(int(round(params.trilevel.site_start_fraction * total_steps)), total_steps)

    key = jax.random.PRNGKey(seed)
    key_init, key_fit = jax.random.split(key)
    init_keys = jax.random.split(key_init, n_subjects)
    variables, datas = [], []
    for (rig, trials), k in zip(subjects, init_keys):
        networks, beta, _ = initialise(body, rig, trials, params, k)
        rig_p, trials_p = pad_subject(rig, trials, n_cam, n_trials, n_frames)
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
    train, frozen = partition_variables(stacked)
    subject_optimizer = make_optimizer(subject_optimiser, params.bundle_adjustment.camera_learning_rate)
    opt_states = jax.vmap(subject_optimizer.init)(train)

    n_markers = len(body.marker_names)
    frozen_mask = (np.asarray(body.heel_marker_mask, bool) if params.trilevel.freeze_heel_sites
                   else np.zeros(n_markers, bool))
    free_mask = jnp.asarray(~frozen_mask, jnp.float32)
    # the site optimiser (and its step count) is re-initialised at the release step: warm-up then exponential
    # decay over the remaining steps, Adam moments free of the gated warm-start phase
    site_steps = max(total_steps - site_start, 1)
    site_warmup = max(min(params.optimiser.warmup_steps, site_steps // 10), 1)
    site_optimizer = optax.adam(optax.warmup_exponential_decay_schedule(
        0.0, params.trilevel.site_learning_rate, site_warmup, 1,
        (params.optimiser.learning_rate_final / params.optimiser.learning_rate)
        ** (1.0 / max(site_steps - site_warmup, 1))))
    site_delta = jnp.zeros((n_markers, 3), jnp.float32)
    site_state = site_optimizer.init(site_delta)

    rng = np.random.default_rng(seed)
    step_keys = jax.random.split(key_fit, total_steps)
    gate_off, gate_on = jnp.zeros((), jnp.float32), jnp.ones((), jnp.float32)

    def step(i, state):
        train, opt_states, site_delta, site_state = state
        if i == site_start:
            site_state = commit_to_default_device(site_optimizer.init(site_delta))
        idx = jnp.asarray(np.sort(rng.choice(n_subjects, batch, replace=False)), jnp.int32)
        train, opt_states, site_delta, site_state, terms = trilevel_step(
            train, frozen, opt_states, site_delta, site_state, free_mask, body, data_all, idx, step_keys[i],
            gate_on if i >= site_start else gate_off, subject_optimizer, site_optimizer, params.loss,
            subject_optimiser, params.trilevel)
        return (train, opt_states, site_delta, site_state), terms

    # committed like the step's outputs: one lowering of the step, not one for the first call and one after
    train, opt_states, site_delta, site_state = commit_to_default_device((train, opt_states, site_delta, site_state))
    result = run_loop(step, (train, opt_states, site_delta, site_state), total_steps, TRILEVEL_HISTORY_COLUMNS,
                      history_every=params.checks.history_every, check_every=params.checks.divergence_check_every,
                      progress=progress, snapshot=lambda state: state[2])
    train, _, site_delta, _ = result.state
    final = eqx.combine(train, frozen)
    sites = np.asarray(body.marker_sites) + np.asarray(free_mask)[:, None] * np.asarray(site_delta)
    log_scales = np.asarray(final.body.log_scale)
    offsets = np.asarray(final.body.offsets)
    if not (np.all(np.isfinite(sites)) and np.all(np.isfinite(log_scales)) and np.all(np.isfinite(offsets))):
        raise FitDivergedError("compute.fit.trilevel: non-finite values in the result")
    site_history = (np.asarray(body.marker_sites)[None] + np.asarray(free_mask)[None, :, None]
                    * np.stack([np.asarray(d) for d in result.snapshots]))
    return TrilevelFit(marker_sites=sites, log_scales=log_scales, offsets=offsets, site_history=site_history,
                       loss_history=result.history, iterations=total_steps,
                       wall_time_s=time.perf_counter() - wall_start, seed=seed, params=params,
                       subjects_per_batch=batch, frozen_site_mask=frozen_mask)
