"""compute/metrics.py: hand-checked GC_d, σ_IQR, per-camera summaries."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from compute.metrics import (
    GC_THRESHOLDS_PX,
    gc_at,
    geometric_consistency,
    reprojection_errors,
    residual_summary,
    sigma_iqr,
)


def test_reprojection_errors_are_distances_and_nan_where_missing():
    pred = np.zeros((2, 1, 3, 2))
    obs = np.array([[[[3.0, 4.0], [np.nan, 0.0], [0.0, 1.0]]], [[[1.0, 0.0], [0.0, 0.0], [np.nan, np.nan]]]])
    with np.errstate(all="raise"):
        err = reprojection_errors(pred, obs)
    assert err.shape == (2, 1, 3)
    np.testing.assert_array_equal(err[0, 0], [5.0, np.nan, 1.0])
    np.testing.assert_array_equal(err[1, 0], [1.0, 0.0, np.nan])
    with pytest.raises(ValueError, match="reprojection_errors"):
        reprojection_errors(np.zeros((2, 2)), np.zeros((2, 3)))


def test_geometric_consistency_hand_checked():
    # 6 confident keypoints (w > 0.5): errors 0.5, 1.0, 4.9, 5.0, 12, NaN; 2 unconfident ones ignored.
    errors = np.array([0.5, 1.0, 4.9, 5.0, 12.0, np.nan, 0.1, 100.0])
    conf = np.array([0.9, 0.6, 1.0, 0.51, 0.7, 0.8, 0.5, 0.2])
    gc = geometric_consistency(errors, conf)
    assert gc.shape == (20,)
    np.testing.assert_allclose(gc[0], 1 / 6)  # d=1: only 0.5 (1.0 is not < 1)
    np.testing.assert_allclose(gc[1], 2 / 6)  # d=2
    np.testing.assert_allclose(gc[4], 3 / 6)  # d=5: 5.0 is not < 5
    np.testing.assert_allclose(gc[5], 4 / 6)  # d=6
    np.testing.assert_allclose(gc[12], 5 / 6)  # d=13
    np.testing.assert_allclose(gc[19], 5 / 6)  # the NaN never counts as a success
    assert gc_at(errors, conf) == pytest.approx(0.5)
    assert np.all(np.diff(gc) >= 0)
    np.testing.assert_array_equal(GC_THRESHOLDS_PX, np.arange(1, 21))


def test_geometric_consistency_without_confident_keypoints_is_nan():
    assert np.isnan(geometric_consistency(np.ones(3), np.zeros(3))).all()


def test_sigma_iqr_of_normal_samples_and_nan_ignoring():
    rng = np.random.default_rng(0)
    x = rng.normal(scale=0.01, size=200_000)
    assert sigma_iqr(x) == pytest.approx(0.01, rel=0.01)
    np.testing.assert_allclose(sigma_iqr([1.0, 2.0, 3.0, 4.0, 5.0, np.nan]), 0.7413 * 2.0)
    assert np.isnan(sigma_iqr([np.nan]))


def test_residual_summary_per_camera():
    errors = np.stack([np.full((2, 3), 1.0), np.arange(6.0).reshape(2, 3) * 2])  # cam1: 0,2,4,6,8,10
    conf = np.ones((2, 2, 3))
    conf[1, 1, 2] = 0.0  # drops the 10 px error
    s = residual_summary(errors, conf)
    np.testing.assert_allclose(s["median"], [1.0, 4.0])
    np.testing.assert_allclose(s["gc5"], [1.0, 3 / 5])
    np.testing.assert_allclose(s["p90"], [1.0, np.percentile([0, 2, 4, 6, 8], 90)])
    np.testing.assert_array_equal(s["n_confident"], [6, 5])


def test_importing_h2_compute_modules_never_imports_datajoint():
    code = (
        "import sys, compute.cameras, compute.triangulation, compute.metrics, compute.gait; "
        "bad = [m for m in ('datajoint', 'pipeline', 'schemas') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
