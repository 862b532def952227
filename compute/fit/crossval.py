"""Held-out validation of a bilevel fit: leave-one-camera-out refits, and bundle adjustment judged on held-out
frames.

Camera cross-validation.  For every camera c the session is refitted with c's confidences set to 0 (the camera
stays in the rig, so every shape and the compiled step are those of the fit), and c's keypoints are predicted
by projecting the refitted markers through c's *input* calibration.  Which world is that calibration in?  The
fit's similarity gauge (``compute.fit.gauge``) ties the refined rig to the input rig as a whole; a camera
without observations gets no gradient of its own, but the gauge projection would still move it to keep the rig's
mean pose, and would let the other cameras' refinement leak into it.  So the refit uses the gauge of the
remaining cameras alone and pins c's delta to 0 (its rows of the (6C,6C) projector are 0): the refit's world is
the one in which the *remaining* cameras best keep their input calibration, and c keeps exactly its input
calibration in it.  The same predictions are made by a robust triangulation (``compute.triangulation``) from the
remaining cameras' input calibration, projected through c's input calibration.

Calibration check.  Every k-th frame (``crossval.held_out_frame_every``) is held out of two refits (confidence
0 in every camera): one with bundle adjustment, one that keeps the input calibration (camera gate always 0).
The continuous trajectory predicts the held-out frames; each camera's error on them through the refined rig
(first refit) and through the input rig (second refit) says whether the refinement generalises: "improves"
when the refined median is below ``(1 - min_relative_improvement)`` x the input one, else "no improvement".
A camera that moved more than ``max_rotation_change_deg`` or ``max_centre_change_mm`` without improving is
flagged.

Refits start from the full fit (``crossval.warm_start``: its networks, body and, where bundle adjustment runs,
the refined deltas of the kept cameras) and run the last ``refit_steps_fraction`` of its schedule (learning
rates continue from there, ``compute.fit.bilevel.run_optimisation(first_step=...)``), with the fit's shapes, so
the fit's compiled step serves every refit.  This is cheap but optimistic, since the full fit has seen the
held-out data (see ``compute.params.CrossValidationConfig``).  With ``warm_start`` False every refit starts
from a fresh initialisation and runs the whole schedule.

Error summaries are over keypoints with confidence > 0.5, as GC_d (``compute.metrics``): a keypoint without a
prediction (triangulation from fewer than 2 inlier views) counts as a failure in GC_d and is left out of the
median, whose coverage is reported.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from compute import kinematics as kin
from compute.cameras import Camera, camera_centers_numpy, matrix_to_rodrigues
from compute.fit.bilevel import correct_left_right_swaps, initial_camera_delta, run_optimisation
from compute.fit.evaluation import evaluate_all_frames, reprojection_errors_px
from compute.fit.gauge import effective_camera_delta, gauge_projection_matrix, refined_rig
from compute.fit.initialisation import initialise
from compute.fit.observations import DEFAULT_BUCKETS, pad_cameras, prepare_session_data, take_trials, validate_inputs
from compute.fit.types import BodyParams, SessionFit, TrialObservations
from compute.metrics import GC_THRESHOLDS_PX, geometric_consistency
from compute.params import FitParams
from compute.trajectory import Trajectory, deserialise_trajectory, stack_trajectories
from compute.triangulation import triangulate_points

__all__ = ["MIN_CONFIDENCE", "HELD_OUT_WORSE_THAN_TRIANGULATION", "held_out_world_notes", "FittedState",
           "fitted_state", "ErrorSummary", "summarise_errors",
           "held_out_gauge_projection", "fitted_camera_deltas", "without_cameras", "held_out_frames", "without_frames",
           "CameraHoldOut", "CameraCalibrationCheck", "CrossValidation", "cross_validate_cameras",
           "check_calibration", "cross_validate"]

MIN_CONFIDENCE = 0.5
"""Keypoints with confidence above this are the ones an error summary counts (as GC_d does)."""

VERDICT_IMPROVES = "improves"
VERDICT_NO_IMPROVEMENT = "no improvement"


@dataclass(frozen=True)
class FittedState:
    """A finished fit as the refits start from it: stacked trajectory networks (N,), body parameters and the
    refined rig Camera(C,)."""

    networks: Trajectory
    body: BodyParams
    refined_cameras: Camera

    @classmethod
    def from_serialised(cls, network_weights: Sequence[bytes], network_configs: Sequence[dict],
                        log_scale: np.ndarray, offsets: np.ndarray, refined_cameras: Camera) -> "FittedState":
        """From stored trial networks (bytes + config each, in trial order), log_scale (G,), offsets (J,3) m and
        the refined rig."""
        networks = stack_trajectories([deserialise_trajectory(w, c) for w, c in zip(network_weights,
                                                                                     network_configs)])
        body = BodyParams(log_scale=jnp.asarray(log_scale, jnp.float32), offsets=jnp.asarray(offsets, jnp.float32))
        return cls(networks=networks, body=body, refined_cameras=refined_cameras)


def fitted_state(fit: SessionFit) -> FittedState:
    """The ``FittedState`` of a ``compute.fit.fit_session`` result."""
    return FittedState.from_serialised([t.network for t in fit.trials], [t.network_config for t in fit.trials],
                                       fit.log_scale, fit.offsets, fit.cameras)


@dataclass(frozen=True)
class ErrorSummary:
    """Distribution of reprojection errors over confident keypoints (w > ``MIN_CONFIDENCE``).

    median_px: median over the keypoints with a prediction (NaN if none); gc_curve (20,): GC_d, d = 1..20 px,
    a keypoint without a prediction counting as a failure; n_keypoints: confident keypoints; coverage: the
    fraction of them with a prediction.
    """

    median_px: float
    gc_curve: np.ndarray
    n_keypoints: int
    coverage: float

    @property
    def gc5(self) -> float:
        return float(self.gc_curve[4])


def summarise_errors(errors: np.ndarray, confidence: np.ndarray) -> ErrorSummary:
    """ErrorSummary of errors (...) px (NaN = no prediction) at keypoints of confidence (...)."""
    errors = np.asarray(errors, np.float64).ravel()
    confident = np.nan_to_num(np.asarray(confidence, np.float64).ravel(), nan=0.0) > MIN_CONFIDENCE
    predicted = confident & np.isfinite(errors)
    n = int(confident.sum())
    return ErrorSummary(median_px=float(np.median(errors[predicted])) if predicted.any() else float("nan"),
                        gc_curve=np.asarray(geometric_consistency(errors, confident.astype(np.float64),
                                                                  GC_THRESHOLDS_PX, MIN_CONFIDENCE), np.float64),
                        n_keypoints=n, coverage=float(predicted.sum() / n) if n else float("nan"))


def held_out_gauge_projection(rig: Camera, keep: np.ndarray) -> np.ndarray:
    """(6C,6C) float32 gauge projector of the cameras ``keep`` (C,) bool alone, with zero rows and columns for
    the others (their deltas stay 0: they keep their input calibration in the kept cameras' world)."""
    keep = np.asarray(keep, bool)
    n_cam = keep.shape[0]
    kept = np.flatnonzero(keep)
    sub = jax.tree.map(lambda x: np.asarray(x)[kept], rig)
    sub_projection = gauge_projection_matrix(sub)
    index = (6 * kept[:, None] + np.arange(6)[None, :]).ravel()
    out = np.zeros((6 * n_cam, 6 * n_cam), np.float32)
    out[np.ix_(index, index)] = sub_projection
    return out


def without_cameras(trials: Sequence[TrialObservations], keep: np.ndarray) -> list[TrialObservations]:
    """Trials with confidence 0 in the cameras not in ``keep`` (C,) bool (keypoints unchanged)."""
    keep = np.asarray(keep, bool)
    return [TrialObservations(name=t.name, fps=t.fps, keypoints=t.keypoints,
                              confidence=np.where(keep[:, None, None], t.confidence, 0.0).astype(np.float32))
            for t in trials]


def held_out_frames(n_frames: int, every: int) -> np.ndarray:
    """(T,) bool: frames every//2, every//2 + every, ... (never frame 0; the last only by chance of T)."""
    frames = np.arange(n_frames)
    held = (frames % every) == (every // 2)
    held[-1] = False  # the trajectory's end would be extrapolated, not interpolated
    return held


def without_frames(trials: Sequence[TrialObservations], every: int) -> list[TrialObservations]:
    """Trials with confidence 0 in every camera at the held-out frames of :func:`held_out_frames`."""
    out = []
    for t in trials:
        held = held_out_frames(t.n_frames, every)
        out.append(TrialObservations(name=t.name, fps=t.fps, keypoints=t.keypoints,
                                     confidence=np.where(held[None, :, None], 0.0, t.confidence).astype(np.float32)))
    return out


def fitted_camera_deltas(cameras: Camera, refined: Camera) -> tuple[np.ndarray, np.ndarray]:
    """The per-camera deltas that turn the input rig into the refined one: rotation (C,3) rad with
    ``R_refined = R_input Rot(rotation)^T`` and centre shift (C,3) m (``compute.fit.gauge`` conventions)."""
    r_in, r_ref = (Rotation.from_rotvec(np.asarray(rig.rvec, np.float64)).as_matrix() for rig in (cameras, refined))
    rotation = matrix_to_rodrigues(np.swapaxes(r_ref, -1, -2) @ r_in).reshape(-1, 3)
    centres = [camera_centers_numpy(rig) for rig in (cameras, refined)]
    return rotation, centres[1] - centres[0]


def _refit(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations], params: FitParams,
           start: FittedState, key: jax.Array, keep: np.ndarray, bundle_adjustment: bool,
           ) -> tuple[Camera, list[np.ndarray], np.ndarray, np.ndarray]:
    """Refit ``trials`` (already masked) under the gauge of the cameras ``keep`` (C,) bool.

    A warm start begins from the fitted networks, body and (with bundle adjustment) camera deltas of the kept
    cameras; the others and, without bundle adjustment, all cameras start and stay at their input calibration.
    Returns (refined rig Camera(C,), markers (T,J,3) m per trial, rotation change (C,) deg, centre change (C,) mm).
    """
    config = params.crossval
    total = params.optimiser.steps
    n_cam = int(np.shape(cameras.rvec)[0])
    if not bundle_adjustment:  # the gate never opens; no recompilation (the gate is a dynamic argument)
        params = params.replace(camera_start_fraction=2.0)
    data = prepare_session_data(cameras, trials, DEFAULT_BUCKETS)  # the fit's shapes: its compiled step
    n_slots = int(data.gauge_projection.shape[0]) // 6  # cameras including shape-bucket padding
    keep_slots = np.zeros(n_slots, bool)
    keep_slots[:n_cam] = keep
    data = eqx.tree_at(lambda d: d.gauge_projection, data,
                       jnp.asarray(held_out_gauge_projection(pad_cameras(cameras, n_slots), keep_slots)))
    key_init, key_fit = jax.random.split(key)
    initial_cameras = initial_camera_delta(n_slots, params)
    if config.warm_start:
        networks, beta = start.networks, start.body
        first_step = total - max(1, int(round(config.refit_steps_fraction * total)))
        if bundle_adjustment:
            rotation, centre = fitted_camera_deltas(cameras, start.refined_cameras)
            pad = ((0, n_slots - n_cam), (0, 0))
            rotation = np.pad(np.where(keep[:, None], rotation, 0.0), pad)
            centre = np.pad(np.where(keep[:, None], centre, 0.0), pad)
            initial_cameras = eqx.tree_at(lambda d: (d.rotation, d.centre), initial_cameras,
                                          (jnp.asarray(rotation, jnp.float32), jnp.asarray(centre, jnp.float32)))
    else:
        networks, beta, _ = initialise(body, cameras, trials, params, key_init)
        first_step = 0
    variables, _, _, _ = run_optimisation(body, data, networks, beta, params, key_fit, first_step=first_step,
                                          initial_cameras=initial_cameras)
    rotation, centre_shift = effective_camera_delta(variables.cameras, data.gauge_projection)
    rotation = np.asarray(rotation, np.float64)[:n_cam]
    centre_shift = np.asarray(centre_shift, np.float64)[:n_cam]
    rig = refined_rig(cameras, rotation, centre_shift)
    _, markers = evaluate_all_frames(take_trials(variables.networks, len(trials)), [t.n_frames for t in trials],
                                     body, variables.body)
    input_centres = camera_centers_numpy(cameras)
    refined_centres = camera_centers_numpy(rig)
    return (rig, markers, np.rad2deg(np.linalg.norm(rotation, axis=-1)),
            1000.0 * np.linalg.norm(refined_centres - input_centres, axis=-1))


def _errors(rig: Camera, markers: Sequence[np.ndarray], trials: Sequence[TrialObservations]) -> list[np.ndarray]:
    """Reprojection errors (C,T,J) px per trial of markers (T,J,3) m through ``rig``."""
    return [reprojection_errors_px(rig, m, t.keypoints) for m, t in zip(markers, trials)]


def _camera_summary(errors: Sequence[np.ndarray], trials: Sequence[TrialObservations], camera: int,
                    frames: Sequence[np.ndarray] | None = None) -> ErrorSummary:
    """ErrorSummary of one camera over all trials (optionally only the frames (T,) bool of each trial)."""
    e, w = [], []
    for i, (err, t) in enumerate(zip(errors, trials)):
        sel = slice(None) if frames is None else frames[i]
        e.append(np.asarray(err)[camera][sel].ravel())
        w.append(np.asarray(t.confidence)[camera][sel].ravel())
    return summarise_errors(np.concatenate(e), np.concatenate(w))


@dataclass(frozen=True)
class CameraHoldOut:
    """Camera ``camera_index`` left out of a refit.

    fit: errors of the refit's markers through the camera's input calibration; triangulation: of the points
    robustly triangulated from the other cameras (input calibration); fit_median_common_px: the fit's median on
    the keypoints the triangulation also predicts (the like-for-like comparison with triangulation.median_px);
    in_sample_median_px: the full fit's median in this camera (refined rig; the camera was fitted);
    remaining_median_px: the refit's median in the other cameras (in-sample).
    """

    camera_index: int
    fit: ErrorSummary
    triangulation: ErrorSummary
    fit_median_common_px: float
    in_sample_median_px: float
    remaining_median_px: float


@dataclass(frozen=True)
class CameraCalibrationCheck:
    """Bundle adjustment of camera ``camera_index`` judged on held-out frames.

    rotation_change_deg, centre_change_mm: the refinement in the refit with bundle adjustment; refined / input:
    held-out-frame errors through the refined rig (that refit) and through the input rig (a refit without bundle
    adjustment); verdict: "improves" or "no improvement"; flagged: moved beyond a limit without improving.
    """

    camera_index: int
    rotation_change_deg: float
    centre_change_mm: float
    refined: ErrorSummary
    input: ErrorSummary
    verdict: str
    flagged: bool


@dataclass
class CrossValidation:
    """Both checks of one fitted session; ``refit_steps``: optimiser steps per refit."""

    held_out_cameras: list[CameraHoldOut]
    calibration: list[CameraCalibrationCheck]
    refit_steps: int
    warm_start: bool
    held_out_frame_every: int
    wall_time_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def _refit_steps(params: FitParams) -> int:
    total = params.optimiser.steps
    if not params.crossval.warm_start:
        return total
    return max(1, int(round(params.crossval.refit_steps_fraction * total)))


def cross_validate_cameras(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations],
                           params: FitParams, fitted: FittedState, seed: int = 0) -> list[CameraHoldOut]:
    """One refit per camera with that camera left out; see the module docstring.  trials: (C,T,J,2) px
    keypoints and (C,T,J) confidences per trial, as given to the fit."""
    n_cam = int(np.shape(cameras.rvec)[0])
    rig_np = jax.tree.map(np.asarray, cameras)
    _, full_markers = evaluate_all_frames(fitted.networks, [t.n_frames for t in trials], body, fitted.body)
    full_errors = _errors(fitted.refined_cameras, full_markers, trials)
    out = []
    for c in range(n_cam):
        keep = np.arange(n_cam) != c
        masked = without_cameras(trials, keep)
        key = jax.random.fold_in(jax.random.PRNGKey(seed), 1000 + c)
        rig, markers, _, _ = _refit(body, cameras, masked, params, fitted, key, keep, bundle_adjustment=True)
        errors = _errors(rig, markers, trials)
        fit = _camera_summary(errors, trials, c)
        tri_errors, common_e = [], []
        for t, err in zip(masked, errors):
            points, _ = triangulate_points(rig_np, np.asarray(t.keypoints, np.float64),
                                           np.asarray(t.confidence, np.float64),
                                           outlier_threshold_px=params.crossval.triangulation_outlier_px)
            tri = reprojection_errors_px(rig_np, np.nan_to_num(points, nan=0.0), np.asarray(t.keypoints))
            tri = np.where(np.isfinite(points).all(-1)[None], tri, np.nan)
            tri_errors.append(tri)
            common_e.append(np.where(np.isfinite(tri[c]), err[c], np.nan).ravel())
        triangulation = _camera_summary(tri_errors, trials, c)
        common = summarise_errors(np.concatenate(common_e),
                                  np.concatenate([np.asarray(t.confidence)[c].ravel() for t in trials]))
        remaining = summarise_errors(np.concatenate([e[keep].ravel() for e in errors]),
                                     np.concatenate([np.asarray(t.confidence)[keep].ravel() for t in trials]))
        out.append(CameraHoldOut(camera_index=c, fit=fit, triangulation=triangulation,
                                 fit_median_common_px=common.median_px,
                                 in_sample_median_px=_camera_summary(full_errors, trials, c).median_px,
                                 remaining_median_px=remaining.median_px))
    return out


