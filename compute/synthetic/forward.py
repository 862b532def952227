"""Forward kinematics for the generator on fixed-size chunks: one compilation serves every trial length."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from compute.kinematics import BodyModel, compiled_markers_over_time

FK_CHUNK = 256   # frames per compiled FK call; the last chunk is padded by repeating its last frame


def forward_markers(body: BodyModel, qpos: np.ndarray, log_scale: np.ndarray, offsets: np.ndarray,
                    marker_sites: np.ndarray | None = None) -> np.ndarray:
    """Marker positions of a body over time, in float64.

    qpos (T, Q) joint coordinates (rad, m); log_scale (G,) log of each scale group's factor; offsets (J, 3) m
    per-marker offsets in its body's frame; marker_sites (J, 3) m overrides the model's sites (None: keep).
    Returns (T, J, 3) world positions, metres. Runs ``compute.kinematics.markers_over_time`` in float32 on
    chunks of FK_CHUNK frames (the last one padded), so every trial length reuses one compiled program.
    """
    qpos = np.asarray(qpos, np.float32)
    T = qpos.shape[0]
    n_chunks = max(1, -(-T // FK_CHUNK))
    padded = np.concatenate([qpos, np.repeat(qpos[-1:], n_chunks * FK_CHUNK - T, axis=0)])
    ls = jnp.asarray(log_scale, jnp.float32)
    off = jnp.asarray(offsets, jnp.float32)
    sites = None if marker_sites is None else jnp.asarray(marker_sites, jnp.float32)
    out = [np.asarray(compiled_markers_over_time(body, jnp.asarray(padded[k * FK_CHUNK:(k + 1) * FK_CHUNK]), ls, off, sites))
           for k in range(n_chunks)]
    return np.concatenate(out)[:T].astype(np.float64)
