"""Held-out validation of a fit (compute.fit.crossval) on an 8-camera synthetic walk with 1.5 px pixel noise.

Camera cross-validation on an exactly calibrated rig: each camera's keypoints, predicted by a refit without it
through its input calibration, are within 1.5x the fit's in-sample error, and closer than a robust triangulation
from the same remaining cameras.  Calibration check: a rig whose camera 2 is given 2 deg / 30 mm off is
corrected by bundle adjustment, and held-out frames confirm it ("improves"); on the exact rig nothing is
flagged.  Measured (seed 0, 30 frames, 200 steps): held-out medians 1.72-1.88 px against 1.63-1.81 px in-sample
and 1.87-2.05 px for triangulation.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

N_CAMERAS, N_FRAMES, NOISE_PX, FPS = 8, 30, 1.5, 30.0
PERTURBED_CAMERA, PERTURBATION_DEG, PERTURBATION_MM = 2, 2.0, 30.0


def _params():
    from compute.params import PARAMETER_SETS

    return PARAMETER_SETS["cpu_default"].replace(
        hidden_widths=(32, 32), steps=200, time_points_per_trial=16, warmup_steps=10, history_every=10,
        divergence_check_every=50)


@functools.lru_cache(maxsize=None)
def _session():
    """(body, exact rig, trials): a walk along +X seen by 8 cameras on a 4 m circle, COCO17, 1.5 px noise."""
    import jax.numpy as jnp

    from compute.cameras import make_camera, project_to_rig, stack_cameras
    from compute.fit import TrialObservations
    from compute.kinematics import load_body_model, neutral_qpos
    from tests.fit_fixtures import _look_at_camera, _markers_jit

    body = load_body_model("COCO17")
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, N_CAMERAS, endpoint=False) + 0.1
    cams = [_look_at_camera(np.array([4.0 * np.cos(a), 4.0 * np.sin(a), 1.5]), np.array([0.0, 0.0, 0.9]))
            for a in angles]
    rig = stack_cameras([make_camera(K, np.zeros(5), rvec, tvec, size) for K, rvec, tvec, size in cams])
    names = body.joint_names
    t = np.arange(N_FRAMES) / FPS
    q = np.tile(np.asarray(neutral_qpos(body)), (N_FRAMES, 1))
    q[:, names.index("pelvis_tx")] = -0.6 + 1.2 * t
    phase = 2 * np.pi * 0.9 * t + 0.3
    for side, sign in (("r", 1.0), ("l", -1.0)):
        q[:, names.index(f"hip_flexion_{side}")] = 0.35 * sign * np.sin(phase)
        q[:, names.index(f"knee_angle_{side}")] = np.clip(0.5 * (1 + sign * np.sin(phase + 1.0)), 0, 1.2)
    log_scale = rng.normal(0, 0.02, len(body.scale_group_names))
    markers = _markers_jit(body, jnp.asarray(q), jnp.asarray(log_scale), jnp.zeros((len(body.marker_names), 3)))
    keypoints = np.asarray(project_to_rig(rig, markers), np.float32)
    keypoints = keypoints + rng.normal(0, NOISE_PX, keypoints.shape).astype(np.float32)
    confidence = np.full(keypoints.shape[:3], 0.9, np.float32)
    return body, rig, [TrialObservations("walk01", FPS, keypoints, confidence)]


def perturbed_rig(rig, camera: int, degrees: float, millimetres: float):
    """``rig`` with ``camera`` rotated by ``degrees`` about an oblique axis and its centre moved ``millimetres``."""
    import jax
    from scipy.spatial.transform import Rotation

    rvec, tvec = np.array(rig.rvec, np.float64), np.array(rig.tvec, np.float64)
    rotation = Rotation.from_rotvec(rvec[camera]).as_matrix()
    centre = -rotation.T @ tvec[camera] + np.array([0.6, -0.48, 0.64]) * millimetres / 1000.0
    turn = Rotation.from_rotvec(np.deg2rad(degrees) * np.array([0.48, 0.6, 0.64])).as_matrix()
    rotation = rotation @ turn
    rvec[camera] = Rotation.from_matrix(rotation).as_rotvec()
    tvec[camera] = -rotation @ centre
    return jax.tree.map(np.asarray, type(rig)(K=rig.K, dist=rig.dist, rvec=rvec.astype(np.float32),
                                              tvec=tvec.astype(np.float32), size=rig.size))


@pytest.fixture(scope="module")
def exact():
    from compute.fit import fit_session
    from compute.fit.crossval import cross_validate, fitted_state

    body, rig, trials = _session()
    fit = fit_session(body, rig, trials, _params(), seed=0)
    return fit, cross_validate(body, rig, trials, _params(), fitted_state(fit), seed=0)


@pytest.fixture(scope="module")
def perturbed():
    from compute.fit import fit_session
    from compute.fit.crossval import check_calibration, fitted_state

    body, rig, trials = _session()
    given = perturbed_rig(rig, PERTURBED_CAMERA, PERTURBATION_DEG, PERTURBATION_MM)
    fit = fit_session(body, given, trials, _params(), seed=0)
    return fit, check_calibration(body, given, trials, _params(), fitted_state(fit), seed=0)


def test_held_out_camera_error_is_close_to_in_sample_and_below_triangulation(exact):
    _, result = exact
    assert len(result.held_out_cameras) == N_CAMERAS and result.warm_start and result.refit_steps == 100
    for held in result.held_out_cameras:
        print(f"camera {held.camera_index}: held-out {held.fit.median_px:.2f} px (GC5 {held.fit.gc5:.3f}), "
              f"in-sample {held.in_sample_median_px:.2f}, triangulation {held.triangulation.median_px:.2f} px "
              f"(GC5 {held.triangulation.gc5:.3f}, coverage {held.triangulation.coverage:.2f})")
        assert held.fit.n_keypoints == N_FRAMES * 17
        assert held.fit.coverage == 1.0 and held.fit.gc_curve.shape == (20,)
        # 1.5 px Gaussian noise per axis: the error norm's median is 1.77 px for a perfect prediction
        assert 1.2 < held.in_sample_median_px < 2.3
        assert held.fit.median_px < 1.5 * held.in_sample_median_px
        assert held.fit_median_common_px < held.triangulation.median_px
        assert held.fit.gc5 >= held.triangulation.gc5 - 0.005
    fit_medians = [h.fit.median_px for h in result.held_out_cameras]
    tri_medians = [h.triangulation.median_px for h in result.held_out_cameras]
    assert np.median(fit_medians) < 0.97 * np.median(tri_medians)


def test_exact_rig_needs_no_held_out_world_note(exact):
    _, result = exact
    assert result.notes == []


def test_held_out_camera_far_worse_than_triangulation_gets_a_note():
    """A fit with bundle adjustment whose held-out camera is predicted 5x worse than triangulation is told to
    read a fit without bundle adjustment; one within 2x is not."""
    from compute.fit.crossval import CameraCalibrationCheck, CameraHoldOut, ErrorSummary, held_out_world_notes

    def summary(median):
        return ErrorSummary(median_px=median, gc_curve=np.zeros(20), n_keypoints=10, coverage=1.0)

    def held(c, fit_px, tri_px):
        return CameraHoldOut(camera_index=c, fit=summary(fit_px), triangulation=summary(tri_px),
                             fit_median_common_px=fit_px, in_sample_median_px=5.0, remaining_median_px=5.0)

    calibration = [CameraCalibrationCheck(camera_index=c, rotation_change_deg=deg, centre_change_mm=10.0,
                                          refined=summary(5.0), input=summary(6.0), verdict="improves",
                                          flagged=False) for c, deg in ((0, 5.3), (1, 2.4))]
    notes = held_out_world_notes([held(0, 110.0, 21.0), held(1, 33.0, 24.0)], calibration)
    assert len(notes) == 1 and "camera 0 110 px vs 21 px" in notes[0] and "camera 1" not in notes[0]
    assert "5.3 deg" in notes[0] and "without bundle adjustment" in notes[0]
    assert held_out_world_notes([held(0, 30.0, 21.0), held(1, float("nan"), 24.0)], calibration) == []


def test_exact_calibration_is_not_flagged(exact):
    fit, result = exact
    config = _params().crossval
    for check in result.calibration:
        print(f"camera {check.camera_index}: {check.rotation_change_deg:.3f} deg {check.centre_change_mm:.1f} mm, "
              f"held-out frames {check.refined.median_px:.2f} px refined vs {check.input.median_px:.2f} px input: "
              f"{check.verdict}")
        assert check.rotation_change_deg < config.max_rotation_change_deg
        assert check.centre_change_mm < config.max_centre_change_mm
        assert not check.flagged
        # nothing to correct: the refined rig predicts the held-out frames as well as the exact one (+-10 %)
        assert abs(check.refined.median_px - check.input.median_px) < 0.1 * check.input.median_px
    # every 5th frame from frame 2 (6 of 30) in 8 cameras, 17 keypoints each
    assert result.calibration[0].refined.n_keypoints == 6 * 17


def test_bundle_adjustment_of_a_miscalibrated_camera_improves_held_out_frames(perturbed):
    fit, checks = perturbed
    check = checks[PERTURBED_CAMERA]
    print(f"perturbed camera: moved {check.rotation_change_deg:.2f} deg {check.centre_change_mm:.1f} mm; "
          f"held-out frames {check.refined.median_px:.2f} px refined vs {check.input.median_px:.2f} px input")
    assert check.verdict == "improves" and not check.flagged
    assert check.refined.median_px < 0.5 * check.input.median_px
    assert check.refined.median_px < 1.5 * 1.77
    # the move undoes most of the 2 deg perturbation
    assert 1.0 < check.rotation_change_deg < 3.0
    assert not any(c.flagged for c in checks)


def test_held_out_gauge_keeps_the_left_out_camera_at_its_input_calibration():
    import jax
    import jax.numpy as jnp

    from compute.fit.crossval import held_out_gauge_projection
    from compute.fit.gauge import gauge_projection_matrix

    _, rig, _ = _session()
    keep = np.arange(N_CAMERAS) != 3
    projection = held_out_gauge_projection(rig, keep)
    assert projection.shape == (6 * N_CAMERAS, 6 * N_CAMERAS)
    delta = np.random.default_rng(1).normal(size=6 * N_CAMERAS).astype(np.float32)
    moved = (projection @ delta).reshape(N_CAMERAS, 6)
    assert np.all(moved[3] == 0.0)
    # the kept cameras' block is the gauge projector of the kept rig alone: idempotent, symmetric
    np.testing.assert_allclose(projection @ projection, projection, atol=1e-5)
    sub = gauge_projection_matrix(jax.tree.map(lambda x: jnp.asarray(x)[keep], rig))
    index = np.concatenate([np.arange(6 * c, 6 * c + 6) for c in np.flatnonzero(keep)])
    np.testing.assert_allclose(projection[np.ix_(index, index)], sub, atol=1e-6)
