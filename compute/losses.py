"""Loss terms of the fit (Cotton 2024, "Differentiable Biomechanics Unlocks Opportunities for Markerless Motion
Capture").  The robust kernel is separate from the residual.

``L = L_Pi + lambda_beta * L_beta + lambda_s * L_smooth + lambda_eps * L_eps`` with
``L_Pi = 1/(C T J) sum_{c,t,j} w_{c,t,j} huber(||Pi_c x_{t,j} - y_{t,j,c}||)`` (pixels),
``L_beta = mean(delta^2)`` (marker offsets, metres), ``L_smooth = mean(d^2 qpos / dt^2)^2`` and
``L_eps = mean(eps^2)`` (equality-constraint residuals).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "huber",
    "safe_norm",
    "sanitize_observations",
    "reprojection_loss",
    "offset_regularisation",
    "smoothness_loss",
    "equality_loss",
]


def huber(distance: jax.Array, delta: float) -> jax.Array:
    """Huber kernel on a non-negative distance: ``d^2/2`` for ``d <= delta``, ``delta (d - delta/2)`` beyond."""
    quadratic = jnp.minimum(distance, delta)
    return 0.5 * quadratic**2 + delta * (distance - quadratic)


def safe_norm(x: jax.Array, axis: int = -1, eps: float = 1e-6) -> jax.Array:
    """Euclidean norm with a finite gradient at 0: ``sqrt(sum x^2 + eps^2)``."""
    return jnp.sqrt(jnp.sum(x * x, axis=axis) + eps * eps)


def sanitize_observations(keypoints: np.ndarray | jax.Array, confidence: np.ndarray | jax.Array,
                          ) -> tuple[jax.Array, jax.Array]:
    """Replace NaN/inf keypoints by 0 with confidence 0, so masked terms give finite values and gradients.

    keypoints (..., 2) px, confidence (...) -> same shapes, float32, all finite.
    """
    kp = jnp.asarray(keypoints, jnp.float32)
    conf = jnp.asarray(confidence, jnp.float32)
    valid = jnp.all(jnp.isfinite(kp), axis=-1) & jnp.isfinite(conf)
    conf = jnp.where(valid, jnp.clip(conf, 0.0, 1.0), 0.0)
    kp = jnp.where(valid[..., None], kp, 0.0)
    return kp, conf


def reprojection_loss(predicted: jax.Array, observed: jax.Array, weights: jax.Array,
                      huber_delta_px: float) -> jax.Array:
    """Mean over all entries of ``w * huber(||predicted - observed||)``.

    predicted, observed (..., 2) px (observed must be sanitised: finite everywhere); weights (...) >= 0.
    Non-finite predictions (e.g. a point on a camera plane) are masked out when their weight is 0.
    """
    distance = safe_norm(predicted - observed)
    per_point = weights * huber(distance, huber_delta_px)
    return jnp.mean(jnp.where(weights > 0, per_point, 0.0))


def offset_regularisation(offsets: jax.Array) -> jax.Array:
    """``mean(delta^2)`` over marker offsets (J,3) metres."""
    return jnp.mean(offsets**2)


def smoothness_loss(qpos_second_derivative: jax.Array) -> jax.Array:
    """Mean squared second time derivative of qpos (..., Q) in rad/s^2 (m/s^2 for the root)."""
    return jnp.mean(qpos_second_derivative**2)


def equality_loss(residuals: jax.Array) -> jax.Array:
    """``mean(eps^2)`` of equality-constraint residuals (..., E); 0 when there are none."""
    if residuals.size == 0:
        return jnp.zeros((), jnp.float32)
    return jnp.mean(residuals**2)
