"""Shape buckets: the padded shape a session's fit is compiled for, and that the padding which puts a session
into its bucket does not change the fit.

Sessions: ``tests.fit_fixtures.tiny_session`` (a short synthetic walk, MOVI87, 30 fps, 1 px noise) with 3 or 4
cameras and 3 or 4 trials of 20-30 frames, all in the bucket (C=4, N=4, T_max=512); a few steps of a tiny network.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest

from compute.fit import TrialObservations, initialise, make_train_step, run_optimisation
from compute.fit.observations import DEFAULT_BUCKETS, ShapeBuckets, prepare_session_data, session_shape
from compute.kinematics import load_body_model
from tests.fit_fixtures import TEST_PARAMS, tiny_session

PARAMS = TEST_PARAMS.replace(steps=10, history_every=1, divergence_check_every=5)
BODY = load_body_model("MOVI87")


def _observations(session, lengths) -> list[TrialObservations]:
    return [TrialObservations(t.name, t.fps, t.keypoints[:, :n], t.confidence[:, :n])
            for t, n in zip(session.trials, lengths)]


@pytest.fixture(scope="module")
def three_by_three():
    """3 cameras, 3 trials of 24, 30 and 20 frames."""
    session = tiny_session(seed=5, n_frames=30, n_cameras=3, n_trials=3)
    return session.cameras_given, _observations(session, (24, 30, 20))


@pytest.fixture(scope="module")
def bucket_step():
    """One compiled step that must serve every session of the bucket (C=4, N=4, T_max=512)."""
    return make_train_step(max_traces=1)


def test_counts_fall_into_the_stated_buckets():
    assert session_shape(3, 1, 100) == (4, 1, 512)
    assert session_shape(4, 3, 512) == (4, 4, 512)
    assert session_shape(5, 2, 513) == (8, 2, 1024)
    assert session_shape(16, 16, 3000) == (16, 16, 4096)
    assert session_shape(17, 17, 10) == (24, 32, 512)  # beyond the last bucket: multiples of 8 and 16
    assert session_shape(5, 3, 100, buckets=None) == (5, 3, 100)
    with pytest.raises(ValueError):
        ShapeBuckets(cameras=(8, 4))


def test_padding_has_no_weight_and_no_gauge_freedom(three_by_three):
    cameras, trials = three_by_three
    data = prepare_session_data(cameras, trials, DEFAULT_BUCKETS)
    plain = prepare_session_data(cameras, trials)
    assert data.keypoints.shape == (4, 512, 4, len(BODY.marker_names), 2) and plain.keypoints.shape[:3] == (3, 30, 3)
    np.testing.assert_array_equal(data.camera_mask, [1, 1, 1, 0])
    np.testing.assert_array_equal(data.trial_mask, [1, 1, 1, 0])
    confidence = np.asarray(data.confidence)
    assert not confidence[3].any() and not confidence[:, :, 3].any() and not confidence[0, 24:].any()
    np.testing.assert_array_equal(confidence[:3, :30, :3], np.asarray(plain.confidence))
    gauge = np.asarray(data.gauge_projection)
    assert not gauge[18:].any() and not gauge[:, 18:].any()
    np.testing.assert_allclose(gauge[:18, :18], np.asarray(plain.gauge_projection), atol=1e-6)
    assert np.all(np.asarray(data.n_frames) >= 2)  # padded trials sample valid frames


def test_padding_does_not_change_the_fit(three_by_three, bucket_step):
    cameras, trials = three_by_three
    networks, beta, _ = initialise(BODY, cameras, trials, PARAMS, jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)
    plain, plain_history, _, _ = run_optimisation(BODY, prepare_session_data(cameras, trials), networks, beta,
                                                  PARAMS, key)
    padded, padded_history, _, _ = run_optimisation(BODY, prepare_session_data(cameras, trials, DEFAULT_BUCKETS),
                                                    networks, beta, PARAMS, key, train_step=bucket_step)
    print("loss plain", plain_history[:, 1], "padded", padded_history[:, 1])
    assert plain_history.shape == padded_history.shape == (PARAMS.optimiser.steps, plain_history.shape[1])
    assert np.all(np.diff(plain_history[[0, -1], 1]) < 0)  # the fit moved: the comparison is not vacuous
    np.testing.assert_allclose(padded_history, plain_history, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(padded.body.log_scale, plain.body.log_scale, atol=1e-5)
    np.testing.assert_allclose(padded.cameras.rotation[:3], plain.cameras.rotation, atol=1e-6)
    assert not np.asarray(padded.cameras.rotation[3]).any() and not np.asarray(padded.cameras.centre[3]).any()
    for name in ("rotation", "centre"):  # the cameras did move (bundle adjustment ran)
        assert np.abs(np.asarray(getattr(plain.cameras, name))).max() > 0
