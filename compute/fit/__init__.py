"""Fitting a biomechanical model to multi-camera 2D keypoints (Cotton 2024, "Differentiable Biomechanics Unlocks
Opportunities for Markerless Motion Capture").

One idea per module:
  * ``types``: observations, fitted variables, results, ``FitDivergedError``;
  * ``gauge``: camera deltas under the similarity gauge of bundle adjustment;
  * ``observations``: input checks and the padded device-side ``SessionData``;
  * ``initialisation``: triangulation, scale, root path and heading guesses, initial networks;
  * ``optimiser``: optax parameter groups, delayed starts, schedules;
  * ``loss``: the session loss on a random batch of frames;
  * ``loop``: the one fit loop (step, loss history, divergence check, progress callback);
  * ``evaluation``: every-frame evaluation and the metrics of a fit (GC_d, reprojection errors);
  * ``bilevel``: ``fit_session`` (one subject, all trials, bundle adjustment);
  * ``trilevel``: ``fit_trilevel`` (shared marker sites over many subjects);
  * ``baseline``: ``fit_two_stage`` (triangulation then per-frame inverse kinematics).

The names below are the public API: ``from compute import fit as fit_lib; fit_lib.fit_session(...)``.
"""
from __future__ import annotations

from compute.fit.baseline import fit_two_stage, inverse_kinematics
from compute.fit.bilevel import fit_session, make_train_step, run_optimisation
from compute.fit.evaluation import evaluate_all_frames, reprojection_errors_px, session_gc
from compute.fit.gauge import refined_rig
from compute.fit.initialisation import estimate_log_scale, initial_root_and_heading, initialise
from compute.fit.loop import ProgressCallback
from compute.fit.observations import prepare_session_data, validate_inputs
from compute.fit.trilevel import TRILEVEL_HISTORY_COLUMNS, TrilevelFit, fit_trilevel
from compute.fit.types import (LOSS_HISTORY_COLUMNS, BodyParams, CameraDelta, FitDivergedError, FitVariables,
                               SessionFit, TrialFit, TrialObservations)
from compute.trajectory import evaluate_trajectory

__all__ = [
    "TrialObservations",
    "TrialFit",
    "SessionFit",
    "FitDivergedError",
    "BodyParams",
    "CameraDelta",
    "FitVariables",
    "LOSS_HISTORY_COLUMNS",
    "ProgressCallback",
    "fit_session",
    "initialise",
    "prepare_session_data",
    "validate_inputs",
    "run_optimisation",
    "make_train_step",
    "evaluate_all_frames",
    "evaluate_trajectory",
    "reprojection_errors_px",
    "session_gc",
    "estimate_log_scale",
    "initial_root_and_heading",
    "refined_rig",
    "fit_trilevel",
    "TrilevelFit",
    "TRILEVEL_HISTORY_COLUMNS",
    "fit_two_stage",
    "inverse_kinematics",
]
