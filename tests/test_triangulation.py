"""compute/triangulation.py: exact recovery, robustness to outlier views, missing views."""
from __future__ import annotations

import time

import cv2
import numpy as np

from compute.cameras import make_camera, stack_cameras
from compute.triangulation import triangulate_points, triangulate_trajectories
from tests.test_cameras import random_rig_params


def _scene(seed: int, n_points: int, n_cameras: int = 8):
    rng = np.random.default_rng(seed)
    params = random_rig_params(rng, n_cameras)
    rig = stack_cameras([make_camera(**p) for p in params])
    points = rng.uniform([-0.6, -0.6, 0.0], [0.6, 0.6, 1.8], size=(n_points, 3))
    uv = np.stack([cv2.projectPoints(points, p["rvec"], p["tvec"], p["K"], p["dist"])[0][:, 0] for p in params])
    return rng, rig, points, uv


def test_noise_free_views_recover_points_to_1mm():
    _, rig, points, uv = _scene(0, 500)
    X, n = triangulate_points(rig, uv, np.ones(uv.shape[:2]))
    err = np.linalg.norm(X - points, axis=-1)
    assert err.max() < 1e-3, err.max()
    assert (n == 8).all()


def test_20_percent_outlier_views_and_1px_noise_stay_within_2cm():
    rng, rig, points, uv = _scene(1, 2000)
    C, N = uv.shape[:2]
    noisy = uv + rng.normal(scale=1.0, size=uv.shape)
    outlier = rng.random((C, N)) < 0.2
    direction = rng.normal(size=(C, N, 2))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    noisy[outlier] += (direction * rng.uniform(30, 400, size=(C, N, 1)))[outlier]
    conf = rng.uniform(0.5, 1.0, size=(C, N))
    t0 = time.perf_counter()
    X, n = triangulate_points(rig, noisy, conf, outlier_threshold_px=20.0)
    elapsed = time.perf_counter() - t0
    err = np.linalg.norm(X - points, axis=-1)
    assert np.isfinite(err).all()
    assert err.max() < 0.02, (err.max(), np.median(err))
    assert np.median(err) < 0.003
    # Inlier counts: never more than the clean views, usually all of them.
    clean = (~outlier).sum(0)
    assert (n <= clean + 0).mean() > 0.99
    assert elapsed < 10.0


def test_missing_and_low_confidence_views_and_too_few_views_give_nan():
    _, rig, points, uv = _scene(2, 40)
    conf = np.ones(uv.shape[:2])
    uv = uv.copy()
    uv[2:, 0] = np.nan  # point 0 seen by cameras 0, 1 only
    conf[1:, 1] = 0.1  # point 1 only one confident view
    uv[:, 2] = np.nan  # point 2 unseen
    X, n = triangulate_points(rig, uv, conf)
    assert np.linalg.norm(X[0] - points[0]) < 1e-3 and n[0] == 2
    assert np.isnan(X[1]).all() and n[1] == 0
    assert np.isnan(X[2]).all() and n[2] == 0
    assert np.abs(X[3:] - points[3:]).max() < 1e-3


def test_triangulate_trajectories_keeps_time_and_joint_axes():
    _, rig, points, uv = _scene(3, 6 * 5)
    kp = uv.reshape(8, 6, 5, 2)
    X, n = triangulate_trajectories(rig, kp, np.ones((8, 6, 5)))
    assert X.shape == (6, 5, 3) and n.shape == (6, 5)
    np.testing.assert_allclose(X, points.reshape(6, 5, 3), atol=1e-3)
