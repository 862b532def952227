"""Camera refinement under the similarity gauge of bundle adjustment.

Images fix the rig and the subject only up to a similarity transform of the world (rotation, translation, and
scale, since the overall body scale is free).  Camera deltas are parametrised per camera as a rotation
``omega_c`` (rad; ``R_c' = R_c Rot(omega_c)^T``) and a centre shift ``dc_c`` (m; ``c_c' = c_c + dc_c``).  Before
use the stacked (6C,) delta ``[omega_c, dc_c]`` is projected onto the orthogonal complement of the 7 gauge
directions: an infinitesimal world translation (``dc_c = d``), rotation (``omega_c = q, dc_c = q x c_c``) and
scaling (``dc_c = s (c_c - mean c)``).  So the rig can never drift rigidly as a whole away from the input
calibration, and the reported changes (rotation angle, centre displacement) are relative to the input
calibration.  This is preferred to fixing camera 0, which would make every other camera inherit camera 0's
calibration error.

Camera time offsets have a gauge of their own: shifting every camera by the same delta is the same as shifting
the trajectory in time, which the trajectory network absorbs.  ``effective_time_offsets`` removes it by making
the offsets mean zero over the cameras that observe anything (a camera without observations - e.g. padding - has
no information about its offset and gets 0).  Mean zero rather than "camera 0 fixed" for the same reason as above,
and because camera 0 may be one without observations.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from compute.cameras import (Camera, camera_centers, camera_centers_numpy, matrix_to_rodrigues,
                             pixels_from_camera_frame, rodrigues_to_matrix, transform_points)
from compute.fit.types import CameraDelta

__all__ = ["gauge_projection_matrix", "effective_camera_delta", "project_with_delta", "refined_rig",
           "observed_camera_mask", "effective_time_offsets"]


def gauge_projection_matrix(rig: Camera) -> np.ndarray:
    """(6C,6C) float32 orthogonal projector removing the 7 similarity-gauge directions of the per-camera deltas
    ``[omega_c (3), dc_c (3)]`` of the rig Camera(C,)."""
    centres = camera_centers_numpy(rig)
    n_cam = centres.shape[0]
    basis = []
    for k in range(3):
        e = np.eye(3)[k]
        translation = np.zeros((n_cam, 6))
        translation[:, 3:] = e
        rotation = np.zeros((n_cam, 6))
        rotation[:, :3] = e
        rotation[:, 3:] = np.cross(e, centres)
        basis += [translation.ravel(), rotation.ravel()]
    scaling = np.zeros((n_cam, 6))
    scaling[:, 3:] = centres - centres.mean(0)
    basis.append(scaling.ravel())
    q, _ = np.linalg.qr(np.stack(basis, 1))
    return (np.eye(6 * n_cam) - q @ q.T).astype(np.float32)


def effective_camera_delta(delta: CameraDelta, gauge_projection: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gauge-projected deltas: (rotation (C,3) rad, centre shift (C,3) m)."""
    n_cam = delta.rotation.shape[0]
    flat = jnp.concatenate([delta.rotation, delta.centre], axis=1).reshape(-1)
    flat = (gauge_projection @ flat).reshape(n_cam, 6)
    return flat[:, :3], flat[:, 3:]


def project_with_delta(rig: Camera, rotation: jax.Array, centre_shift: jax.Array, points: jax.Array) -> jax.Array:
    """Project world points (...,3) m through the rig refined by per-camera deltas -> (C,...,2) px.

    ``R' = R Rot(omega)^T, c' = c + dc`` is applied by moving the points instead of the camera:
    ``X~ = Rot(omega)^T (X - c') + c`` seen by the input camera gives exactly the refined projection.
    """
    centres = camera_centers(rig)

    def one(cam, omega, c, dc):
        # R X~ + t with c = -R^T t collapses to R Rot(omega)^T (X - c'): one 3x3 transform per camera
        matrix = rodrigues_to_matrix(cam.rvec) @ rodrigues_to_matrix(omega).T
        return pixels_from_camera_frame(cam, *transform_points(matrix, -(matrix @ (c + dc)), points))

    return jax.vmap(one)(rig, rotation, centres, centre_shift)


def refined_rig(rig: Camera, rotation: np.ndarray, centre_shift: np.ndarray) -> Camera:
    """Input rig Camera(C,) + gauge-projected deltas (C,3) rad, (C,3) m -> a new Camera(C,) with numpy leaves."""
    R = Rotation.from_rotvec(np.asarray(rig.rvec, np.float64)).as_matrix()
    d_rot = Rotation.from_rotvec(np.asarray(rotation, np.float64)).as_matrix()
    R_new = R @ np.swapaxes(d_rot, -1, -2)
    c_new = camera_centers_numpy(rig) + np.asarray(centre_shift, np.float64)
    t_new = -np.einsum("cij,cj->ci", R_new, c_new)
    return Camera(K=np.asarray(rig.K), dist=np.asarray(rig.dist), rvec=matrix_to_rodrigues(R_new).astype(np.float32),
                  tvec=t_new.astype(np.float32), size=np.asarray(rig.size))


def observed_camera_mask(confidence: jax.Array) -> jax.Array:
    """(C,) float32 1.0 for the cameras with at least one observation (confidence > 0) in the session's
    confidence (N,T,C,J), else 0.0."""
    return jnp.any(confidence > 0, axis=(0, 1, 3)).astype(jnp.float32)


def effective_time_offsets(raw: jax.Array, camera_mask: jax.Array, bound_s: float) -> jax.Array:
    """Gauge-fixed, bounded time offsets (C,) s from the raw ones (C,) s.

    ``delta_c = mask_c * B tanh((raw_c - mean_observed(raw)) / B)``: mean zero over the observed cameras
    (``camera_mask`` (C,) 1/0; to first order exactly, the tanh bends it only near the bound), |delta_c| < B =
    ``bound_s``, and 0 for cameras without observations.
    """
    n_observed = jnp.maximum(jnp.sum(camera_mask), 1.0)
    centred = raw - jnp.sum(raw * camera_mask) / n_observed
    return camera_mask * bound_s * jnp.tanh(centred / bound_s)
