"""Clinical spatiotemporal gait parameters of one trial, per side, with their definitions.

Pure numpy. Units: metres, seconds, radians; phases in % of the gait cycle.

Definitions follow the instrumented-walkway conventions (GAITRite Electronic Walkway Technical Reference,
CIR Systems) and Perry & Burnfield, *Gait Analysis: Normal and Pathological Function* (2nd ed., 2010).
A stride of foot X runs from its contact IC to its next contact; inside it the opposite foot's toe-off OT,
the opposite foot's contact OIC and X's toe-off TO (strides: :mod:`compute.gait_cycle`). Per stride:

* stride time (s) = next IC − IC; stride length (m) = heel displacement between the two contacts.
* stance % = (TO − IC) / stride time · 100; swing % = 100 − stance %.
* double support % = [(OT − IC) + (TO − OIC)] / stride time · 100: initial plus terminal double support
  (both feet on the ground), each part clipped at 0 (a negative part is a flight phase).
* range of motion (rad) of hip flexion (``hip_flexion_x``), knee flexion (``knee_angle_x``) and ankle
  dorsi/plantar-flexion (``ankle_angle_x``) = max − min of the time-normalised angle over the stride; NaN
  when any of the stride's 101 samples is missing (an unobserved extreme would bias it low).

Per step (a step of foot X ends at X's contact and starts at the previous contact of the other foot;
:func:`compute.gait.step_parameters`): step time (s); step length (m) = heel-to-heel distance along the
local line of progression; step width (m) = the heel's perpendicular distance from that line
(GAITRite's "H-H base of support").

Per side (:class:`SpatiotemporalParameters`), over the kept (non-turning, complete) strides of that side
and the steps of that side that begin or end them:

* walking speed (m/s) = Σ stride length / Σ stride time (distance over ambulation time, GAITRite velocity);
* cadence (steps/min) = 120 / mean stride time (two steps per stride; in steady walking both sides give
  the trial cadence, 60 · steps / ambulation time);
* every other quantity = the mean of its per-stride or per-step values (NaN values left out).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compute.gait import Footfalls, step_parameters
from compute.gait_cycle import GaitCycles, Strides

__all__ = [
    "ROM_JOINTS",
    "SpatiotemporalParameters",
    "stride_measures",
    "range_of_motion",
    "spatiotemporal_parameters",
]

#: Sagittal joints whose range of motion is reported: (label, OpenSim coordinate stem + "_l"/"_r").
ROM_JOINTS = (("hip_flexion", "hip_flexion"), ("knee_flexion", "knee_angle"), ("ankle_flexion", "ankle_angle"))


@dataclass(frozen=True)
class SpatiotemporalParameters:
    """Spatiotemporal parameters of one side of one trial (definitions: module docstring).

    side: 'L' or 'R'. n_strides: kept strides of that side; n_steps: steps of that side used.
    walking_speed_m_s (m/s); cadence_steps_per_min (steps/min); stride_time_s, step_time_s (s);
    stance_percent, swing_percent, double_support_percent (% of the gait cycle); stride_length_m,
    step_length_m, step_width_m (m); hip_flexion_rom_rad, knee_flexion_rom_rad, ankle_flexion_rom_rad
    (rad, mean over strides of the per-stride range of motion; NaN without joint angles).
    Every quantity is NaN when no stride or step of that side has it.
    """

    side: str
    n_strides: int
    n_steps: int
    walking_speed_m_s: float
    cadence_steps_per_min: float
    stride_time_s: float
    step_time_s: float
    stance_percent: float
    swing_percent: float
    double_support_percent: float
    stride_length_m: float
    step_length_m: float
    step_width_m: float
    hip_flexion_rom_rad: float
    knee_flexion_rom_rad: float
    ankle_flexion_rom_rad: float


def stride_measures(strides: Strides) -> dict[str, np.ndarray]:
    """Per-stride quantities (definitions: module docstring). Each value is (S,).

    Keys: stride_time_s, stride_length_m, speed_m_s, stance_percent, swing_percent,
    double_support_percent (NaN where a toe-off is unknown or the events are out of order).
    """
    duration = strides.duration
    length = np.linalg.norm(strides.end_heel_xy - strides.start_heel_xy, axis=1)
    stance = strides.percent_of_cycle(strides.toe_off_time)
    initial = strides.opposite_toe_off_time - strides.start_time
    terminal = strides.toe_off_time - strides.opposite_contact_time
    ordered = strides.opposite_toe_off_time <= strides.opposite_contact_time
    double = np.where(ordered, np.maximum(initial, 0.0) + np.maximum(terminal, 0.0), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "stride_time_s": duration,
            "stride_length_m": length,
            "speed_m_s": length / duration,
            "stance_percent": stance,
            "swing_percent": 100.0 - stance,
            "double_support_percent": 100.0 * double / duration,
        }


def range_of_motion(cycles: GaitCycles, joint: str) -> np.ndarray:
    """(S,) rad: max − min over each stride's cycle of ``{joint}_{side}`` (side = the stride's own foot).

    joint: OpenSim coordinate stem, e.g. 'hip_flexion', 'knee_angle', 'ankle_angle'. NaN for a stride with
    any missing sample of that coordinate.
    """
    curves = cycles.side_coordinate(joint)
    complete = np.all(np.isfinite(curves), axis=1)
    with np.errstate(invalid="ignore"):
        rom = np.max(curves, axis=1, initial=-np.inf, where=np.isfinite(curves)) - \
            np.min(curves, axis=1, initial=np.inf, where=np.isfinite(curves))
    return np.where(complete, rom, np.nan)


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def spatiotemporal_parameters(
    footfalls: Footfalls,
    strides: Strides,
    cycles: GaitCycles | None = None,
    **step_kwargs,
) -> dict[str, SpatiotemporalParameters]:
    """Spatiotemporal parameters of one trial, per side (definitions: module docstring).

    Args:
        footfalls: the trial's footfalls (:func:`compute.gait.footfalls_from_markers`).
        strides: its kept strides (:func:`compute.gait_cycle.find_strides` on the same footfalls).
        cycles: joint angles of the same strides (:func:`compute.gait_cycle.gait_cycles`) for the ranges
            of motion; None gives NaN ranges.
        step_kwargs: passed to :func:`compute.gait.step_parameters` (max_step_time_s, min_stride_length_m).
    Returns:
        {'L': SpatiotemporalParameters, 'R': SpatiotemporalParameters}.
    """
    if cycles is not None and not (len(cycles.strides) == len(strides)
                                   and np.array_equal(cycles.strides.start_time, strides.start_time)
                                   and np.array_equal(cycles.strides.side, strides.side)):
        raise ValueError("compute/spatiotemporal.py spatiotemporal_parameters: cycles were computed for other strides")
    steps = step_parameters(footfalls, **step_kwargs)
    per_stride = stride_measures(strides)
    rom = {label: (range_of_motion(cycles, stem) if cycles is not None else np.full(len(strides), np.nan))
           for label, stem in ROM_JOINTS}
    out = {}
    for side in ("L", "R"):
        rows = strides.side == side
        used = np.unique(np.concatenate([strides.start_index[rows], strides.end_index[rows]])).astype(int)
        used = used[(steps.foot[used] == side) & np.isfinite(steps.step_time[used])]
        length, duration = per_stride["stride_length_m"][rows], per_stride["stride_time_s"][rows]
        finite = np.isfinite(length) & np.isfinite(duration)
        speed = float(length[finite].sum() / duration[finite].sum()) if finite.any() else float("nan")
        mean_stride_time = _mean(duration)
        out[side] = SpatiotemporalParameters(
            side=side,
            n_strides=int(rows.sum()),
            n_steps=int(used.size),
            walking_speed_m_s=speed,
            cadence_steps_per_min=120.0 / mean_stride_time if mean_stride_time > 0 else float("nan"),
            stride_time_s=mean_stride_time,
            step_time_s=_mean(steps.step_time[used]),
            stance_percent=_mean(per_stride["stance_percent"][rows]),
            swing_percent=_mean(per_stride["swing_percent"][rows]),
            double_support_percent=_mean(per_stride["double_support_percent"][rows]),
            stride_length_m=_mean(length),
            step_length_m=_mean(steps.step_length[used]),
            step_width_m=_mean(steps.step_width[used]),
            hip_flexion_rom_rad=_mean(rom["hip_flexion"][rows]),
            knee_flexion_rom_rad=_mean(rom["knee_flexion"][rows]),
            ankle_flexion_rom_rad=_mean(rom["ankle_flexion"][rows]),
        )
    return out
