"""Priors on joint angles where the images are silent: pure loss terms of the bilevel fit.

With sparse keypoint sets (two hip points on the pelvis, two shoulder points on the trunk) the reprojection
error hardly changes when pelvis tilt, lumbar extension and hip flexion trade off, so the fit may settle at any
point of that valley (lumbar flexion of -39 deg with hips 24-41 deg off while reprojecting well, on a real
BODY25B recording).  Three terms, each a mean over frames of a sum of ``1/2 r^2`` over standardised residuals r
(so it is the negative log of a Gaussian prior), weighted by ``compute.params.PriorConfig``:

- posture: weakly observed coordinates toward a neutral angle (``posture_targets``);
- joint limits: ``violation / scale`` beyond the model's range, 0 inside it;
- lumbopelvic rhythm: departures of the lumbar spine from its neutral extension carry a fixed fraction of the
  trunk's inclination.

Why the neutral lumbar extension is a setting: with two hip and two shoulder points one direction of the pose is
(almost) invisible - pelvis tilt +d, lumbar extension -d, both hip flexions -d (OpenSim signs: pelvis_tilt
positive = posterior) moves no keypoint by more than ~0.3 px per degree (the detector hips sit 1.5 cm below the
hip centres).  Along it the fit returns the prior's choice, so a neutral of 0 puts the pelvis level and the lumbar
spine straight, while a walking (and standing) adult carries the pelvis ~10 deg anteriorly tilted with the lumbar
lordosis re-erecting the trunk: pelvis_tilt ~ -10, lumbar_extension ~ +10 deg in these conventions.  The neutral
posture is upright-trunk: pelvis_tilt = -lumbar_extension_neutral.

Coordinates are found by their OpenSim names in ``BodyModel.joint_names``; a model without a coordinate (say,
no subtalar joint) simply has no term for it.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from compute.params import PriorConfig

__all__ = ["posture_targets", "posture_prior", "joint_limit_prior", "joint_limit_mask", "lumbopelvic_pairs",
           "lumbopelvic_prior", "prior_loss"]

# Root coordinates whose model range is not anatomical: position (m) and heading (may wind past +-180 deg)
_UNLIMITED_ROOT = ("pelvis_tx", "pelvis_ty", "pelvis_tz", "pelvis_rotation")
# (pelvis coordinate, lumbar coordinate) whose sum is the trunk's inclination in one plane (same sign convention)
_LUMBOPELVIC = (("pelvis_tilt", "lumbar_extension"), ("pelvis_list", "lumbar_bending"))


def posture_targets(joint_names: Sequence[str], priors: PriorConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of the posture prior present in ``joint_names``: (indices (P,) int32 into qpos, neutral (P,)
    rad, sd (P,) rad).  See ``PriorConfig`` for the groups."""
    groups = [
        (("lumbar_extension",), priors.lumbar_extension_neutral_deg, priors.lumbar_sd_deg),
        (("lumbar_bending", "lumbar_rotation"), 0.0, priors.lumbar_sd_deg),
        (("pro_sup_r", "pro_sup_l"), priors.pro_sup_neutral_deg, priors.pro_sup_sd_deg),
        (("subtalar_angle_r", "subtalar_angle_l"), 0.0, priors.subtalar_sd_deg),
        (("wrist_flex_r", "wrist_flex_l", "wrist_dev_r", "wrist_dev_l"), 0.0, priors.wrist_sd_deg),
        (("arm_rot_r", "arm_rot_l"), 0.0, priors.arm_rotation_sd_deg),
    ]
    index = {name: i for i, name in enumerate(joint_names)}
    idx, neutral, sd = [], [], []
    for names, neutral_deg, sd_deg in groups:
        for name in names:
            if name in index:
                idx.append(index[name])
                neutral.append(np.deg2rad(neutral_deg))
                sd.append(np.deg2rad(sd_deg))
    return np.asarray(idx, np.int32), np.asarray(neutral, np.float32), np.asarray(sd, np.float32)


def posture_prior(qpos: jax.Array, indices: np.ndarray, neutral_rad: np.ndarray, sd_rad: np.ndarray) -> jax.Array:
    """Mean over frames of ``sum_p 1/2 ((qpos[..., indices_p] - neutral_p) / sd_p)^2``; qpos (..., Q) rad."""
    if len(indices) == 0:
        return jnp.zeros((), qpos.dtype)
    r = (qpos[..., indices] - neutral_rad) / sd_rad
    return jnp.mean(0.5 * jnp.sum(r * r, axis=-1))


