"""End-to-end differentiable fit of one session (DESIGN.md §4-6): bilevel scaling + bundle adjustment.

Parameters ``{phi_1..phi_N, beta, cameras}``: one implicit trajectory per trial (``compute.trajectory``), shared
``beta = (log_scale (G,), offsets (J,3))`` and per-camera extrinsic deltas.  Every step samples the same number of
frames from every trial (stratified, per-trial frame indices), so the step has fixed shapes and compiles once.

Optimizer groups (``optax.multi_transform``): networks - global-norm clipping + AdamW with warm-up and
exponential decay; log-scales - Adam with the same schedule shape; marker offsets - the same Adam, held at zero
until ``offset_start_fraction`` of the steps (so they cannot absorb pose errors early on); cameras - Adam with its own small rate whose updates
are gated to zero until ``camera_start_fraction`` of the steps (a dynamic mask on the gradient, not a branch in
the loss, so fits with and without bundle adjustment share one compiled step).

Bundle-adjustment gauge.  Images fix the rig + subject only up to a similarity transform of the world (rotation,
translation, and scale, since the overall body scale is free).  Camera deltas are parametrised per camera as a
rotation ``omega_c`` (rad; ``R_c' = R_c Rot(omega_c)^T``) and a centre shift ``dc_c`` (m; ``c_c' = c_c + dc_c``);
before use the stacked (C*6,) delta is projected onto the orthogonal complement of the 7 gauge directions
(infinitesimal world translation ``dc_c = d``, rotation ``omega_c = q, dc_c = q x c_c``, scaling
``dc_c = s (c_c - mean c)``).  So the rig can never drift rigidly as a whole away from the input calibration; the
reported changes (rotation angle, centre displacement) are w.r.t. the input calibration.  We prefer this to fixing
camera 0 because it does not make every other camera inherit camera 0's calibration error.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from compute import kinematics as kin
from compute.cameras import Camera, camera_centers, matrix_to_rodrigues, project_points, project_to_rig, \
    rodrigues_to_matrix
from compute.losses import equality_loss, huber, offset_regularisation, reprojection_loss, \
    sanitize_observations, smoothness_loss
from compute.params import FitParams
from compute.trajectory import (ROOT_POLY_DEGREE, Trajectory, evaluate_stacked, make_trajectory, network_config,
                                serialise_trajectory, stack_trajectories, trainable_filter, unstack_trajectory)
from compute.trajectory import evaluate_trajectory  # noqa: F401  (re-exported: part of the fit API)

__all__ = [
    "TrialObservations",
    "TrialFit",
    "SessionFit",
    "FitDivergedError",
    "BodyParams",
    "CameraDelta",
    "fit_session",
    "evaluate_trajectory",
    "make_train_step",
    "make_optimizer",
    "LOSS_HISTORY_COLUMNS",
    "estimate_log_scale",
    "initial_root_and_heading",
    "refined_rig",
    "session_gc",
]

LOSS_HISTORY_COLUMNS = ("step", "loss", "reprojection", "offset", "smoothness", "equality")
_EVAL_CHUNK = 128  # frames per trial per evaluation call (fixed shape -> one compile per N)


# ----------------------------------------------------------------------------------------------- data types
@dataclass
class TrialObservations:
    """2D keypoints of one trial.  keypoints (C,T,J,2) float32 px (NaN ok where confidence 0);
    confidence (C,T,J) float32 in [0,1].  Frame i is at time i / fps seconds."""

    name: str
    fps: float
    keypoints: np.ndarray
    confidence: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(np.shape(self.keypoints)[1])


@dataclass
class TrialFit:
    """Fit of one trial: every array evaluated at every frame time."""

    name: str
    times: np.ndarray                       # (T,) s
    qpos: np.ndarray                        # (T,Q)
    markers: np.ndarray                     # (T,J,3) m
    gc_curve: np.ndarray                    # (20,) GC_d, d = 1..20 px, confidence > 0.5
    gc5: float
    per_camera_median_error_px: np.ndarray  # (C,) over keypoints with confidence > 0.5
    network: bytes                          # eqx.tree_serialise_leaves of the Trajectory
    network_config: dict                    # to rebuild it: compute.trajectory.evaluate_trajectory
    final_loss: float                       # reprojection loss (Huber) over all frames
    reprojection_errors: np.ndarray | None = None  # (C,T,J) px (NaN where not observed)


@dataclass
class SessionFit:
    log_scale: np.ndarray                   # (G,)
    offsets: np.ndarray                     # (J,3) m, body frame
    cameras: Camera                         # refined rig (numpy leaves)
    camera_rotation_change_deg: np.ndarray  # (C,) angle of R_refined R_input^T
    camera_translation_change_m: np.ndarray  # (C,) distance between refined and input camera centres
    trials: list[TrialFit]
    loss_history: np.ndarray                # (N, len(loss_history_columns))
    gc_curve: np.ndarray                    # (20,) over all trials
    gc5: float
    iterations: int
    wall_time_s: float
    seed: int
    params: FitParams
    loss_history_columns: tuple[str, ...] = LOSS_HISTORY_COLUMNS


class FitDivergedError(RuntimeError):
    """The loss (or a result) became NaN/inf: the fit stops with this error, never with a result."""


class BodyParams(eqx.Module):
    """Shared subject parameters beta: log_scale (G,), offsets (J,3) metres (body frame)."""

    log_scale: jax.Array
    offsets: jax.Array


class CameraDelta(eqx.Module):
    """Raw per-camera extrinsic deltas (before gauge projection): rotation (C,3) rad, centre (C,3) m."""

    rotation: jax.Array
    centre: jax.Array


class FitVariables(eqx.Module):
    networks: Trajectory   # stacked (N,) - trainable part only after partition
    body: BodyParams
    cameras: CameraDelta


class SessionData(eqx.Module):
    """Device-side observations, padded to T_max frames: keypoints (N,T_max,C,J,2), confidence (N,T_max,C,J)."""

    keypoints: jax.Array
    confidence: jax.Array
    n_frames: jax.Array        # (N,) int32
    durations: jax.Array       # (N,) s
    rig: Camera                # input calibration (C,)
    gauge_projection: jax.Array  # (6C, 6C)


# ------------------------------------------------------------------------------------------ cameras / gauge
def gauge_projection_matrix(rig: Camera) -> np.ndarray:
    """(6C,6C) orthogonal projector removing the 7 similarity-gauge directions of the per-camera deltas
    ``[omega_c (3), dc_c (3)]`` (see module docstring)."""
    centres = np.asarray(camera_centers(rig), np.float64)
    n_cam = centres.shape[0]
    basis = []
    for k in range(3):
        e = np.eye(3)[k]
        translation = np.zeros((n_cam, 6))
        translation[:, 3:] = e
        rotation = np.zeros((n_cam, 6))
        rotation[:, :3] = e
        rotation[:, 3:] = np.cross(e, centres)
        basis += [translation.ravel(), rotation.ravel()]
    scaling = np.zeros((n_cam, 6))
    scaling[:, 3:] = centres - centres.mean(0)
    basis.append(scaling.ravel())
    q, _ = np.linalg.qr(np.stack(basis, 1))
    return (np.eye(6 * n_cam) - q @ q.T).astype(np.float32)


def effective_camera_delta(delta: CameraDelta, gauge_projection: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Gauge-projected (rotation (C,3), centre (C,3))."""
    n_cam = delta.rotation.shape[0]
    flat = jnp.concatenate([delta.rotation, delta.centre], axis=1).reshape(-1)
    flat = (gauge_projection @ flat).reshape(n_cam, 6)
    return flat[:, :3], flat[:, 3:]


