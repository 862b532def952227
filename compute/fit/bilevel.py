"""End-to-end differentiable fit of one session: bilevel scaling plus bundle adjustment.

Parameters ``{phi_1..phi_N, beta, cameras}`` (Cotton 2024, "Differentiable Biomechanics Unlocks Opportunities for
Markerless Motion Capture"): one implicit trajectory network per trial (``compute.trajectory``), subject
parameters ``beta = (log_scale (G,), marker offsets (J,3))`` shared by all trials, and per-camera extrinsic
deltas under the similarity gauge (``compute.fit.gauge``).  The inner level (poses of every trial) and the outer
level (the subject's body) are optimised jointly by the optimiser of ``compute.fit.optimiser`` on the loss of
``compute.fit.loss``.

One compiled step serves every fit with the same shapes: the trial count and padded length fix the shapes (the
frames per step are the same for every trial), and bundle adjustment on or off is a dynamic 0/1 gate on the
camera gradients, not a static argument.  The step receives only the sub-configurations it reads
(``LossConfig``, ``OptimiserConfig``) and the optimiser built from them.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from compute import kinematics as kin
from compute.cameras import Camera, camera_centers_numpy
from compute.fit.evaluation import check_finite, evaluate_all_frames, session_gc, trial_metrics
from compute.fit.gauge import effective_camera_delta, refined_rig
from compute.fit.initialisation import initialise
from compute.fit.loop import ConvergenceRule, ProgressCallback, run_loop
from compute.fit.loss import session_loss
from compute.fit.observability import trial_coordinate_sd
from compute.swaps import detect_swaps, left_right_pairs
from compute.fit.observations import DEFAULT_BUCKETS, pad_stacked_trials, prepare_session_data, validate_inputs
from compute.fit.optimiser import OptimizerSpec, project_to_ball, resume_schedules
from compute.fit.time_offsets import (camera_markers_at_offsets, epipolar_initial_offsets, session_time_offsets,
                                     trial_metrics_with_offsets)
from compute.fit.types import (LOSS_HISTORY_COLUMNS, BodyParams, CameraDelta, FitVariables, SessionData, SessionFit,
                               TrialFit, TrialObservations)
from compute.params import FitParams, LossConfig, OptimiserConfig
from compute.program_cache import CachedProgram
from compute.trajectory import Trajectory, network_config, serialise_trajectory, trainable_filter, unstack_trajectory

__all__ = ["correct_left_right_swaps", "bilevel_step", "bilevel_steps", "STEPS_PER_CALL", "make_train_step",
           "partition_variables", "commit_to_default_device", "initial_camera_delta", "run_optimisation",
           "convergence_rule", "summarise_fit", "fit_session"]


def bilevel_step(train: FitVariables, frozen: FitVariables, opt_state: optax.OptState, body: kin.BodyModel,
               data: SessionData, key: jax.Array, camera_gate: jax.Array, optimizer: optax.GradientTransformation,
               loss: LossConfig, optimiser: OptimiserConfig,
               time_offset_gate: jax.Array | None = None) -> tuple[FitVariables, optax.OptState, dict]:
    """One (uncompiled) optimiser step of the bilevel fit -> (train, opt_state, loss terms).

    camera_gate: float32 scalar multiplying the camera extrinsics' gradients (0 before bundle adjustment starts,
    1 after).  time_offset_gate: float32 scalar multiplying the camera time offsets' updates (1 while they
    train, 0 once held; None = 1).  Both are dynamic: every schedule shares one compiled step.
    Offsets are projected onto the ball of radius ``optimiser.max_offset_m`` after the update.
    """
    (_, terms), grads = eqx.filter_value_and_grad(session_loss, has_aux=True)(
        train, frozen, body, data, key, loss, optimiser.time_points_per_trial)
    # camera time offsets (when fitted) train from the first step, before the camera centres are free to absorb
    # part of a time shift as a displacement along the walking direction
    grads = eqx.tree_at(lambda g: (g.cameras.rotation, g.cameras.centre), grads,
                        (grads.cameras.rotation * camera_gate, grads.cameras.centre * camera_gate))
    updates, opt_state = optimizer.update(grads, opt_state, train)
    # the updates, not the gradients: with zero gradients Adam's momentum would still move held offsets
    if updates.cameras.time_offset is not None and time_offset_gate is not None:
        updates = eqx.tree_at(lambda u: u.cameras.time_offset, updates,
                              updates.cameras.time_offset * time_offset_gate)
    train = eqx.apply_updates(train, updates)
    train = eqx.tree_at(lambda v: v.body.offsets, train, project_to_ball(train.body.offsets, optimiser.max_offset_m))
    return train, opt_state, terms


STEPS_PER_CALL = 25
"""Optimiser steps per call of the compiled step (:func:`bilevel_steps`).  Why: each call flattens and
dispatches the whole state pytree; on a 100-frame 4-camera trial that cost about 2 ms of a 4.3 ms step, and
scanning 20 steps per call ran 2.3 ms per step.  25 divides the divergence-check interval (100), so checks and
early stops fall on call boundaries."""


def bilevel_steps(train: FitVariables, frozen: FitVariables, opt_state: optax.OptState, body: kin.BodyModel,
                  data: SessionData, keys: jax.Array, camera_gates: jax.Array, time_offset_gates: jax.Array,
                  active: jax.Array, optimizer: OptimizerSpec, loss: LossConfig,
                  optimiser: OptimiserConfig) -> tuple[FitVariables, optax.OptState, dict]:
    """K consecutive :func:`bilevel_step` calls in one ``lax.scan`` -> (train, opt_state, loss terms (K,) each).

    keys (K, 2) uint32 PRNG keys, camera_gates / time_offset_gates (K,) float32 (see :func:`bilevel_step`),
    active (K,) bool: an inactive step leaves train and opt_state unchanged (the last call of a fit whose step
    count is not a multiple of K).  K is a shape, so each K compiles once.  optimizer: the spec of the optimiser
    whose state ``opt_state`` is.
    """
    transformation = optimizer.build()
    carry_arrays, carry_static = eqx.partition((train, opt_state), eqx.is_array)   # scan carries arrays only

    def one_step(arrays, step_inputs):
        key, camera_gate, time_offset_gate, is_active = step_inputs
        old_train, old_opt_state = eqx.combine(arrays, carry_static)
        new_train, new_opt_state, terms = bilevel_step(old_train, frozen, old_opt_state, body, data, key,
                                                       camera_gate, transformation, loss, optimiser,
                                                       time_offset_gate)
        new_arrays = eqx.filter((new_train, new_opt_state), eqx.is_array)
        return jax.tree.map(lambda new, old: jnp.where(is_active, new, old), new_arrays, arrays), terms

    carry_arrays, terms = jax.lax.scan(one_step, carry_arrays, (keys, camera_gates, time_offset_gates, active))
    train, opt_state = eqx.combine(carry_arrays, carry_static)
    return train, opt_state, terms


def make_train_step(max_traces: int | None = None) -> Callable:
    """:func:`bilevel_steps` (``STEPS_PER_CALL`` steps per call) compiled as a ``compute.program_cache``
    program (``eqx.filter_jit``, whose traced program a fresh process loads from the persistent cache instead of
    tracing it again); with ``max_traces`` it raises if it is traced more often in this process (a recompile
    guard: one compiled step must serve all trials and bundle adjustment on/off), or if it needs more distinct
    programs, traced or loaded from the cache."""
    fn = bilevel_steps
    if max_traces is not None:
        fn = eqx.debug.assert_max_traces(fn, max_traces=max_traces)
    return CachedProgram(fn, "bilevel_steps", max_programs=max_traces)


_DEFAULT_TRAIN_STEP = make_train_step()


def partition_variables(variables: FitVariables) -> tuple[FitVariables, FitVariables]:
    """(trainable, frozen) halves of ``variables``: the network layers, beta and the camera deltas train; the
    networks' fixed leaves (root base path, joint limits, frequencies) do not."""
    spec = FitVariables(networks=trainable_filter(variables.networks),
                        body=jax.tree.map(lambda _: True, variables.body),
                        cameras=jax.tree.map(lambda _: True, variables.cameras))
    return eqx.partition(variables, spec)


