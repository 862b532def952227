"""Implicit trajectory ``theta_t = f_phi(t)``: one small MLP of time per trial (Cotton 2024, "Differentiable
Biomechanics Unlocks Opportunities for Markerless Motion Capture").

Conventions
-----------
* Time is scaled to ``[0, pi]`` over the trial: ``t_scaled = pi * (t - t_start) / (t_end - t_start)``.
* The sinusoidal encoding is ``[2 t/pi - 1, sin(k_i t), cos(k_i t)]`` with ``k_i`` geometric from 1 to
  ``k_max = 2 * duration_s * encoding_max_frequency_hz`` (``sin(k t_scaled)`` has ``k / (2 duration)`` Hz), so the
  same parameter set resolves the same physical frequencies in short and long trials.  The encoding is
  concatenated to the inputs of the first ``encoding_layers`` layers (not only the first).
* Outputs ``z (Q,)`` map to ``qpos (Q,)`` (order of ``BodyModel.joint_names``):
  - root translation (indices 0..2): ``root_base(t) + root_residual_scale * z`` where ``root_base`` is a fixed
    cubic polynomial in scaled time fitted to the robustly triangulated pelvis, so the network learns residuals;
  - root rotations (3..5) and any joint whose range spans >= 2 pi: ``z`` unbounded (radians);
  - all other joints: ``soft_clip(z) (hi - lo) / 2 + (hi + lo) / 2`` (always inside the joint range;
    ``soft_clip`` = identity on the inner 97 %, tanh beyond - see ``latent_to_qpos``).
  The output bias is initialised at the initial pose (``atanh`` of the normalised neutral angle), so the first
  forward pass already places the body where the cameras see it.
* Frozen leaves (``root_base``, limits, frequencies) are excluded from training by the filter
  ``trainable_filter``; only ``layers`` train.
"""
from __future__ import annotations

import io
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from compute.params import NetworkConfig

__all__ = [
    "Trajectory",
    "make_trajectory",
    "stack_trajectories",
    "unstack_trajectory",
    "trainable_filter",
    "evaluate_stacked",
    "serialise_trajectory",
    "deserialise_trajectory",
    "scaled_times",
    "ROOT_POLY_DEGREE",
]

ROOT_POLY_DEGREE = 3
_ACTIVATIONS = {"silu": jax.nn.silu, "relu": jax.nn.relu, "gelu": jax.nn.gelu, "tanh": jnp.tanh,
                "softplus": jax.nn.softplus}


def scaled_times(times_s: np.ndarray | jax.Array, t_start: float, t_end: float) -> jax.Array:
    """Seconds -> scaled time in [0, pi].  times_s (...,) -> (...,)."""
    span = max(float(t_end) - float(t_start), 1e-6)
    return jnp.pi * (jnp.asarray(times_s, jnp.float32) - t_start) / span


class Trajectory(eqx.Module):
    """MLP ``t_scaled -> qpos (Q,)``.  Call on a scalar; ``jax.vmap`` over time."""

    layers: tuple[eqx.nn.Linear, ...]
    frequencies: jax.Array          # (F,) angular frequencies in scaled time (frozen)
    root_base: jax.Array            # (ROOT_POLY_DEGREE + 1, 3) polynomial coefficients, metres (frozen)
    joint_lower: jax.Array          # (Q,) rad (frozen)
    joint_upper: jax.Array          # (Q,) rad (frozen)
    unbounded: jax.Array            # (Q,) float 1.0 where the output is not squashed (frozen)
    encoding_layers: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    root_residual_scale: float = eqx.field(static=True)

    def encode(self, t: jax.Array) -> jax.Array:
        """Scalar scaled time -> (1 + 2F,) encoding."""
        angles = self.frequencies * t
        return jnp.concatenate([jnp.atleast_1d(2.0 * t / jnp.pi - 1.0), jnp.sin(angles), jnp.cos(angles)])

    def latent(self, t: jax.Array) -> jax.Array:
        """Scalar scaled time -> raw network output z (Q,)."""
        enc = self.encode(t)
        act = _ACTIVATIONS[self.activation]
        h = enc
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            x = h if i == 0 else (jnp.concatenate([h, enc]) if i < self.encoding_layers else h)
            h = layer(x)
            if i < n - 1:
                h = act(h)
        return h

    def root_path(self, t: jax.Array) -> jax.Array:
        """Fixed base root path (3,) at scaled time t."""
        powers = (t / jnp.pi) ** jnp.arange(self.root_base.shape[0], dtype=jnp.float32)
        return powers @ self.root_base

    def __call__(self, t: jax.Array) -> jax.Array:
        """Scalar scaled time in [0, pi] -> qpos (Q,)."""
        z = self.latent(t)
        return latent_to_qpos(z, self.joint_lower, self.joint_upper, self.unbounded,
                              self.root_path(t), self.root_residual_scale)


SOFT_CLIP_KNEE = 0.97


