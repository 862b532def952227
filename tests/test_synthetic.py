"""Synthetic ground truth (compute/synthetic/, pipeline/synth.py): known answers, planted feet, files."""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from compute.kinematics import load_body_model
from compute.synthetic import SyntheticSessionConfig, SyntheticTrialSpec, default_trials, generate_session


@pytest.fixture(scope="module")
def body():
    return load_body_model("MOVI87")


@pytest.fixture(scope="module")
def session(body):
    config = SyntheticSessionConfig(seed=7, trials=default_trials(1, static=True, tug=True))
    return generate_session(config, body)


def test_generation_is_seeded(body, session):
    """Same seed, same session (generation speed is measured in bench/, not asserted here)."""
    config = SyntheticSessionConfig(seed=11, trials=(SyntheticTrialSpec("walk01", "walk", 10.0),))
    a = generate_session(config, body)
    b = generate_session(config, body)
    np.testing.assert_array_equal(a.trials[0].keypoints, b.trials[0].keypoints)
    np.testing.assert_array_equal(a.trials[0].qpos, b.trials[0].qpos)
    assert a.trials[0].qpos.shape == (300, 40)


def test_reprojecting_true_markers_reproduces_noise_free_keypoints(session):
    """Independent projector (cv2, float64) on the stored truth: agreement to 1e-6 px."""
    trial = session.trials[0]
    rig = session.cameras_true
    for c in range(len(session.camera_names)):
        pts = trial.markers[::10].reshape(-1, 3).astype(np.float64)
        pix, _ = cv2.projectPoints(pts, np.asarray(rig.rvec[c], np.float64), np.asarray(rig.tvec[c], np.float64),
                                   np.asarray(rig.K[c], np.float64), np.asarray(rig.dist[c], np.float64))
        ref = trial.keypoints_noise_free[c, ::10].reshape(-1, 2)
        assert np.max(np.abs(pix.reshape(-1, 2) - ref)) < 1e-6


def test_markers_equal_forward_kinematics_of_true_qpos(body, session):
    from compute.synthetic import forward_markers   # same compiled FK chunk as the generator (no new compile)

    trial = session.trials[0]
    fk = forward_markers(body, trial.qpos, session.log_scale, session.offsets)
    assert np.max(np.abs(fk - trial.markers)) < 1e-5


def test_walking_is_realistic(session):
    trial = session.trials[0]
    assert 0.6 <= trial.speed_m_s <= 1.6
    assert 90 <= trial.cadence_steps_per_min <= 135
    feet = "".join(f["foot"] for f in trial.footfalls if f["on_walkway"])
    assert len(feet) >= 6 and all(a != b for a, b in zip(feet, feet[1:])), feet
    heels = np.array([f["heel_world"] for f in trial.footfalls if f["on_walkway"]])
    steps = np.diff(heels[:, 0])
    assert np.all((steps > 0.4) & (steps < 0.9)), steps
    widths = np.abs(np.diff(heels[:, 1]))
    assert np.all((widths > 0.03) & (widths < 0.25)), widths


def _stance_windows(trial, lo, hi):
    """Frames inside [lo, hi] of each footfall's contact interval, per foot index."""
    for f in trial.footfalls:
        if not (f["on_walkway"] and np.isfinite(f["toe_off_time"])):
            continue
        a, b = f["contact_time"], f["toe_off_time"]
        mask = (trial.times >= a + lo * (b - a)) & (trial.times <= a + hi * (b - a))
        yield "LR".index(f["foot"]), mask


def test_stance_foot_does_not_slide(session):
    trial = session.trials[0]
    heel_speed = np.linalg.norm(np.gradient(trial.heel_markers[..., :2], trial.times, axis=0), axis=-1)
    speeds = [np.median(heel_speed[mask, foot]) for foot, mask in _stance_windows(trial, 0.25, 0.45) if mask.any()]
    assert len(speeds) >= 6
    # median < 0.05 m/s mid-stance: the generator levels the stance foot and holds it still
    assert np.median(speeds) < 0.05, speeds
    assert np.max(speeds) < 0.1, speeds


