"""Gait pipeline on synthetic ground truth (compute.gait against compute.synthetic's walkway footfalls).

The chain is the one ``schemas.gait.GaitMetrics`` runs: heel/toe markers -> ``footfalls_from_markers`` ->
``step_parameters`` -> ``compare_session_to_walkway`` against the walkway file the generator writes
(walkway coordinates and walkway clock: a known rotation, translation and time offset). Markers here are
the TRUE synthetic markers, so every error is the pipeline's own (event timing, alignment), not a fit's.
Tolerances (issue 7): step/stride length and step width σ_IQR <= 5 mm; transform angle <= 0.2 deg,
translation <= 5 mm; clock offset and contact times within one frame.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from compute import gait
from compute.kinematics import load_body_model
from compute.synthetic import SyntheticSessionConfig, default_trials, generate_session

POPULATIONS = ("control", "hemiparetic", "prosthesis")
FOOT_MARKERS = ("lhee", "ltoe", "rhee", "rtoe")


@pytest.fixture(scope="module")
def body():
    return load_body_model("MOVI87")


@pytest.fixture(scope="module")
def sessions(body):
    """One seeded session per population: two walks and a timed-up-and-go (turn)."""
    return {pop: generate_session(SyntheticSessionConfig(seed=21 + i, population=pop,
                                                         trials=default_trials(2, static=False, tug=True)), body)
            for i, pop in enumerate(POPULATIONS)}


def _model_footfalls(session, trial) -> gait.Footfalls:
    index = [list(session.marker_names).index(n) for n in FOOT_MARKERS]
    feet = np.asarray(trial.markers, np.float64)[:, index]
    return gait.footfalls_from_markers(feet[:, 0], feet[:, 1], feet[:, 2], feet[:, 3], trial.fps)


def _walkway_footfalls(session, trial) -> gait.Footfalls:
    """What the walkway CSV holds: on-walkway footfalls, walkway frame and clock."""
    rows = [f for f in trial.footfalls if f["on_walkway"]]
    dt = session.walkway_transform.time_offset_s
    return gait.make_footfalls([f["foot"] for f in rows], [f["contact_time"] + dt for f in rows],
                               [f["heel_walkway"] for f in rows], [f["toe_walkway"] for f in rows],
                               [f["toe_off_time"] + dt for f in rows])


def _walks(session):
    return [t for t in session.trials if t.activity == "walk"]


@pytest.mark.parametrize("population", POPULATIONS)
def test_walkway_comparison_on_true_markers(sessions, population):
    session = sessions[population]
    walks = _walks(session)
    assert len(walks) == 2
    model = [_model_footfalls(session, t) for t in walks]
    walkway = [_walkway_footfalls(session, t) for t in walks]
    comparison = gait.compare_session_to_walkway(model, walkway)
    n_walkway = sum(len(w) for w in walkway)
    assert comparison.n_matched == n_walkway, (comparison.n_matched, n_walkway)
    for metric, spread in comparison.sigma_iqr.items():
        assert spread <= 0.005, (population, metric, spread)
    for errors in comparison.errors:
        for metric in gait.STEP_ERROR_METRICS:
            e = errors[f"{metric}_error"]
            assert np.isfinite(e).sum() >= 3, (metric, e)
            assert np.nanmax(np.abs(e)) < 0.02, (population, metric, e)

    truth = session.walkway_transform
    A, b = np.asarray(comparison.A), np.asarray(comparison.b)
    # the walking axis (+X) is what footfalls pin down; the affine map's y column (how walkway coordinates
    # depend on world y) rests on ~0.1-0.2 m of lateral spread and carries a few % of shear/scale
    angle = math.atan2(A[1, 0], A[0, 0])
    assert abs(math.degrees(angle - truth.angle_rad)) <= 0.2, math.degrees(angle)
    assert np.linalg.norm(b - np.asarray(truth.translation_m)) <= 0.005, b
    fps = walks[0].fps
    assert abs(comparison.time_offset - truth.time_offset_s) <= 1.0 / fps, comparison.time_offset


def _nearest(times: np.ndarray, t: float) -> float:
    return float(np.min(np.abs(times - t))) if times.size else np.inf


@pytest.mark.parametrize("population", POPULATIONS)
def test_detected_contacts_match_generator_within_one_frame(sessions, population):
    session = sessions[population]
    for trial in _walks(session):
        detected = _model_footfalls(session, trial)
        on = [f for f in trial.footfalls if f["on_walkway"]]
        assert len(on) >= 6
        # The generator's contact time is its first planted kinematic sample (1/(fps*supersample) s grid),
        # so the true planting instant is up to one supersample earlier; the heel-speed rule lags the
        # synthetic heel's abrupt stop by 0.2-1.0 frame. Tolerance: one frame plus that quantisation.
        tolerance = (1.0 + 1.0 / session.config.supersample) / trial.fps
        for f in on:                                   # every walkway footfall is detected ...
            gap = _nearest(detected.contact_time[detected.foot == f["foot"]], f["contact_time"])
            assert gap <= tolerance, (population, trial.name, f["foot"], f["contact_time"], gap * trial.fps)
        half = session.config.walkway_length_m / 2
        truth = {foot: np.array([f["contact_time"] for f in trial.footfalls if f["foot"] == foot]) for foot in "LR"}
        for foot, t, heel in zip(detected.foot, detected.contact_time, detected.heel_xy):
            if abs(heel[0]) <= half - 0.1:             # ... and nothing else is detected on the walkway
                assert _nearest(truth[foot], t) <= tolerance, (population, trial.name, foot, t)


@pytest.mark.parametrize("population", POPULATIONS)
def test_turn_produces_no_spurious_contacts(sessions, population):
    """TUG: walk 3 m, turn 180 deg, walk back. Between the first and last true footfall every detected
    contact pairs one-to-one with a true footfall of the same foot (no extra contacts from the turn).

    Timing in the turn is loose (0.45 s, under one step time): the generator's stance foot pivots with the
    pelvis heading there, so its heel moves during stance and the heel-speed rule times turn steps up to
    ~0.4 s apart from the planted-foot contact (and can merge one turn step); straight steps stay within a frame.
    """
    session = sessions[population]
    trial = next(t for t in session.trials if t.activity == "tug")
    detected = _model_footfalls(session, trial)
    truth = gait.make_footfalls([f["foot"] for f in trial.footfalls], [f["contact_time"] for f in trial.footfalls],
                                [f["heel_world"] for f in trial.footfalls])
    inside = np.flatnonzero((detected.contact_time >= truth.contact_time.min() - 0.1)
                            & (detected.contact_time <= truth.contact_time.max() + 0.1))
    window = detected.take(inside)
    assert len(window) <= len(truth)
    assert len(window) >= len(truth) - 2
    model_index, _ = gait.match_footfalls(window, truth, max_time_gap_s=0.45)
    assert sorted(model_index.tolist()) == list(range(len(window))), (population, window.contact_time,
                                                                     truth.contact_time)
    heel = truth.heel_xy
    assert heel[:, 0].max() - heel[:, 0].min() > 1.5     # the walker really went out and came back


@pytest.mark.parametrize("population", POPULATIONS)
def test_stance_heel_is_still(sessions, population):
    """Mid-stance (25-45 % of contact) heel speed of on-walkway footfalls: median < 0.05 m/s (brief)."""
    speeds = []
    for trial in _walks(sessions[population]):
        v = np.linalg.norm(np.gradient(trial.heel_markers[..., :2], trial.times, axis=0), axis=-1)
        for f in trial.footfalls:
            if f["on_walkway"] and np.isfinite(f["toe_off_time"]):
                a, b = f["contact_time"], f["toe_off_time"]
                window = (trial.times >= a + 0.25 * (b - a)) & (trial.times <= a + 0.45 * (b - a))
                if window.any():
                    speeds.append(np.median(v[window, "LR".index(f["foot"])]))
    assert len(speeds) >= 10
    assert np.median(speeds) < 0.05, speeds
    assert np.max(speeds) < 0.1, speeds


def test_gait_metrics_glue_matches_compute_chain(sessions):
    """schemas.gait.session_gait (GaitMetrics.make_compute, no database) on the control session."""
    session_gait = pytest.importorskip("schemas.gait").session_gait
    session = sessions["control"]
    index = [list(session.marker_names).index(n) for n in FOOT_MARKERS]
    dt = session.walkway_transform.time_offset_s
    trials = []
    for t in _walks(session):
        rows = [f for f in t.footfalls if f["on_walkway"]]
        trials.append(dict(trial_name=t.name, fps=t.fps, feet=np.asarray(t.markers, np.float64)[:, index],
                           walkway=[[k, f["foot"], f["contact_time"] + dt, f["toe_off_time"] + dt,
                                     *f["heel_walkway"], *f["toe_walkway"]] for k, f in enumerate(rows)]))
    result = session_gait(trials, trials[0]["trial_name"])
    summary, steps = result["summary"], result["steps"]
    assert summary["n_matched"] == len(trials[0]["walkway"])
    errors = np.array([[s.get(f"{m}_error") for m in gait.STEP_ERROR_METRICS] for s in steps
                       if s.get("footfall_index") is not None], dtype=float)
    assert np.nanmax(np.abs(errors)) < 0.01
    assert abs(summary["walkway_alignment"]["time_offset_s"] - dt) <= 1.0 / trials[0]["fps"]