def soft_clip(u: jax.Array, knee: float = SOFT_CLIP_KNEE) -> jax.Array:
    """Identity on [-knee, knee], tanh-saturating to (-1, 1) beyond (C1 at the knee); knee 0.97 keeps the
    gain >= 0.6 down to 1 % of the range from a limit."""
    a = jnp.abs(u)
    outer = knee + (1.0 - knee) * jnp.tanh((a - knee) / (1.0 - knee))
    return jnp.where(a <= knee, u, jnp.sign(u) * outer)


def inverse_soft_clip(v: np.ndarray, knee: float = SOFT_CLIP_KNEE) -> np.ndarray:
    v = np.asarray(v, np.float64)
    a = np.abs(v)
    outer = knee + (1.0 - knee) * np.arctanh(np.clip((a - knee) / (1.0 - knee), 0.0, 1.0 - 1e-6))
    return np.where(a <= knee, v, np.sign(v) * outer)


def latent_to_qpos(z: jax.Array, lower: jax.Array, upper: jax.Array, unbounded: jax.Array,
                   root_xyz: jax.Array, root_residual_scale: float) -> jax.Array:
    """Map raw outputs z (...,Q) to qpos (...,Q).  See module docstring.  root_xyz (...,3).

    Bounded joints: ``soft_clip(z) (hi - lo)/2 + (hi + lo)/2``.  ``soft_clip`` is the identity over the inner
    97 % of the range and tanh beyond: a plain tanh (the paper's squashing) has a small gain near the limits, and the
    optimiser then crawls towards true angles close to a limit (ankle dorsiflexion near 30 deg, forearm
    supination near 0) - measured as 3-9 deg residual bias in 3000 steps with tanh, gone with the soft clip."""
    half = 0.5 * (upper - lower)
    mid = 0.5 * (upper + lower)
    angles = jnp.where(unbounded > 0, z, soft_clip(z) * half + mid)
    root = root_xyz + root_residual_scale * z[..., :3]
    return jnp.concatenate([root, angles[..., 3:]], axis=-1)


def qpos_to_latent(qpos: np.ndarray, lower: np.ndarray, upper: np.ndarray, unbounded: np.ndarray,
                   clip: float = 0.6) -> np.ndarray:
    """Inverse of ``latent_to_qpos`` for angles (root translation -> 0).  qpos (...,Q) -> z (...,Q).

    Normalised angles are clipped to ``[-clip, clip]`` of the half-range: an initial pose at a joint limit
    (e.g. elbow flexion 0 in [0, 150] deg) would start in tanh saturation, where gradients vanish."""
    qpos = np.asarray(qpos, np.float64)
    half = 0.5 * (upper - lower)
    mid = 0.5 * (upper + lower)
    u = np.clip((qpos - mid) / np.maximum(half, 1e-9), -clip, clip)
    z = np.where(unbounded > 0, qpos, inverse_soft_clip(u))
    z[..., :3] = 0.0
    return z.astype(np.float32)


