"""Strides and time-normalised joint angles (compute.gait_cycle) against known truth.

Closed-form gaits (tests/synthetic_walks.periodic_gait) check the resampling to 0-100 % of the cycle, the
handling of incomplete cycles, missing samples, missed events and turns exactly; the generator's walks
(compute.synthetic, events detected by compute.gait from the true heel/toe markers) check the chain on
normal and pathological gait.
"""
from __future__ import annotations

import numpy as np
import pytest

from compute import gait, synthetic
from compute.gait_cycle import CYCLE_PERCENT, find_strides, gait_cycles, resample_to_cycle
from tests.synthetic_walks import PERIODIC_COORDINATES, POPULATIONS, periodic_gait, steady, walks

STRIDE_S = 1.2
FPS = 30.0
#: Peak of the normative knee-flexion waveform the generator uses, % of its stride (swing).
KNEE_PEAK_PERCENT = 100.0 * np.linspace(0, 1, 10001)[np.argmax(synthetic.gait_waveform("knee_flexion",
                                                                                        np.linspace(0, 1, 10001)))]


def test_resampled_cycles_match_the_known_waveforms():
    """Every complete stride is found, and its angles at p % equal the waveform at phase p/100.

    Tolerance 0.1° (measured max 0.008°): a cubic spline through 30 fps samples of a 6-harmonic curve."""
    footfalls, angles = periodic_gait(fps=FPS, stride_s=STRIDE_S)
    strides = find_strides(footfalls)
    for side in "LR":
        n_contacts = int((footfalls.foot == side).sum())
        assert (strides.side == side).sum() == n_contacts - 1      # incomplete end cycles are not strides
    assert not strides.turning.any()
    np.testing.assert_allclose(strides.duration, STRIDE_S, atol=1e-9)
    np.testing.assert_allclose(strides.toe_off_percent, 62.0, atol=1e-9)
    cycles = gait_cycles(angles, PERIODIC_COORDINATES, FPS, strides)
    assert cycles.angles.shape == (len(strides), 101, len(PERIODIC_COORDINATES))
    np.testing.assert_array_equal(cycles.percent, CYCLE_PERCENT)
    for stem, waveform in (("hip_flexion", "hip_flexion"), ("knee_angle", "knee_flexion"),
                           ("ankle_angle", "ankle_dorsiflexion")):
        truth = np.deg2rad(synthetic.gait_waveform(waveform, CYCLE_PERCENT / 100.0))
        error = np.abs(cycles.side_coordinate(stem) - truth[None])
        assert np.degrees(error.max()) < 0.1, (stem, np.degrees(error.max()))
    peak = CYCLE_PERCENT[np.argmax(cycles.side_coordinate("knee_angle"), axis=1)]
    assert np.all(np.abs(peak - KNEE_PEAK_PERCENT) <= 1.0), (peak, KNEE_PEAK_PERCENT)
    assert np.all(peak > strides.toe_off_percent)                  # the knee peaks in swing


def test_short_gaps_are_bridged_long_gaps_stay_missing():
    """Gaps up to max_gap_s (0.1 s = 3 frames) are splined over (within 0.5°); cycle points inside a
    10-frame gap are NaN and every other point keeps its value."""
    footfalls, angles = periodic_gait(fps=FPS, stride_s=STRIDE_S)
    strides = find_strides(footfalls)
    s = 2
    start = strides.start_time[s] * FPS
    holey = angles.copy()
    short = np.arange(int(start) + 5, int(start) + 7)              # 2 missing frames
    long = np.arange(int(start) + 15, int(start) + 25)             # 10 missing frames
    holey[short, :] = np.nan
    holey[long, :] = np.nan
    clean = resample_to_cycle(angles, FPS, strides.start_time[s], strides.end_time[s])
    patched = resample_to_cycle(holey, FPS, strides.start_time[s], strides.end_time[s])
    cycle_frames = start + CYCLE_PERCENT / 100.0 * STRIDE_S * FPS
    in_long_gap = (cycle_frames > long[0] - 1) & (cycle_frames < long[-1] + 1)
    assert np.isnan(patched[in_long_gap]).all()
    assert np.isfinite(patched[~in_long_gap]).all()
    assert np.degrees(np.abs(patched[~in_long_gap] - clean[~in_long_gap]).max()) < 0.5