def project_with_delta(rig: Camera, rotation: jax.Array, centre_shift: jax.Array, points: jax.Array) -> jax.Array:
    """Project world points (...,3) through the rig refined by per-camera deltas -> (C,...,2) px.

    ``R' = R Rot(omega)^T, c' = c + dc`` is applied by moving the points instead of the camera:
    ``X~ = Rot(omega)^T (X - c') + c`` seen by the input camera gives exactly the refined projection.
    """
    centres = camera_centers(rig)

    def one(cam, omega, c, dc):
        rot_t = rodrigues_to_matrix(omega).T
        moved = (points - (c + dc)) @ rot_t.T + c
        return project_points(cam, moved)

    return jax.vmap(one)(rig, rotation, centres, centre_shift)


def refined_rig(rig: Camera, rotation: np.ndarray, centre_shift: np.ndarray) -> Camera:
    """Input rig + gauge-projected deltas -> a new Camera(C,) with numpy leaves."""
    R = np.asarray(rodrigues_to_matrix(jnp.asarray(rig.rvec)), np.float64)
    d_rot = np.asarray(rodrigues_to_matrix(jnp.asarray(rotation, jnp.float32)), np.float64)
    R_new = R @ np.swapaxes(d_rot, -1, -2)
    c_new = np.asarray(camera_centers(rig), np.float64) + np.asarray(centre_shift, np.float64)
    t_new = -np.einsum("cij,cj->ci", R_new, c_new)
    return Camera(K=np.asarray(rig.K), dist=np.asarray(rig.dist), rvec=matrix_to_rodrigues(R_new).astype(np.float32),
                  tvec=t_new.astype(np.float32), size=np.asarray(rig.size))