def test_contacts_match_foot_kinematics(session):
    trial = session.trials[0]
    heel = trial.heel_markers
    for f in trial.footfalls:
        if not f["on_walkway"]:
            continue
        foot = "LR".index(f["foot"])
        k = int(np.searchsorted(trial.times, f["contact_time"]))
        stance = slice(k, min(k + 8, len(trial.times)))
        swing = slice(max(k - 8, 0), k)
        # the heel has come down: close to its stance height, lower than during the preceding swing
        assert heel[k, foot, 2] - heel[stance, foot, 2].min() < 0.02
        assert heel[swing, foot, 2].max() > heel[stance, foot, 2].min() + 0.01
        # and moves slowly once down, far slower than the body
        v = np.linalg.norm(np.diff(heel[k:k + 4, foot, :2], axis=0), axis=-1) * trial.fps
        assert np.median(v) < 0.35 * trial.speed_m_s + 0.05


def test_observation_fractions_near_configured(session):
    config = session.config
    trial = session.trials[0]
    valid = trial.visible & ~trial.dropped
    assert abs(trial.dropped.mean() - config.drop_fraction) < 0.02
    assert abs(trial.is_outlier.sum() / valid.sum() - config.outlier_fraction) < 0.005
    assert trial.visible.mean() > 0.85
    assert np.all(np.isnan(trial.keypoints[~valid]))
    assert np.all(trial.confidence[~valid] == 0)
    assert np.all(np.isfinite(trial.keypoints[valid]))
    inliers = valid & ~trial.is_outlier
    err = np.linalg.norm(trial.keypoints[inliers] - trial.keypoints_noise_free[inliers], axis=-1)
    assert abs(np.sqrt(np.mean(err ** 2) / 2) - config.pixel_noise_px) < 0.05
    out_err = np.linalg.norm(trial.keypoints[trial.is_outlier] - trial.keypoints_noise_free[trial.is_outlier], axis=-1)
    assert np.median(out_err) > 20.0
    conf = trial.confidence[valid]
    assert 0.6 < np.mean(conf > 0.5) < 0.99


def test_calibration_perturbation_is_exact(body):
    from compute.cameras import center_change_m, rotation_change_deg

    config = SyntheticSessionConfig(seed=3, trials=(SyntheticTrialSpec("static01", "static", 1.0),),
                                    calibration_rotation_error_deg=1.0, calibration_translation_error_m=0.02)
    s = generate_session(config, body)
    np.testing.assert_allclose(rotation_change_deg(s.cameras_true, s.cameras_given), 1.0, atol=1e-3)
    np.testing.assert_allclose(center_change_m(s.cameras_true, s.cameras_given), 0.02, atol=1e-4)


def test_walkway_coordinates_are_known_transform_of_heels(session):
    w = session.walkway_transform
    c, s = np.cos(w.angle_rad), np.sin(w.angle_rad)
    for f in session.trials[0].footfalls:
        x, y = f["heel_world"][:2]
        expected = np.array([c * x - s * y, s * x + c * y]) + np.asarray(w.translation_m)
        np.testing.assert_allclose(f["heel_walkway"], expected, atol=1e-9)


def test_populations_are_asymmetric_where_expected(body):
    for population in ("hemiparetic", "prosthesis"):
        config = SyntheticSessionConfig(seed=5, population=population, trials=default_trials(1, False, False))
        s = generate_session(config, body)
        trial = s.trials[0]
        feet = "".join(f["foot"] for f in trial.footfalls[1:-2])
        assert all(a != b for a, b in zip(feet, feet[1:])), feet
        side = s.affected_side.lower()
        knee = {k: np.rad2deg(trial.qpos[:, s.joint_names.index(f"knee_angle_{k}")]).max() for k in "lr"}
        other = "l" if side == "r" else "r"
        assert knee[side] < knee[other] - 15, knee
        assert trial.speed_m_s < 1.3


def test_written_files_ingest_cleanly(tmp_path, session):
    from pipeline.manifest import plan_session
    from pipeline.synth import read_truth, write_session

    manifest = write_session(session, tmp_path / "S")
    plan = plan_session(manifest)          # parses and validates everything, no database
    assert plan is not None
    truth = read_truth(tmp_path / "S" / "truth.npz")
    trial = session.trials[0]
    np.testing.assert_array_equal(truth[f"{trial.name}__qpos"], trial.qpos)
    np.testing.assert_allclose(truth["cameras_true_rvec"], np.asarray(session.cameras_true.rvec))
    text = (tmp_path / "S" / trial.name / "walkway.csv").read_text().splitlines()
    assert text[0] == "foot,contact_time_s,toe_off_time_s,heel_x_m,heel_y_m,toe_x_m,toe_y_m"
    first = [f for f in trial.footfalls if f["on_walkway"]][0]
    assert abs(float(text[1].split(",")[1]) - (first["contact_time"] + session.walkway_transform.time_offset_s)) < 1e-3
