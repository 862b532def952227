"""Gait cycles: strides per side and joint angles time-normalised to 0-100 % of the cycle.

Pure numpy/scipy. Units: seconds, metres, radians; "% of cycle" runs from 0 (foot contact) to 100 (the
next contact of the same foot).

Definitions (Perry & Burnfield, *Gait Analysis: Normal and Pathological Function*, 2nd ed., 2010, ch. 1-2):

* A **stride** (gait cycle) of one foot runs from its foot contact (initial contact, IC) to the next
  contact of the same foot. Within it: the opposite foot's toe-off (OT), the opposite foot's contact
  (OIC), this foot's toe-off (TO). Stance = [IC, TO), swing = [TO, next IC).
* Strides are built from the footfalls of :mod:`compute.gait` (contacts and toe-offs detected from heel
  and toe marker speeds). Only strides between two *detected* contacts of the same foot exist, so the
  incomplete cycles before the first and after the last contact of each foot are never returned.
* A stride is **kept** when: it lasts at most ``max_stride_time_s``; exactly one contact of the opposite
  foot lies inside it (a missed or extra event makes the cycle ambiguous); and it is not a turning stride.
* :mod:`compute.gait` does not label turns, so a stride is labelled **turning** here when its heel
  displacement (start contact -> end contact) is shorter than ``min_stride_length_m`` (stepping on the
  spot) or its direction differs by more than ``max_heading_change_rad`` from the direction of either
  overlapping opposite-foot stride (the opposite contact before the stride to the one inside it, and that
  one to the next). In straight walking the three directions agree within a few degrees; in a 180° turn
  they differ by tens of degrees.
* Time normalisation: each joint angle is interpolated at 101 equally spaced instants
  ``start + p/100 · (end − start)``, p = 0..100, by a cubic spline through the finite samples of the stride
  (plus one frame either side). Missing samples (NaN) are bridged only across gaps of at most
  ``max_gap_s``; cycle points inside a longer gap are NaN, so NaN never turns into an invented value.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from compute.gait import Footfalls

__all__ = [
    "CYCLE_PERCENT",
    "Strides",
    "GaitCycles",
    "find_strides",
    "resample_to_cycle",
    "gait_cycles",
]

#: (101,) % of the gait cycle at which angles are sampled: 0, 1, ..., 100.
CYCLE_PERCENT = np.linspace(0.0, 100.0, 101)


@dataclass(frozen=True)
class Strides:
    """Strides (gait cycles) of one trial, both feet, sorted by start time. S strides; all arrays (S, ...).

    side: (S,) 'L'/'R', the foot whose cycle it is.
    start_time, end_time: (S,) s, foot contact and the next contact of the same foot (trial clock).
    toe_off_time: (S,) s, this foot's toe-off inside the stride (end of stance); NaN when not detected.
    opposite_contact_time: (S,) s, the opposite foot's contact inside the stride.
    opposite_toe_off_time: (S,) s, the toe-off ending the opposite foot's previous stance (NaN unknown);
        normally inside [start_time, opposite_contact_time] (initial double support).
    start_heel_xy, end_heel_xy: (S, 2) m, heel position at the two contacts (world horizontal plane).
    start_index, end_index: (S,) int, rows of the :class:`compute.gait.Footfalls` the contacts come from.
    turning: (S,) bool, the stride is part of a turn (rule in the module docstring).
    """

    side: np.ndarray
    start_time: np.ndarray
    end_time: np.ndarray
    toe_off_time: np.ndarray
    opposite_contact_time: np.ndarray
    opposite_toe_off_time: np.ndarray
    start_heel_xy: np.ndarray
    end_heel_xy: np.ndarray
    start_index: np.ndarray
    end_index: np.ndarray
    turning: np.ndarray

    def __len__(self) -> int:
        return int(self.start_time.shape[0])

    @property
    def duration(self) -> np.ndarray:
        """(S,) stride time, s."""
        return self.end_time - self.start_time

    def percent_of_cycle(self, times) -> np.ndarray:
        """(S,) event times (s) -> % of each stride's cycle (0 = start contact, 100 = end contact)."""
        return 100.0 * (np.asarray(times, np.float64) - self.start_time) / self.duration

    @property
    def toe_off_percent(self) -> np.ndarray:
        """(S,) this foot's toe-off, % of cycle (= stance %); NaN when not detected."""
        return self.percent_of_cycle(self.toe_off_time)

    def take(self, index) -> "Strides":
        """Subset of strides (rows ``index``)."""
        return Strides(**{name: value[index] for name, value in vars(self).items()})