# --------------------------------------------------------------------------------------------- optimizer
def _warmup_exponential(peak: float, final: float, warmup: int, total: int, start: int = 0) -> optax.Schedule:
    decay_steps = max(total - start - warmup, 1)
    inner = optax.warmup_exponential_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=max(warmup, 1), transition_steps=1,
        decay_rate=(final / peak) ** (1.0 / decay_steps), end_value=final)
    if start == 0:
        return inner
    return lambda count: jnp.where(count < start, 0.0, inner(jnp.maximum(count - start, 0)))


def _zero_updates_before(start_step: int) -> optax.GradientTransformation:
    """Zero every update before ``start_step`` (so the following Adam moments start clean at the start)."""

    def init(params):
        del params
        return jnp.zeros((), jnp.int32)

    def update(updates, count, params=None):
        del params
        keep = (count >= start_step).astype(jnp.float32)
        return jax.tree.map(lambda u: u * keep, updates), count + 1

    return optax.GradientTransformation(init, update)


def _labels(variables: FitVariables) -> FitVariables:
    return FitVariables(networks=jax.tree.map(lambda _: "network", variables.networks),
                        body=BodyParams(log_scale="body", offsets="offset"),
                        cameras=jax.tree.map(lambda _: "camera", variables.cameras))


@functools.lru_cache(maxsize=32)
def make_optimizer(params: FitParams) -> optax.GradientTransformation:
    """The three-group optimizer of the bilevel fit (cached per FitParams so compiled steps are shared)."""
    ratio = params.learning_rate_final / params.learning_rate
    network = optax.chain(
        optax.clip_by_global_norm(params.grad_clip_norm),
        optax.adamw(_warmup_exponential(params.learning_rate, params.learning_rate_final, params.warmup_steps,
                                        params.steps),
                    b1=params.adam_b1, b2=params.adam_b2, weight_decay=params.weight_decay))
    body_schedule = _warmup_exponential(params.body_learning_rate, params.body_learning_rate * ratio,
                                        params.warmup_steps, params.steps)
    body = optax.adam(body_schedule)
    # offsets join later: early on they would absorb pose errors (e.g. forearm pronation) instead of the joints
    offset_start = min(int(round(params.offset_start_fraction * params.steps)), params.steps)
    offset = optax.chain(_zero_updates_before(offset_start), optax.adam(body_schedule))
    # cameras: gradients are gated to zero before the bundle-adjustment start by the train step (a dynamic
    # mask, so fits with and without bundle adjustment share one compiled step); Adam moments therefore start
    # clean at the start step.  The rate decays 10x over the whole run.
    camera = optax.adam(optax.exponential_decay(params.camera_learning_rate, max(params.steps, 1), 0.1))
    return optax.multi_transform({"network": network, "body": body, "offset": offset, "camera": camera}, _labels)


# ------------------------------------------------------------------------------------------------- loss
def sample_frames(key: jax.Array, n_frames: jax.Array, k: int) -> jax.Array:
    """Stratified frame indices (N,k) int32: one uniform draw in each of k equal slices of every trial."""
    u = (jnp.arange(k)[None, :] + jax.random.uniform(key, (n_frames.shape[0], k))) / k
    idx = jnp.floor(u * n_frames[:, None]).astype(jnp.int32)
    return jnp.clip(idx, 0, n_frames[:, None] - 1)


