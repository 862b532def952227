"""The ingest-time synchronisation pre-check of per-camera time offsets.

Session (tests/time_offset_sessions.py): a 2 s walk at 30 fps seen by 5 cameras, 1 px noise, camera c shifted
by OFFSETS_FRAMES[c] (-3..+3 frames).  The pre-check must find the injected offsets within 0.2 frames, warn
about exactly those above 1 frame, and find the synchronous session in sync.  The last test fits a 4 s walk
seen by 8 cameras with bundle adjustment on and must recover the offsets within 0.2 frames.
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


# the fitted-offset acceptance session of bench/bench_time_offsets.py: 8 cameras, a 4 s walk, sub-frame offsets too
FIT_OFFSETS_FRAMES = np.array([0.0, -3.0, 2.0, 3.0, -1.5, 0.5, -2.25, 1.0])


@pytest.mark.slow
def test_fit_recovers_injected_offsets_within_a_fifth_of_a_frame():
    """Issue acceptance: offsets of -3..+3 frames injected per camera are fitted within 0.2 frames (mean removed:
    the gauge) by cpu_default with bundle adjustment on, and GC_5 is within 0.01 of the synchronous fit's."""
    from compute.fit import TrialObservations, fit_session
    from compute.params import PARAMETER_SETS

    params = PARAMETER_SETS["cpu_default"]
    fits = {}
    for label, offsets, on in (("synchronous", np.zeros_like(FIT_OFFSETS_FRAMES), False),
                               ("offsets fitted", FIT_OFFSETS_FRAMES, True)):
        session = offset_session(BODY, offsets, seed=5, n_frames=120)
        trial = TrialObservations("walk01", session.fps, session.keypoints, session.confidence)
        fits[label] = fit_session(BODY, session.cameras, [trial], params.replace(fit_time_offsets=on), seed=0)
    fitted = fits["offsets fitted"].time_offset_s * 30.0
    truth = FIT_OFFSETS_FRAMES - FIT_OFFSETS_FRAMES.mean()
    print("fitted offsets (frames)", fitted.round(3), "truth", truth, "GC_5",
          {k: round(f.gc5, 4) for k, f in fits.items()})
    np.testing.assert_allclose(fitted, truth, atol=0.2)
    assert fits["offsets fitted"].gc5 >= fits["synchronous"].gc5 - 0.01
