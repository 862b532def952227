"""Gait: foot events, per-step spatio-temporal parameters and walkway errors of every fitted walking trial.

``GaitMetrics`` has one row per ``BilevelFit.Trial`` whose trial activity is ``walk``. Events come from the fitted
heel and toe markers (``compute.gait.footfalls_from_markers``); step parameters from ``compute.gait.step_parameters``.
Where the session has ``WalkwaySteps``, the model footfalls of **all walking trials of the session** are aligned
to the walkway once (one transform + clock offset, ``compute.gait.compare_session_to_walkway``) and each step
stores its matched walkway values and errors. Every trial's make recomputes that session alignment
(deterministic, milliseconds) so a row depends only on its own fit.

``GaitCycle`` and ``SpatiotemporalParameters`` are downstream of ``GaitMetrics`` and use its stored events
(``GaitMetrics.Step``: foot, contact and toe-off times, heel position): strides per foot
(``compute.gait_cycle.find_strides``, turning and incomplete strides dropped), the fitted joint angles of each
stride resampled to 0-100 % of the cycle (``compute.gait_cycle.gait_cycles``) and the clinical spatiotemporal
parameters per side (``compute.spatiotemporal.spatiotemporal_parameters``). Both are queryable by population
with plain restrictions, e.g. ``(SpatiotemporalParameters * acquisition.Subject) & 'population="neurologic"'``.

Arrays are in-table; see ``schemas.fitting`` for where the bytes live.
"""
from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import datajoint as dj

from compute.markersets import foot_keypoints
from schemas import acquisition, fitting
from schemas._inputs import FetchedInputs
from schemas.reads.observations import walkway_footfalls

schema = dj.Schema()

@schema
class GaitMetrics(dj.Computed):
    definition = """
    # gait summary of one fitted walking trial (events from the fitted heel/toe markers)
    -> fitting.BilevelFit.Trial
    ---
    n_contacts : int32
    cadence = null : float32           # steps/min, median over steps
    speed = null : float32             # m/s, median over strides
    step_length = null : float32       # m, median
    stride_length = null : float32     # m, median
    step_width = null : float32        # m, median
    has_walkway : bool                 # WalkwaySteps exist for this trial
    n_matched = 0 : int32              # model steps matched to walkway footfalls
    walkway_alignment = null : json    # session-level {A (2x2), b (2,), time_offset_s}: model -> walkway frame
    """

    class Step(dj.Part):
        definition = """
        # one detected foot contact and the step ending in it
        -> master
        step_index : int16             # order of contact time
        ---
        foot : enum('L', 'R')
        contact_time : float64         # s, trial clock
        toe_off_time = null : float64  # s, the toe-off ending this stance
        heel_x : float64               # m, world frame, at contact
        heel_y : float64               # m
        step_length = null : float64   # m
        stride_length = null : float64 # m
        step_width = null : float64    # m
        step_time = null : float64     # s
        cadence = null : float64       # steps/min
        speed = null : float64         # m/s
        footfall_index = null : int32  # matched WalkwaySteps.Footfall
        walkway_step_length = null : float64
        walkway_stride_length = null : float64
        walkway_step_width = null : float64
        step_length_error = null : float64    # m, model - walkway
        stride_length_error = null : float64  # m
        step_width_error = null : float64     # m
        contact_time_error = null : float64   # s, after the clock alignment
        """

    @property
    def key_source(self):
        return fitting.BilevelFit.Trial.proj() & (acquisition.Trial & "activity = 'walk'")

    def make_fetch(self, key: dict) -> tuple[FetchedInputs]:
        """Fitted markers of every walking trial of the fit, and their walkway footfalls (numpy)."""
        fit_key = (fitting.BilevelFit & key).fetch1("KEY")
        keypoint_set = (fitting.BilevelFit & key).fetch1("keypoint_set")
        feet = foot_keypoints(keypoint_set)  # ValueError naming the sets with feet when this one has none
        foot_index = [feet[side][role] for side in ("left", "right") for role in ("heel", "toe")]
        walking = (fitting.BilevelFit.Trial * acquisition.Trial & fit_key & "activity = 'walk'")
        trials = []
        for row in walking.to_dicts(order_by="trial_name"):
            falls = walkway_footfalls(row)
            trials.append(dict(
                trial_name=row["trial_name"], fps=float(row["fps"]),
                feet=np.asarray(row["markers"], np.float64)[:, foot_index],  # (T, 4, 3)
                walkway=[[f["footfall_index"], f["foot"], f["contact_time"],
                          np.nan if f["toe_off_time"] is None else f["toe_off_time"],
                          f["heel_x"], f["heel_y"], f["toe_x"], f["toe_y"]] for f in falls]))
        return (FetchedInputs(dict(trial_name=key["trial_name"], trials=trials)),)

    def make_compute(self, key: dict, inputs: FetchedInputs) -> tuple[dict]:
        """No database: events + steps per trial, one session-level walkway comparison (compute.gait)."""
        return (session_gait(inputs["trials"], inputs["trial_name"]),)

    def make_insert(self, key: dict, result: dict) -> None:
        self.insert1(dict(key, **result["summary"]), allow_direct_insert=True)
        # Steps matched to the walkway carry walkway values and errors, unmatched ones do not: give every row
        # the same attributes (None = no walkway match) so they go in as one insert.
        attributes = sorted({name for step in result["steps"] for name in step})
        rows = [dict(key, **{name: step.get(name) for name in attributes}) for step in result["steps"]]
        self.Step.insert(rows, allow_direct_insert=True)


