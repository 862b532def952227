"""Implicit trajectory network: initial pose, joint-range mapping, serialisation (no kinematics needed)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from compute.params import PARAMETER_SETS
from compute.trajectory import (evaluate_stacked, evaluate_trajectory, make_trajectory, network_config,
                                serialise_trajectory, stack_trajectories)

NETWORK = PARAMETER_SETS["cpu_default"].replace(hidden_widths=(32, 32)).network
Q = 8
LOWER = np.array([-50, -50, -1, -np.pi, -np.pi, -np.pi, 0.0, -0.5], np.float32)
UPPER = np.array([50, 50, 3, np.pi, np.pi, np.pi, 2.6, 0.5], np.float32)
Q0 = np.array([0, 0, 0, 0.1, -0.05, 2.0, 0.0, 0.2], np.float32)       # elbow-like joint at its lower limit
ROOT = np.array([[1.0, 2.0, 0.9], [3.0, 0.0, 0.0], [0, 0, 0], [0, 0, 0]], np.float32)  # x: 1 -> 4 m


def _traj(seed=0):
    return make_trajectory(jax.random.PRNGKey(seed), NETWORK, LOWER, UPPER, Q0, ROOT, duration_s=4.0)


def test_first_forward_pass_is_the_initial_pose_on_the_base_root_path():
    traj = _traj()
    q = np.asarray(jax.vmap(traj)(jnp.linspace(0, jnp.pi, 5)))
    np.testing.assert_allclose(q[:, 0], np.linspace(1, 4, 5), atol=0.03)
    np.testing.assert_allclose(q[:, 3:6], np.tile(Q0[3:6], (5, 1)), atol=0.03)
    np.testing.assert_allclose(q[:, 7], 0.2, atol=0.03)
    assert np.all(q[:, 6] > 0.1)  # a pose at the limit starts inside the range (not in saturation)


def test_bounded_joints_stay_inside_their_range_for_any_output():
    traj = _traj()
    big = jax.tree.map(lambda x: x * 50.0 if eqx_is_float(x) else x, traj.layers)
    import equinox as eqx
    wild = eqx.tree_at(lambda t: t.layers, traj, big)
    q = np.asarray(jax.vmap(wild)(jnp.linspace(0, jnp.pi, 200)))
    assert np.all(q[:, 6:] >= LOWER[6:]) and np.all(q[:, 6:] <= UPPER[6:])


def eqx_is_float(x):
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def test_stacked_networks_evaluate_like_the_individual_ones():
    a, b = _traj(0), _traj(1)
    t = jnp.stack([jnp.linspace(0, 3, 7), jnp.linspace(0.5, 2, 7)])
    q = evaluate_stacked(stack_trajectories([a, b]), t)
    np.testing.assert_allclose(q[1], jax.vmap(b)(t[1]), atol=1e-5)


def test_serialised_network_rebuilds_with_its_config():
    traj = _traj(3)
    times = np.linspace(0, 4.0, 11)
    config = network_config(traj, NETWORK, 0.0, 4.0)
    q = evaluate_trajectory(serialise_trajectory(traj), config, times)
    np.testing.assert_allclose(q, jax.vmap(traj)(jnp.asarray(np.pi * times / 4.0, jnp.float32)), atol=1e-5)