def unbounded_mask(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """(Q,) 1.0 for root dofs (0..5) and joints whose range is >= 2 pi (nothing to squash into)."""
    mask = (np.asarray(upper) - np.asarray(lower)) >= 2 * np.pi - 1e-3
    mask[:6] = True
    return mask.astype(np.float32)


@eqx.filter_jit
def _initial_layers(key: jax.Array, in_dims: tuple[int, ...], widths: tuple[int, ...], output_bias: np.ndarray,
                    output_init_scale: np.ndarray) -> tuple[eqx.nn.Linear, ...]:
    """The MLP's linear layers (``eqx.nn.Linear`` default initialisation from ``key``), the last one's weights
    scaled by ``output_init_scale`` and its bias set to ``output_bias`` (Q,).  Compiled as one call: built
    eagerly, each layer shape's random draw compiled separately in every new process (about a second in all)."""
    layers = [eqx.nn.Linear(i, w, key=k) for i, w, k in zip(in_dims, widths, jax.random.split(key, len(widths)))]
    last = layers[-1]
    layers[-1] = eqx.tree_at(lambda l: (l.weight, l.bias), last, (last.weight * output_init_scale, output_bias))
    return tuple(layers)


def make_trajectory(key: jax.Array, network: NetworkConfig, joint_lower: np.ndarray, joint_upper: np.ndarray,
                    initial_qpos: np.ndarray, root_base: np.ndarray, duration_s: float,
                    output_init_scale: float = 1e-2) -> Trajectory:
    """Build a trajectory network whose first forward pass returns ``initial_qpos`` (angles) and the root base path.

    joint_lower/upper (Q,) rad; initial_qpos (Q,) (root translation ignored: the base path is used);
    root_base (ROOT_POLY_DEGREE+1, 3) polynomial coefficients in t/pi; duration_s trial length in seconds;
    network: the architecture (widths, encoding, activation).
    """
    lower = np.asarray(joint_lower, np.float32)
    upper = np.asarray(joint_upper, np.float32)
    q = lower.shape[0]
    unb = unbounded_mask(lower, upper)
    n_freq = network.encoding_frequencies
    k_max = max(2.0 * duration_s * network.encoding_max_frequency_hz, 1.0)
    freqs = np.geomspace(1.0, k_max, n_freq).astype(np.float32) if n_freq > 0 else np.zeros(0, np.float32)
    enc_dim = network.encoding_dim
    widths = tuple(network.hidden_widths) + (q,)
    in_dims = (enc_dim,) + tuple(w + (enc_dim if i + 1 < network.encoding_layers else 0)
                                 for i, w in enumerate(widths[:-1]))
    bias = qpos_to_latent(np.asarray(initial_qpos), lower, upper, unb).astype(np.float32)
    layers = _initial_layers(key, in_dims, widths, bias, np.float32(output_init_scale))
    return Trajectory(layers=layers, frequencies=jnp.asarray(freqs),
                      root_base=jnp.asarray(root_base, jnp.float32), joint_lower=jnp.asarray(lower),
                      joint_upper=jnp.asarray(upper), unbounded=jnp.asarray(unb),
                      encoding_layers=network.encoding_layers, activation=network.activation,
                      root_residual_scale=network.root_residual_scale_m)


def trainable_filter(traj: Trajectory) -> Trajectory:
    """Filter spec (same structure, bool leaves): only the MLP layers train."""
    spec = jax.tree.map(lambda _: False, traj)
    return eqx.tree_at(lambda t: t.layers, spec, replace=jax.tree.map(eqx.is_array, traj.layers))


def stack_trajectories(trajs: Sequence[Trajectory]) -> Trajectory:
    """N trajectories of identical architecture -> one with a leading (N,) axis on every array leaf."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trajs)


def unstack_trajectory(stacked: Trajectory, index: int) -> Trajectory:
    return jax.tree.map(lambda x: x[index], stacked)


def evaluate_stacked(stacked: Trajectory, t_scaled: jax.Array) -> jax.Array:
    """Stacked trajectories (N,) evaluated at t_scaled (N,K) -> qpos (N,K,Q)."""
    return eqx.filter_vmap(lambda traj, t: jax.vmap(traj)(t))(stacked, t_scaled)


def network_config(traj: Trajectory, network: NetworkConfig, t_start: float, t_end: float) -> dict:
    """Everything (besides the serialised leaves) needed to rebuild ``traj``: JSON-able dict."""
    return {
        "hidden_widths": list(network.hidden_widths),
        "encoding_frequencies": int(traj.frequencies.shape[-1]),
        "encoding_layers": traj.encoding_layers,
        "activation": traj.activation,
        "root_residual_scale": traj.root_residual_scale,
        "n_outputs": int(traj.joint_lower.shape[-1]),
        "root_poly_degree": int(traj.root_base.shape[-2]) - 1,
        "t_start": float(t_start),
        "t_end": float(t_end),
    }


def serialise_trajectory(traj: Trajectory) -> bytes:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, traj)
    return buf.getvalue()


def _skeleton(config: dict) -> Trajectory:
    widths = list(config["hidden_widths"]) + [config["n_outputs"]]
    enc_dim = 1 + 2 * config["encoding_frequencies"]
    layers = []
    in_dim = enc_dim
    key = jax.random.PRNGKey(0)
    for i, w in enumerate(widths):
        layers.append(eqx.nn.Linear(in_dim, w, key=key))
        in_dim = w + (enc_dim if i + 1 < config["encoding_layers"] else 0)
    q = config["n_outputs"]
    return Trajectory(layers=tuple(layers), frequencies=jnp.zeros(config["encoding_frequencies"]),
                      root_base=jnp.zeros((config["root_poly_degree"] + 1, 3)), joint_lower=jnp.zeros(q),
                      joint_upper=jnp.zeros(q), unbounded=jnp.zeros(q), encoding_layers=config["encoding_layers"],
                      activation=config["activation"], root_residual_scale=config["root_residual_scale"])


def deserialise_trajectory(network_bytes: bytes, config: dict) -> Trajectory:
    """Inverse of ``serialise_trajectory`` given ``network_config``."""
    return eqx.tree_deserialise_leaves(io.BytesIO(network_bytes), _skeleton(config))


@eqx.filter_jit
def _evaluate(traj: Trajectory, t_scaled: jax.Array) -> jax.Array:
    return jax.vmap(traj)(t_scaled)


def evaluate_trajectory(network_bytes: bytes, network_config: dict, times: np.ndarray) -> np.ndarray:
    """Rebuild a stored trial network and evaluate it: times (T,) seconds -> qpos (T,Q) numpy."""
    traj = deserialise_trajectory(network_bytes, network_config)
    t = scaled_times(np.asarray(times), network_config["t_start"], network_config["t_end"])
    return np.asarray(_evaluate(traj, t))
