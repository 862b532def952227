"""Evaluating a fit at every frame and its metrics: reprojection errors, GC_d curves, per-camera medians.

GC_d (geometric consistency, Cotton 2024) is the fraction of keypoints with confidence > 0.5 whose reprojection
error is below d pixels, for d = 1..20 px; GC_5 is its fifth entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from compute import kinematics as kin
from compute.cameras import Camera, project_to_rig_numpy
from compute.fit.observations import DEFAULT_BUCKETS, bucket_size, pad_stacked_trials, stacked_size
from compute.fit.types import BodyParams, FitDivergedError, TrialObservations
from compute.losses import huber
from compute.metrics import GC_THRESHOLDS_PX, geometric_consistency
from compute.program_cache import CachedProgram
from compute.trajectory import Trajectory, evaluate_stacked

__all__ = ["EVALUATION_CHUNK_FRAMES", "compiled_markers_over_time", "evaluate_all_frames", "reprojection_errors_px",
           "session_gc", "per_camera_median_error", "check_finite", "TrialMetrics", "trial_metrics",
           "metrics_from_errors"]

EVALUATION_CHUNK_FRAMES = 128
"""Frames per trial per evaluation call: a fixed shape, so one compilation per number of trials."""

compiled_markers_over_time = kin.compiled_markers_over_time   # re-exported: the fit's modules import it from here

_compiled_huber = jax.jit(huber)  # one compiled call, not one compiled eager operation per step of the formula


_compiled_evaluate_stacked = CachedProgram(evaluate_stacked, "evaluate_stacked")  # tracing it: 0.5 s per process


def _evaluate_chunk(networks: Trajectory, t_scaled: jax.Array, body: kin.BodyModel, beta: BodyParams,
                    n_trials: int) -> tuple[np.ndarray, np.ndarray]:
    """qpos (N,K,Q) of the stacked networks at scaled times t_scaled (N,K) and markers (n_trials,K,J,3) m of the
    first n_trials of them (the others are shape-bucket padding), numpy.

    The kinematics run trial by trial through :data:`compiled_markers_over_time` on float32 numpy inputs, as the
    initialisation and the observability step call it on chunks of ``EVALUATION_CHUNK_FRAMES`` poses: a fresh
    process traces and loads the MJX kinematics once for all three (each trace took about a second).
    """
    qpos = np.asarray(_compiled_evaluate_stacked(networks, t_scaled))
    log_scale, offsets = np.asarray(beta.log_scale, np.float32), np.asarray(beta.offsets, np.float32)
    markers = np.stack([np.asarray(compiled_markers_over_time(body, trial_qpos, log_scale, offsets))
                        for trial_qpos in qpos[:n_trials]])
    return qpos, markers


def evaluate_all_frames(networks: Trajectory, n_frames: Sequence[int], body: kin.BodyModel, beta: BodyParams,
                        ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """qpos (T_n,Q) and markers (T_n,J,3) m at every frame of the first len(n_frames) trials of the stacked
    networks (N >= len(n_frames),), in fixed-size chunks of ``EVALUATION_CHUNK_FRAMES``.  The networks are padded
    to the trial shape bucket (``compute.fit.observations.DEFAULT_BUCKETS``) so one compilation serves a bucket."""
    n_real = len(n_frames)
    n_slots = max(stacked_size(networks), bucket_size(n_real, DEFAULT_BUCKETS.trials, DEFAULT_BUCKETS.trials_beyond))
    networks = pad_stacked_trials(networks, n_slots)
    n_frames = np.asarray(list(n_frames) + [n_frames[-1]] * (n_slots - n_real))
    t_max = int(n_frames.max())
    qpos_parts, marker_parts = [], []
    for start in range(0, t_max, EVALUATION_CHUNK_FRAMES):
        idx = np.minimum(start + np.arange(EVALUATION_CHUNK_FRAMES)[None, :], n_frames[:, None] - 1)
        t_scaled = np.pi * idx / np.maximum(n_frames[:, None] - 1, 1)
        qpos, markers = _evaluate_chunk(networks, jnp.asarray(t_scaled, jnp.float32), body, beta, n_real)
        qpos_parts.append(np.asarray(qpos))
        marker_parts.append(np.asarray(markers))
    qpos_all = np.concatenate(qpos_parts, axis=1)
    markers_all = np.concatenate(marker_parts, axis=1)
    return ([qpos_all[i, :n] for i, n in enumerate(n_frames[:n_real])],
            [markers_all[i, :n] for i, n in enumerate(n_frames[:n_real])])


def reprojection_errors_px(rig: Camera, markers: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Pixel distance (C,T,J) between projected markers (T,J,3) m and keypoints (C,T,J,2) px (NaN where missing)."""
    return np.linalg.norm(project_to_rig_numpy(rig, markers) - np.asarray(keypoints), axis=-1)