def initial_camera_delta(n_cam: int, params: FitParams) -> CameraDelta:
    """Zero camera deltas for n_cam cameras, with zero time offsets (C,) s when
    ``params.bundle_adjustment.fit_time_offsets`` (otherwise none: the synchronous fit, unchanged)."""
    adjustment = params.bundle_adjustment
    return CameraDelta(rotation=jnp.zeros((n_cam, 3)), centre=jnp.zeros((n_cam, 3)),
                       time_offset=jnp.zeros((n_cam,)) if adjustment.fit_time_offsets else None,
                       max_time_offset_s=adjustment.max_time_offset_s)


def run_optimisation(body: kin.BodyModel, data: SessionData, networks: Trajectory, beta: BodyParams,
                     params: FitParams, key: jax.Array, progress: ProgressCallback | None = None,
                     train_step: Callable | None = None, n_steps: int | None = None, *, first_step: int = 0,
                     initial_cameras: CameraDelta | None = None) -> tuple[FitVariables, np.ndarray, int, str]:
    """Optimise ``networks``/``beta``/camera deltas for ``n_steps`` (default ``params.optimiser.steps``), or fewer
    when ``params.convergence.stop_when_converged`` and the loss has plateaued (:func:`convergence_rule`).

    first_step: run only steps ``first_step .. n_steps - 1`` of the schedule (learning rates, delayed starts and
    the bundle-adjustment gate continue from there, Adam moments start fresh, no early stopping): a warm start
    from already fitted ``networks``/``beta``, as the held-out refits of ``compute.fit.crossval`` do.
    initial_cameras: raw camera deltas to start from (default :func:`initial_camera_delta`: zero).

    data may be padded to a shape bucket (``compute.fit.observations.ShapeBuckets``): the networks (N real trials)
    are then padded with inert copies to data's trial count, which the returned networks keep.

    train_step: a step from ``make_train_step`` (default: a shared compiled one).  Returns (variables, loss history
    (H, len(LOSS_HISTORY_COLUMNS)), steps done, stop reason).  Raises FitDivergedError on a non-finite loss
    (checked every ``params.checks.divergence_check_every`` steps and at the end).
    """
    step_fn = train_step or _DEFAULT_TRAIN_STEP
    networks = pad_stacked_trials(networks, int(data.n_frames.shape[0]))  # shape-bucket padding: inert copies
    n_cam = int(data.rig.rvec.shape[0])
    cameras = initial_camera_delta(n_cam, params) if initial_cameras is None else initial_cameras
    variables = FitVariables(networks=networks, body=beta, cameras=cameras)
    train, frozen = partition_variables(variables)
    adjustment = params.bundle_adjustment
    camera_start = params.camera_start_step
    # time offsets held once bundle adjustment starts (BundleAdjustmentConfig.hold_time_offsets_from_camera_start)
    # by the step's dynamic gate, not by their schedule: the optimizer is a static argument of the compiled step
    offsets_until = max(camera_start if adjustment.hold_time_offsets_from_camera_start else params.optimiser.steps, 1)
    optimizer = OptimizerSpec(params.optimiser, adjustment.camera_learning_rate,
                              adjustment.time_offset_learning_rate_s if adjustment.fit_time_offsets else None)
    opt_state = optimizer.build().init(train)
    total = params.optimiser.steps if n_steps is None else n_steps
    if first_step:
        opt_state = resume_schedules(opt_state, first_step)
    train, opt_state = commit_to_default_device((train, opt_state))
    step_keys = np.asarray(jax.random.split(key, total))
    schedule = np.arange(total + STEPS_PER_CALL)          # step indices; the last call may run past the budget
    camera_gates = (schedule >= camera_start).astype(np.float32)
    time_offset_gates = (schedule < offsets_until).astype(np.float32)
    active = schedule < total

    def step(i, state):
        train, opt_state = state
        calls = slice(i + first_step, i + first_step + STEPS_PER_CALL)
        keys = step_keys[np.minimum(schedule[calls], total - 1)]                # inactive steps reuse a key
        train, opt_state, terms = step_fn(train, frozen, opt_state, body, data, keys, camera_gates[calls],
                                          time_offset_gates[calls], active[calls], optimizer, params.loss,
                                          params.optimiser)
        return (train, opt_state), terms

    def skip_to(state, j):
        """The state moved to step j of the schedule: learning rates and delayed starts continue from j."""
        train, opt_state = state
        return train, commit_to_default_device(resume_schedules(opt_state, j))

    # padded trials repeat the last real trial's frame count: the maximum is a real trial's
    rule = None if first_step else convergence_rule(params, total, int(np.max(np.asarray(data.n_frames))))
    result = run_loop(step, (train, opt_state), total - first_step, LOSS_HISTORY_COLUMNS,
                      history_every=params.checks.history_every, check_every=params.checks.divergence_check_every,
                      progress=progress, convergence=rule, steps_per_call=STEPS_PER_CALL, skip_to=skip_to,
                      unsettled=cameras_unsettled(params, total) if rule is not None else None)
    return eqx.combine(result.state[0], frozen), result.history, result.steps_done, result.stop_reason