def check_calibration(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations],
                      params: FitParams, fitted: FittedState, seed: int = 0) -> list[CameraCalibrationCheck]:
    """Bundle adjustment judged on held-out frames (one refit with, one without it); see the module docstring."""
    config = params.crossval
    n_cam = int(np.shape(cameras.rvec)[0])
    keep = np.ones(n_cam, bool)
    masked = without_frames(trials, config.held_out_frame_every)
    frames = [held_out_frames(t.n_frames, config.held_out_frame_every) for t in trials]
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 2000)
    refined_rig_, refined_markers, rotation_deg, centre_mm = _refit(body, cameras, masked, params, fitted, key,
                                                                    keep, bundle_adjustment=True)
    _, input_markers, _, _ = _refit(body, cameras, masked, params, fitted, key, keep, bundle_adjustment=False)
    refined_errors = _errors(refined_rig_, refined_markers, trials)
    input_errors = _errors(jax.tree.map(np.asarray, cameras), input_markers, trials)
    out = []
    for c in range(n_cam):
        refined = _camera_summary(refined_errors, trials, c, frames)
        given = _camera_summary(input_errors, trials, c, frames)
        improves = bool(refined.median_px < (1.0 - config.min_relative_improvement) * given.median_px)
        moved = bool(rotation_deg[c] > config.max_rotation_change_deg or centre_mm[c] > config.max_centre_change_mm)
        out.append(CameraCalibrationCheck(
            camera_index=c, rotation_change_deg=float(rotation_deg[c]), centre_change_mm=float(centre_mm[c]),
            refined=refined, input=given, verdict=VERDICT_IMPROVES if improves else VERDICT_NO_IMPROVEMENT,
            flagged=moved and not improves))
    return out


