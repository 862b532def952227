"""Loss terms: Huber kernel, NaN-safe masking, finite gradients."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from compute.losses import huber, offset_regularisation, reprojection_loss, sanitize_observations


def test_huber_is_quadratic_then_linear_and_continuous():
    d = jnp.array([0.0, 1.0, 10.0, 11.0, 30.0])
    np.testing.assert_allclose(huber(d, 10.0), [0, 0.5, 50, 60, 250])


def test_missing_keypoints_have_zero_weight_and_finite_gradient():
    kp = np.array([[[1.0, 2.0], [np.nan, np.nan], [5.0, np.inf]]], np.float32)
    conf = np.array([[0.9, 0.8, 0.7]], np.float32)
    kp_s, conf_s = sanitize_observations(kp, conf)
    np.testing.assert_allclose(np.asarray(conf_s), [[0.9, 0, 0]], atol=1e-6)
    assert np.all(np.isfinite(np.asarray(kp_s)))
    pred = jnp.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    grad = jax.grad(lambda p: reprojection_loss(p, kp_s, conf_s, 10.0))(pred)
    assert np.all(np.isfinite(np.asarray(grad)))  # finite even at zero residual
    np.testing.assert_array_equal(np.asarray(grad)[0, 1:], 0.0)


def test_reprojection_loss_is_the_mean_over_all_entries():
    pred = jnp.zeros((2, 3, 2))
    obs = jnp.ones((2, 3, 2)) * jnp.array([3.0, 4.0])  # distance 5 everywhere
    w = jnp.ones((2, 3)).at[0, 0].set(0.0)
    np.testing.assert_allclose(reprojection_loss(pred, obs, w, 10.0), 12.5 * 5 / 6, rtol=1e-4)
    np.testing.assert_allclose(offset_regularisation(jnp.full((4, 3), 0.01)), 1e-4, rtol=1e-5)
