"""Gait events, spatio-temporal step parameters and comparison with an instrumented walkway (GAITRite).

Pure numpy. Units: metres, seconds; frames are float indices into the marker arrays (sub-frame allowed).
Positions are horizontal (x, y) in the world frame (Z up) unless stated otherwise.

Event rule (:func:`detect_foot_events`), chosen to be independent of walking direction (turns, TUG):

* **Foot contact** = the heel's horizontal speed falling through ``contact_speed_mps`` at the end of a
  "heel moving" period that lasted at least ``min_swing_s`` and peaked above ``swing_speed_mps``, with the
  heel height within ``height_tolerance_m`` of its local minimum (±``local_window_s``/2). The time is
  refined to sub-frame precision by extrapolating the speed linearly to zero across the crossing
  interval (at most ``max_extrapolation_s`` past the crossing).
* **Toe-off** = the toe's horizontal speed rising through ``toe_off_speed_mps`` at the start of a
  "toe moving" period lasting at least ``min_swing_s``; refined by extrapolating back to zero speed.
* Stationary gaps shorter than ``min_stance_s`` inside a moving period are ignored (hysteresis by
  duration); moving blips shorter than ``min_swing_s`` are ignored. Events within ``edge_margin_frames``
  of either end of the trial, or next to missing (NaN) samples, are dropped (partial events).

Step parameters (:func:`step_parameters`), for footfall k (sorted by contact time) with heel P_k:

* step time = t_k − t_{k−1} (previous contralateral contact); cadence = 60 / step time (steps/min);
* stride length = |P_k − P_{k−2}| (previous ipsilateral contact), stride time = t_k − t_{k−2},
  speed = stride length / stride time;
* the local line of progression is the contralateral stride P_{k−1} → P_{k+1} (GAITRite's definition; if
  P_{k+1} is missing, the ipsilateral stride P_{k−2} → P_k), which follows the walker through turns;
* step length = (P_k − P_{k−1}) · d along that direction d; step width = distance of P_k from that line.
Steps whose neighbours are not alternating feet or are further apart in time than ``max_step_time_s``
get NaN for the quantities that need them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
from scipy.ndimage import minimum_filter1d
from scipy.optimize import linear_sum_assignment

from compute.metrics import sigma_iqr

__all__ = [
    "detect_foot_events",
    "Footfalls",
    "make_footfalls",
    "footfalls_from_events",
    "footfalls_from_markers",
    "StepTable",
    "step_parameters",
    "estimate_time_offset",
    "match_footfalls",
    "align_walkway",
    "apply_alignment",
    "walkway_errors",
    "WalkwayComparison",
    "compare_session_to_walkway",
    "sigma_iqr",
]

STEP_ERROR_METRICS = ("step_length", "stride_length", "step_width")


# ----------------------------------------------------------------------------------------------- events
def _segment_speed(positions: np.ndarray, fps: float) -> np.ndarray:
    """(T, 3) -> (T-1,) horizontal speed over each frame interval [i, i+1], m/s, located at time i + 0.5.

    Interval (not central) differences: a foot that stops exactly at a frame gives zero speed right
    after it, so the linear extrapolation to zero speed is unbiased (NaN propagates)."""
    step = np.diff(positions[:, :2], axis=0) * fps
    return np.hypot(step[:, 0], step[:, 1])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, stop) index runs where mask is True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(padded)
    return list(zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]))


def _clean_moving(moving: np.ndarray, min_gap: int, min_run: int) -> np.ndarray:
    """Fill stationary gaps shorter than min_gap between moving runs, then drop moving runs shorter than min_run."""
    moving = moving.copy()
    T = moving.size
    for start, stop in _runs(~moving):
        if start > 0 and stop < T and stop - start < min_gap:
            moving[start:stop] = True
    for start, stop in _runs(moving):
        if stop - start < min_run:
            moving[start:stop] = False
    return moving


def detect_foot_events(
    heel,
    toe,
    fps: float,
    *,
    contact_speed_mps: float = 0.5,
    toe_off_speed_mps: float = 0.5,
    swing_speed_mps: float = 1.0,
    height_tolerance_m: float = 0.05,
    local_window_s: float = 1.0,
    min_stance_s: float = 0.1,
    min_swing_s: float = 0.15,
    max_extrapolation_s: float = 0.05,
    edge_margin_frames: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Foot-contact and toe-off frames of one foot from heel and toe marker trajectories (rule: module doc).

    Args:
        heel: (T, 3) heel marker, world metres, Z up (NaN where missing).
        toe: (T, 3) toe marker of the same foot.
        fps: frames per second.
    Returns:
        contact_frames (Nc,) and toe_off_frames (No,), float sub-frame indices, increasing.
    """
    heel = np.asarray(heel, dtype=np.float64)
    toe = np.asarray(toe, dtype=np.float64)
    if heel.ndim != 2 or heel.shape[1] != 3 or toe.shape != heel.shape:
        raise ValueError(
            f"compute/gait.py detect_foot_events: heel {heel.shape} and toe {toe.shape} must both be (T, 3)"
        )
    if not fps > 0:
        raise ValueError(f"compute/gait.py detect_foot_events: fps must be > 0, got {fps}")
    T = heel.shape[0]
    min_gap = max(int(round(min_stance_s * fps)), 1)
    min_run = max(int(round(min_swing_s * fps)), 1)
    max_extra = max_extrapolation_s * fps
    lo, hi = edge_margin_frames, T - 1 - edge_margin_frames
    if T < 3:
        return np.zeros(0), np.zeros(0)

    # Speeds live on frame intervals: sample j is at frame j + 0.5.
    # Contacts: ends of heel-moving runs.
    heel_speed = _segment_speed(heel, fps)
    S = heel_speed.size
    finite = np.isfinite(heel_speed)
    heel_moving = _clean_moving(np.where(finite, heel_speed > contact_speed_mps, False), min_gap, min_run)
    z = heel[:, 2]
    window = max(int(round(local_window_s * fps)), 1) | 1
    local_min = minimum_filter1d(np.where(np.isfinite(z), z, np.inf), size=window, mode="nearest")
    contacts = []
    for start, stop in _runs(heel_moving):
        j = stop - 1  # last moving interval; the crossing lies between samples j and j + 1
        if stop >= S or np.nanmax(heel_speed[start:stop]) < swing_speed_mps:
            continue
        if not np.all(finite[max(start - 1, 0) : min(stop + 2, S)]):
            continue
        v0, v1 = heel_speed[j], heel_speed[j + 1]
        cross = j + (v0 - contact_speed_mps) / (v0 - v1)
        zero = j + v0 / (v0 - v1)  # linear extrapolation of the speed to zero
        frame = float(np.clip(zero, cross, cross + max_extra)) + 0.5
        if not lo <= frame <= hi:
            continue
        k = int(min(round(frame), T - 1))
        if not np.isfinite(z[k]) or z[k] - local_min[k] > height_tolerance_m:
            continue
        contacts.append(frame)

    # Toe-offs: starts of toe-moving runs.
    toe_speed = _segment_speed(toe, fps)
    tfinite = np.isfinite(toe_speed)
    toe_moving = _clean_moving(np.where(tfinite, toe_speed > toe_off_speed_mps, False), min_gap, min_run)
    toe_offs = []
    for start, stop in _runs(toe_moving):
        j = start - 1  # last stationary interval
        if start == 0 or not np.all(tfinite[max(j - 1, 0) : min(stop + 1, S)]):
            continue
        v0, v1 = toe_speed[j], toe_speed[start]
        cross = j + (toe_off_speed_mps - v0) / (v1 - v0)
        zero = start - v1 / (v1 - v0)
        frame = float(np.clip(zero, cross - max_extra, cross)) + 0.5
        if lo <= frame <= hi:
            toe_offs.append(frame)
    return np.asarray(contacts, dtype=np.float64), np.asarray(toe_offs, dtype=np.float64)


