"""compute/cameras.py: OpenCV-identical projection, Rodrigues maps, rig helpers."""
from __future__ import annotations

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compute.cameras import (
    Camera,
    camera_centers,
    center_change_m,
    make_camera,
    matrix_to_rodrigues,
    perturb_camera,
    points_in_front,
    project_points,
    project_points_numpy,
    project_to_rig,
    rodrigues_to_matrix,
    rotation_change_deg,
    stack_cameras,
    undistort_points,
    unstack_cameras,
)


def enable_x64():
    """Local float64 (jax 0.10 spells it `jax.enable_x64(True)`; jax.experimental.enable_x64 is gone)."""
    return jax.enable_x64(True)


def look_at_rotation(center: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World->camera rotation of an OpenCV camera at `center` looking at `target` (world Z up)."""
    z = target - center
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def random_camera_params(rng: np.random.Generator, distortion: bool = True) -> dict:
    """Realistic 2048x1536 camera 4-7 m from the origin, 0.5-3 m high, looking near the origin."""
    azimuth = rng.uniform(0, 2 * np.pi)
    radius = rng.uniform(4.0, 7.0)
    center = np.array([radius * np.cos(azimuth), radius * np.sin(azimuth), rng.uniform(0.5, 3.0)])
    target = rng.uniform([-0.5, -0.5, 0.5], [0.5, 0.5, 1.3])
    R = look_at_rotation(center, target)
    f = rng.uniform(1500, 2500)
    K = np.array([[f * rng.uniform(0.98, 1.02), 0, 1024 + rng.uniform(-30, 30)], [0, f, 768 + rng.uniform(-30, 30)], [0, 0, 1]])
    dist = np.zeros(5)
    if distortion:
        dist = np.array([rng.uniform(-0.3, 0.2), rng.uniform(-0.1, 0.1), rng.uniform(-2e-3, 2e-3), rng.uniform(-2e-3, 2e-3), rng.uniform(-0.05, 0.05)])
    return dict(K=K, dist=dist, rvec=matrix_to_rodrigues(R), tvec=-R @ center, size=np.array([2048.0, 1536.0]))


def random_rig_params(rng: np.random.Generator, n: int, distortion: bool = True) -> list[dict]:
    return [random_camera_params(rng, distortion) for _ in range(n)]


def points_visible(params: dict, points: np.ndarray) -> np.ndarray:
    """Mask of points (N,3) in front of the camera and inside its image (with a 50 px margin)."""
    R = rodrigues_to_matrix_np(params["rvec"])
    xc = points @ R.T + params["tvec"]
    uv, _ = cv2.projectPoints(points, params["rvec"], params["tvec"], params["K"], params["dist"])
    uv = uv[:, 0]
    w, h = params["size"]
    return (xc[:, 2] > 0.5) & (uv[:, 0] > 50) & (uv[:, 0] < w - 50) & (uv[:, 1] > 50) & (uv[:, 1] < h - 50)


def rodrigues_to_matrix_np(rvec) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(rvec, np.float64))[0]


def test_project_points_matches_cv2_over_50_random_distorted_cameras():
    rng = np.random.default_rng(0)
    worst = 0.0
    with enable_x64():
        project = jax.jit(project_points)  # fixed shapes: one compilation for all 50 cameras
        for _ in range(50):
            p = random_camera_params(rng)
            pts = rng.uniform([-1, -1, 0], [1, 1, 2], size=(200, 3))
            visible = points_visible(p, pts)
            assert visible.sum() > 20
            cam = make_camera(**p)
            ours = np.asarray(project(cam, jnp.asarray(pts)))[visible]
            pts = pts[visible]
            ref = cv2.projectPoints(pts, p["rvec"], p["tvec"], p["K"], p["dist"])[0][:, 0]
            worst = max(worst, np.abs(ours - ref).max())
            ours_np, _ = project_points_numpy(cam, pts)
            assert np.abs(ours_np - ref).max() < 1e-6
    assert worst < 1e-4, worst


def test_project_points_float32_close_to_cv2():
    rng = np.random.default_rng(1)
    p = random_camera_params(rng)
    pts = rng.uniform([-1, -1, 0], [1, 1, 2], size=(300, 3))
    pts = pts[points_visible(p, pts)]
    ours = np.asarray(jax.jit(project_points)(make_camera(**p), jnp.asarray(pts, jnp.float32)))
    ref = cv2.projectPoints(pts, p["rvec"], p["tvec"], p["K"], p["dist"])[0][:, 0]
    assert np.abs(ours - ref).max() < 5e-3


def test_project_to_rig_equals_per_camera_projection_and_is_jittable():
    rng = np.random.default_rng(2)
    params = random_rig_params(rng, 4)
    rig = stack_cameras([make_camera(**p) for p in params])
    assert rig.K.shape == (4, 3, 3) and rig.dist.shape == (4, 5)
    pts = jnp.asarray(rng.uniform(-0.5, 0.5, size=(7, 5, 3)) + np.array([0, 0, 1.0]), jnp.float32)
    uv = jax.jit(project_to_rig)(rig, pts)
    assert uv.shape == (4, 7, 5, 2)
    project = jax.jit(project_points)
    for c, cam in enumerate(unstack_cameras(rig)):
        np.testing.assert_allclose(uv[c], project(cam, pts), rtol=1e-6, atol=1e-3)


def test_rig_functions_and_gradients_are_valid_under_strict_rank_promotion():
    rig = stack_cameras([make_camera(**p) for p in random_rig_params(np.random.default_rng(8), 3)])
    pts = jnp.ones((5, 4, 3))
    with jax.numpy_rank_promotion("raise"):
        uv, front, centers = jax.jit(lambda r, x: (project_to_rig(r, x), points_in_front(r, x), camera_centers(r)))(rig, pts)
        assert uv.shape == (3, 5, 4, 2) and front.shape == (3, 5, 4) and centers.shape == (3, 3)
        g = jax.jit(jax.grad(lambda r: jnp.sum(project_to_rig(r, pts))))(rig)
        assert np.all(np.isfinite(g.rvec)) and np.all(np.isfinite(g.tvec))


def test_make_camera_pads_short_distortion_and_rejects_bad_shapes():
    cam = make_camera(np.eye(3), [0.1, 0.01, 0, 0], np.zeros(3), np.zeros(3), [640, 480])
    assert cam.dist.shape == (5,) and float(cam.dist[4]) == 0.0
    with pytest.raises(ValueError, match="tvec"):
        make_camera(np.eye(3), [0.1], np.zeros(3), np.zeros(2), [640, 480])


def test_rodrigues_round_trip_and_matches_cv2():
    rng = np.random.default_rng(3)
    rvecs = rng.normal(size=(100, 3))
    rvecs *= rng.uniform(0, 3.1, size=(100, 1)) / np.linalg.norm(rvecs, axis=1, keepdims=True)
    rvecs = np.concatenate([rvecs, [[0, 0, 0], [1e-6, 0, 0], [np.pi - 1e-7, 0, 0]]])
    with enable_x64():
        R = np.asarray(rodrigues_to_matrix(jnp.asarray(rvecs)))
    for r, m in zip(rvecs, R):
        np.testing.assert_allclose(m, rodrigues_to_matrix_np(r), atol=1e-12)
    back = matrix_to_rodrigues(R)
    with enable_x64():
        R2 = np.asarray(rodrigues_to_matrix(jnp.asarray(back)))
    np.testing.assert_allclose(R2, R, atol=1e-10)
    small = np.linalg.norm(rvecs, axis=1) < 3.0
    np.testing.assert_allclose(back[small], rvecs[small], atol=1e-9)


def test_rodrigues_gradient_finite_at_zero_and_matches_finite_differences():
    @jax.jit
    def f(r):
        return jnp.sum(rodrigues_to_matrix(r) * jnp.arange(9.0).reshape(3, 3))

    grad_f = jax.jit(jax.grad(f))
    g0 = grad_f(jnp.zeros(3))
    assert np.all(np.isfinite(g0))
    # dR/dr_i at 0 is the skew generator [e_i]_x.
    W = np.arange(9.0).reshape(3, 3)
    expected = [np.sum(W * rodrigues_to_matrix_np(np.eye(3)[i] * 1e-6) - W * np.eye(3)) / 1e-6 for i in range(3)]
    np.testing.assert_allclose(g0, expected, atol=1e-3)
    with enable_x64():
        for r in [np.zeros(3), np.array([1e-5, -2e-5, 3e-5]), np.array([0.3, -1.2, 0.7])]:
            g = np.asarray(grad_f(jnp.asarray(r)))
            eps = 1e-6
            fd = np.array([(f(jnp.asarray(r + eps * e)) - f(jnp.asarray(r - eps * e))) / (2 * eps) for e in np.eye(3)])
            np.testing.assert_allclose(g, fd, atol=1e-6)
    # Through a projection too.
    rng = np.random.default_rng(4)
    p = random_camera_params(rng)
    cam = make_camera(**p)
    cam0 = Camera(cam.K, cam.dist, jnp.zeros(3), jnp.array([0.0, 0.0, 5.0]), cam.size)
    gcam = jax.jit(jax.grad(lambda c: jnp.sum(project_points(c, jnp.ones((4, 3)) * 0.1))))(cam0)
    assert np.all(np.isfinite(gcam.rvec)) and np.all(np.isfinite(gcam.tvec))


def test_camera_centers_and_points_in_front():
    rng = np.random.default_rng(5)
    params = random_rig_params(rng, 3)
    rig = stack_cameras([make_camera(**p) for p in params])
    centers = np.asarray(camera_centers(rig))
    for c, p in enumerate(params):
        np.testing.assert_allclose(centers[c], -rodrigues_to_matrix_np(p["rvec"]).T @ p["tvec"], atol=1e-4)
    pts = np.stack([np.zeros(3) + [0, 0, 1.0], 2 * centers[0] - np.array([0, 0, 1.0])])  # centre of scene; behind cam 0
    mask = np.asarray(points_in_front(rig, jnp.asarray(pts, jnp.float32)))
    assert mask.shape == (3, 2)
    assert mask[:, 0].all() and not mask[0, 1]


def test_perturb_camera_changes_extrinsics_by_exact_amounts():
    rng = np.random.default_rng(6)
    rig = stack_cameras([make_camera(**p) for p in random_rig_params(rng, 5)])
    with enable_x64():
        rig64 = jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x), jnp.float64), rig)
        moved = perturb_camera(rig64, 2.0, 0.05, np.random.default_rng(0))
        np.testing.assert_allclose(rotation_change_deg(rig64, moved), 2.0, atol=1e-9)
        np.testing.assert_allclose(center_change_m(rig64, moved), 0.05, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(moved.K), np.asarray(rig.K))
    single = perturb_camera(unstack_cameras(rig)[0], 1.0, 0.01, np.random.default_rng(1))
    assert single.rvec.shape == (3,)


def test_undistort_points_inverts_projection():
    rng = np.random.default_rng(7)
    for _ in range(10):
        p = random_camera_params(rng)
        pts = rng.uniform([-1, -1, 0], [1, 1, 2], size=(300, 3))
        pts = pts[points_visible(p, pts)]
        cam = make_camera(**p)
        uv = cv2.projectPoints(pts, p["rvec"], p["tvec"], p["K"], p["dist"])[0][:, 0]
        xn = undistort_points(cam, uv)
        xc = pts @ rodrigues_to_matrix_np(p["rvec"]).T + p["tvec"]
        np.testing.assert_allclose(xn, xc[:, :2] / xc[:, 2:], atol=5e-6)  # float32 camera leaves
    assert np.isnan(undistort_points(cam, np.array([[np.nan, 1.0]]))).all()


def test_three_camera_rig_reads_rodrigues_vectors_not_one_rotation_matrix():
    """A rig of 3 cameras has (3, 3) Rodrigues vectors: they must not be taken for one rotation matrix."""
    from scipy.spatial.transform import Rotation

    rotvecs = np.array([[0.1, 0.2, 0.3], [0.0, 0.5, 0.0], [0.2, 0.0, -0.4]])
    K = np.tile(np.array([[1000.0, 0, 500], [0, 1000, 400], [0, 0, 1]]), (3, 1, 1))
    args = (K, np.zeros((3, 5)))
    tail = (np.ones((3, 3)), np.tile([1000.0, 800.0], (3, 1)))
    from_vectors = make_camera(*args, rotvecs, *tail)
    from_matrices = make_camera(*args, Rotation.from_rotvec(rotvecs).as_matrix(), *tail)
    np.testing.assert_allclose(np.asarray(from_vectors.rvec), rotvecs, atol=1e-12)
    np.testing.assert_allclose(np.asarray(from_matrices.rvec), rotvecs, atol=1e-9)