#: a held-out camera predicted this many times worse than triangulation (from the same remaining cameras) gets a note
HELD_OUT_WORSE_THAN_TRIANGULATION = 2.0


def held_out_world_notes(held_out: Sequence[CameraHoldOut], calibration: Sequence[CameraCalibrationCheck]
                         ) -> list[str]:
    """Remarks for a fit with bundle adjustment whose held-out cameras the refit predicts more than
    ``HELD_OUT_WORSE_THAN_TRIANGULATION`` x worse than a triangulation does.

    Why: a held-out camera is predicted through its input calibration in the world of the *refined* remaining
    cameras.  When bundle adjustment has moved those cameras by degrees relative to one another, that world no
    longer agrees with the input calibration, whatever the fit's quality (measured on a real 4-webcam recording:
    110 px held out with bundle adjustment, 17 px without, triangulation 21 px).  The refit without bundle
    adjustment is then the one to read."""
    worse = [h for h in held_out if np.isfinite(h.fit_median_common_px) and np.isfinite(h.triangulation.median_px)
             and h.fit_median_common_px > HELD_OUT_WORSE_THAN_TRIANGULATION * h.triangulation.median_px]
    if not worse:
        return []
    moved = max((c.rotation_change_deg for c in calibration), default=float("nan"))
    listed = ", ".join(f"camera {h.camera_index} {h.fit_median_common_px:.0f} px vs {h.triangulation.median_px:.0f} px"
                       for h in worse)
    return [f"held out worse than triangulation ({listed}): bundle adjustment moved the cameras (up to "
            f"{moved:.1f} deg), so a held-out camera's input calibration disagrees with the refined cameras' world; "
            f"cross-validate a fit without bundle adjustment to judge the fit itself"]