# -------------------------------------------------------------------------------------------- footfalls
@dataclass(frozen=True)
class Footfalls:
    """Foot contacts of one trial, sorted by contact time (model-derived or from a walkway file).

    foot (N,) 'L'/'R'; contact_time (N,) s; heel_xy (N, 2) m; toe_xy (N, 2) m (NaN unknown);
    toe_off_time (N,) s (NaN unknown) = the toe-off that ends this footfall's stance.
    """

    foot: np.ndarray
    contact_time: np.ndarray
    heel_xy: np.ndarray
    toe_xy: np.ndarray
    toe_off_time: np.ndarray

    def __len__(self) -> int:
        return int(self.contact_time.shape[0])

    def take(self, index) -> "Footfalls":
        """Subset (rows `index`)."""
        return Footfalls(*(getattr(self, f.name)[index] for f in fields(self)))


def _xy(values, n: int, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != n or a.shape[1] < 2:
        raise ValueError(f"compute/gait.py make_footfalls: {name} must be ({n}, 2), got {a.shape}")
    return a[:, :2]


def make_footfalls(foot, contact_time, heel_xy, toe_xy=None, toe_off_time=None) -> Footfalls:
    """Validate and sort footfalls by contact time. Shapes: (N,), (N,), (N, 2), (N, 2) | None, (N,) | None."""
    foot = np.asarray(foot).astype(str)
    t = np.asarray(contact_time, dtype=np.float64).reshape(-1)
    n = t.shape[0]
    heel_xy = _xy(heel_xy, n, "heel_xy")
    toe_xy = np.full((n, 2), np.nan) if toe_xy is None else _xy(toe_xy, n, "toe_xy")
    toe_off = np.full(n, np.nan) if toe_off_time is None else np.asarray(toe_off_time, np.float64).reshape(n)
    if foot.shape != (n,) or not np.isin(foot, ["L", "R"]).all():
        raise ValueError(f"compute/gait.py make_footfalls: foot must be (N={n},) of 'L'/'R', got {foot!r}")
    order = np.argsort(t, kind="stable")
    return Footfalls(foot[order], t[order], heel_xy[order], toe_xy[order], toe_off[order])


def _interp_rows(values: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Linear interpolation of (T, D) rows at fractional frames (N,) -> (N, D)."""
    T = values.shape[0]
    f = np.clip(np.asarray(frames, np.float64), 0, T - 1)
    i0 = np.floor(f).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    a = (f - i0)[:, None]
    return values[i0] * (1 - a) + values[i1] * a


def footfalls_from_events(
    contacts_left,
    contacts_right,
    heel_left,
    heel_right,
    fps: float,
    *,
    toe_left=None,
    toe_right=None,
    toe_offs_left=None,
    toe_offs_right=None,
    time_origin_s: float = 0.0,
) -> Footfalls:
    """Footfalls from detected contact frames and marker trajectories (T, 3).

    contact_time = time_origin_s + frame / fps; heel/toe (x, y) interpolated at the sub-frame contact;
    toe_off_time = the first toe-off of the same foot after the contact and before its next contact.
    """
    rows = []
    for foot, contacts, heel, toe, toe_offs in (
        ("L", contacts_left, heel_left, toe_left, toe_offs_left),
        ("R", contacts_right, heel_right, toe_right, toe_offs_right),
    ):
        c = np.asarray(contacts, np.float64).reshape(-1)
        heel = np.asarray(heel, np.float64)
        heel_xy = _interp_rows(heel[:, :2], c) if c.size else np.zeros((0, 2))
        toe_xy = _interp_rows(np.asarray(toe, np.float64)[:, :2], c) if (toe is not None and c.size) else np.full((c.size, 2), np.nan)
        off = np.full(c.size, np.nan)
        if toe_offs is not None and c.size:
            to = np.sort(np.asarray(toe_offs, np.float64).reshape(-1))
            nxt = np.append(c[1:], np.inf)
            for k in range(c.size):
                cand = to[(to > c[k]) & (to < nxt[k])]
                if cand.size:
                    off[k] = time_origin_s + cand[0] / fps
        rows.append((np.full(c.size, foot), time_origin_s + c / fps, heel_xy, toe_xy, off))
    return make_footfalls(*(np.concatenate([r[i] for r in rows]) for i in range(5)))


def footfalls_from_markers(heel_left, toe_left, heel_right, toe_right, fps: float, *, time_origin_s: float = 0.0, **event_kwargs) -> Footfalls:
    """Detect events on both feet (:func:`detect_foot_events`) and build the footfalls. Markers (T, 3)."""
    cl, ol = detect_foot_events(heel_left, toe_left, fps, **event_kwargs)
    cr, orr = detect_foot_events(heel_right, toe_right, fps, **event_kwargs)
    return footfalls_from_events(
        cl, cr, heel_left, heel_right, fps, toe_left=toe_left, toe_right=toe_right,
        toe_offs_left=ol, toe_offs_right=orr, time_origin_s=time_origin_s,
    )


# ---------------------------------------------------------------------------------------- step table
@dataclass(frozen=True)
class StepTable:
    """Per-footfall step parameters (rule in the module docstring). All (N,) except heel_xy (N, 2).

    foot 'L'/'R'; contact_time s; heel_xy m; step_length m; stride_length m; step_width m; step_time s;
    stride_time s; cadence steps/min; speed m/s. NaN where a neighbouring footfall is missing.
    """

    foot: np.ndarray
    contact_time: np.ndarray
    heel_xy: np.ndarray
    step_length: np.ndarray
    stride_length: np.ndarray
    step_width: np.ndarray
    step_time: np.ndarray
    stride_time: np.ndarray
    cadence: np.ndarray
    speed: np.ndarray

    def __len__(self) -> int:
        return int(self.contact_time.shape[0])

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def step_parameters(footfalls: Footfalls, *, max_step_time_s: float = 1.5, min_stride_length_m: float = 0.1) -> StepTable:
    """Step length/width, stride length, step time, cadence and speed for each footfall (module doc)."""
    n = len(footfalls)
    P, t, foot = footfalls.heel_xy, footfalls.contact_time, footfalls.foot
    nan = lambda: np.full(n, np.nan)  # noqa: E731
    step_length, stride_length, step_width = nan(), nan(), nan()
    step_time, stride_time = nan(), nan()
    for k in range(n):
        prev_ok = k >= 1 and foot[k - 1] != foot[k] and t[k] - t[k - 1] <= max_step_time_s
        ipsi_ok = prev_ok and k >= 2 and foot[k - 2] == foot[k] and t[k - 1] - t[k - 2] <= max_step_time_s
        next_ok = prev_ok and k + 1 < n and foot[k + 1] == foot[k - 1] and t[k + 1] - t[k] <= max_step_time_s
        if prev_ok:
            step_time[k] = t[k] - t[k - 1]
        if ipsi_ok:
            stride_length[k] = np.linalg.norm(P[k] - P[k - 2])
            stride_time[k] = t[k] - t[k - 2]
        direction = None
        if next_ok and np.linalg.norm(P[k + 1] - P[k - 1]) >= min_stride_length_m:
            direction = P[k + 1] - P[k - 1]
        elif ipsi_ok and stride_length[k] >= min_stride_length_m:
            direction = P[k] - P[k - 2]
        if direction is not None:
            d = direction / np.linalg.norm(direction)
            v = P[k] - P[k - 1]
            step_length[k] = v @ d
            step_width[k] = abs(d[0] * v[1] - d[1] * v[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        cadence = 60.0 / step_time
        speed = stride_length / stride_time
    return StepTable(foot.copy(), t.copy(), P.copy(), step_length, stride_length, step_width, step_time, stride_time, cadence, speed)


# ------------------------------------------------------------------------------------------ walkway
def _feet_times(steps) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(steps, dict):
        return np.asarray(steps["foot"]).astype(str), np.asarray(steps["contact_time"], np.float64)
    return np.asarray(steps.foot).astype(str), np.asarray(steps.contact_time, np.float64)


def estimate_time_offset(
    model_steps,
    walkway_steps,
    max_time_gap_s: float = 0.2,
    *,
    prior_offset_s: float = 0.0,
    max_offset_s: float | None = None,
) -> float:
    """Coarse walkway-minus-model clock offset: the offset that lines up the most same-foot contacts.

    Every same-foot difference ``t_walkway − t_model`` (within ``max_offset_s`` of ``prior_offset_s`` when
    given) is a candidate; the one with the most candidates within ±max_time_gap_s wins. Steady walking is
    periodic, so offsets one stride apart can tie: ties go to the candidate closest to ``prior_offset_s``
    (e.g. 0 for synchronised devices). The winner is refined to the mean residual of a one-to-one
    matching. Steps: :class:`Footfalls`, :class:`StepTable` or a dict with foot/contact_time.
    Returns NaN when no pair is available.
    """
    fm, tm = _feet_times(model_steps)
    fw, tw = _feet_times(walkway_steps)
    diffs = np.concatenate([(tw[fw == f][:, None] - tm[fm == f][None, :]).ravel() for f in ("L", "R")])
    if max_offset_s is not None:
        diffs = diffs[np.abs(diffs - prior_offset_s) <= max_offset_s]
    if diffs.size == 0:
        return float("nan")
    diffs = np.sort(diffs)
    counts = np.searchsorted(diffs, diffs + max_time_gap_s, side="right") - np.searchsorted(diffs, diffs - max_time_gap_s, side="left")
    best = diffs[counts == counts.max()]
    offset = float(best[np.argmin(np.abs(best - prior_offset_s))])
    mi, wi = match_footfalls(model_steps, walkway_steps, max_time_gap_s, time_offset_s=offset)
    if mi.size:
        offset = float(np.mean(tw[wi] - tm[mi]))
    return offset


def match_footfalls(model_steps, walkway_steps, max_time_gap_s: float = 0.2, *, time_offset_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of model and walkway footfalls of the same foot by contact time.

    A pair is allowed when ``|t_walkway − (t_model + time_offset_s)| ≤ max_time_gap_s``; among allowed
    pairs the total time gap is minimised (Hungarian algorithm). Returns (model_index (M,), walkway_index (M,))
    sorted by walkway index.
    """
    fm, tm = _feet_times(model_steps)
    fw, tw = _feet_times(walkway_steps)
    gap = np.abs(tw[None, :] - (tm[:, None] + time_offset_s))
    allowed = (fm[:, None] == fw[None, :]) & (gap <= max_time_gap_s)
    if not allowed.any():
        return np.zeros(0, int), np.zeros(0, int)
    big = 1e6
    cost = np.where(allowed, gap, big)
    rows, cols = linear_sum_assignment(cost)
    keep = allowed[rows, cols]
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(cols)
    return rows[order].astype(int), cols[order].astype(int)


def align_walkway(model_xy, model_t, walkway_xy, walkway_t, *, rigid: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares map from model (world) footfalls to the walkway frame, fitted over a whole session.

    ``walkway_xy ≈ A @ model_xy + b`` and ``walkway_t ≈ model_t + time_offset``.
    Args: matched pairs model_xy (N, 2) m, model_t (N,) s, walkway_xy (N, 2), walkway_t (N,).
        rigid: restrict A to a rotation (Kabsch) instead of a general affine map (the paper's choice).
    Returns: A (2, 2), b (2,), time_offset (s).
    """
    X = np.asarray(model_xy, np.float64)
    Y = np.asarray(walkway_xy, np.float64)
    tm = np.asarray(model_t, np.float64).reshape(-1)
    tw = np.asarray(walkway_t, np.float64).reshape(-1)
    n = X.shape[0]
    if X.shape != (n, 2) or Y.shape != (n, 2) or tm.shape != (n,) or tw.shape != (n,):
        raise ValueError(
            f"compute/gait.py align_walkway: need model_xy (N,2), model_t (N,), walkway_xy (N,2), walkway_t (N,); "
            f"got {X.shape}, {tm.shape}, {Y.shape}, {tw.shape}"
        )
    if n < (2 if rigid else 3):
        raise ValueError(f"compute/gait.py align_walkway: need at least {2 if rigid else 3} matched footfalls, got {n}")
    if rigid:
        mx, my = X.mean(0), Y.mean(0)
        H = (X - mx).T @ (Y - my)
        U, _, Vt = np.linalg.svd(H)
        D = np.diag([1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
        A = Vt.T @ D @ U.T
        b = my - A @ mx
    else:
        design = np.column_stack([X, np.ones(n)])
        sol, *_ = np.linalg.lstsq(design, Y, rcond=None)  # (3, 2)
        A, b = sol[:2].T, sol[2]
    time_offset = float(np.mean(tw - tm))
    return A, b, time_offset


def apply_alignment(footfalls: Footfalls, A, b, time_offset: float) -> Footfalls:
    """Map footfalls into the walkway frame and clock: xy -> A xy + b, t -> t + time_offset."""
    A, b = np.asarray(A, np.float64), np.asarray(b, np.float64)
    return Footfalls(
        footfalls.foot, footfalls.contact_time + time_offset, footfalls.heel_xy @ A.T + b,
        footfalls.toe_xy @ A.T + b, footfalls.toe_off_time + time_offset,
    )


def walkway_errors(model_footfalls: Footfalls, walkway_footfalls: Footfalls, A, b, time_offset: float, max_time_gap_s: float = 0.2, **step_kwargs) -> dict[str, np.ndarray]:
    """Per-step errors (model − walkway) after mapping the model footfalls into the walkway frame.

    Step parameters are computed on each side's own footfall sequence (:func:`step_parameters`) and
    compared for matched footfalls. Returns a dict of (M,) arrays: foot, model_index, walkway_index,
    contact_time (walkway clock), contact_time_error_s, heel_position_error_m, and for each of
    step_length, stride_length, step_width: ``<metric>_model``, ``<metric>_walkway``, ``<metric>_error``.
    """
    aligned = apply_alignment(model_footfalls, A, b, time_offset)
    mi, wi = match_footfalls(aligned, walkway_footfalls, max_time_gap_s)
    sm = step_parameters(aligned, **step_kwargs)
    sw = step_parameters(walkway_footfalls, **step_kwargs)
    out = {
        "foot": walkway_footfalls.foot[wi],
        "model_index": mi,
        "walkway_index": wi,
        "contact_time": walkway_footfalls.contact_time[wi],
        "contact_time_error_s": aligned.contact_time[mi] - walkway_footfalls.contact_time[wi],
        "heel_position_error_m": np.linalg.norm(aligned.heel_xy[mi] - walkway_footfalls.heel_xy[wi], axis=1),
    }
    for name in STEP_ERROR_METRICS:
        a, w = getattr(sm, name)[mi], getattr(sw, name)[wi]
        out[f"{name}_model"], out[f"{name}_walkway"], out[f"{name}_error"] = a, w, a - w
    return out


@dataclass(frozen=True)
class WalkwayComparison:
    """Session-level comparison: one alignment (A, b, time_offset) and per-trial error tables."""

    A: np.ndarray
    b: np.ndarray
    time_offset: float
    errors: list[dict[str, np.ndarray]]
    sigma_iqr: dict[str, float] = field(default_factory=dict)  # metric -> σ_IQR of its error, m
    n_matched: int = 0


def compare_session_to_walkway(
    model_trials: Sequence[Footfalls],
    walkway_trials: Sequence[Footfalls],
    *,
    max_time_gap_s: float = 0.2,
    rigid: bool = False,
    iterations: int = 2,
    prior_offset_s: float = 0.0,
    max_offset_s: float | None = None,
    **step_kwargs,
) -> WalkwayComparison:
    """Match, align (one transform + time offset for the session) and compare the trials of a session.

    model_trials[i] and walkway_trials[i] are the same trial (times on each device's own clock).
    The clock offset is first estimated from same-foot contact times pooled over trials
    (:func:`estimate_time_offset`), then the transform and offset are refitted on the matches
    ``iterations`` times; ``prior_offset_s``/``max_offset_s`` resolve the one-stride ambiguity of steady
    walking (see :func:`estimate_time_offset`). σ_IQR of step length, stride length and step width errors pooled over trials.
    """
    if len(model_trials) != len(walkway_trials):
        raise ValueError(
            f"compute/gait.py compare_session_to_walkway: {len(model_trials)} model trials vs {len(walkway_trials)} walkway trials"
        )
    pooled_m = {"foot": [], "contact_time": []}
    pooled_w = {"foot": [], "contact_time": []}
    # Offsets between clocks are shared, but contacts of different trials must not be paired: shift
    # each trial onto its own far-apart time block for the pooled offset estimate.
    for i, (m, w) in enumerate(zip(model_trials, walkway_trials)):
        block = 1e6 * i
        pooled_m["foot"].append(m.foot), pooled_m["contact_time"].append(m.contact_time + block)
        pooled_w["foot"].append(w.foot), pooled_w["contact_time"].append(w.contact_time + block)
    pm = {k: np.concatenate(v) for k, v in pooled_m.items()}
    pw = {k: np.concatenate(v) for k, v in pooled_w.items()}
    time_offset = estimate_time_offset(pm, pw, max_time_gap_s, prior_offset_s=prior_offset_s, max_offset_s=max_offset_s)
    if not np.isfinite(time_offset):
        raise ValueError("compute/gait.py compare_session_to_walkway: no same-foot footfalls to match")
    A, b = None, None
    for _ in range(max(iterations, 1)):
        mx, mt, wx, wt = [], [], [], []
        for m, w in zip(model_trials, walkway_trials):
            mi, wi = match_footfalls(m, w, max_time_gap_s, time_offset_s=time_offset)
            mx.append(m.heel_xy[mi]), mt.append(m.contact_time[mi]), wx.append(w.heel_xy[wi]), wt.append(w.contact_time[wi])
        A, b, time_offset = align_walkway(np.concatenate(mx), np.concatenate(mt), np.concatenate(wx), np.concatenate(wt), rigid=rigid)
    errors = [walkway_errors(m, w, A, b, time_offset, max_time_gap_s, **step_kwargs) for m, w in zip(model_trials, walkway_trials)]
    spread = {name: sigma_iqr(np.concatenate([e[f"{name}_error"] for e in errors])) for name in STEP_ERROR_METRICS}
    return WalkwayComparison(A, b, time_offset, errors, spread, int(sum(len(e["walkway_index"]) for e in errors)))