def frame_to_scaled_time(idx: jax.Array, n_frames: jax.Array) -> jax.Array:
    """Frame index (N,K) -> scaled time in [0, pi] per trial."""
    return jnp.pi * idx.astype(jnp.float32) / jnp.maximum(n_frames[:, None] - 1, 1).astype(jnp.float32)


def _qpos_second_derivative(networks: Trajectory, t_scaled: jax.Array, durations: jax.Array) -> jax.Array:
    """d^2 qpos / dt^2 (N,K,Q) in physical units by forward-mode differentiation of the networks."""

    def one(traj, t):
        def first(tt):
            return jax.jvp(traj, (tt,), (jnp.ones_like(tt),))[1]
        return jax.jvp(first, (t,), (jnp.ones_like(t),))[1]

    dd = eqx.filter_vmap(lambda traj, ts: jax.vmap(lambda t: one(traj, t))(ts))(networks, t_scaled)
    return dd * ((jnp.pi / durations) ** 2)[:, None, None]


def session_loss(train: FitVariables, frozen: FitVariables, body: kin.BodyModel, data: SessionData,
                 key: jax.Array, params: FitParams) -> tuple[jax.Array, dict]:
    """Total loss on one random batch of frames (same number from every trial) and its terms."""
    variables = eqx.combine(train, frozen)
    n_frames = data.n_frames
    idx = sample_frames(key, n_frames, params.time_points_per_trial)           # (N,K)
    t_scaled = frame_to_scaled_time(idx, n_frames)
    qpos = evaluate_stacked(variables.networks, t_scaled)                        # (N,K,Q)
    n, k, q = qpos.shape
    markers = kin.markers_over_time(body, qpos.reshape(n * k, q), variables.body.log_scale,
                                    variables.body.offsets)                      # (N*K,J,3)
    rotation, centre_shift = effective_camera_delta(variables.cameras, data.gauge_projection)
    predicted = project_with_delta(data.rig, rotation, centre_shift, markers)    # (C,N*K,J,2)
    take = jax.vmap(lambda arr, i: arr[i])
    observed = take(data.keypoints, idx).reshape((n * k,) + data.keypoints.shape[2:])   # (N*K,C,J,2)
    weights = take(data.confidence, idx).reshape((n * k,) + data.confidence.shape[2:])  # (N*K,C,J)
    observed = jnp.moveaxis(observed, 1, 0)
    weights = jnp.moveaxis(weights, 1, 0)
    reprojection = reprojection_loss(predicted, observed, weights, params.huber_delta_px)
    offset = offset_regularisation(variables.body.offsets)
    zero = jnp.zeros((), jnp.float32)
    smooth = zero
    if params.smoothness_weight > 0:
        smooth = smoothness_loss(_qpos_second_derivative(variables.networks, t_scaled, data.durations))
    equality = zero
    if params.equality_weight > 0 and hasattr(kin, "equality_residuals"):
        residuals = jax.vmap(lambda qp: kin.equality_residuals(body, qp))(qpos.reshape(n * k, q))
        equality = equality_loss(residuals)
    total = (reprojection + params.offset_weight * offset + params.smoothness_weight * smooth
             + params.equality_weight * equality)
    return total, {"loss": total, "reprojection": reprojection, "offset": offset, "smoothness": smooth,
                   "equality": equality}


def _train_step_impl(train: FitVariables, frozen: FitVariables, opt_state, body: kin.BodyModel,
                     data: SessionData, key: jax.Array, camera_gate: jax.Array,
                     optimizer: optax.GradientTransformation, params: FitParams):
    (_, terms), grads = eqx.filter_value_and_grad(session_loss, has_aux=True)(train, frozen, body, data, key,
                                                                               params)
    grads = eqx.tree_at(lambda g: g.cameras, grads, jax.tree.map(lambda g: g * camera_gate, grads.cameras))
    updates, opt_state = optimizer.update(grads, opt_state, train)
    train = eqx.apply_updates(train, updates)
    train = eqx.tree_at(lambda v: v.body.offsets, train,
                        project_to_ball(train.body.offsets, params.max_offset_m))
    return train, opt_state, terms