def _float_or_none(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _median(values) -> float | None:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def session_gait(trials: list[dict], trial_name: str) -> dict:
    """Gait of ``trial_name`` with the walkway aligned over all walking trials of its session.

    trials: dict(trial_name, fps, feet (T, 4, 3) = left heel, left toe, right heel, right toe [m],
    walkway: rows [footfall_index, foot, contact_time, toe_off_time, heel_x, heel_y, toe_x, toe_y]).
    Returns dict(summary=..., steps=[...]) ready for ``GaitMetrics`` / ``GaitMetrics.Step``.
    """
    from compute import gait

    footfalls = {t["trial_name"]: gait.footfalls_from_markers(t["feet"][:, 0], t["feet"][:, 1], t["feet"][:, 2],
                                                              t["feet"][:, 3], t["fps"]) for t in trials}
    mine = footfalls[trial_name]
    steps = gait.step_parameters(mine)
    with_walkway = [t for t in trials if t["walkway"] and len(footfalls[t["trial_name"]])]
    target = next((t for t in trials if t["trial_name"] == trial_name), None)
    errors, alignment, walkway_rows = None, None, []
    if target is not None and trial_name in [t["trial_name"] for t in with_walkway]:
        walkway = {t["trial_name"]: gait.make_footfalls(
            np.array([r[1] for r in t["walkway"]]), np.array([r[2] for r in t["walkway"]], float),
            np.array([[r[4], r[5]] for r in t["walkway"]], float), np.array([[r[6], r[7]] for r in t["walkway"]], float),
            np.array([r[3] for r in t["walkway"]], float)) for t in with_walkway}
        comparison = gait.compare_session_to_walkway([footfalls[t["trial_name"]] for t in with_walkway],
                                                     [walkway[t["trial_name"]] for t in with_walkway])
        errors = comparison.errors[[t["trial_name"] for t in with_walkway].index(trial_name)]
        alignment = dict(A=np.asarray(comparison.A).tolist(), b=np.asarray(comparison.b).tolist(),
                         time_offset_s=float(comparison.time_offset))
        walkway_rows = target["walkway"]
    matched = {}
    if errors is not None:
        for m, (mi, wi) in enumerate(zip(errors["model_index"], errors["walkway_index"])):
            matched[int(mi)] = (int(wi), m)
    order = np.argsort(mine.contact_time, kind="stable")
    rows = []
    for step_index, k in enumerate(order):
        row = dict(step_index=step_index, foot=str(mine.foot[k]), contact_time=float(mine.contact_time[k]),
                   toe_off_time=_float_or_none(mine.toe_off_time[k]), heel_x=float(mine.heel_xy[k, 0]),
                   heel_y=float(mine.heel_xy[k, 1]))
        for name in ("step_length", "stride_length", "step_width", "step_time", "cadence", "speed"):
            row[name] = _float_or_none(getattr(steps, name)[k])
        if int(k) in matched:
            wi, m = matched[int(k)]
            row["footfall_index"] = int(walkway_rows[wi][0])
            for name in ("step_length", "stride_length", "step_width"):
                row[f"walkway_{name}"] = _float_or_none(errors[f"{name}_walkway"][m])
                row[f"{name}_error"] = _float_or_none(errors[f"{name}_error"][m])
            row["contact_time_error"] = _float_or_none(errors["contact_time_error_s"][m])
        rows.append(row)
    summary = dict(n_contacts=len(mine), cadence=_median(steps.cadence), speed=_median(steps.speed),
                   step_length=_median(steps.step_length), stride_length=_median(steps.stride_length),
                   step_width=_median(steps.step_width), has_walkway=bool(target and target["walkway"]),
                   n_matched=len(matched), walkway_alignment=alignment)
    return dict(summary=summary, steps=rows)


# ------------------------------------------------------------------------------- gait cycles, spatiotemporal
TRANSLATION_SUFFIXES = ("_tx", "_ty", "_tz")  # qpos columns in metres (pelvis translation), not angles

SPATIOTEMPORAL_COLUMNS = (
    "walking_speed_m_s", "cadence_steps_per_min", "stride_time_s", "step_time_s", "stance_percent",
    "swing_percent", "double_support_percent", "stride_length_m", "step_length_m", "step_width_m",
    "hip_flexion_rom_rad", "knee_flexion_rom_rad", "ankle_flexion_rom_rad")
"""Float columns of ``SpatiotemporalParameters``: the fields of ``compute.spatiotemporal.SpatiotemporalParameters``."""


def _trial_events_and_angles(key: dict) -> FetchedInputs:
    """A fitted walking trial's stored foot events (``GaitMetrics.Step``) and joint angles, as numpy."""
    steps = (GaitMetrics.Step & key).to_dicts(order_by="step_index")
    trial = (fitting.BilevelFit.Trial & key).fetch1()
    fps = float((acquisition.Trial & key).fetch1("fps"))
    names = list(trial["joint_names"])
    angle_columns = [q for q, name in enumerate(names) if not name.endswith(TRANSLATION_SUFFIXES)]
    return FetchedInputs(dict(
        fps=fps,
        foot=[s["foot"] for s in steps],
        contact_time=np.array([s["contact_time"] for s in steps], np.float64),
        toe_off_time=np.array([np.nan if s["toe_off_time"] is None else s["toe_off_time"] for s in steps],
                              np.float64),
        heel_xy=np.array([[s["heel_x"], s["heel_y"]] for s in steps], np.float64).reshape(-1, 2),
        angles=np.asarray(trial["qpos"], np.float64)[:, angle_columns],
        coordinate_names=[names[q] for q in angle_columns]))


def trial_gait_cycles(inputs: dict):
    """No database: strides, time-normalised joint angles and per-side spatiotemporal parameters of one trial.

    inputs: fps (Hz); foot (N,) 'L'/'R', contact_time (N,) s, toe_off_time (N,) s (NaN unknown), heel_xy (N, 2) m
    -- the trial's stored footfalls, clock = frame index / fps; angles (T, Q) rad, sample i at i / fps;
    coordinate_names (Q,). Returns (``compute.gait_cycle.GaitCycles``, {'L'|'R':
    ``compute.spatiotemporal.SpatiotemporalParameters``}).
    """
    from compute.gait import make_footfalls
    from compute.gait_cycle import find_strides, gait_cycles
    from compute.spatiotemporal import spatiotemporal_parameters

    footfalls = make_footfalls(inputs["foot"], inputs["contact_time"], inputs["heel_xy"],
                               toe_off_time=inputs["toe_off_time"])
    strides = find_strides(footfalls)
    cycles = gait_cycles(inputs["angles"], inputs["coordinate_names"], inputs["fps"], strides)
    return cycles, spatiotemporal_parameters(footfalls, strides, cycles)


@schema
class GaitCycle(dj.Computed):
    definition = """
    # strides of one fitted walking trial with the fitted joint angles over 0-100 percent of each gait cycle
    -> GaitMetrics
    ---
    n_strides : int32                  # kept strides (complete, not turning), both feet
    coordinate_names : json            # (Q,) angle columns of Stride.angles (OpenSim coordinate names)
    """

    class Stride(dj.Part):
        definition = """
        # one gait cycle: a foot contact to the next contact of the same foot
        -> master
        stride_index : int16           # order of start time
        ---
        side : enum('L', 'R')          # the foot whose cycle it is
        start_time : float64           # s, trial clock, foot contact
        end_time : float64             # s, next contact of the same foot
        toe_off_percent = null : float64  # percent of cycle at this foot's toe-off (= stance)
        angles : <blob>                # (101, Q) rad at 0, 1, ..., 100 percent of the cycle, NaN unobserved
        """

    def make_fetch(self, key: dict) -> tuple[FetchedInputs]:
        """The trial's stored footfalls and fitted joint angles (numpy)."""
        return (_trial_events_and_angles(key),)

    def make_compute(self, key: dict, inputs: FetchedInputs) -> tuple[dict]:
        """No database: strides and time-normalised angles (compute.gait_cycle)."""
        cycles, _ = trial_gait_cycles(inputs)
        strides = cycles.strides
        rows = [dict(stride_index=s, side=str(strides.side[s]), start_time=float(strides.start_time[s]),
                     end_time=float(strides.end_time[s]),
                     toe_off_percent=_float_or_none(strides.toe_off_percent[s]),
                     angles=np.asarray(cycles.angles[s], np.float64)) for s in range(len(strides))]
        return (dict(n_strides=len(rows), coordinate_names=list(cycles.coordinate_names), strides=rows),)

    def make_insert(self, key: dict, result: dict) -> None:
        self.insert1(dict(key, n_strides=result["n_strides"], coordinate_names=result["coordinate_names"]),
                     allow_direct_insert=True)
        self.Stride.insert([dict(key, **row) for row in result["strides"]], allow_direct_insert=True)


@schema
class SpatiotemporalParameters(dj.Computed):
    definition = """
    # clinical spatiotemporal parameters of one fitted walking trial, per side (means over its kept strides)
    -> GaitMetrics
    side : enum('L', 'R')
    ---
    n_strides : int32                  # kept strides of this side
    n_steps : int32                    # steps of this side used
    walking_speed_m_s = null : float64       # m/s, sum of stride lengths / sum of stride times
    cadence_steps_per_min = null : float64   # steps/min, 120 / mean stride time
    stride_time_s = null : float64           # s
    step_time_s = null : float64             # s
    stance_percent = null : float64          # percent of gait cycle
    swing_percent = null : float64           # percent of gait cycle
    double_support_percent = null : float64  # percent of gait cycle, initial + terminal
    stride_length_m = null : float64         # m
    step_length_m = null : float64           # m, along the line of progression
    step_width_m = null : float64            # m, heel-to-heel base of support
    hip_flexion_rom_rad = null : float64     # rad, mean per-stride range of motion
    knee_flexion_rom_rad = null : float64    # rad
    ankle_flexion_rom_rad = null : float64   # rad
    """

    @property
    def key_source(self):
        return GaitMetrics.proj()

    def make_fetch(self, key: dict) -> tuple[FetchedInputs]:
        """The trial's stored footfalls and fitted joint angles (numpy)."""
        return (_trial_events_and_angles(key),)

    def make_compute(self, key: dict, inputs: FetchedInputs) -> tuple[list]:
        """No database: per-side parameters (compute.spatiotemporal); NaN -> NULL."""
        _, per_side = trial_gait_cycles(inputs)
        rows = [dict(side=side, n_strides=int(p.n_strides), n_steps=int(p.n_steps),
                     **{name: _float_or_none(getattr(p, name)) for name in SPATIOTEMPORAL_COLUMNS})
                for side, p in sorted(per_side.items())]
        return (rows,)

    def make_insert(self, key: dict, rows: list) -> None:
        self.insert([dict(key, **row) for row in rows], allow_direct_insert=True)