def cross_validate(body: kin.BodyModel, cameras: Camera, trials: list[TrialObservations], params: FitParams,
                   fitted: FittedState, seed: int = 0) -> CrossValidation:
    """Camera cross-validation and the calibration check of a session fitted by ``compute.fit.fit_session`` with
    the same ``params`` and observations.

    body: the fit's body model; cameras: input calibration Camera(C,); trials: keypoints (C,T,J,2) px and
    confidences (C,T,J) per trial; fitted: the fit (:func:`fitted_state`, or ``FittedState.from_serialised``
    from stored rows); seed: PRNG seed of the refits.  Left/right swaps are corrected first when the fit did so.
    """
    wall_start = time.perf_counter()
    validate_inputs(body, cameras, trials)
    if params.initialisation.correct_left_right_swaps:
        trials = correct_left_right_swaps(body, cameras, trials)
    notes = []
    if params.bundle_adjustment.fit_time_offsets:
        notes.append("camera time offsets are fitted but not applied in these checks: a held-out camera has no "
                     "offset, and errors are of markers at the frame times")
    held_out = cross_validate_cameras(body, cameras, trials, params, fitted, seed)
    calibration = check_calibration(body, cameras, trials, params, fitted, seed)
    if params.camera_start_step < params.optimiser.steps:
        notes += held_out_world_notes(held_out, calibration)
    return CrossValidation(held_out_cameras=held_out, calibration=calibration, refit_steps=_refit_steps(params),
                           warm_start=params.crossval.warm_start,
                           held_out_frame_every=params.crossval.held_out_frame_every,
                           wall_time_s=time.perf_counter() - wall_start, notes=notes)
