"""Pinhole cameras with OpenCV distortion, as a JAX pytree: the projection ``Π_c`` of the method.

Conventions (identical to OpenCV / anipose calibration files):

* world frame: metres, Z up.
* ``rvec`` is a Rodrigues vector (axis * angle, radians) of the world->camera rotation ``R``;
  ``tvec`` is the world->camera translation in metres: ``x_cam = R @ X + t``.
  The camera centre in the world is ``-R^T t``.
* camera frame: +z along the optical axis (points in front have ``z_cam > 0``), +x right, +y down.
* ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels; ``dist = (k1, k2, p1, p2, k3)``, the model of
  OpenCV's ``projectPoints`` (https://docs.opencv.org/4.x/d9/d0c/group__calib3d.html).
* pixel coordinates: ``u`` along the image width, ``v`` along the height, origin at the centre of the
  top-left pixel (OpenCV).

A rig is a :class:`Camera` whose leaves all carry a leading ``(C,)`` axis, so bundle adjustment is just
a gradient with respect to the ``rvec``/``tvec`` leaves.
"""
from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from scipy.spatial.transform import Rotation

__all__ = [
    "Camera",
    "make_camera",
    "stack_cameras",
    "unstack_cameras",
    "rodrigues_to_matrix",
    "matrix_to_rodrigues",
    "project_points",
    "transform_points",
    "pixels_from_camera_frame",
    "project_to_rig",
    "project_to_rig_numpy",
    "camera_centers_numpy",
    "camera_centers",
    "points_in_front",
    "perturb_camera",
    "undistort_points",
    "rotation_change_deg",
    "center_change_m",
    "project_points_numpy",
]

# Below this squared angle the Rodrigues coefficients use their Taylor series (no division by theta).
_SMALL_ANGLE_SQ = 1e-8


class Camera(eqx.Module):
    """One camera, or a rig of C cameras when every leaf has a leading ``(C,)`` axis.

    Fields:
        K: (3, 3) intrinsic matrix, pixels.
        dist: (5,) distortion ``(k1, k2, p1, p2, k3)`` (OpenCV order).
        rvec: (3,) Rodrigues vector of the world->camera rotation, radians.
        tvec: (3,) world->camera translation, metres (``x_cam = R X + t``).
        size: (2,) image ``(width, height)``, pixels.
    """

    K: Array
    dist: Array
    rvec: Array
    tvec: Array
    size: Array


def _float_dtype():
    # float32 unless the caller enabled x64 (e.g. inside `jax.experimental.enable_x64()`).
    return jnp.result_type(float)


def make_camera(K, dist, rvec, tvec, size) -> Camera:
    """Build a :class:`Camera` from array-likes, validating shapes.

    Args:
        K: (..., 3, 3) intrinsics, px.
        dist: (..., n) with n in {0, 4, 5}: (k1, k2, p1, p2[, k3]); shorter vectors are zero-padded to 5.
        rvec: (..., 3) Rodrigues world->camera, or a (..., 3, 3) rotation matrix (converted).
        tvec: (..., 3) metres, world->camera.
        size: (..., 2) (width, height) px.
    Leading axes ``...`` (if any) must agree: they make a rig.
    """
    dtype = _float_dtype()
    K = np.array(K, dtype=np.float64)
    dist = np.array(dist, dtype=np.float64)
    rvec = np.array(rvec, dtype=np.float64)
    tvec = np.array(tvec, dtype=np.float64)
    size = np.array(size, dtype=np.float64)
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"compute/cameras.py make_camera: field K must have shape (..., 3, 3), got {K.shape}")
    lead = K.shape[:-2]
    # Decide by the rig's leading axes, not by the trailing shape alone: a rig of three cameras has Rodrigues
    # vectors of shape (3, 3) too, which must not be read as one rotation matrix.
    if rvec.shape == lead + (3, 3):
        rvec = matrix_to_rodrigues(rvec)
    if rvec.shape != lead + (3,):
        raise ValueError(f"compute/cameras.py make_camera: field rvec must have shape {lead + (3,)}, got {rvec.shape}")
    if tvec.shape != lead + (3,):
        raise ValueError(f"compute/cameras.py make_camera: field tvec must have shape {lead + (3,)}, got {tvec.shape}")
    if size.shape != lead + (2,):
        raise ValueError(f"compute/cameras.py make_camera: field size must have shape {lead + (2,)}, got {size.shape}")
    if dist.shape[:-1] != lead or dist.shape[-1] > 5:
        raise ValueError(
            f"compute/cameras.py make_camera: field dist must have shape {lead + ('n<=5',)}, got {dist.shape}"
        )
    dist = np.concatenate([dist, np.zeros(lead + (5 - dist.shape[-1],))], axis=-1)
    # cast in numpy, then copy to the device: a device-side cast compiles one eager operation per shape
    return Camera(*(jnp.asarray(x.astype(dtype)) for x in (K, dist, rvec, tvec, size)))


