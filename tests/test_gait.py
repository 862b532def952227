"""compute/gait.py on analytic walkers with known footprints, contact and toe-off times."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from compute.gait import (
    align_walkway,
    compare_session_to_walkway,
    detect_foot_events,
    footfalls_from_markers,
    make_footfalls,
    match_footfalls,
    step_parameters,
    walkway_errors,
)

FPS = 60.0
STEP_LENGTH = 0.65
STEP_WIDTH = 0.12
STEP_TIME = 0.55  # 109 steps/min
SWING_TIME = 0.44  # 40 % of the 1.1 s stride
HEEL_RISE_TIME = 0.2  # heel lifts (vertically) during the last 0.2 s of stance
FOOT_LENGTH = 0.2
HEEL_HEIGHT = 0.05


@dataclass
class Walker:
    times: np.ndarray  # (T,)
    heel: dict  # foot -> (T, 3)
    toe: dict
    footprint_foot: np.ndarray  # (K,)
    footprint_xy: np.ndarray  # (K, 2) heel positions
    contact_time: np.ndarray  # (K,)
    footprint_heading: np.ndarray  # (K,)


def centerline(s: float, straight: float, radius: float) -> tuple[np.ndarray, float]:
    """Walk `straight` metres along +X, turn 180° left on a circle of `radius`, walk back along -X."""
    if s <= straight:
        return np.array([s, 0.0]), 0.0
    arc = np.pi * radius
    if s <= straight + arc:
        phi = (s - straight) / radius
        return np.array([straight + radius * np.sin(phi), radius - radius * np.cos(phi)]), phi
    return np.array([straight - (s - straight - arc), 2 * radius]), np.pi


def make_walker(n_steps: int, straight: float = 100.0, radius: float = 1.0, t0: float = 0.5, origin=(0.0, 0.0)) -> Walker:
    ks = np.arange(n_steps)
    foot = np.where(ks % 2 == 0, "L", "R")
    xy, heading = [], []
    for k in ks:
        c, psi = centerline(k * STEP_LENGTH, straight, radius)
        normal = np.array([-np.sin(psi), np.cos(psi)])
        side = 1.0 if foot[k] == "L" else -1.0
        xy.append(c + side * STEP_WIDTH / 2 * normal + np.asarray(origin))
        heading.append(psi)
    xy, heading = np.array(xy), np.array(heading)
    contact = t0 + ks * STEP_TIME
    times = np.arange(0.0, contact[-1] + 0.6, 1.0 / FPS)
    heel, toe = {}, {}
    for f in ("L", "R"):
        idx = ks[foot == f]
        H = np.zeros((times.size, 3))
        Tt = np.zeros((times.size, 3))
        for i, t in enumerate(times):
            later = np.nonzero(contact[idx] > t)[0]
            m = later[0] if later.size else None
            if m is None or m == 0:
                k = idx[-1] if m is None else idx[0]
                pos, psi, z = xy[k], heading[k], HEEL_HEIGHT
            else:
                a, b = idx[m - 1], idx[m]
                toe_off = contact[b] - SWING_TIME
                if t >= toe_off:  # swing
                    s = (t - toe_off) / SWING_TIME
                    p = (1 - np.cos(np.pi * s)) / 2
                    pos = xy[a] + p * (xy[b] - xy[a])
                    dpsi = np.angle(np.exp(1j * (heading[b] - heading[a])))
                    psi = heading[a] + p * dpsi
                    z = HEEL_HEIGHT + 0.04 * (1 - p) + 0.08 * np.sin(np.pi * s) ** 2
                else:  # stance, heel rising before toe-off
                    pos, psi = xy[a], heading[a]
                    rise = max(0.0, (t - (toe_off - HEEL_RISE_TIME)) / HEEL_RISE_TIME)
                    z = HEEL_HEIGHT + 0.04 * rise**2
            H[i] = [pos[0], pos[1], z]
            Tt[i] = [pos[0] + FOOT_LENGTH * np.cos(psi), pos[1] + FOOT_LENGTH * np.sin(psi), 0.02]
        heel[f], toe[f] = H, Tt
    return Walker(times, heel, toe, foot, xy, contact, heading)


@pytest.fixture(scope="module")
def straight_walker() -> Walker:
    return make_walker(14)


@pytest.fixture(scope="module")
def tug_walker() -> Walker:
    return make_walker(28, straight=4.0, radius=1.0)


def _true_footfalls(w: Walker, first: int = 2):
    keep = np.arange(len(w.contact_time)) >= first  # the first two footprints are stood on from the start
    return make_footfalls(w.footprint_foot[keep], w.contact_time[keep], w.footprint_xy[keep])


@pytest.mark.parametrize("walker_name", ["straight_walker", "tug_walker"])
def test_contacts_and_toe_offs_within_one_frame(walker_name, request):
    w: Walker = request.getfixturevalue(walker_name)
    for f in ("L", "R"):
        contacts, toe_offs = detect_foot_events(w.heel[f], w.toe[f], FPS)
        true_contacts = w.contact_time[(w.footprint_foot == f)][1:] * FPS  # first footprint has no swing
        assert contacts.shape == true_contacts.shape, (contacts, true_contacts)
        assert np.abs(contacts - true_contacts).max() < 1.0
        assert np.abs(contacts - true_contacts).max() < 0.25  # in fact a quarter frame
        np.testing.assert_allclose(toe_offs, true_contacts - SWING_TIME * FPS, atol=1.0)


def test_straight_walk_step_parameters(straight_walker):
    w = straight_walker
    ff = footfalls_from_markers(w.heel["L"], w.toe["L"], w.heel["R"], w.toe["R"], FPS)
    truth = _true_footfalls(w)
    assert len(ff) == len(truth)
    np.testing.assert_array_equal(ff.foot, truth.foot)
    np.testing.assert_allclose(ff.contact_time, truth.contact_time, atol=1 / FPS)
    np.testing.assert_allclose(ff.heel_xy, truth.heel_xy, atol=1e-3)
    np.testing.assert_allclose(ff.toe_off_time[:-2], truth.contact_time[2:] - SWING_TIME, atol=1 / FPS)
    steps = step_parameters(ff)
    inner = slice(1, None)  # the first detected footfall has no detected predecessor
    np.testing.assert_allclose(steps.step_length[inner], STEP_LENGTH, atol=5e-3)
    np.testing.assert_allclose(steps.step_width[inner], STEP_WIDTH, atol=5e-3)
    np.testing.assert_allclose(steps.stride_length[2:], 2 * STEP_LENGTH, atol=5e-3)
    np.testing.assert_allclose(steps.step_time[inner], STEP_TIME, atol=1 / FPS)
    np.testing.assert_allclose(steps.cadence[inner], 60 / STEP_TIME, rtol=0.03)
    np.testing.assert_allclose(steps.speed[2:], STEP_LENGTH / STEP_TIME, rtol=0.03)
    assert np.isnan(steps.step_length[0]) and np.isnan(steps.stride_length[:2]).all()
    assert set(steps.as_dict()) >= {"foot", "step_length", "stride_length", "step_width", "cadence", "speed"}


def test_tug_turn_step_parameters_match_true_footprints(tug_walker):
    w = tug_walker
    ff = footfalls_from_markers(w.heel["L"], w.toe["L"], w.heel["R"], w.toe["R"], FPS)
    truth = _true_footfalls(w)
    np.testing.assert_array_equal(ff.foot, truth.foot)
    ours, ref = step_parameters(ff), step_parameters(truth)
    for name in ("step_length", "stride_length", "step_width"):
        got, want = getattr(ours, name), getattr(ref, name)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert np.nanmax(np.abs(got - want)) < 5e-3, name
    # On the straight legs before and after the turn the step geometry is exact.
    heading = w.footprint_heading[2:]
    straight = np.zeros(len(heading), bool)
    for k in range(1, len(heading) - 1):
        straight[k] = heading[k - 1] == heading[k] == heading[k + 1]
    assert straight[:3].sum() >= 2 and straight[-4:].sum() >= 2  # both legs are tested
    np.testing.assert_allclose(ours.step_length[straight], STEP_LENGTH, atol=5e-3)
    np.testing.assert_allclose(ours.step_width[straight], STEP_WIDTH, atol=5e-3)
    # Through the turn (37° of heading per step here) the chord-based line of progression still gives
    # positive step lengths of the right size; widths swing between inner and outer foot (0.04-0.31 m).
    assert np.nanmin(ours.step_length) > 0.5 and np.nanmax(ours.step_width) < 0.35


def test_standing_still_and_missing_samples_give_no_spurious_events(straight_walker):
    w = straight_walker
    still = np.tile(w.heel["L"][:1], (300, 1))
    c, o = detect_foot_events(still, still + [0.2, 0, 0], FPS)
    assert c.size == 0 and o.size == 0
    heel = w.heel["L"].copy()
    true_c = w.contact_time[w.footprint_foot == "L"][1:] * FPS
    gap_at = int(true_c[2])
    heel[gap_at - 3 : gap_at + 3] = np.nan
    c, _ = detect_foot_events(heel, w.toe["L"], FPS)
    assert c.size == true_c.size - 1
    assert np.min(np.abs(c[:, None] - np.delete(true_c, 2)[None, :]), axis=0).max() < 1.0


def _rotation(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def test_align_walkway_recovers_rotation_translation_and_time_offset_exactly():
    rng = np.random.default_rng(0)
    model_xy = rng.uniform([-1, -1], [6, 1], size=(30, 2))
    model_t = np.sort(rng.uniform(0, 20, 30))
    A_true, b_true, dt_true = _rotation(7.0), np.array([1.25, -0.4]), 2.345
    walkway_xy = model_xy @ A_true.T + b_true
    walkway_t = model_t + dt_true
    for rigid in (False, True):
        A, b, dt = align_walkway(model_xy, model_t, walkway_xy, walkway_t, rigid=rigid)
        np.testing.assert_allclose(A, A_true, atol=1e-6)
        np.testing.assert_allclose(b, b_true, atol=1e-6)
        assert abs(dt - dt_true) < 1e-6
    with pytest.raises(ValueError, match="align_walkway"):
        align_walkway(model_xy[:, :1], model_t, walkway_xy, walkway_t)


def test_match_footfalls_respects_foot_and_time_gap():
    model = make_footfalls(["L", "R", "L", "R"], [1.0, 1.5, 2.0, 2.5], np.zeros((4, 2)))
    walk = make_footfalls(["R", "L", "R", "L"], [11.52, 12.03, 12.9, 13.0], np.zeros((4, 2)))
    mi, wi = match_footfalls(model, walk, max_time_gap_s=0.1, time_offset_s=10.0)
    np.testing.assert_array_equal(mi, [1, 2])
    np.testing.assert_array_equal(wi, [0, 1])


@pytest.mark.parametrize("dt_true, prior", [(0.23, 0.0), (3.21, 3.0)])
def test_session_walkway_comparison_on_two_trials_of_a_partial_walkway(dt_true, prior):
    """Steady walking is periodic in time: offsets a stride apart are told apart by the prior."""
    A_true, b_true = _rotation(7.0), np.array([-0.8, 0.35])
    model_trials, walkway_trials = [], []
    for i, origin in enumerate([(0.0, 0.0), (0.3, 0.05)]):
        w = make_walker(12, origin=origin, t0=0.5 + 0.1 * i)
        model_trials.append(footfalls_from_markers(w.heel["L"], w.toe["L"], w.heel["R"], w.toe["R"], FPS))
        on_mat = (w.footprint_xy[:, 0] > 1.0) & (w.footprint_xy[:, 0] < 5.5)  # walkway sees the middle only
        walkway_trials.append(
            make_footfalls(w.footprint_foot[on_mat], w.contact_time[on_mat] + dt_true, w.footprint_xy[on_mat] @ A_true.T + b_true)
        )
    result = compare_session_to_walkway(model_trials, walkway_trials, prior_offset_s=prior)
    np.testing.assert_allclose(result.A, A_true, atol=1e-3)
    np.testing.assert_allclose(result.b, b_true, atol=2e-3)
    assert abs(result.time_offset - dt_true) < 1 / FPS
    assert result.n_matched == sum(len(w) for w in walkway_trials)
    for name in ("step_length", "stride_length", "step_width"):
        errs = np.concatenate([e[f"{name}_error"] for e in result.errors])
        assert np.nanmax(np.abs(errs)) < 2e-3, name
        assert result.sigma_iqr[name] < 5e-3
    # walkway_errors on its own, with the fitted alignment, gives the same table.
    e0 = walkway_errors(model_trials[0], walkway_trials[0], result.A, result.b, result.time_offset)
    np.testing.assert_allclose(e0["step_width_error"], result.errors[0]["step_width_error"])
    assert np.all(e0["heel_position_error_m"] < 2e-3)