def project_to_ball(vectors: jax.Array, radius: float) -> jax.Array:
    """Scale each row of ``vectors`` (..., 3) down to norm ``radius`` where it is longer (projected gradient)."""
    norm = jnp.sqrt(jnp.sum(vectors**2, axis=-1, keepdims=True) + 1e-12)
    return vectors * jnp.minimum(1.0, radius / norm)


def make_train_step(max_traces: int | None = None) -> Callable:
    """A jitted bilevel step ``(train, frozen, opt_state, body, data, key, camera_gate, optimizer, params) ->
    (train, opt_state, terms)``; camera_gate is a float32 scalar (0 before bundle adjustment starts, 1 after); with ``max_traces`` it raises if it is traced more often (recompile guard)."""
    fn = _train_step_impl
    if max_traces is not None:
        fn = eqx.debug.assert_max_traces(fn, max_traces=max_traces)
    return eqx.filter_jit(fn)


_TRAIN_STEP = make_train_step()


# --------------------------------------------------------------------------------------- initialisation
_forward_kinematics = eqx.filter_jit(kin.forward_kinematics)
_markers_over_time = eqx.filter_jit(kin.markers_over_time)


def _pelvis_body_index(body: kin.BodyModel) -> int:
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


def _robust_polyfit(u: np.ndarray, values: np.ndarray, degree: int) -> np.ndarray:
    """Least-squares polynomial (degree+1, D) in u with two rounds of 3-MAD outlier rejection."""
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
    pelvis = _pelvis_body_index(body)
    members = np.flatnonzero(np.asarray(body.marker_body_ids) == pelvis)
    q0 = kin.neutral_qpos(body, root_xyz=(0.0, 0.0, 0.0), heading=0.0)
    model = np.asarray(_forward_kinematics(body, q0, jnp.asarray(log_scale, jnp.float32),
                                           jnp.zeros((len(body.marker_names), 3), jnp.float32)), np.float64)
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
    coeffs = _robust_polyfit(u, roots, ROOT_POLY_DEGREE)
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


# --------------------------------------------------------------------------------------------- evaluation
@eqx.filter_jit
def _evaluate_chunk(networks: Trajectory, t_scaled: jax.Array, body: kin.BodyModel, beta: BodyParams):
    qpos = evaluate_stacked(networks, t_scaled)                      # (N,K,Q)
    n, k, q = qpos.shape
    markers = kin.markers_over_time(body, qpos.reshape(n * k, q), beta.log_scale, beta.offsets)
    return qpos, markers.reshape(n, k, -1, 3)


