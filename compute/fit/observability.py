"""How well the images determine each joint coordinate: a Laplace approximation at the fitted pose.

At a fitted pose q (one frame) the reprojection residuals r(q) = project(FK(q)) - keypoints, weighted by the
detector confidences w and a stated pixel noise sigma_px, have the Gauss-Newton curvature

  ``H = J^T W J / sigma_px^2``,  J = d project(FK(q)) / d q  (2CJ, Q),  W = diag(w) per pixel coordinate,

the inverse covariance of q under a Gaussian noise model.  Adding a broad reference prior ``I / sd_ref^2`` keeps
it invertible where the data are silent; the posterior standard deviation of coordinate i is
``sqrt([(H + I / sd_ref^2)^-1]_ii)``, a marginal (it includes the trade-off with every other coordinate: a pelvis
tilt that the hip flexions and the root translation can absorb has a large marginal SD even if moving it alone
would shift the markers).  An SD near ``sd_ref`` means the images say nothing about that coordinate; well
observed angles have SDs of a fraction of a degree.  Per trial we report the median over a sample of frames.
The SD is conditional on the fitted body (scales, marker offsets) and on one frame: a fit that also moves marker
offsets, or a trial-long bias shared by all frames, can trade more than it shows.  For 8 cameras and 2 px noise
at walking poses it is ~0.6-0.7 deg for pelvis tilt, lumbar extension and hip flexion with MOVI87 and 2.6-3.6
deg with COCO17 (knee flexion 0.5 vs 1.2 deg).

Units: radians for angles, metres for the root translations (pelvis_tx/ty/tz), pixels for the image noise.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from compute import kinematics as kin
from compute.cameras import Camera, project_to_rig_numpy
from compute.fit.evaluation import EVALUATION_CHUNK_FRAMES, compiled_markers_over_time

__all__ = ["pixel_jacobian", "reprojection_curvature", "posterior_sd", "trial_coordinate_sd", "weakly_observed",
           "WEAK_ANGLE_SD_DEG", "WEAK_TRANSLATION_SD_M"]

# Posterior SD above which a coordinate counts as not determined by the images (its value then comes mostly from
# the priors and the initialisation).  Between the ~0.5-1.2 deg of well observed flexions (8 cameras, 2 px, MOVI87
# or COCO17) and the 2.6-3.6 deg of pelvis tilt / lumbar extension / hip flexion with COCO17.
WEAK_ANGLE_SD_DEG = 2.0
WEAK_TRANSLATION_SD_M = 0.02
_TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")


def pixel_jacobian(body: kin.BodyModel, rig: Camera, qpos: np.ndarray, log_scale: np.ndarray, offsets: np.ndarray,
                   step: float = 1e-3) -> np.ndarray:
    """d pixels / d qpos (F, C, J, 2, Q) at poses qpos (F, Q) by central differences of ``step`` (rad; m for the
    root translation).

    The forward kinematics runs through the fit's compiled evaluation (fixed chunks of
    ``EVALUATION_CHUNK_FRAMES`` poses, no new compilation); the projection is the float64 numpy camera model.
    With float32 kinematics and markers within a few metres of the origin the relative error is ~1e-4.
    """
    qpos = np.asarray(qpos, np.float64)
    n, q = qpos.shape
    perturbed = np.repeat(qpos[:, None, :], 2 * q, axis=1)                    # (F, 2Q, Q): +step then -step
    eye = step * np.eye(q)
    perturbed[:, :q] += eye
    perturbed[:, q:] -= eye
    flat = perturbed.reshape(-1, q).astype(np.float32)
    pad = (-len(flat)) % EVALUATION_CHUNK_FRAMES
    flat = np.concatenate([flat, np.repeat(flat[-1:], pad, axis=0)])
    ls, off = jnp.asarray(log_scale, jnp.float32), jnp.asarray(offsets, jnp.float32)
    markers = np.concatenate([np.asarray(compiled_markers_over_time(body, jnp.asarray(chunk), ls, off))
                              for chunk in np.split(flat, len(flat) // EVALUATION_CHUNK_FRAMES)])
    markers = markers[: n * 2 * q].reshape(n, 2, q, -1, 3).astype(np.float64)  # (F, +/-, Q, J, 3)
    pixels = project_to_rig_numpy(rig, markers)                                # (C, F, 2, Q, J, 2)
    jac = (pixels[:, :, 0] - pixels[:, :, 1]) / (2 * step)                     # (C, F, Q, J, 2)
    return np.transpose(jac, (1, 0, 3, 4, 2))


def reprojection_curvature(jacobian: np.ndarray, confidence: np.ndarray, pixel_sd_px: float) -> np.ndarray:
    """Gauss-Newton curvature ``J^T W J / sigma_px^2`` (F, Q, Q) from the pixel Jacobian (F, C, J, 2, Q) and the
    confidence weights (F, C, J) in [0, 1] (0 = not observed)."""
    f, q = jacobian.shape[0], jacobian.shape[-1]
    jac = np.nan_to_num(np.asarray(jacobian, np.float64)).reshape(f, -1, q)
    weights = np.repeat(np.asarray(confidence, np.float64).reshape(f, -1), 2, axis=1)
    return np.einsum("fri,fr,frk->fik", jac, weights, jac) / pixel_sd_px**2


def posterior_sd(curvature: np.ndarray, reference_sd: float) -> np.ndarray:
    """Marginal posterior SD (..., Q) from curvature (..., Q, Q) plus the reference prior ``I / reference_sd^2``
    (inverted in float64: well and badly observed coordinates differ by many orders of magnitude)."""
    h = np.asarray(curvature, np.float64)
    h = 0.5 * (h + np.swapaxes(h, -1, -2)) + np.eye(h.shape[-1]) / reference_sd**2
    return np.sqrt(np.diagonal(np.linalg.inv(h), axis1=-2, axis2=-1))


def trial_coordinate_sd(body: kin.BodyModel, rig: Camera, qpos: np.ndarray, log_scale: np.ndarray,
                        offsets: np.ndarray, confidence: np.ndarray, *, n_frames: int = 16,
                        pixel_sd_px: float = 2.0, reference_sd: float = 1.0) -> np.ndarray:
    """Per-coordinate posterior SD (Q,) of one fitted trial: the median over ``n_frames`` evenly spaced frames.

    qpos (T, Q) fitted trajectory (rad, m); confidence (C, T, J) (NaN = not observed); rig: the refined cameras
    (leaves (C, ...)); log_scale (G,), offsets (J, 3) m: the fitted body, held fixed (the SD is conditional on
    the subject's scales and marker offsets).  reference_sd: SD of the broad prior (rad, m for the root
    translation) that bounds the result where the images are silent.
    """
    qpos = np.asarray(qpos, np.float64)
    frames = np.unique(np.linspace(0, qpos.shape[0] - 1, min(n_frames, qpos.shape[0])).round().astype(int))
    conf = np.asarray(confidence, np.float64)[:, frames]                      # (C, F, J)
    conf = np.where(np.isfinite(conf), np.clip(conf, 0.0, 1.0), 0.0)
    jac = pixel_jacobian(body, rig, qpos[frames], log_scale, offsets)
    curvature = reprojection_curvature(jac, np.moveaxis(conf, 0, 1), pixel_sd_px)
    return np.median(posterior_sd(curvature, reference_sd), axis=0)


def weakly_observed(joint_names: tuple[str, ...] | list[str], coordinate_sd: np.ndarray,
                    angle_sd_deg: float = WEAK_ANGLE_SD_DEG,
                    translation_sd_m: float = WEAK_TRANSLATION_SD_M) -> np.ndarray:
    """(Q,) bool: True where the posterior SD ``coordinate_sd`` (Q,) (rad; m for pelvis_tx/ty/tz) exceeds
    ``angle_sd_deg`` (deg) or ``translation_sd_m`` (m), i.e. the images do not determine the coordinate.  NaN
    (SD not computed) counts as weakly observed."""
    sd = np.asarray(coordinate_sd, np.float64)
    limit = np.asarray([translation_sd_m if name in _TRANSLATIONS else np.deg2rad(angle_sd_deg)
                        for name in joint_names])
    return ~(sd <= limit)
