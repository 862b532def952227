"""Observation model: what a 2D keypoint detector would report for the true markers.

Per camera c, frame t, keypoint j: a 3D spread (mm) is drawn log-normally around a per-keypoint median,
a small fraction of observations being 2-4x harder; ``confidence = sigmoid((30 - spread_mm) / 10)``, the
mapping of Cotton 2024 (*Differentiable Biomechanics Unlocks Opportunities for Markerless Motion Capture*);
pixels get i.i.d. Gaussian noise. Keypoints are dropped in Markov runs and where out of frame or behind the
camera (NaN, confidence 0), and a fraction of the valid ones are replaced by a nearby second person's.
"""
from __future__ import annotations

import numpy as np

from compute.cameras import Camera
from compute.synthetic.config import SyntheticSessionConfig
from compute.synthetic.conventions import JointConventions
from compute.synthetic.rig import in_image, project_exact
from compute.synthetic.subject import sample_log_scale


def _markov_drops(rng: np.random.Generator, shape: tuple[int, int, int], fraction: float, mean_run: float) -> np.ndarray:
    """(C, T, J) bool runs of dropped keypoints: stationary fraction `fraction`, mean run `mean_run` frames."""
    C, T, J = shape
    if fraction <= 0:
        return np.zeros(shape, bool)
    p_end = 1.0 / max(mean_run, 1.0)
    p_start = min(1.0, fraction / (1 - fraction) * p_end)
    u = rng.random(shape)
    out = np.zeros(shape, bool)
    state = rng.random((C, J)) < fraction
    for t in range(T):
        state = np.where(state, u[:, t] >= p_end, u[:, t] < p_start)
        out[:, t] = state
    return out


def observe(rng: np.random.Generator, config: SyntheticSessionConfig, rig: Camera, markers: np.ndarray,
            other: np.ndarray) -> dict:
    """Noisy keypoints/confidences for true markers (T, J, 3) and a second person's markers (T, J, 3)."""
    clean, depth = project_exact(rig, markers)                   # (C, T, J, 2), (C, T, J)
    other_pix, other_depth = project_exact(rig, other)
    visible = in_image(rig, clean, depth, markers)
    other_visible = in_image(rig, other_pix, other_depth, other)
    C, T, J = visible.shape
    dropped = _markov_drops(rng, (C, T, J), config.drop_fraction, config.drop_mean_run_frames)
    valid = visible & ~dropped
    # outliers: whole camera-frames of the second person, then single keypoints, among valid entries
    outlier = np.zeros_like(valid)
    budget = int(round(config.outlier_fraction * valid.sum()))
    swappable = valid & other_visible
    block_budget = int(round(budget * config.outlier_block_fraction))
    if block_budget > 0:
        per_block = swappable.sum(axis=2)                       # (C, T)
        order = rng.permutation(C * T)
        chosen = np.cumsum(per_block.reshape(-1)[order]) <= block_budget
        blocks = np.zeros(C * T, bool)
        blocks[order[chosen]] = True
        outlier |= blocks.reshape(C, T)[:, :, None] & swappable
    remaining = budget - int(outlier.sum())
    candidates = np.flatnonzero(swappable & ~outlier)
    if remaining > 0 and candidates.size:
        pick = rng.choice(candidates, size=min(remaining, candidates.size), replace=False)
        outlier.reshape(-1)[pick] = True
    # confidence from a sampled 3D spread (mm): per-keypoint median x per-observation log-normal noise
    kp_median = config.spread_median_mm * np.exp(rng.normal(0, config.spread_keypoint_log_sd, J))
    spread = kp_median * np.exp(rng.normal(0, config.spread_log_sd, (C, T, J)))
    hard = rng.random((C, T, J)) < config.hard_fraction
    spread = np.where(hard, spread * rng.uniform(2.0, 4.0, (C, T, J)), spread)
    confidence = 1.0 / (1.0 + np.exp(-(30.0 - spread) / 10.0))
    noise = rng.normal(0.0, config.pixel_noise_px, (C, T, J, 2))
    observed = np.where(outlier[..., None], other_pix, clean) + noise
    observed = np.where(valid[..., None], observed, np.nan)
    confidence = np.where(valid, confidence, 0.0)
    return dict(keypoints=observed.astype(np.float32), confidence=confidence.astype(np.float32),
                is_outlier=outlier, keypoints_noise_free=clean, visible=visible, dropped=dropped,
                spread_mm=spread.astype(np.float32))


def second_person(rng: np.random.Generator, qpos: np.ndarray, conv: JointConventions, n_groups: int,
                  config: SyntheticSessionConfig) -> tuple[np.ndarray, np.ndarray]:
    """A nearby person: same motion shifted in time, ~1 m to the side, different body scale."""
    T = qpos.shape[0]
    lag = int(rng.integers(-T // 4, T // 4 + 1))
    q = qpos[np.clip(np.arange(T) + lag, 0, T - 1)].copy()
    q[:, conv.index["pelvis_ty"]] += rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.2)
    q[:, conv.index["pelvis_tx"]] += rng.uniform(-0.5, 0.5)
    return q, sample_log_scale(rng, n_groups, config)