@dataclass(frozen=True)
class GaitCycles:
    """Joint angles of each stride resampled to 0-100 % of its cycle.

    strides: the S strides (:class:`Strides`), same order as ``angles``.
    angles: (S, 101, Q) rad, coordinate q at ``CYCLE_PERCENT`` of stride s; NaN where the input was missing
        for longer than the allowed gap.
    coordinate_names: (Q,) names of the angle columns (OpenSim names, e.g. ``knee_angle_r``).
    percent: (101,) % of cycle of the samples (``CYCLE_PERCENT``).
    """

    strides: Strides
    angles: np.ndarray
    coordinate_names: tuple[str, ...]
    percent: np.ndarray

    def __len__(self) -> int:
        return len(self.strides)

    def coordinate(self, name: str) -> np.ndarray:
        """(S, 101) rad: one coordinate over every stride's cycle. Unknown name -> KeyError naming it."""
        if name not in self.coordinate_names:
            raise KeyError(f"compute/gait_cycle.py GaitCycles.coordinate: no coordinate {name!r}; "
                           f"have {self.coordinate_names}")
        return self.angles[:, :, self.coordinate_names.index(name)]

    def side_coordinate(self, joint: str) -> np.ndarray:
        """(S, 101) rad: the coordinate ``{joint}_{side}`` of each stride's own side, e.g. joint='knee_angle'
        gives knee_angle_l for left strides and knee_angle_r for right strides."""
        out = np.full(self.angles.shape[:2], np.nan)
        for side in ("L", "R"):
            rows = self.strides.side == side
            if rows.any():
                out[rows] = self.coordinate(f"{joint}_{side.lower()}")[rows]
        return out

    def side(self, side: str) -> "GaitCycles":
        """The strides of one foot ('L' or 'R')."""
        rows = np.flatnonzero(self.strides.side == side)
        return GaitCycles(self.strides.take(rows), self.angles[rows], self.coordinate_names, self.percent)