def joint_limit_mask(joint_names: Sequence[str]) -> np.ndarray:
    """(Q,) 1.0 for coordinates with an anatomical range, 0.0 for the root position and heading."""
    return np.asarray([0.0 if name in _UNLIMITED_ROOT else 1.0 for name in joint_names], np.float32)


def joint_limit_prior(qpos: jax.Array, lower: jax.Array, upper: jax.Array, mask: np.ndarray,
                      scale_rad: float) -> jax.Array:
    """Mean over frames of ``sum_q mask_q 1/2 (violation_q / scale_rad)^2``: 0 inside [lower, upper] (Q,) rad,
    quadratic beyond.  qpos (..., Q) rad."""
    violation = jax.nn.relu(lower - qpos) + jax.nn.relu(qpos - upper)
    r = violation * mask / scale_rad
    return jnp.mean(0.5 * jnp.sum(r * r, axis=-1))


def lumbopelvic_pairs(joint_names: Sequence[str]) -> np.ndarray:
    """(P, 2) int32 (pelvis index, lumbar index) pairs of the lumbopelvic rhythm present in ``joint_names``."""
    index = {name: i for i, name in enumerate(joint_names)}
    pairs = [(index[p], index[l]) for p, l in _LUMBOPELVIC if p in index and l in index]
    return np.asarray(pairs, np.int32).reshape(-1, 2)


def lumbopelvic_prior(qpos: jax.Array, pairs: np.ndarray, ratio: float, sd_rad: float,
                      lumbar_neutral_rad: np.ndarray | float = 0.0) -> jax.Array:
    """Mean over frames of ``sum 1/2 ((lumbar - neutral - ratio (pelvis + lumbar)) / sd_rad)^2`` over (pelvis,
    lumbar) ``pairs`` (P, 2): departures of the lumbar spine from its neutral (rad, scalar or (P,); the neutral
    trunk is upright, pelvis = -neutral) carry ``ratio`` of the trunk inclination pelvis + lumbar.  qpos (..., Q)."""
    if len(pairs) == 0:
        return jnp.zeros((), qpos.dtype)
    pelvis, lumbar = qpos[..., pairs[:, 0]], qpos[..., pairs[:, 1]]
    r = (lumbar - lumbar_neutral_rad - ratio * (pelvis + lumbar)) / sd_rad
    return jnp.mean(0.5 * jnp.sum(r * r, axis=-1))


def prior_loss(qpos: jax.Array, joint_names: Sequence[str], lower: jax.Array, upper: jax.Array,
               priors: PriorConfig) -> tuple[jax.Array, dict]:
    """Weighted sum of the prior terms (scalar) and the unweighted terms ``{"posture", "joint_limit",
    "lumbopelvic"}`` for qpos (..., Q) rad in ``joint_names`` order; lower/upper (Q,) model ranges.  A term whose
    weight is 0 is not computed (it is exactly 0), so a zero-weight config adds nothing to the compiled loss."""
    zero = jnp.zeros((), qpos.dtype)
    posture = limits = rhythm = zero
    if priors.posture_weight > 0:
        posture = posture_prior(qpos, *posture_targets(joint_names, priors))
    if priors.joint_limit_weight > 0:
        limits = joint_limit_prior(qpos, lower, upper, joint_limit_mask(joint_names),
                                   float(np.deg2rad(priors.joint_limit_scale_deg)))
    if priors.lumbopelvic_weight > 0:
        pairs = lumbopelvic_pairs(joint_names)
        # only the sagittal pair (pelvis_tilt, lumbar_extension) has a non-zero neutral
        neutral = np.asarray([np.deg2rad(priors.lumbar_extension_neutral_deg)
                              if joint_names[lumbar] == "lumbar_extension" else 0.0 for _, lumbar in pairs], np.float32)
        rhythm = lumbopelvic_prior(qpos, pairs, priors.lumbopelvic_ratio,
                                   float(np.deg2rad(priors.lumbopelvic_sd_deg)), neutral)
    total = (priors.posture_weight * posture + priors.joint_limit_weight * limits
             + priors.lumbopelvic_weight * rhythm)
    return total, {"posture": posture, "joint_limit": limits, "lumbopelvic": rhythm}
