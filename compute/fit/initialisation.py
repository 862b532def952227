"""Initialisation of the bilevel fit from robust triangulation.

The keypoints of every trial are triangulated (confidence-weighted DLT with outlier rejection); rigid marker
distances give a first guess of the log-scales; a yaw + translation Procrustes fit of the pelvis markers gives a
robust cubic root path and a heading per trial.  Each trial's network is built so that its first forward pass is
the neutral pose on that root path, facing that heading.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from compute import kinematics as kin
from compute.cameras import Camera
from compute.fit.evaluation import EVALUATION_CHUNK_FRAMES, compiled_markers_over_time
from compute.fit.types import BodyParams, TrialObservations
from compute.params import FitParams
from compute.trajectory import ROOT_POLY_DEGREE, Trajectory, make_trajectory, stack_trajectories
from compute.triangulation import triangulate_points

__all__ = ["neutral_markers", "pelvis_body_index", "estimate_log_scale", "robust_polyfit",
           "initial_root_and_heading", "initialise"]


def neutral_markers(body: kin.BodyModel, q0: np.ndarray, log_scale: np.ndarray) -> np.ndarray:
    """Markers (J, 3) m of pose q0 (Q,) at ``log_scale`` (G,) without marker offsets.

    Runs the evaluation's compiled kinematics on a chunk of ``EVALUATION_CHUNK_FRAMES`` copies of q0: the
    observability step after the fit calls the same function on chunks of that shape, so one trace and one
    compiled executable per process serve both (a separate single-pose compile cost about a second).
    """
    chunk = np.repeat(np.asarray(q0, np.float32)[None], EVALUATION_CHUNK_FRAMES, axis=0)
    markers = compiled_markers_over_time(body, chunk, np.asarray(log_scale, np.float32),
                                         np.zeros((len(body.marker_names), 3), np.float32))
    return np.asarray(markers, np.float64)[0]


def pelvis_body_index(body: kin.BodyModel) -> int:
    """Index of the body named "pelvis" (case-insensitive) in ``body.body_names``, else 0 (the root body)."""
    names = [n.lower() for n in body.body_names]
    return names.index("pelvis") if "pelvis" in names else 0


def estimate_log_scale(body: kin.BodyModel, points: Sequence[np.ndarray], ridge: float = 1.0) -> np.ndarray:
    """Stage-0 scale guess from rigid distances: for markers on the same body, ``|X_i - X_j| = s_b |p_i - p_j|``.

    points: list of triangulated (T,J,3) arrays (NaN where missing).  Returns log_scale (G,) solving a ridge
    least-squares ``scale_matrix[b] @ log_scale = log median ratio_b`` over bodies with usable pairs.
    """
    sites = np.asarray(body.marker_sites, np.float64)
    body_ids = np.asarray(body.marker_body_ids)
    scale_matrix = np.asarray(body.scale_matrix, np.float64)
    all_points = np.concatenate([np.asarray(p, np.float64) for p in points], axis=0)
    rows, targets = [], []
    for b in np.unique(body_ids):
        members = np.flatnonzero(body_ids == b)
        log_ratios = []
        for a_i, i in enumerate(members):
            for j in members[a_i + 1:]:
                model_distance = np.linalg.norm(sites[i] - sites[j])
                if model_distance < 0.04:
                    continue
                observed = np.linalg.norm(all_points[:, i] - all_points[:, j], axis=-1)
                observed = observed[np.isfinite(observed)]
                if observed.size >= 5:
                    log_ratios.append(np.log(np.median(observed) / model_distance))
        if log_ratios:
            rows.append(scale_matrix[b])
            targets.append(np.median(log_ratios))
    n_groups = scale_matrix.shape[1]
    if not rows:
        return np.zeros(n_groups, np.float32)
    a = np.stack(rows)
    y = np.asarray(targets)
    weights = np.full(n_groups, ridge * 1e-2)
    weights[0] = ridge * 1e-4  # the overall group explains a common factor cheaply
    solution = np.linalg.solve(a.T @ a + np.diag(weights), a.T @ y)
    return np.clip(solution, -0.4, 0.4).astype(np.float32)


def robust_polyfit(u: np.ndarray, values: np.ndarray, degree: int) -> np.ndarray | None:
    """Least-squares polynomial coefficients (degree+1, D) in u (T,) of values (T,D) with two rounds of 3-MAD
    outlier rejection; None when fewer than degree + 2 rows are finite."""
    keep = np.all(np.isfinite(values), axis=1)
    coeffs = None
    for _ in range(3):
        if keep.sum() < degree + 2:
            break
        vander = u[keep, None] ** np.arange(degree + 1)
        coeffs, *_ = np.linalg.lstsq(vander, values[keep], rcond=None)
        residual = np.linalg.norm(u[:, None] ** np.arange(degree + 1) @ coeffs - values, axis=1)
        finite = np.isfinite(residual)
        mad = np.median(residual[finite & keep]) + 1e-3
        keep = finite & (residual < 3.0 * 1.4826 * mad + 0.02)
    return coeffs


def initial_root_and_heading(body: kin.BodyModel, points: np.ndarray, log_scale: np.ndarray,
                             ) -> tuple[np.ndarray, float, np.ndarray]:
    """Robust initial root path and heading from triangulated markers of one trial.

    points (T,J,3) NaN where missing.  Per frame, the markers on the pelvis body (>= 3 visible) are aligned to
    the neutral model's pelvis markers by a yaw + translation Procrustes fit; a cubic in ``u = frame/(T-1)``
    is fitted robustly to the pelvis origins.  Heading = circular median of the per-frame yaws (or the
    direction of travel when the pelvis is not seen).  Returns (root_base (4,3), heading rad, per-frame root
    (T,3) with NaN where not estimated).
    """
    n_frames = points.shape[0]
    pelvis = pelvis_body_index(body)
    members = np.flatnonzero(np.asarray(body.marker_body_ids) == pelvis)
    q0 = kin.neutral_qpos(body, root_xyz=(0.0, 0.0, 0.0), heading=0.0)
    model = neutral_markers(body, q0, log_scale)
    root0 = np.asarray(q0[:3], np.float64)
    roots = np.full((n_frames, 3), np.nan)
    yaws = np.full(n_frames, np.nan)
    for t in range(n_frames):
        obs = points[t, members]
        ok = np.all(np.isfinite(obs), axis=1)
        if ok.sum() < 2:
            continue
        p, x = model[members[ok]], obs[ok]
        pc, xc = p - p.mean(0), x - x.mean(0)
        cross = np.sum(pc[:, 0] * xc[:, 1] - pc[:, 1] * xc[:, 0])
        dot = np.sum(pc[:, 0] * xc[:, 0] + pc[:, 1] * xc[:, 1])
        yaw = np.arctan2(cross, dot)
        c, s = np.cos(yaw), np.sin(yaw)
        rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        roots[t] = x.mean(0) - rz @ p.mean(0) + rz @ root0
        yaws[t] = yaw
    u = np.arange(n_frames) / max(n_frames - 1, 1)
    coeffs = robust_polyfit(u, roots, ROOT_POLY_DEGREE)
    if coeffs is None:  # pelvis not seen: centroid of everything, standing height
        centroid = np.nanmedian(points.reshape(-1, 3), axis=0)
        centroid = np.where(np.isfinite(centroid), centroid, 0.0)
        coeffs = np.zeros((ROOT_POLY_DEGREE + 1, 3))
        coeffs[0] = [centroid[0], centroid[1], root0[2]]
    finite_yaws = yaws[np.isfinite(yaws)]
    if finite_yaws.size:
        mean_dir = np.arctan2(np.median(np.sin(finite_yaws)), np.median(np.cos(finite_yaws)))
        heading = float(mean_dir + np.median(np.angle(np.exp(1j * (finite_yaws - mean_dir)))))
    else:
        velocity = coeffs[1] + 2 * coeffs[2] * 0.5 + 3 * coeffs[3] * 0.25
        heading = float(np.arctan2(velocity[1], velocity[0]))
    return coeffs.astype(np.float32), heading, roots


def initialise(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations], params: FitParams,
               key: jax.Array) -> tuple[Trajectory, BodyParams, list[np.ndarray]]:
    """Triangulate, estimate scales, root paths and headings, build the stacked trajectory networks.

    Reads ``params.initialisation`` (triangulation outlier threshold) and ``params.network`` (architecture).
    Returns (networks stacked on a leading (N,) trial axis, beta with zero offsets, triangulated points (T,J,3)
    m per trial, NaN where missing)."""
    rig_np = jax.tree.map(np.asarray, cameras)
    points = []
    for tr in trials:
        kp = np.asarray(tr.keypoints, np.float64)
        conf = np.nan_to_num(np.asarray(tr.confidence, np.float64), nan=0.0)
        p, _ = triangulate_points(rig_np, kp, conf, outlier_threshold_px=params.initialisation.outlier_threshold_px)
        points.append(np.asarray(p))
    log_scale = estimate_log_scale(body, points)
    lower, upper = np.asarray(body.joint_lower), np.asarray(body.joint_upper)
    nets = []
    keys = jax.random.split(key, len(trials))
    for tr, p, k in zip(trials, points, keys):
        root_base, heading, _ = initial_root_and_heading(body, p, log_scale)
        q0 = np.asarray(kin.neutral_qpos(body, root_xyz=tuple(float(v) for v in root_base[0]), heading=heading))
        nets.append(make_trajectory(k, params.network, lower, upper, q0, root_base, (tr.n_frames - 1) / tr.fps))
    beta = BodyParams(log_scale=jnp.asarray(log_scale),
                      offsets=jnp.zeros((len(body.marker_names), 3), jnp.float32))
    return stack_trajectories(nets), beta, points