def evaluate_all_frames(networks: Trajectory, n_frames: Sequence[int], body: kin.BodyModel, beta: BodyParams,
                        ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """qpos (T_n,Q) and markers (T_n,J,3) at every frame of every trial, in fixed-size chunks."""
    n_frames = np.asarray(n_frames)
    t_max = int(n_frames.max())
    qpos_parts, marker_parts = [], []
    for start in range(0, t_max, _EVAL_CHUNK):
        idx = np.minimum(start + np.arange(_EVAL_CHUNK)[None, :], n_frames[:, None] - 1)
        t_scaled = np.pi * idx / np.maximum(n_frames[:, None] - 1, 1)
        qpos, markers = _evaluate_chunk(networks, jnp.asarray(t_scaled, jnp.float32), body, beta)
        qpos_parts.append(np.asarray(qpos))
        marker_parts.append(np.asarray(markers))
    qpos_all = np.concatenate(qpos_parts, axis=1)
    markers_all = np.concatenate(marker_parts, axis=1)
    return ([qpos_all[i, :n] for i, n in enumerate(n_frames)],
            [markers_all[i, :n] for i, n in enumerate(n_frames)])


def reprojection_errors_px(rig: Camera, markers: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Pixel distance (C,T,J) between projected markers (T,J,3) and keypoints (C,T,J,2) (NaN where missing)."""
    predicted = np.asarray(project_to_rig(jax.tree.map(jnp.asarray, rig), jnp.asarray(markers, jnp.float32)))
    return np.linalg.norm(predicted - np.asarray(keypoints), axis=-1)


def session_gc(errors: Sequence[np.ndarray], confidences: Sequence[np.ndarray],
               min_confidence: float = 0.5) -> np.ndarray:
    """GC_d curve (d = 1..20 px) over all trials' keypoints with confidence > min_confidence."""
    from compute.metrics import GC_THRESHOLDS_PX, geometric_consistency
    e = np.concatenate([np.asarray(x).ravel() for x in errors])
    w = np.concatenate([np.nan_to_num(np.asarray(c), nan=0.0).ravel() for c in confidences])
    return np.asarray(geometric_consistency(e, w, GC_THRESHOLDS_PX, min_confidence), np.float64)


def _per_camera_median(errors: Sequence[np.ndarray], confidences: Sequence[np.ndarray]) -> np.ndarray:
    n_cam = errors[0].shape[0]
    out = np.full(n_cam, np.nan)
    for c in range(n_cam):
        e = np.concatenate([x[c].ravel() for x in errors])
        w = np.concatenate([np.nan_to_num(x[c], nan=0.0).ravel() for x in confidences])
        sel = (w > 0.5) & np.isfinite(e)
        if sel.any():
            out[c] = np.median(e[sel])
    return out


# ------------------------------------------------------------------------------------------- validation
def validate_inputs(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations]) -> None:
    if len(trials) == 0:
        raise ValueError("compute/fit.py fit_session: trials must contain at least one TrialObservations")
    n_cam = int(np.shape(cameras.rvec)[0])
    n_markers = len(body.marker_names)
    for tr in trials:
        kp, conf = np.shape(tr.keypoints), np.shape(tr.confidence)
        if len(kp) != 4 or kp[0] != n_cam or kp[2] != n_markers or kp[3] != 2:
            raise ValueError(f"compute/fit.py TrialObservations {tr.name!r}: keypoints expected shape "
                             f"({n_cam}, T, {n_markers}, 2), got {kp}")
        if conf != kp[:3]:
            raise ValueError(f"compute/fit.py TrialObservations {tr.name!r}: confidence expected shape {kp[:3]}, "
                             f"got {conf}")
        if kp[1] < 2:
            raise ValueError(f"compute/fit.py TrialObservations {tr.name!r}: keypoints need >= 2 frames")
        if not tr.fps > 0:
            raise ValueError(f"compute/fit.py TrialObservations {tr.name!r}: fps must be > 0, got {tr.fps}")


def prepare_session_data(cameras: Camera, trials: Sequence[TrialObservations]) -> SessionData:
    """Sanitise (NaN -> weight 0) and pad observations to a common T_max: see ``SessionData``."""
    n_frames = np.array([tr.n_frames for tr in trials], np.int32)
    t_max = int(n_frames.max())
    kps, confs = [], []
    for tr in trials:
        kp, conf = sanitize_observations(tr.keypoints, tr.confidence)
        kp, conf = np.asarray(kp), np.asarray(conf)
        pad = t_max - tr.n_frames
        kps.append(np.pad(np.moveaxis(kp, 1, 0), ((0, pad), (0, 0), (0, 0), (0, 0))))
        confs.append(np.pad(np.moveaxis(conf, 1, 0), ((0, pad), (0, 0), (0, 0))))
    rig = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), cameras)
    durations = np.array([max((tr.n_frames - 1) / tr.fps, 1e-3) for tr in trials], np.float32)
    return SessionData(keypoints=jnp.asarray(np.stack(kps)), confidence=jnp.asarray(np.stack(confs)),
                       n_frames=jnp.asarray(n_frames), durations=jnp.asarray(durations), rig=rig,
                       gauge_projection=jnp.asarray(gauge_projection_matrix(rig)))