def test_a_missed_contact_drops_the_ambiguous_strides_only():
    """Without one left contact, the right stride that should contain it and the left 'stride' spanning
    two cycles are both dropped; every other stride is kept."""
    footfalls, _ = periodic_gait(fps=FPS, stride_s=STRIDE_S)
    full = find_strides(footfalls)
    left = np.flatnonzero(footfalls.foot == "L")
    missing = left[3]
    thinned = footfalls.take(np.setdiff1d(np.arange(len(footfalls)), [missing]))
    strides = find_strides(thinned)
    t_missing = footfalls.contact_time[missing]
    assert len(strides) == len(full) - 3                            # two left strides merged + one right
    spans = (strides.start_time < t_missing) & (strides.end_time > t_missing)
    assert not spans.any()


def _turning_footfalls(step_length_m: float = 0.6, width_m: float = 0.1, step_s: float = 0.55):
    """Footfalls of a walk out (+X, 8 steps), a 180° turn over 4 steps, and back (-X, 8 steps)."""
    heading = np.concatenate([np.zeros(8), np.pi * np.arange(1, 5) / 4, np.full(8, np.pi)])
    centre = np.cumsum(step_length_m * np.stack([np.cos(heading), np.sin(heading)], axis=1), axis=0)
    feet = np.array(["R", "L"] * (heading.size // 2))
    lateral = np.where(feet == "L", 1.0, -1.0) * width_m / 2
    normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    heel = centre + lateral[:, None] * normal
    t = 0.5 + step_s * np.arange(heading.size)
    return gait.make_footfalls(feet, t, heel, None, t + 0.62 * 2 * step_s), heading


def test_turning_strides_are_labelled_and_dropped_by_default():
    """compute.gait does not label turns; strides whose direction departs > 20° from the overlapping
    opposite-foot strides are turning: all strides overlapping the turn and none of the straight ones."""
    footfalls, heading = _turning_footfalls()
    every = find_strides(footfalls, keep_turns=True)
    kept = find_strides(footfalls)
    assert every.turning.any() and not kept.turning.any()
    assert len(kept) == len(every) - int(every.turning.sum())
    direction = kept.end_heel_xy - kept.start_heel_xy
    angle = np.degrees(np.arctan2(direction[:, 1], direction[:, 0]))
    assert np.all((np.abs(angle) < 5) | (np.abs(np.abs(angle) - 180) < 5)), angle   # straight strides only
    # turning steps are footfalls 8-10 (heading 45°, 90°, 135°): a stride is turning when it or an
    # overlapping opposite-foot stride (footfalls start-1 -> start+1 -> start+3) contains one of them
    expected = (every.end_index >= 7) & (every.start_index <= 10)
    np.testing.assert_array_equal(every.turning, expected)
    assert (~expected).sum() >= 10


@pytest.fixture(scope="module")
def synthetic_walks():
    return walks()


@pytest.mark.parametrize("population", POPULATIONS)
def test_knee_flexion_peaks_in_swing_on_generated_walks(synthetic_walks, population):
    """Generator walks, events from compute.gait on the true markers, steady-state strides.

    * every stride's knee flexion peaks after its toe-off (in swing);
    * on sound legs the peak is at the normative waveform's KNEE_PEAK_PERCENT (72.7 %) minus the lag of
      the generator's foot contact behind the waveform's phase origin: within 5 % of the cycle for control
      (measured 69-70 %); the sound legs of the pathological gaits land ~13 % of a cycle later than the
      waveform origin (peaks measured at 58-60 %), so they are checked for being in swing only;
    * the affected leg's knee range of motion is reduced by the generator's knee gains (hemiparetic 0.55,
      prosthesis 0.3): ratio to the sound leg within ±0.1 of the gain.
    """
    walk = synthetic_walks[population]
    strides = steady(find_strides(walk.detected))
    assert len(strides) >= 4
    cycles = gait_cycles(walk.qpos, walk.joint_names, walk.fps, strides)
    knee = cycles.side_coordinate("knee_angle")
    assert np.isfinite(knee).all()
    peak = CYCLE_PERCENT[np.argmax(knee, axis=1)]
    assert np.all(peak > strides.toe_off_percent), (peak, strides.toe_off_percent)
    if population == "control":
        assert np.all(np.abs(peak - KNEE_PEAK_PERCENT) <= 5.0), peak
        return
    rom = np.ptp(knee, axis=1)
    affected = strides.side == walk.affected_side
    ratio = rom[affected].mean() / rom[~affected].mean()
    gain = {"hemiparetic": 0.55, "prosthesis": 0.3}[population]
    assert abs(ratio - gain) <= 0.1, (population, ratio)
