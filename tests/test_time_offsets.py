"""Per-camera time offsets fitted with the bilevel fit, and the ingest-time synchronisation pre-check.

Session (tests/time_offset_sessions.py): a 2 s walk at 30 fps seen by 5 cameras, 1 px noise, camera c shifted
by OFFSETS_FRAMES[c] (-3..+3 frames).  Tolerances (small fit, see bench/bench_time_offsets.py for the full-size
one): offsets recovered within 0.2 frames after removing the mean (the gauge); GC_5 within 0.01 of the same
session recorded in sync and fitted without offsets; the pre-check finds the injected offsets (3 frames and
less) within 0.2 frames and warns about those above 1 frame, and finds the synchronous session in sync.
"""
from __future__ import annotations

import numpy as np
import pytest

from compute.fit import TrialObservations
from compute.kinematics import load_body_model
from compute.params import PARAMETER_SETS
from compute.sync import check_sync, sync_warning
from tests.time_offset_sessions import offset_session

BODY = load_body_model("MOVI87")
OFFSETS_FRAMES = np.array([0.0, -3.0, 2.0, 3.0, -1.5])
PARAMS = PARAMETER_SETS["cpu_default"].replace(
    hidden_widths=(64, 64), steps=400, time_points_per_trial=32, warmup_steps=50, history_every=50,
    divergence_check_every=100)


def _trials(session) -> list[TrialObservations]:
    return [TrialObservations("walk01", session.fps, session.keypoints, session.confidence)]


@pytest.fixture(scope="module")
def shifted():
    return offset_session(BODY, OFFSETS_FRAMES, seed=3)


@pytest.fixture(scope="module")
def synchronous():
    return offset_session(BODY, np.zeros_like(OFFSETS_FRAMES), seed=3)


def test_precheck_finds_a_3_frame_offset(shifted, synchronous):
    names = [f"cam_{c + 1}" for c in range(len(OFFSETS_FRAMES))]
    check = check_sync(shifted.cameras, shifted.keypoints, shifted.confidence)
    expected = OFFSETS_FRAMES - OFFSETS_FRAMES[check.reference]
    print("pre-check lags", check.lags_frames.round(2), "expected", expected)
    np.testing.assert_allclose(check.lags_frames, expected, atol=0.2)
    warning = sync_warning(check, names, shifted.fps)
    named = warning.split(":", 1)[1]
    for name, lag in zip(names, expected):
        assert (name in named) == (abs(lag) > 1.0), (name, lag, warning)
    in_sync = check_sync(synchronous.cameras, synchronous.keypoints, synchronous.confidence)
    assert np.all(np.abs(in_sync.lags_frames) < 0.2), in_sync.lags_frames
    assert sync_warning(in_sync, names, synchronous.fps) == ""