def initialise(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations], params: FitParams,
               key: jax.Array) -> tuple[Trajectory, BodyParams, list[np.ndarray]]:
    """Triangulate, estimate scales, root paths and headings, build the stacked trajectory networks."""
    from compute.triangulation import triangulate_points
    rig_np = jax.tree.map(np.asarray, cameras)
    points = []
    for tr in trials:
        kp = np.asarray(tr.keypoints, np.float64)
        conf = np.nan_to_num(np.asarray(tr.confidence, np.float64), nan=0.0)
        p, _ = triangulate_points(rig_np, kp, conf, outlier_threshold_px=params.init_outlier_threshold_px)
        points.append(np.asarray(p))
    log_scale = estimate_log_scale(body, points)
    lower, upper = np.asarray(body.joint_lower), np.asarray(body.joint_upper)
    nets = []
    keys = jax.random.split(key, len(trials))
    for tr, p, k in zip(trials, points, keys):
        root_base, heading, _ = initial_root_and_heading(body, p, log_scale)
        q0 = np.asarray(kin.neutral_qpos(body, root_xyz=tuple(float(v) for v in root_base[0]), heading=heading))
        nets.append(make_trajectory(k, params, lower, upper, q0, root_base, (tr.n_frames - 1) / tr.fps))
    beta = BodyParams(log_scale=jnp.asarray(log_scale),
                      offsets=jnp.zeros((len(body.marker_names), 3), jnp.float32))
    return stack_trajectories(nets), beta, points


# ------------------------------------------------------------------------------------------------ driver
def run_optimisation(body: kin.BodyModel, data: SessionData, networks: Trajectory, beta: BodyParams,
                     params: FitParams, key: jax.Array, progress: Callable[[int, dict], None] | None = None,
                     train_step: Callable | None = None, n_steps: int | None = None,
                     ) -> tuple[FitVariables, np.ndarray, int]:
    """Optimise ``networks``/``beta``/camera deltas for ``n_steps`` (default params.steps).

    Returns (variables, loss history (H, 6), steps done).  Raises FitDivergedError on a non-finite loss
    (checked every ``divergence_check_every`` steps and at the end)."""
    step_fn = train_step or _TRAIN_STEP
    n_cam = int(data.rig.rvec.shape[0])
    variables = FitVariables(networks=networks, body=beta,
                             cameras=CameraDelta(rotation=jnp.zeros((n_cam, 3)), centre=jnp.zeros((n_cam, 3))))
    spec = FitVariables(networks=trainable_filter(networks), body=jax.tree.map(lambda _: True, beta),
                        cameras=jax.tree.map(lambda _: True, variables.cameras))
    train, frozen = eqx.partition(variables, spec)
    # the bundle-adjustment start enters as a dynamic gate: one compiled step for any camera_start_fraction
    static_params = params.replace(camera_start_fraction=0.0)
    optimizer = make_optimizer(static_params)
    opt_state = optimizer.init(train)
    total = params.steps if n_steps is None else n_steps
    camera_start = params.camera_start_step
    gate_off, gate_on = jnp.zeros((), jnp.float32), jnp.ones((), jnp.float32)
    history: list[list[float]] = []
    pending: list[tuple[int, dict]] = []

    def flush() -> None:
        for s, terms in pending:
            row = [float(s)] + [float(terms[c]) for c in LOSS_HISTORY_COLUMNS[1:]]
            if not np.all(np.isfinite(row)):
                raise FitDivergedError(f"compute/fit.py: loss became non-finite at step {s}: "
                                       f"{dict(zip(LOSS_HISTORY_COLUMNS, row))}")
            history.append(row)
            if progress is not None:
                progress(s, dict(zip(LOSS_HISTORY_COLUMNS, row)))
        pending.clear()

    step_keys = jax.random.split(key, total)
    last_terms = None
    for step in range(total):
        gate = gate_on if step >= camera_start else gate_off
        train, opt_state, last_terms = step_fn(train, frozen, opt_state, body, data, step_keys[step], gate,
                                               optimizer, static_params)
        if step % params.history_every == 0 or step == total - 1:
            pending.append((step, last_terms))
        if (step + 1) % params.divergence_check_every == 0:
            flush()
    flush()
    return eqx.combine(train, frozen), np.asarray(history, np.float64).reshape(-1, len(LOSS_HISTORY_COLUMNS)), total


def _check_finite(name: str, *arrays) -> None:
    for a in arrays:
        if not np.all(np.isfinite(np.asarray(a))):
            raise FitDivergedError(f"compute/fit.py: non-finite values in the result ({name})")


