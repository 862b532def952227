"""Gait: foot events, per-step spatio-temporal parameters and walkway errors of every fitted walking trial.

``GaitMetrics`` has one row per ``BilevelFit.Trial`` whose trial activity is ``walk``. Events come from the fitted
heel and toe markers (``compute.gait.footfalls_from_markers``); step parameters from ``compute.gait.step_parameters``.
Where the session has ``WalkwaySteps``, the model footfalls of **all walking trials of the session** are aligned
to the walkway once (one transform + clock offset, ``compute.gait.compare_session_to_walkway``) and each step
stores its matched walkway values and errors. Every trial's make recomputes that session alignment
(deterministic, milliseconds) so a row depends only on its own fit.

Arrays are in-table; see ``schemas.fitting`` for where the bytes live.
"""
from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import datajoint as dj

from schemas import acquisition, fitting
from schemas._inputs import FetchedInputs

schema = dj.Schema()

# (left heel, left toe, right heel, right toe) keypoint names per keypoint set; COCO17 has no feet.
FOOT_MARKERS: dict[str, tuple[str, str, str, str]] = {
    "MOVI87": ("lhee", "ltoe", "rhee", "rtoe"),
    "HALPE26": ("LHeel", "LBigToe", "RHeel", "RBigToe"),
    "BODY25": ("LHeel", "LBigToe", "RHeel", "RBigToe"),
    "BODY25B": ("LHeel", "LBigToe", "RHeel", "RBigToe"),
    "BLAZEPOSE33": ("left_heel", "left_foot_index", "right_heel", "right_foot_index"),
}


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
        if keypoint_set not in FOOT_MARKERS:
            raise ValueError(f"GaitMetrics: keypoint set {keypoint_set!r} has no heel/toe keypoints "
                             f"(supported: {sorted(FOOT_MARKERS)})")
        names = (acquisition.KeypointSet & {"keypoint_set": keypoint_set}).fetch1("joint_names")
        foot_index = [list(names).index(n) for n in FOOT_MARKERS[keypoint_set]]
        walking = (fitting.BilevelFit.Trial * acquisition.Trial & fit_key & "activity = 'walk'")
        trials = []
        for row in walking.to_dicts(order_by="trial_name"):
            falls = (acquisition.WalkwaySteps.Footfall & fit_key & {"trial_name": row["trial_name"]}).to_dicts(
                order_by="footfall_index")
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