def commit_to_default_device(tree):
    """``tree`` with every JAX array placed (committed) on the default device, other leaves unchanged.

    Why: the compiled step returns committed arrays, and JAX lowers a function separately for committed and
    uncommitted inputs; a first step on freshly created (uncommitted) state would lower, and on a cold cache
    compile, the step a second time for the second call.
    """
    device = jax.devices()[0]
    return jax.tree.map(lambda x: jax.device_put(x, device) if isinstance(x, jax.Array) else x, tree)


def convergence_rule(params: FitParams, total_steps: int, longest_trial_frames: int = 0) -> ConvergenceRule | None:
    """The early-stopping rule of a bilevel fit of ``total_steps`` (None when ``params.convergence`` is off, or
    when the rule could first be evaluated only at the end): once converged, the fit skips to the schedule's
    last ``convergence_final_steps`` steps and ends after them.

    Not evaluated before ``convergence_min_fraction`` of the steps, nor before two windows have passed since
    the later of the bundle-adjustment and marker-offset starts (each stage lowers the loss when it begins),
    nor before the ``longest_trial_frames`` frames of the longest trial have been sampled
    ``convergence_min_samples_per_frame`` times on average (``optimiser.time_points_per_trial`` per step).
    """
    config = params.convergence
    if not config.stop_when_converged:
        return None
    window = config.convergence_window_steps
    stage_starts = [params.bundle_adjustment.start_step(total_steps),
                    int(round(params.optimiser.offset_start_fraction * total_steps))]
    last_stage_start = max([s for s in stage_starts if s < total_steps], default=0)  # >= total: stage never runs
    sampled_enough = math.ceil(config.convergence_min_samples_per_frame * longest_trial_frames
                               / params.optimiser.time_points_per_trial)
    earliest = max(int(round(config.convergence_min_fraction * total_steps)), last_stage_start + 2 * window,
                   sampled_enough)
    if earliest >= total_steps:
        return None
    return ConvergenceRule(earliest_step=earliest, window_steps=window, tolerance=config.convergence_tolerance,
                           final_steps=config.convergence_final_steps)


