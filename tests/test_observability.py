"""Per-coordinate observability: sparse keypoint sets leave the lumbar spine and pelvis tilt undetermined."""
from __future__ import annotations

import numpy as np
import pytest

from compute import kinematics as kin
from compute.fit.observability import posterior_sd, reprojection_curvature, trial_coordinate_sd
from compute.synthetic.rig import sample_rig


def test_posterior_sd_is_the_reference_sd_without_data_and_the_marginal_with_data():
    np.testing.assert_allclose(posterior_sd(np.zeros((2, 3, 3)), 0.5), 0.5)
    # two coordinates seen only through their sum: each alone is undetermined (marginal ~ reference sd)
    h = 1e6 * np.array([[1.0, 1.0], [1.0, 1.0]])
    sd = posterior_sd(h, 1.0)
    assert np.all(sd > 0.7)
    sd = posterior_sd(np.diag([1e6, 1e2]), 1.0)
    np.testing.assert_allclose(sd, [1e-3, 1 / np.sqrt(101.0)], rtol=1e-6)


def test_curvature_is_confidence_weighted_gauss_newton_over_pixel_noise():
    rng = np.random.default_rng(0)
    jac = rng.normal(size=(2, 3, 4, 2, 5))                       # (F, C, J, 2, Q)
    conf = rng.uniform(size=(2, 3, 4))
    h = reprojection_curvature(jac, conf, pixel_sd_px=2.0)
    flat = jac[1].reshape(-1, 5)
    w = np.repeat(conf[1].reshape(-1), 2)
    np.testing.assert_allclose(h[1], flat.T @ (w[:, None] * flat) / 4.0, rtol=1e-10)
    assert np.all(reprojection_curvature(jac, np.zeros_like(conf), 2.0) == 0)


def walking_poses(body: kin.BodyModel, n: int = 4) -> np.ndarray:
    """(n, Q) mid-stride poses around the origin, facing +X."""
    index = {name: i for i, name in enumerate(body.joint_names)}
    q = np.repeat(np.asarray(kin.neutral_qpos(body))[None], n, axis=0)
    phase = np.linspace(0, 2 * np.pi, n, endpoint=False)
    for name, amp, offset, shift in [("hip_flexion_r", 20, 10, 0), ("hip_flexion_l", 20, 10, np.pi),
                                     ("knee_angle_r", 25, 30, 0.5), ("knee_angle_l", 25, 30, np.pi + 0.5),
                                     ("arm_flex_r", 15, 0, np.pi), ("arm_flex_l", 15, 0, 0),
                                     ("elbow_flex_r", 5, 20, 0), ("elbow_flex_l", 5, 20, 0),
                                     ("pelvis_tilt", 2, -8, 0), ("lumbar_extension", 2, -3, 0),
                                     ("pro_sup_r", 0, 80, 0), ("pro_sup_l", 0, 80, 0)]:
        q[:, index[name]] = np.deg2rad(offset + amp * np.sin(phase + shift))
    return q.astype(np.float32)


@pytest.fixture(scope="module")
def rig():
    return sample_rig(np.random.default_rng(3), 8, (1920, 1080))[0]


def coordinate_sd_deg(marker_set: str, rig) -> dict[str, float]:
    body = kin.load_body_model(marker_set)
    qpos = walking_poses(body)
    conf = np.ones((8, qpos.shape[0], body.n_markers), np.float32)
    sd = trial_coordinate_sd(body, rig, qpos, np.zeros(len(body.scale_group_names)),
                             np.zeros((body.n_markers, 3)), conf, pixel_sd_px=2.0, reference_sd=1.0)
    assert sd.shape == (body.n_joints,)
    return dict(zip(body.joint_names, np.rad2deg(sd)))


def test_lumbar_and_pelvis_tilt_are_less_determined_by_coco17_than_by_movi87_knees_are_by_both(rig):
    movi = coordinate_sd_deg("MOVI87", rig)
    coco = coordinate_sd_deg("COCO17", rig)
    shown = {name: (round(movi[name], 2), round(coco[name], 2)) for name in
             ("lumbar_extension", "pelvis_tilt", "hip_flexion_r", "knee_angle_r", "knee_angle_l")}
    print("posterior SD deg (MOVI87, COCO17):", shown)
    for name in ("lumbar_extension", "pelvis_tilt"):
        assert coco[name] > 2 * movi[name], shown
    for sd in (movi, coco):
        assert sd["knee_angle_r"] < 2.0 and sd["knee_angle_l"] < 2.0, shown
    # the wrist is invisible to COCO17 (no hand points): SD ~ the 57 deg reference prior
    assert coco["wrist_flex_r"] > 30.0
