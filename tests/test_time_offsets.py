"""The ingest-time synchronisation pre-check of per-camera time offsets.

Session (tests/time_offset_sessions.py): a 2 s walk at 30 fps seen by 5 cameras, 1 px noise, camera c shifted
by OFFSETS_FRAMES[c] (-3..+3 frames).  The pre-check must find the injected offsets within 0.2 frames, warn
about exactly those above 1 frame, and find the synchronous session in sync.  The fitted offsets themselves
are measured by bench/bench_time_offsets.py (recovery within 0.43 frames so far, not yet the 0.2 aimed at).
"""
from __future__ import annotations

import numpy as np
import pytest

from compute.kinematics import load_body_model
from compute.sync import check_sync, sync_warning
from tests.time_offset_sessions import offset_session

BODY = load_body_model("MOVI87")
OFFSETS_FRAMES = np.array([0.0, -3.0, 2.0, 3.0, -1.5])


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


def test_fit_starts_its_offsets_at_the_precheck_lags(shifted):
    """``BundleAdjustmentConfig.time_offsets_from_epipolar``: the raw offsets the fit starts from map (through
    the bounded, mean-zero parameterisation) onto the injected offsets within 0.2 frames."""
    import jax.numpy as jnp

    from compute.fit import TrialObservations
    from compute.fit.gauge import effective_time_offsets
    from compute.fit.time_offsets import epipolar_initial_offsets

    trial = TrialObservations("walk01", shifted.fps, shifted.keypoints, shifted.confidence)
    raw = epipolar_initial_offsets(shifted.cameras, [trial, trial], bound_s=0.2)
    start = np.asarray(effective_time_offsets(jnp.asarray(raw), jnp.ones(len(raw)), 0.2)) * shifted.fps
    np.testing.assert_allclose(start, OFFSETS_FRAMES - OFFSETS_FRAMES.mean(), atol=0.2)
