"""A synthetic camera rig around the walkway and exact (float64) projection through it.

Cameras follow the OpenCV pinhole model with radial (k1, k2) and tangential (p1, p2) distortion
(https://docs.opencv.org/4.x/d9/d0c/group__calib3d.html): world -> camera ``x_c = R x_w + t`` with camera
axes x right, y down, z forward; pixels ``u = fx x'' + cx``, ``v = fy y'' + cy``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from compute.cameras import Camera, make_camera, project_to_rig
from compute.synthetic.config import SyntheticRigConfig


def _look_at_rotation(center: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """World->camera rotation (rows x right, y down, z forward) for a camera at center aimed at target."""
    z = target - center
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    c, s = math.cos(roll), math.sin(roll)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ R


def sample_rig(rng: np.random.Generator, n_cameras: int, image_size: tuple[int, int],
               rig: SyntheticRigConfig = SyntheticRigConfig()) -> tuple[Camera, tuple[str, ...]]:
    """A rig of n_cameras around the walkway, every parameter exactly representable in float32.

    Returns (Camera with leaves (C, ...), names 'cam_01'...).
    """
    w, h = image_size
    base = rng.uniform(0, 2 * np.pi)
    hx, hy = rig.volume_half_extent_m
    corners = np.array([[sx * hx, sy * hy, z] for sx in (-1, 1) for sy in (-1, 1) for z in (0.0, rig.volume_height_m)])
    Ks, dists, rvecs, tvecs = [], [], [], []
    for c in range(n_cameras):
        angle = base + 2 * np.pi * c / n_cameras + rng.uniform(-0.25, 0.25) * np.pi / n_cameras
        a, b = rig.ellipse_semi_axes_m
        radius_scale = 1.0 + rng.uniform(-1, 1) * rig.radius_jitter_m / max(a, b)
        center = np.array([a * math.cos(angle) * radius_scale, b * math.sin(angle) * radius_scale,
                           rng.uniform(*rig.height_m_range)])
        target = np.asarray(rig.look_at_m, float) + rng.uniform(-1, 1, 3) * rig.look_at_jitter_m * np.array([1, 1, 0.4])
        R = _look_at_rotation(center, target, np.deg2rad(rng.uniform(-1, 1) * rig.roll_max_deg))
        cam_pts = (corners - center) @ R.T
        xn = np.abs(cam_pts[:, :2] / cam_pts[:, 2:3])
        f = rng.uniform(*rig.focal_px_range)
        f_fit = min((w / 2 - rig.fit_margin_px) / xn[:, 0].max(), (h / 2 - rig.fit_margin_px) / xn[:, 1].max())
        f = max(min(f, f_fit), rig.focal_px_range[0])
        cx = w / 2 - 0.5 + rng.normal(0, rig.principal_point_jitter_px)
        cy = h / 2 - 0.5 + rng.normal(0, rig.principal_point_jitter_px)
        K = np.array([[f, 0, cx], [0, f * (1 + rng.normal(0, 0.002)), cy], [0, 0, 1]])
        dist = np.array([rng.uniform(-1, 1) * rig.k1_max, rng.uniform(-1, 1) * rig.k2_max,
                         rng.uniform(-1, 1) * rig.p_max, rng.uniform(-1, 1) * rig.p_max, 0.0])
        Ks.append(K)
        dists.append(dist)
        rvecs.append(Rotation.from_matrix(R).as_rotvec())
        tvecs.append(-R @ center)
    f32 = lambda x: np.asarray(x, np.float32).astype(np.float64)  # noqa: E731  (exact in float32)
    cams = make_camera(f32(Ks), f32(dists), f32(rvecs), f32(tvecs), f32(np.tile([w, h], (n_cameras, 1))))
    return cams, tuple(f"cam_{c + 1:02d}" for c in range(n_cameras))


def _rig64(rig: Camera) -> Camera:
    """The same rig with float64 leaves (call inside ``jax.enable_x64(True)``)."""
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(np.asarray(leaf, np.float64)), rig)


def project_exact(rig: Camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 projection (C, ..., 2) px and camera-frame depth (C, ...) through project_to_rig."""
    with jax.enable_x64(True):
        rig64 = _rig64(rig)
        pix = np.asarray(project_to_rig(rig64, jnp.asarray(points, jnp.float64)))
    R = Rotation.from_rotvec(np.asarray(rig.rvec, np.float64)).as_matrix()     # (C, 3, 3)
    depth = np.einsum("ck,...k->c...", R[:, 2, :], points) + np.asarray(rig.tvec, np.float64)[:, 2].reshape(
        (-1,) + (1,) * (points.ndim - 1))
    return pix, depth


def in_image(rig: Camera, pix: np.ndarray, depth: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(C, ...) mask: in front (z > 5 cm), inside the image, and inside the undistorted field of view
    (guards against distortion polynomials folding far-off points back into the image)."""
    size = np.asarray(rig.size, np.float64)
    K = np.asarray(rig.K, np.float64)
    shape = (-1,) + (1,) * (pix.ndim - 2)
    w, h = size[:, 0].reshape(shape), size[:, 1].reshape(shape)
    inside = (pix[..., 0] >= 0) & (pix[..., 0] <= w - 1) & (pix[..., 1] >= 0) & (pix[..., 1] <= h - 1)
    R = Rotation.from_rotvec(np.asarray(rig.rvec, np.float64)).as_matrix()
    cam = np.einsum("cik,...k->c...i", R, points) + np.asarray(rig.tvec, np.float64).reshape(shape + (3,))
    with np.errstate(divide="ignore", invalid="ignore"):
        r_norm = np.hypot(cam[..., 0], cam[..., 1]) / np.where(depth > 0, depth, np.nan)
    fov = 1.2 * np.hypot(size[:, 0] / 2, size[:, 1] / 2) / K[:, 0, 0]
    return (depth > 0.05) & inside & (r_norm < fov.reshape(shape))
