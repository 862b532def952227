"""Reprojection metrics: errors, geometric consistency GC_d, σ_IQR. numpy, NaN-aware.

GC_d is the fraction of confident keypoints (confidence > 0.5) that the fitted model reprojects within d
pixels, and σ_IQR = 0.7413·IQR a robust standard deviation of an error distribution; both are the measures
reported by Cotton 2024, "Differentiable Biomechanics Unlocks Opportunities for Markerless Motion Capture".
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "GC_THRESHOLDS_PX",
    "reprojection_errors",
    "geometric_consistency",
    "gc_at",
    "sigma_iqr",
    "residual_summary",
]

#: Pixel thresholds d of the GC_d curve: 1, 2, ..., 20 px.
GC_THRESHOLDS_PX = np.arange(1, 21)

#: 1 / (2 · Φ⁻¹(0.75)): σ of a normal distribution from its inter-quartile range.
IQR_TO_SIGMA = 0.7413


def reprojection_errors(predicted, observed) -> np.ndarray:
    """Euclidean pixel distance between predicted and observed keypoints.

    Args:
        predicted: (C, T, J, 2) (any (..., 2)) model keypoints projected to pixels.
        observed: same shape, detected keypoints; NaN where missing.
    Returns:
        (C, T, J) px; NaN where either side is NaN (no warnings).
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    if predicted.shape != observed.shape or predicted.shape[-1:] != (2,):
        raise ValueError(
            f"compute/metrics.py reprojection_errors: predicted {predicted.shape} and observed {observed.shape} "
            "must have the same shape (..., 2)"
        )
    return np.sqrt(np.sum((predicted - observed) ** 2, axis=-1))


def geometric_consistency(errors, confidence, thresholds_px=GC_THRESHOLDS_PX, min_confidence: float = 0.5) -> np.ndarray:
    """GC_d = #(err < d ∧ w > min_confidence) / #(w > min_confidence) for each threshold d.

    Args:
        errors: (...) reprojection errors, px. NaN (no prediction or no observation) counts as a failure
            when the keypoint is confident.
        confidence: (...) same shape, w in [0, 1]; NaN confidence counts as 0.
        thresholds_px: (D,) thresholds d, px.
    Returns:
        (D,) fractions in [0, 1]; all NaN when no keypoint is confident.
    """
    errors = np.asarray(errors, dtype=np.float64)
    confidence = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0)
    if errors.shape != confidence.shape:
        raise ValueError(
            f"compute/metrics.py geometric_consistency: errors {errors.shape} and confidence {confidence.shape} "
            "must have the same shape"
        )
    thresholds = np.atleast_1d(np.asarray(thresholds_px, dtype=np.float64))
    confident = confidence > min_confidence
    n = int(confident.sum())
    if n == 0:
        return np.full(thresholds.shape, np.nan)
    e = np.where(np.isfinite(errors), errors, np.inf)[confident]
    e.sort()
    # err < d  <=>  index of first element >= d
    return np.searchsorted(e, thresholds, side="left") / n


def gc_at(errors, confidence, d: float = 5.0, min_confidence: float = 0.5) -> float:
    """GC_d at one threshold (default GC_5), as a float."""
    return float(geometric_consistency(errors, confidence, [d], min_confidence)[0])


def sigma_iqr(x) -> float:
    """Robust spread σ_IQR = 0.7413 · (Q3 − Q1), ignoring NaN; NaN for empty input."""
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    q1, q3 = np.percentile(x, [25.0, 75.0])
    return float(IQR_TO_SIGMA * (q3 - q1))


def residual_summary(errors, confidence, min_confidence: float = 0.5) -> dict[str, np.ndarray]:
    """Per-camera residual statistics of confident keypoints.

    Args:
        errors: (C, T, J) px (NaN allowed).
        confidence: (C, T, J).
    Returns:
        dict of (C,) arrays: ``median`` and ``p90`` of finite errors with w > min_confidence (px),
        ``gc5`` = GC_5 per camera, ``n_confident`` counts.
    """
    errors = np.asarray(errors, dtype=np.float64)
    confidence = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0)
    if errors.shape != confidence.shape or errors.ndim < 1:
        raise ValueError(
            f"compute/metrics.py residual_summary: errors {errors.shape} and confidence {confidence.shape} "
            "must both be (C, T, J)"
        )
    C = errors.shape[0]
    out = {k: np.full(C, np.nan) for k in ("median", "p90", "gc5")}
    out["n_confident"] = np.zeros(C, np.int64)
    for c in range(C):
        confident = confidence[c] > min_confidence
        e = errors[c][confident & np.isfinite(errors[c])]
        out["n_confident"][c] = int(confident.sum())
        if e.size:
            out["median"][c] = np.median(e)
            out["p90"][c] = np.percentile(e, 90.0)
        out["gc5"][c] = gc_at(errors[c], confidence[c], 5.0, min_confidence)
    return out
