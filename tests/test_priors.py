"""Joint-angle priors of the fit: zero at neutral, growing as stated, off (exactly) at weight 0."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compute.fit.priors import (joint_limit_mask, joint_limit_prior, lumbopelvic_pairs, lumbopelvic_prior,
                                posture_prior, posture_targets, prior_loss)
from compute.kinematics import JOINT_NAMES
from compute.params import PARAMETER_SETS, FitParams, PriorConfig

NAMES = JOINT_NAMES
Q = len(NAMES)
I = {n: i for i, n in enumerate(NAMES)}


def neutral_pose(priors: PriorConfig) -> np.ndarray:
    q = np.zeros((3, Q), np.float32)
    q[:, I["pro_sup_r"]] = q[:, I["pro_sup_l"]] = np.deg2rad(priors.pro_sup_neutral_deg)
    return q


def test_posture_prior_is_zero_at_neutral_with_zero_gradient():
    priors = PriorConfig(posture_weight=1.0)
    targets = posture_targets(NAMES, priors)
    q = jnp.asarray(neutral_pose(priors))
    value, grad = jax.value_and_grad(lambda x: posture_prior(x, *targets))(q)
    assert float(value) == 0.0
    assert float(jnp.max(jnp.abs(grad))) == 0.0


def test_posture_prior_is_half_squared_standard_score_of_the_lumbar_deviation():
    priors = PriorConfig(posture_weight=1.0, lumbar_sd_deg=10.0)
    targets = posture_targets(NAMES, priors)
    q = neutral_pose(priors)
    q[:, I["lumbar_extension"]] = np.deg2rad(-30.0)                  # 3 sd of flexion
    value, grad = jax.value_and_grad(lambda x: posture_prior(x, *targets))(jnp.asarray(q))
    np.testing.assert_allclose(float(value), 0.5 * 3.0 ** 2, rtol=1e-5)
    # d/dq of mean_T 1/2 (q/sd)^2 = q / (sd^2 T), pulling toward neutral (positive for flexion)
    sd = np.deg2rad(10.0)
    np.testing.assert_allclose(np.asarray(grad[:, I["lumbar_extension"]]), np.deg2rad(-30.0) / sd**2 / 3, rtol=1e-5)
    others = np.delete(np.asarray(grad), I["lumbar_extension"], axis=1)
    assert np.all(others == 0)


def test_posture_prior_ignores_well_observed_coordinates():
    priors = PriorConfig(posture_weight=1.0)
    idx, _, _ = posture_targets(NAMES, priors)
    chosen = {NAMES[i] for i in idx}
    assert {"lumbar_extension", "lumbar_bending", "lumbar_rotation", "pro_sup_r", "wrist_flex_l", "arm_rot_r",
            "arm_rot_l"} <= chosen
    assert not chosen & {"knee_angle_r", "hip_flexion_l", "pelvis_tilt", "elbow_flex_r"}
    q = neutral_pose(priors)
    q[:, I["knee_angle_r"]] = 1.0
    assert float(posture_prior(jnp.asarray(q), *posture_targets(NAMES, priors))) == 0.0


def test_joint_limit_prior_is_zero_inside_the_range_and_quadratic_beyond():
    lower = -np.ones(Q, np.float32)
    upper = np.ones(Q, np.float32)
    mask = joint_limit_mask(NAMES)
    scale = np.deg2rad(1.0)
    inside = jnp.asarray(np.random.default_rng(0).uniform(-0.99, 0.99, (4, Q)).astype(np.float32))
    value, grad = jax.value_and_grad(lambda x: joint_limit_prior(x, lower, upper, mask, scale))(inside)
    assert float(value) == 0.0 and float(jnp.max(jnp.abs(grad))) == 0.0
    q = np.zeros((1, Q), np.float32)
    q[0, I["knee_angle_r"]] = 1.0 + np.deg2rad(2.0)                   # 2 deg beyond the upper limit
    np.testing.assert_allclose(float(joint_limit_prior(jnp.asarray(q), lower, upper, mask, scale)), 2.0, rtol=1e-4)
    q[0, I["knee_angle_r"]] = -1.0 - np.deg2rad(4.0)                  # twice as far below: 4x the penalty
    np.testing.assert_allclose(float(joint_limit_prior(jnp.asarray(q), lower, upper, mask, scale)), 8.0, rtol=1e-4)


def test_joint_limit_prior_leaves_root_position_and_heading_free():
    mask = joint_limit_mask(NAMES)
    q = np.zeros((1, Q), np.float32)
    for name in ("pelvis_tx", "pelvis_ty", "pelvis_tz", "pelvis_rotation"):
        assert mask[I[name]] == 0.0
        q[0, I[name]] = 10.0
    assert mask[I["pelvis_tilt"]] == 1.0
    assert float(joint_limit_prior(jnp.asarray(q), -np.ones(Q), np.ones(Q), mask, 0.01)) == 0.0


def test_lumbopelvic_prior_zero_at_stated_ratio_and_grows_off_it():
    pairs = lumbopelvic_pairs(NAMES)
    assert [(NAMES[a], NAMES[b]) for a, b in pairs] == [("pelvis_tilt", "lumbar_extension"),
                                                         ("pelvis_list", "lumbar_bending")]
    sd = np.deg2rad(5.0)
    q = np.zeros((1, Q), np.float32)
    assert float(lumbopelvic_prior(jnp.asarray(q), pairs, 0.3, sd)) == 0.0
    # trunk pitched back 20 deg, 30 % of it in the lumbar spine: on the rhythm
    q[0, I["pelvis_tilt"]], q[0, I["lumbar_extension"]] = np.deg2rad(14.0), np.deg2rad(6.0)
    assert float(lumbopelvic_prior(jnp.asarray(q), pairs, 0.3, sd)) == pytest.approx(0.0, abs=1e-8)
    # the same trunk pitch carried by a 40 deg lumbar extension against -20 deg pelvis tilt: residual 34 deg
    q[0, I["pelvis_tilt"]], q[0, I["lumbar_extension"]] = np.deg2rad(-20.0), np.deg2rad(40.0)
    expected = 0.5 * ((40.0 - 0.3 * 20.0) / 5.0) ** 2
    np.testing.assert_allclose(float(lumbopelvic_prior(jnp.asarray(q), pairs, 0.3, sd)), expected, rtol=1e-4)


def test_prior_loss_is_exactly_zero_with_zero_weights_and_weighted_sum_otherwise():
    q = jnp.asarray(np.random.default_rng(1).normal(0, 1.0, (5, Q)).astype(np.float32))
    lower, upper = -0.5 * jnp.ones(Q), 0.5 * jnp.ones(Q)
    total, terms = prior_loss(q, NAMES, lower, upper, PriorConfig())
    assert float(total) == 0.0 and all(float(v) == 0.0 for v in terms.values())
    priors = PriorConfig(posture_weight=0.5, joint_limit_weight=0.25, lumbopelvic_weight=2.0)
    total, terms = prior_loss(q, NAMES, lower, upper, priors)
    assert all(float(v) > 0 for v in terms.values())
    expected = 0.5 * terms["posture"] + 0.25 * terms["joint_limit"] + 2.0 * terms["lumbopelvic"]
    np.testing.assert_allclose(float(total), float(expected), rtol=1e-6)


def test_cpu_default_has_no_priors_and_cpu_sparse_round_trips_through_json():
    assert not PARAMETER_SETS["cpu_default"].loss.priors.enabled
    sparse = PARAMETER_SETS["cpu_sparse"]
    assert sparse.loss.priors.enabled
    assert FitParams.from_json(sparse.to_json()) == sparse
    assert sparse.hash != PARAMETER_SETS["cpu_default"].hash
    # cpu_sparse differs from cpu_default in the priors, the left/right swap correction and the Huber threshold only
    assert sparse.initialisation.correct_left_right_swaps
    assert sparse.loss.huber_delta_px < PARAMETER_SETS["cpu_default"].loss.huber_delta_px
    assert sparse.replace(priors=PriorConfig(), correct_left_right_swaps=False,
                          huber_delta_px=PARAMETER_SETS["cpu_default"].loss.huber_delta_px) == PARAMETER_SETS["cpu_default"]
    with pytest.raises(ValueError, match="priors"):
        FitParams.from_dict({"loss": {"priors": {"posture_wieght": 1.0}}})


def test_neutral_lumbar_extension_is_the_zero_of_posture_and_rhythm_terms():
    """With lumbar_extension_neutral_deg = L0 both terms vanish at the upright neutral posture (pelvis_tilt = -L0,
    lumbar_extension = L0) and pull a straight spine over a level pelvis toward it."""
    priors = PriorConfig(posture_weight=1.0, lumbopelvic_weight=1.0, lumbar_extension_neutral_deg=8.0,
                         lumbar_sd_deg=10.0, lumbopelvic_sd_deg=5.0)
    lower, upper = -3 * jnp.ones(Q), 3 * jnp.ones(Q)
    q = neutral_pose(priors)
    q[:, I["pelvis_tilt"]], q[:, I["lumbar_extension"]] = np.deg2rad(-8.0), np.deg2rad(8.0)
    total, terms = prior_loss(jnp.asarray(q), NAMES, lower, upper, priors)
    assert float(terms["posture"]) == pytest.approx(0.0, abs=1e-10)
    assert float(terms["lumbopelvic"]) == pytest.approx(0.0, abs=1e-10)
    q[:, I["pelvis_tilt"]] = q[:, I["lumbar_extension"]] = 0.0                # level pelvis, straight spine
    grad = jax.grad(lambda x: prior_loss(x, NAMES, lower, upper, priors)[0])(jnp.asarray(q))
    _, terms = prior_loss(jnp.asarray(q), NAMES, lower, upper, priors)
    np.testing.assert_allclose(float(terms["posture"]), 0.5 * 0.8 ** 2, rtol=1e-4)
    np.testing.assert_allclose(float(terms["lumbopelvic"]), 0.5 * (8.0 / 5.0) ** 2, rtol=1e-4)
    assert float(grad[0, I["lumbar_extension"]]) < 0                        # descent raises the extension
    # the default (0) keeps the former behaviour: a straight spine over a level pelvis is neutral
    _, terms = prior_loss(jnp.asarray(q), NAMES, lower, upper, dataclasses.replace(priors,
                                                                                  lumbar_extension_neutral_deg=0.0))
    assert float(terms["posture"]) == 0.0 and float(terms["lumbopelvic"]) == 0.0