def cameras_unsettled(params: FitParams, total_steps: int) -> Callable[[tuple, int], str | None] | None:
    """The check that holds a converged fit while bundle adjustment still moves the cameras (None when
    ``params.convergence`` sets no camera threshold or the cameras never train).

    Returns ``unsettled((train, opt_state), step)``, to be called at every divergence check: it keeps each check's
    raw camera deltas (host copies of two (C, 3) arrays) and returns why the fit must go on while the largest
    change of a camera's centre delta (mm) or rotation delta (deg, the norm of the rotation-vector change) since
    the check a window (``convergence_window_steps``) ago reaches its threshold (a zero threshold is not checked),
    or while no check lies a window back; None once both are below.
    """
    config = params.convergence
    if (config.convergence_camera_centre_mm <= 0 and config.convergence_camera_rotation_deg <= 0) or \
            params.camera_start_step >= total_steps:
        return None
    window = config.convergence_window_steps
    checks: list[tuple[int, np.ndarray, np.ndarray]] = []      # (step, centre (C,3) m, rotation (C,3) rad)

    def unsettled(state: tuple, step: int) -> str | None:
        cameras = state[0].cameras
        checks.append((step, np.asarray(cameras.centre, np.float64), np.asarray(cameras.rotation, np.float64)))
        earlier = [c for c in checks if c[0] <= step - window]
        if not earlier:
            return "camera deltas: no check a window back yet"
        then, centre_then, rotation_then = earlier[-1]
        moved_mm = 1000.0 * float(np.max(np.linalg.norm(checks[-1][1] - centre_then, axis=-1)))
        moved_deg = float(np.degrees(np.max(np.linalg.norm(checks[-1][2] - rotation_then, axis=-1))))
        centre_limit, rotation_limit = config.convergence_camera_centre_mm, config.convergence_camera_rotation_deg
        if (centre_limit > 0 and moved_mm >= centre_limit) or (rotation_limit > 0 and moved_deg >= rotation_limit):
            return f"cameras still moving: {moved_mm:.2f} mm, {moved_deg:.3f} deg over {step - then} steps"
        return None

    return unsettled