def summarise_fit(body: kin.BodyModel, cameras: Camera, trials: Sequence[TrialObservations], params: FitParams,
                  variables: FitVariables, data: SessionData, history: np.ndarray, iterations: int,
                  wall_start: float, seed: int) -> SessionFit:
    """Evaluate the fitted variables at every frame and collect the SessionFit."""
    rotation, centre_shift = effective_camera_delta(variables.cameras, data.gauge_projection)
    rotation, centre_shift = np.asarray(rotation), np.asarray(centre_shift)
    rig = refined_rig(cameras, rotation, centre_shift)
    qpos_list, marker_list = evaluate_all_frames(variables.networks, [tr.n_frames for tr in trials], body,
                                                 variables.body)
    log_scale = np.asarray(variables.body.log_scale)
    offsets = np.asarray(variables.body.offsets)
    _check_finite("log_scale/offsets/cameras", log_scale, offsets, rig.rvec, rig.tvec)
    errors, confs, trial_fits = [], [], []
    for i, tr in enumerate(trials):
        _check_finite(f"trial {tr.name}", qpos_list[i], marker_list[i])
        err = reprojection_errors_px(rig, marker_list[i], tr.keypoints)
        conf = np.nan_to_num(np.asarray(tr.confidence, np.float64), nan=0.0)
        conf = np.where(np.isfinite(err), conf, 0.0)
        errors.append(err)
        confs.append(conf)
        gc = session_gc([err], [conf])
        net = unstack_trajectory(variables.networks, i)
        times = np.arange(tr.n_frames) / tr.fps
        final = float(np.mean(conf * np.asarray(huber(jnp.asarray(np.nan_to_num(err, nan=0.0)),
                                                      params.huber_delta_px))))
        trial_fits.append(TrialFit(
            name=tr.name, times=times, qpos=qpos_list[i], markers=marker_list[i], gc_curve=gc, gc5=float(gc[4]),
            per_camera_median_error_px=_per_camera_median([err], [conf]), network=serialise_trajectory(net),
            network_config=network_config(net, params, 0.0, float(times[-1])), final_loss=final,
            reprojection_errors=err.astype(np.float32)))
    gc = session_gc(errors, confs)
    input_centres = np.asarray(camera_centers(jax.tree.map(jnp.asarray, cameras)), np.float64)
    refined_centres = np.asarray(camera_centers(jax.tree.map(jnp.asarray, rig)), np.float64)
    return SessionFit(
        log_scale=log_scale, offsets=offsets, cameras=rig,
        camera_rotation_change_deg=np.rad2deg(np.linalg.norm(rotation, axis=-1)),
        camera_translation_change_m=np.linalg.norm(refined_centres - input_centres, axis=-1),
        trials=trial_fits, loss_history=history, gc_curve=gc, gc5=float(gc[4]), iterations=iterations,
        wall_time_s=time.perf_counter() - wall_start, seed=seed, params=params)


def fit_session(body: kin.BodyModel, cameras: Camera, trials: list[TrialObservations], params: FitParams,
                seed: int = 0, progress: Callable[[int, dict], None] | None = None, *,
                train_step: Callable | None = None) -> SessionFit:
    """Bilevel end-to-end fit of all trials of one session (+ bundle adjustment from camera_start_fraction).

    body: scaled-model template; cameras: input calibration Camera(C,); trials: 2D keypoints per trial
    (C,T,J,2) px with confidences (C,T,J); params: FitParams; seed: PRNG seed (same seed -> same result);
    progress(step, {column: value}) is called with each loss-history row.  ``train_step`` (keyword-only) may
    be a step from ``make_train_step(max_traces=...)`` to guard against recompiles.
    Raises FitDivergedError if the loss becomes NaN/inf.
    """
    wall_start = time.perf_counter()
    validate_inputs(body, cameras, trials)
    key_init, key_fit = jax.random.split(jax.random.PRNGKey(seed))
    networks, beta, _ = initialise(body, cameras, trials, params, key_init)
    data = prepare_session_data(cameras, trials)
    variables, history, iterations = run_optimisation(body, data, networks, beta, params, key_fit, progress,
                                                      train_step)
    return summarise_fit(body, cameras, trials, params, variables, data, history, iterations, wall_start, seed)