def _heading_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Unsigned angle (rad) between two horizontal vectors (2,)."""
    return float(abs(np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b)))


def find_strides(
    footfalls: Footfalls,
    *,
    max_stride_time_s: float = 3.0,
    min_stride_length_m: float = 0.1,
    max_heading_change_rad: float = np.deg2rad(20.0),
    keep_turns: bool = False,
) -> Strides:
    """Strides of both feet from one trial's footfalls (definitions and keep rules: module docstring).

    Args:
        footfalls: contacts of both feet sorted by time (:func:`compute.gait.footfalls_from_markers`), with
            heel positions (m) and toe-off times (s, NaN unknown).
        max_stride_time_s: longer intervals between two contacts of a foot are pauses or missed contacts.
        min_stride_length_m: shorter heel displacements are steps on the spot (turning).
        max_heading_change_rad: larger direction changes against the overlapping opposite-foot strides
            mark a turning stride.
        keep_turns: return turning strides too (labelled in ``turning``); default drops them.
    Returns:
        :class:`Strides` sorted by start time; possibly empty.
    """
    foot, t, heel = footfalls.foot, footfalls.contact_time, footfalls.heel_xy
    toe_off = footfalls.toe_off_time
    rows = []
    for side in ("L", "R"):
        own = np.flatnonzero(foot == side)
        for a, b in zip(own[:-1], own[1:]):
            if not t[b] - t[a] <= max_stride_time_s:
                continue
            inside = np.flatnonzero((foot != side) & (t > t[a]) & (t < t[b]))
            if inside.size != 1:
                continue
            o = int(inside[0])
            # the opposite foot's contacts just before and after, unless a pause separates them
            before = np.flatnonzero((foot != side) & (t < t[a]) & (t >= t[o] - max_stride_time_s))
            after = np.flatnonzero((foot != side) & (t > t[b]) & (t <= t[o] + max_stride_time_s))
            stride = heel[b] - heel[a]
            neighbours = []
            if before.size:
                neighbours.append(heel[o] - heel[before[-1]])
            if after.size:
                neighbours.append(heel[after[0]] - heel[o])
            turning = bool(np.linalg.norm(stride) < min_stride_length_m) or any(
                np.linalg.norm(other) < min_stride_length_m
                or _heading_difference(stride, other) > max_heading_change_rad
                for other in neighbours)
            own_toe_off = toe_off[a] if t[a] < toe_off[a] < t[b] else np.nan
            opposite_toe_off = toe_off[before[-1]] if before.size else np.nan
            rows.append((side, t[a], t[b], own_toe_off, t[o], opposite_toe_off, heel[a], heel[b], a, b, turning))
    if not rows:
        empty = np.zeros(0)
        return Strides(np.zeros(0, dtype="<U1"), empty, empty, empty, empty, empty, np.zeros((0, 2)),
                       np.zeros((0, 2)), np.zeros(0, int), np.zeros(0, int), np.zeros(0, bool))
    rows.sort(key=lambda r: r[1])
    columns = list(zip(*rows))
    strides = Strides(
        np.asarray(columns[0]).astype(str), *(np.asarray(c, np.float64) for c in columns[1:6]),
        np.asarray(columns[6], np.float64).reshape(-1, 2), np.asarray(columns[7], np.float64).reshape(-1, 2),
        np.asarray(columns[8], int), np.asarray(columns[9], int), np.asarray(columns[10], bool),
    )
    return strides if keep_turns else strides.take(np.flatnonzero(~strides.turning))


def resample_to_cycle(
    angles,
    fps: float,
    start_time: float,
    end_time: float,
    *,
    time_origin_s: float = 0.0,
    max_gap_s: float = 0.1,
) -> np.ndarray:
    """One stride's joint angles at 0, 1, ..., 100 % of the cycle (rule: module docstring).

    Args:
        angles: (T, Q) rad, sample i at time ``time_origin_s + i / fps``; NaN where missing.
        fps: frames per second.
        start_time, end_time: s, the stride's two contacts (trial clock), inside the sampled interval.
        max_gap_s: longest run of missing samples bridged by the spline.
    Returns:
        (101, Q) rad; NaN where the cycle instant lies in a longer gap or outside the finite samples.
    """
    angles = np.asarray(angles, np.float64)
    if angles.ndim != 2:
        raise ValueError(f"compute/gait_cycle.py resample_to_cycle: angles must be (T, Q), got {angles.shape}")
    if not end_time > start_time:
        raise ValueError(f"compute/gait_cycle.py resample_to_cycle: end_time {end_time} must exceed start_time {start_time}")
    T, Q = angles.shape
    first = (start_time - time_origin_s) * fps
    last = (end_time - time_origin_s) * fps
    if first < -1e-9 or last > T - 1 + 1e-9:
        raise ValueError(f"compute/gait_cycle.py resample_to_cycle: stride frames [{first:.2f}, {last:.2f}] "
                         f"outside the {T} samples")
    lo, hi = max(int(np.floor(first)) - 1, 0), min(int(np.ceil(last)) + 1, T - 1)
    frames = np.arange(lo, hi + 1, dtype=np.float64)
    query = first + CYCLE_PERCENT / 100.0 * (last - first)
    window = angles[lo:hi + 1]
    if frames.size >= 4 and np.isfinite(window).all():      # common case: one spline for every column
        return CubicSpline(frames, window, axis=0, bc_type="not-a-knot")(query)
    out = np.full((CYCLE_PERCENT.size, Q), np.nan)
    max_gap_frames = max_gap_s * fps + 1.0   # a gap of n missing samples spans n + 1 frame intervals
    for q in range(Q):
        y = angles[lo:hi + 1, q]
        finite = np.isfinite(y)
        if finite.sum() < 2:
            continue
        x = frames[finite]
        values = (CubicSpline(x, y[finite], bc_type="not-a-knot")(query) if x.size >= 4
                  else np.interp(query, x, y[finite]))
        # distance between the finite samples bracketing each query instant
        right = np.clip(np.searchsorted(x, query, side="left"), 1, x.size - 1)
        span = x[right] - x[right - 1]
        at_sample = np.isin(query, x)
        ok = (query >= x[0] - 1e-9) & (query <= x[-1] + 1e-9) & ((span <= max_gap_frames + 1e-9) | at_sample)
        out[:, q] = np.where(ok, values, np.nan)
    return out


def gait_cycles(
    angles,
    coordinate_names: Sequence[str],
    fps: float,
    strides: Strides,
    *,
    time_origin_s: float = 0.0,
    max_gap_s: float = 0.1,
) -> GaitCycles:
    """Every stride's joint angles resampled to 0-100 % of its cycle.

    Args:
        angles: (T, Q) rad, one trial's joint angles (sample i at ``time_origin_s + i / fps``).
        coordinate_names: (Q,) names of the columns (OpenSim coordinate names).
        fps: frames per second.
        strides: from :func:`find_strides` on the same trial (same clock).
        max_gap_s: longest run of missing samples bridged (:func:`resample_to_cycle`).
    Returns:
        :class:`GaitCycles` with angles (S, 101, Q) rad.
    """
    angles = np.asarray(angles, np.float64)
    names = tuple(coordinate_names)
    if angles.ndim != 2 or angles.shape[1] != len(names):
        raise ValueError(f"compute/gait_cycle.py gait_cycles: angles {angles.shape} must be (T, Q={len(names)})")
    cycles = np.stack([resample_to_cycle(angles, fps, s, e, time_origin_s=time_origin_s, max_gap_s=max_gap_s)
                       for s, e in zip(strides.start_time, strides.end_time)]) if len(strides) else \
        np.zeros((0, CYCLE_PERCENT.size, len(names)))
    return GaitCycles(strides, cycles, names, CYCLE_PERCENT.copy())