def summarise_fit(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations], params: FitParams,
                  variables: FitVariables, data: SessionData, history: np.ndarray, iterations: int,
                  wall_start: float, seed: int) -> SessionFit:
    """Evaluate the fitted variables at every frame and collect the SessionFit (``wall_start``: perf_counter at
    the start of the fit).  Raises FitDivergedError on non-finite results."""
    n_cam = int(np.shape(cameras.rvec)[0])  # the session's cameras; data may hold shape-bucket padding beyond
    rotation, centre_shift = effective_camera_delta(variables.cameras, data.gauge_projection)
    rotation, centre_shift = np.asarray(rotation)[:n_cam], np.asarray(centre_shift)[:n_cam]
    rig = refined_rig(cameras, rotation, centre_shift)
    qpos_list, marker_list = evaluate_all_frames(variables.networks, [tr.n_frames for tr in trials], body,
                                                 variables.body)
    time_offset_s, camera_markers = None, None
    if variables.cameras.time_offset is not None:  # camera c's frame i shows the body at i / fps + delta_c
        time_offset_s = np.asarray(session_time_offsets(variables.cameras, data.confidence), np.float64)[:n_cam]
        # all stacked networks (padded like evaluate_all_frames': one compiled chunk serves both)
        camera_markers = camera_markers_at_offsets(variables.networks, [tr.n_frames for tr in trials],
                                                   [tr.fps for tr in trials], body, variables.body, time_offset_s)
    log_scale = np.asarray(variables.body.log_scale)
    offsets = np.asarray(variables.body.offsets)
    check_finite("log_scale/offsets/cameras", log_scale, offsets, rig.rvec, rig.tvec)
    # numpy leaves: slicing them per trial below runs no eager (per-shape compiled) JAX operation
    host_networks = jax.tree.map(lambda x: np.asarray(x) if isinstance(x, jax.Array) else x, variables.networks)
    errors, confs, trial_fits = [], [], []
    for i, tr in enumerate(trials):
        check_finite(f"trial {tr.name}", qpos_list[i], marker_list[i])
        if camera_markers is None:
            metrics = trial_metrics(rig, marker_list[i], tr, params.loss.huber_delta_px)
        else:
            metrics = trial_metrics_with_offsets(rig, *camera_markers[i], tr, params.loss.huber_delta_px)
        errors.append(metrics.errors)
        confs.append(metrics.confidence)
        net = unstack_trajectory(host_networks, i)
        times = np.arange(tr.n_frames) / tr.fps
        trial_fits.append(TrialFit(
            name=tr.name, times=times, qpos=qpos_list[i], markers=marker_list[i], gc_curve=metrics.gc_curve,
            gc5=float(metrics.gc_curve[4]), per_camera_median_error_px=metrics.per_camera_median_error_px,
            network=serialise_trajectory(net), network_config=network_config(net, params.network, 0.0,
                                                                             float(times[-1])),
            final_loss=metrics.final_loss, reprojection_errors=metrics.errors.astype(np.float32),
            coordinate_sd_rad=trial_coordinate_sd(body, rig, qpos_list[i], log_scale, offsets, tr.confidence)))
    gc = session_gc(errors, confs)
    input_centres = camera_centers_numpy(cameras)
    refined_centres = camera_centers_numpy(rig)
    return SessionFit(
        log_scale=log_scale, offsets=offsets, cameras=rig,
        camera_rotation_change_deg=np.rad2deg(np.linalg.norm(rotation, axis=-1)),
        camera_translation_change_m=np.linalg.norm(refined_centres - input_centres, axis=-1),
        trials=trial_fits, loss_history=history, gc_curve=gc, gc5=float(gc[4]), iterations=iterations,
        wall_time_s=time.perf_counter() - wall_start, seed=seed, params=params, time_offset_s=time_offset_s)