def session_gc(errors: Sequence[np.ndarray], confidences: Sequence[np.ndarray],
               min_confidence: float = 0.5) -> np.ndarray:
    """GC_d curve (20,) (d = 1..20 px) over all trials' keypoints with confidence > min_confidence."""
    e = np.concatenate([np.asarray(x).ravel() for x in errors])
    w = np.concatenate([np.nan_to_num(np.asarray(c), nan=0.0).ravel() for c in confidences])
    return np.asarray(geometric_consistency(e, w, GC_THRESHOLDS_PX, min_confidence), np.float64)


def per_camera_median_error(errors: Sequence[np.ndarray], confidences: Sequence[np.ndarray]) -> np.ndarray:
    """Median reprojection error (C,) px per camera over keypoints with confidence > 0.5 (NaN if none);
    errors and confidences: (C,T,J) per trial."""
    n_cam = errors[0].shape[0]
    out = np.full(n_cam, np.nan)
    for c in range(n_cam):
        e = np.concatenate([x[c].ravel() for x in errors])
        w = np.concatenate([np.nan_to_num(x[c], nan=0.0).ravel() for x in confidences])
        sel = (w > 0.5) & np.isfinite(e)
        if sel.any():
            out[c] = np.median(e[sel])
    return out


def check_finite(name: str, *arrays) -> None:
    """Raise FitDivergedError naming ``name`` if any of ``arrays`` holds NaN/inf."""
    for a in arrays:
        if not np.all(np.isfinite(np.asarray(a))):
            raise FitDivergedError(f"compute.fit: non-finite values in the result ({name})")


@dataclass(frozen=True)
class TrialMetrics:
    """Metrics of one fitted trial: reprojection errors (C,T,J) px (NaN where not observed), the confidences
    they are weighted by (C,T,J) (0 where the error is NaN), GC_d curve (20,), per-camera medians (C,) px and
    the mean confidence-weighted Huber reprojection loss over all frames."""

    errors: np.ndarray
    confidence: np.ndarray
    gc_curve: np.ndarray
    per_camera_median_error_px: np.ndarray
    final_loss: float


def trial_metrics(rig: Camera, markers: np.ndarray, trial: TrialObservations, huber_delta_px: float) -> TrialMetrics:
    """Metrics of fitted markers (T,J,3) m of ``trial`` seen through ``rig`` Camera(C,)."""
    return metrics_from_errors(reprojection_errors_px(rig, markers, trial.keypoints), trial, huber_delta_px)


def metrics_from_errors(err: np.ndarray, trial: TrialObservations, huber_delta_px: float) -> TrialMetrics:
    """TrialMetrics of reprojection errors ``err`` (C,T,J) px (NaN = no prediction) of ``trial``; the final loss
    is the confidence-weighted mean Huber penalty."""
    conf = np.nan_to_num(np.asarray(trial.confidence, np.float64), nan=0.0)
    conf = np.where(np.isfinite(err), conf, 0.0)
    penalty = np.asarray(_compiled_huber(np.nan_to_num(err, nan=0.0).astype(np.float32), huber_delta_px))
    return TrialMetrics(errors=err, confidence=conf, gc_curve=session_gc([err], [conf]),
                        per_camera_median_error_px=per_camera_median_error([err], [conf]),
                        final_loss=float(np.mean(conf * penalty)))