def stack_cameras(cams: Sequence[Camera]) -> Camera:
    """Stack single cameras into a rig whose leaves have a leading ``(C,)`` axis."""
    if len(cams) == 0:
        raise ValueError("compute/cameras.py stack_cameras: cams must contain at least one Camera")
    return jax.tree_util.tree_map(lambda *leaves: jnp.asarray(np.stack(leaves)), *cams)  # stacked on the host


def unstack_cameras(rig: Camera) -> list[Camera]:
    """Split a rig (leaves ``(C, ...)``) into a list of C single cameras with numpy leaves (their users project
    with the numpy camera model; slicing device arrays would compile one eager operation per leaf shape)."""
    host = jax.tree_util.tree_map(np.asarray, rig)
    return [jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], host) for i in range(host.K.shape[0])]


def _skew(v: Array) -> Array:
    """(..., 3) -> (..., 3, 3) cross-product matrix ``[v]_x``."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = jnp.zeros_like(x)
    return jnp.stack(
        [jnp.stack([zero, -z, y], -1), jnp.stack([z, zero, -x], -1), jnp.stack([-y, x, zero], -1)], -2
    )


def rodrigues_to_matrix(rvec: Array) -> Array:
    """Rodrigues vector (..., 3) (axis * angle, rad) -> rotation matrix (..., 3, 3).

    ``R = I + a [r]_x + b [r]_x^2`` with ``a = sin(θ)/θ`` and ``b = (1 - cos θ)/θ²`` written on the
    unnormalised vector ``r``, so no axis is ever divided out. For ``θ² < 1e-8`` both coefficients use
    their Taylor series; the other branch sees a safe θ, so values and gradients are finite at ``r = 0``
    (where ``dR/dr = [e_i]_x``).
    """
    rvec = jnp.array(rvec)
    theta_sq = jnp.sum(rvec * rvec, axis=-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    safe_sq = jnp.where(small, 1.0, theta_sq)
    theta = jnp.sqrt(safe_sq)
    a = jnp.where(small, 1.0 - theta_sq / 6.0 + theta_sq**2 / 120.0, jnp.sin(theta) / theta)
    b = jnp.where(small, 0.5 - theta_sq / 24.0 + theta_sq**2 / 720.0, (1.0 - jnp.cos(theta)) / safe_sq)
    k = _skew(rvec)
    eye = jnp.broadcast_to(jnp.eye(3, dtype=k.dtype), k.shape)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def matrix_to_rodrigues(R) -> np.ndarray:
    """Rotation matrix (..., 3, 3) -> Rodrigues vector (..., 3), numpy (robust near θ = π)."""
    R = np.array(R, dtype=np.float64)
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"compute/cameras.py matrix_to_rodrigues: R must have shape (..., 3, 3), got {R.shape}")
    flat = R.reshape(-1, 3, 3)
    rv = Rotation.from_matrix(flat).as_rotvec()
    return rv.reshape(R.shape[:-2] + (3,))


def _distort_normalized(camera: Camera, x: Array, y: Array) -> tuple[Array, Array]:
    """Apply OpenCV radial + tangential distortion to normalised coordinates ``x' = x/z, y' = y/z``."""
    k1, k2, p1, p2, k3 = (camera.dist[..., i] for i in range(5))
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return xd, yd


def transform_points(matrix: Array, offset: Array, points: Array) -> tuple[Array, Array, Array]:
    """``matrix @ X + offset`` for world points X (..., 3) with matrix (3, 3), offset (3,) -> its three components
    (...,) each, in the points' units.

    Why written out per component rather than as ``points @ matrix.T``: XLA:CPU hands a contraction over 3 to a
    matrix-multiply library; on a fit step projecting 640 poses x 87 markers into 8 cameras those contractions and
    their transposes took ~45 of the step's 68 ms on 2 cores.  Per component the products fuse with the projection
    into one pass over the points (35 ms), provided XLA:CPU keeps elementwise graphs and reductions to itself, as
    the ``mmc`` commands configure it (``pipeline.jax_setup.XLA_CPU_OPTIONS``).
    """
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return tuple(matrix[i, 0] * x + matrix[i, 1] * y + matrix[i, 2] * z + offset[i] for i in range(3))


def pixels_from_camera_frame(camera: Camera, x: Array, y: Array, z: Array) -> Array:
    """Points in ONE camera's frame, components (...,) metres -> pixels (..., 2): perspective division, OpenCV
    distortion and intrinsics (see :func:`project_points`).  ``|z| < 1e-9`` is clamped to avoid inf."""
    z = jnp.where(jnp.abs(z) < 1e-9, jnp.where(z < 0, -1e-9, 1e-9), z)
    xd, yd = _distort_normalized(camera, x / z, y / z)
    K = camera.K
    u = K[0, 0] * xd + K[0, 1] * yd + K[0, 2]
    v = K[1, 1] * yd + K[1, 2]
    return jnp.stack([u, v], axis=-1)


def project_points(camera: Camera, points: Array) -> Array:
    """Project world points (..., 3) metres through ONE camera (unbatched leaves) to pixels (..., 2).
    For a rig use :func:`project_to_rig`.

    OpenCV model (``cv2.projectPoints``): ``x = R X + t``; ``x' = x/z, y' = y/z``; ``r² = x'² + y'²``;
    ``x'' = x'(1 + k1 r² + k2 r⁴ + k3 r⁶) + 2 p1 x'y' + p2 (r² + 2x'²)``,
    ``y'' = y'(1 + k1 r² + k2 r⁴ + k3 r⁶) + p1 (r² + 2y'²) + 2 p2 x'y'``;
    ``u = fx x'' + s y'' + cx``, ``v = fy y'' + cy``. The skew ``s = K[0,1]`` is ignored by OpenCV; it is
    used here (identical results when it is 0). Points behind the camera are projected as OpenCV does
    (mirrored); use :func:`points_in_front` to mask them. ``|z| < 1e-9`` is clamped to avoid inf.
    """
    points = jnp.asarray(points)
    return pixels_from_camera_frame(camera, *transform_points(rodrigues_to_matrix(camera.rvec), camera.tvec,
                                                              points))


def project_to_rig(rig: Camera, points: Array) -> Array:
    """Project world points (..., 3) into every camera of a rig (leaves ``(C, ...)``) -> (C, ..., 2) px."""
    return jax.vmap(project_points, in_axes=(0, None))(rig, points)


def camera_centers(rig: Camera) -> Array:
    """Camera centres in the world, ``-R^T t``: (C, 3) for a rig, (3,) for one camera. Metres."""
    R = rodrigues_to_matrix(rig.rvec)
    return -jnp.einsum("...ji,...j->...i", R, rig.tvec)


def camera_centers_numpy(rig: Camera) -> np.ndarray:
    """float64 numpy twin of :func:`camera_centers` for a rig (leaves ``(C, ...)``): (C, 3) m, no JAX compile."""
    R = Rotation.from_rotvec(np.asarray(rig.rvec, np.float64).reshape(-1, 3)).as_matrix()
    return -np.einsum("cji,cj->ci", R, np.asarray(rig.tvec, np.float64).reshape(-1, 3))


def points_in_front(rig: Camera, points: Array) -> Array:
    """Boolean (C, ...) mask: world points (..., 3) have ``z_cam > 0`` in each camera of the rig."""
    R = rodrigues_to_matrix(rig.rvec)  # (C, 3, 3)
    points = jnp.array(points)
    z = jnp.einsum("cj,...j->c...", R[:, 2, :], points)
    z = z + rig.tvec[:, 2].reshape((-1,) + (1,) * (z.ndim - 1))
    return z > 0


def _random_unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def perturb_camera(camera: Camera, rotation_deg: float, translation_m: float, rng: np.random.Generator) -> Camera:
    """Return a copy of a camera (or rig) with each extrinsic perturbed by an exact amount.

    Each camera is rotated by ``rotation_deg`` degrees about a random axis through its own centre
    (``R_new = ΔR R``, ΔR in the camera frame) and its centre is moved by ``translation_m`` metres in a
    random direction; ``t_new = -R_new c_new``. Intrinsics are untouched. ``rng``: numpy Generator.
    So :func:`rotation_change_deg` and :func:`center_change_m` return exactly these amounts.
    """
    rvec = np.array(camera.rvec, dtype=np.float64)
    tvec = np.array(camera.tvec, dtype=np.float64)
    single = rvec.ndim == 1
    rvec2, tvec2 = rvec.reshape(-1, 3), tvec.reshape(-1, 3)
    n = rvec2.shape[0]
    R = Rotation.from_rotvec(rvec2).as_matrix()
    centers = -np.einsum("nji,nj->ni", R, tvec2)
    dR = Rotation.from_rotvec(_random_unit_vectors(rng, n) * np.deg2rad(rotation_deg)).as_matrix()
    R_new = dR @ R
    c_new = centers + _random_unit_vectors(rng, n) * translation_m
    t_new = -np.einsum("nij,nj->ni", R_new, c_new)
    r_new = Rotation.from_matrix(R_new).as_rotvec()
    if single:
        r_new, t_new = r_new[0], t_new[0]
    dtype = camera.rvec.dtype
    return eqx.tree_at(
        lambda c: (c.rvec, c.tvec), camera, (jnp.array(r_new, dtype=dtype), jnp.array(t_new, dtype=dtype))
    )


def rotation_change_deg(rig_a: Camera, rig_b: Camera) -> np.ndarray:
    """Angle (degrees) of ``R_b R_a^T`` per camera: (C,) for rigs, () for single cameras."""
    Ra = Rotation.from_rotvec(np.array(rig_a.rvec, np.float64).reshape(-1, 3))
    Rb = Rotation.from_rotvec(np.array(rig_b.rvec, np.float64).reshape(-1, 3))
    ang = np.rad2deg(np.linalg.norm((Rb * Ra.inv()).as_rotvec(), axis=-1))
    return ang.reshape(np.shape(rig_a.rvec)[:-1])


def center_change_m(rig_a: Camera, rig_b: Camera) -> np.ndarray:
    """Distance (metres) between camera centres of two rigs: (C,) (or () for single cameras)."""
    ca = np.array(camera_centers(rig_a), np.float64)
    cb = np.array(camera_centers(rig_b), np.float64)
    return np.linalg.norm(ca - cb, axis=-1)


def undistort_points(camera: Camera, pixels, iterations: int = 20) -> np.ndarray:
    """Pixels (..., 2) of one camera -> undistorted normalised coordinates (x', y') (..., 2), numpy float64.

    Inverts :func:`project_points`' distortion: ``(x'', y'') = K^-1 (u, v, 1)``, then a few fixed-point
    steps ``x' = (x'' - tangential(x')) / radial(x')`` (OpenCV's ``undistortPoints``) followed by Newton
    steps on the exact forward model, so the result re-projects to the input to ~1e-9 px inside the
    image. NaN pixels give NaN.
    """
    K = np.array(camera.K, np.float64)
    k1, k2, p1, p2, k3 = np.array(camera.dist, np.float64)
    pix = np.array(pixels, np.float64)
    if pix.shape[-1:] != (2,):
        raise ValueError(f"compute/cameras.py undistort_points: pixels must have shape (..., 2), got {pix.shape}")
    fx, s, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    yd = (pix[..., 1] - cy) / fy
    xd = (pix[..., 0] - cx - s * yd) / fx
    x, y = xd.copy(), yd.copy()

    def forward(x, y):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        fxv = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        fyv = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        return fxv, fyv, r2, radial

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(5):
            r2 = x * x + y * y
            radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
            dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
            x, y = (xd - dx) / radial, (yd - dy) / radial
        for _ in range(iterations):
            fxv, fyv, r2, radial = forward(x, y)
            dradial = 2.0 * k1 + 4.0 * k2 * r2 + 6.0 * k3 * r2 * r2  # d radial / d r2
            j11 = radial + x * dradial * 2 * x + 2 * p1 * y + 6 * p2 * x
            j12 = x * dradial * 2 * y + 2 * p1 * x + 2 * p2 * y
            j21 = y * dradial * 2 * x + 2 * p1 * x + 2 * p2 * y
            j22 = radial + y * dradial * 2 * y + 6 * p1 * y + 2 * p2 * x
            ex, ey = fxv - xd, fyv - yd
            det = j11 * j22 - j12 * j21
            x = x - (j22 * ex - j12 * ey) / det
            y = y - (-j21 * ex + j11 * ey) / det
    return np.stack([x, y], axis=-1)


def project_points_numpy(camera: Camera, points) -> tuple[np.ndarray, np.ndarray]:
    """float64 numpy twin of :func:`project_points` for one camera: (..., 3) -> (pixels (..., 2), z_cam (...)).

    Used by triangulation (no JAX compile per shape)."""
    R = Rotation.from_rotvec(np.array(camera.rvec, np.float64)).as_matrix()
    t = np.array(camera.tvec, np.float64)
    K = np.array(camera.K, np.float64)
    k1, k2, p1, p2, k3 = np.array(camera.dist, np.float64)
    xc = np.array(points, np.float64) @ R.T + t
    z = xc[..., 2]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x, y = xc[..., 0] / z, xc[..., 1] / z
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    u = K[0, 0] * xd + K[0, 1] * yd + K[0, 2]
    v = K[1, 1] * yd + K[1, 2]
    return np.stack([u, v], axis=-1), z


def project_to_rig_numpy(rig: Camera, points, *, per_camera: bool = False) -> np.ndarray:
    """float64 numpy twin of :func:`project_to_rig`: world points (..., 3) m -> (C, ..., 2) px.

    per_camera: ``points`` is (C, ..., 3), camera c projecting its own points ``points[c]``.  Why numpy: an
    evaluation after a fit sees shapes the fit never compiled, and every eager JAX operation on a new shape is
    compiled separately in each new process (tens of milliseconds each)."""
    cameras = unstack_cameras(rig)
    points = np.asarray(points, np.float64)
    return np.stack([project_points_numpy(cam, points[c] if per_camera else points)[0]
                     for c, cam in enumerate(cameras)])
