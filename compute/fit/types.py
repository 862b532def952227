"""Data types of the fit: observations in, fitted variables during, results out.

Conventions: C cameras, N trials, T frames (``T_max`` after padding to the longest trial), J markers, Q joint
coordinates (``qpos``, order of ``BodyModel.joint_names``), G scale groups.  Pixels (px), metres (m), radians
(rad), seconds (s).  Frame i of a trial is at time ``i / fps``.
"""
from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import numpy as np

from compute.cameras import Camera
from compute.params import FitParams
from compute.trajectory import Trajectory

__all__ = [
    "LOSS_HISTORY_COLUMNS",
    "TrialObservations",
    "TrialFit",
    "SessionFit",
    "FitDivergedError",
    "BodyParams",
    "CameraDelta",
    "FitVariables",
    "SessionData",
]

LOSS_HISTORY_COLUMNS = ("step", "loss", "reprojection", "offset", "smoothness", "equality")
"""Columns of ``SessionFit.loss_history``: the step and the loss terms of ``compute.fit.loss.session_loss``."""


@dataclass
class TrialObservations:
    """2D keypoints of one trial.  keypoints (C,T,J,2) float32 px (NaN ok where confidence 0);
    confidence (C,T,J) float32 in [0,1].  Frame i is at time i / fps seconds."""

    name: str
    fps: float
    keypoints: np.ndarray
    confidence: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(np.shape(self.keypoints)[1])


@dataclass
class TrialFit:
    """Fit of one trial: every array evaluated at every frame time."""

    name: str
    times: np.ndarray                       # (T,) s
    qpos: np.ndarray                        # (T,Q)
    markers: np.ndarray                     # (T,J,3) m
    gc_curve: np.ndarray                    # (20,) GC_d, d = 1..20 px, confidence > 0.5
    gc5: float
    per_camera_median_error_px: np.ndarray  # (C,) over keypoints with confidence > 0.5
    network: bytes                          # eqx.tree_serialise_leaves of the Trajectory (b"" for the baseline)
    network_config: dict                    # to rebuild it: compute.trajectory.evaluate_trajectory
    final_loss: float                       # reprojection loss (Huber) over all frames
    reprojection_errors: np.ndarray | None = None  # (C,T,J) px (NaN where not observed)
    coordinate_sd_rad: np.ndarray | None = None   # (Q,) posterior SD per coordinate, rad (m for the root
    #   translation): how well the images determine it (compute.fit.observability; ~1 rad = not at all)


@dataclass
class SessionFit:
    """Fit of one session: shared subject parameters, refined cameras, one ``TrialFit`` per trial."""

    log_scale: np.ndarray                   # (G,)
    offsets: np.ndarray                     # (J,3) m, body frame
    cameras: Camera                         # refined rig (numpy leaves)
    camera_rotation_change_deg: np.ndarray  # (C,) angle of R_refined R_input^T
    camera_translation_change_m: np.ndarray  # (C,) distance between refined and input camera centres
    trials: list[TrialFit]
    loss_history: np.ndarray                # (H, len(loss_history_columns))
    gc_curve: np.ndarray                    # (20,) over all trials
    gc5: float
    iterations: int
    wall_time_s: float
    seed: int
    params: FitParams
    loss_history_columns: tuple[str, ...] = LOSS_HISTORY_COLUMNS
    stop_reason: str = "step budget"       # why the optimisation ended (compute.fit.loop.LoopResult.stop_reason)
    time_offset_s: np.ndarray | None = None  # (C,) s fitted camera time offsets (mean 0 over observed cameras;
    #   camera c's frame i shows the body at i / fps + time_offset_s[c]); None when not fitted


class FitDivergedError(RuntimeError):
    """The loss (or a result) became NaN/inf: the fit stops with this error, never with a result."""


class BodyParams(eqx.Module):
    """Shared subject parameters beta: log_scale (G,), offsets (J,3) metres (body frame)."""

    log_scale: jax.Array
    offsets: jax.Array


class CameraDelta(eqx.Module):
    """Raw per-camera extrinsic deltas (before the gauge projection of ``compute.fit.gauge``):
    rotation (C,3) rad, centre (C,3) m; time_offset (C,) s raw time offsets (None: not fitted, and the loss is
    exactly the synchronous one), mapped to the effective offsets by ``compute.fit.gauge.effective_time_offsets``
    with the bound ``max_time_offset_s`` (s)."""

    rotation: jax.Array
    centre: jax.Array
    time_offset: jax.Array | None = None
    max_time_offset_s: float = eqx.field(static=True, default=0.2)


class FitVariables(eqx.Module):
    """Everything the bilevel fit optimises: trajectory networks stacked on a leading (N,) trial axis, the shared
    body parameters and the camera deltas.  After ``eqx.partition`` one copy holds the trainable leaves and
    the other the frozen ones (``None`` elsewhere)."""

    networks: Trajectory
    body: BodyParams
    cameras: CameraDelta


class SessionData(eqx.Module):
    """Device-side observations of one session, padded to T_max frames and, for shape buckets
    (``compute.fit.observations.ShapeBuckets``), to more cameras and trials than the session has.

    keypoints (N,T_max,C,J,2) px and confidence (N,T_max,C,J) (sanitised: finite, weight 0 where missing or
    padded); n_frames (N,) int32 real frames per trial; durations (N,) s; rig: input calibration Camera(C,);
    gauge_projection (6C,6C): see ``compute.fit.gauge.gauge_projection_matrix``.

    camera_mask (C,) float32 and trial_mask (N,) float32: 1.0 for the session's real cameras and trials, 0.0 for
    padding.  Padding exists only so that sessions of different shapes share one compiled step, so every use
    must make it inert: a padded camera is a copy of a real one with confidence 0 everywhere and zero rows and
    columns in ``gauge_projection`` (its deltas stay 0); a padded trial repeats a real trial's ``n_frames`` and
    ``durations`` with confidence 0, and every per-trial loss term is multiplied by ``trial_mask`` and averaged
    over the real trials only (``compute.fit.loss``), so its network gets exactly zero gradients.  Anything new
    that is per camera (e.g. time offsets) or per trial must be masked the same way.  None (data built by hand):
    every camera and trial is real.
    """

    keypoints: jax.Array
    confidence: jax.Array
    n_frames: jax.Array
    durations: jax.Array
    rig: Camera
    gauge_projection: jax.Array
    camera_mask: jax.Array | None = None
    trial_mask: jax.Array | None = None