def correct_left_right_swaps(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations],
                             ) -> list[TrialObservations]:
    """Trials with the left/right labels of swapped camera frames exchanged back (``compute.swaps``); the pairs
    come from the body's marker names."""
    pairs = left_right_pairs(body.marker_names)
    out = []
    for tr in trials:
        found = detect_swaps(cameras, tr.keypoints, tr.confidence, pairs)
        out.append(TrialObservations(name=tr.name, fps=tr.fps, keypoints=found.keypoints,
                                     confidence=found.confidence))
    return out


def fit_session(body: kin.BodyModel, cameras: Camera, trials: list[TrialObservations], params: FitParams,
                seed: int = 0, progress: ProgressCallback | None = None, *,
                train_step: Callable | None = None) -> SessionFit:
    """Bilevel end-to-end fit of all trials of one session (+ bundle adjustment from camera_start_fraction).

    body: scaled-model template; cameras: input calibration Camera(C,); trials: 2D keypoints per trial
    (C,T,J,2) px with confidences (C,T,J); params: FitParams; seed: PRNG seed (same seed -> same result);
    progress(step, total_steps, loss) is called with each loss-history row.  ``train_step`` (keyword-only) may be
    a step from ``make_train_step(max_traces=...)`` to guard against recompiles.
    Raises FitDivergedError if the loss becomes NaN/inf.
    """
    wall_start = time.perf_counter()
    validate_inputs(body, cameras, trials)
    if params.initialisation.correct_left_right_swaps:
        trials = correct_left_right_swaps(body, cameras, trials)
    key_init, key_fit = jax.random.split(jax.random.PRNGKey(seed))
    networks, beta, _ = initialise(body, cameras, trials, params, key_init)
    data = prepare_session_data(cameras, trials, DEFAULT_BUCKETS)  # shape buckets: one compiled step per bucket
    start_cameras = None
    adjustment = params.bundle_adjustment
    if adjustment.fit_time_offsets and adjustment.time_offsets_from_epipolar:
        raw = epipolar_initial_offsets(cameras, trials, adjustment.max_time_offset_s)
        zero = initial_camera_delta(int(data.rig.rvec.shape[0]), params)
        padded = np.zeros(zero.time_offset.shape, np.float32)
        padded[: raw.shape[0]] = raw                                     # padded cameras: no observations, 0
        start_cameras = CameraDelta(rotation=zero.rotation, centre=zero.centre, time_offset=jnp.asarray(padded),
                                    max_time_offset_s=zero.max_time_offset_s)
    variables, history, iterations, stop_reason = run_optimisation(body, data, networks, beta, params, key_fit,
                                                                   progress, train_step,
                                                                   initial_cameras=start_cameras)
    fit = summarise_fit(body, cameras, trials, params, variables, data, history, iterations, wall_start, seed)
    fit.stop_reason = stop_reason
    return fit
