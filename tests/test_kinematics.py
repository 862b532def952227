"""Specification of the scaled MJX body model (compute/kinematics.py), checked against C MuJoCo.

Compiles four small functions (vmapped float32 markers, float64 Jacobian, body poses, markers over time).
"""
from __future__ import annotations

import copy
import subprocess
import sys

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from compute import kinematics as K

EXPECTED_JOINT_NAMES = (
    "pelvis_tx", "pelvis_ty", "pelvis_tz", "pelvis_tilt", "pelvis_list", "pelvis_rotation",
    "hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r", "ankle_angle_r",
    "subtalar_angle_r", "mtp_angle_r",
    "hip_flexion_l", "hip_adduction_l", "hip_rotation_l", "knee_angle_l", "ankle_angle_l",
    "subtalar_angle_l", "mtp_angle_l",
    "lumbar_extension", "lumbar_bending", "lumbar_rotation",
    "neck_flexion", "neck_bending", "neck_rotation",
    "arm_flex_r", "arm_add_r", "arm_rot_r", "elbow_flex_r", "pro_sup_r", "wrist_flex_r", "wrist_dev_r",
    "arm_flex_l", "arm_add_l", "arm_rot_l", "elbow_flex_l", "pro_sup_l", "wrist_flex_l", "wrist_dev_l",
)
EXPECTED_BODIES = {
    "pelvis", "femur_r", "femur_l", "tibia_r", "tibia_l", "talus_r", "talus_l", "calcn_r", "calcn_l",
    "toes_r", "toes_l", "torso", "head", "humerus_r", "humerus_l", "ulna_r", "ulna_l", "radius_r",
    "radius_l", "hand_r", "hand_l",
}
BATCH = 8


@pytest.fixture(scope="module")
def body() -> K.BodyModel:
    return K.load_body_model("MOVI87")


@pytest.fixture(scope="module")
def mj_model() -> mujoco.MjModel:
    return K.build_mj_model("MOVI87")


@pytest.fixture(scope="module")
def over_time(body):
    """jit(markers_over_time): (BATCH, Q) poses sharing one (log_scale, offsets)."""
    return jax.jit(lambda q, s, o: K.markers_over_time(body, q, s, o))


def c_markers(body: K.BodyModel, m0: mujoco.MjModel, qpos, log_scale, offsets) -> np.ndarray:
    """Reference: apply the documented scaling to a copy of the C model, run mj_kinematics."""
    m = copy.deepcopy(m0)
    scale = np.concatenate([[1.0], np.exp(np.asarray(body.scale_matrix, np.float64) @ np.asarray(log_scale))])
    m.body_pos[:] = m0.body_pos * scale[m0.body_parentid][:, None]
    m.site_pos[:] = m0.site_pos * scale[m0.site_bodyid][:, None]
    ids = np.asarray(body.marker_site_ids)
    m.site_pos[ids] += np.asarray(offsets, np.float64)
    m.site_sameframe[:] = 0  # else C MuJoCo ignores site_pos of sites compiled at the body origin
    d = mujoco.MjData(m)
    d.qpos[:] = np.asarray(qpos, np.float64)
    mujoco.mj_kinematics(m, d)
    return d.site_xpos[ids].copy(), d


def random_inputs(body: K.BodyModel, rng: np.random.Generator, n: int):
    lo, hi = np.asarray(body.joint_lower), np.asarray(body.joint_upper)
    q = rng.uniform(lo, hi, size=(n, len(lo)))
    q[:, :3] = rng.uniform([-2, -2, 0.7], [2, 2, 1.1], size=(n, 3))
    log_scale = rng.normal(0.0, 0.08, size=(n, len(K.SCALE_GROUP_NAMES)))
    offsets = rng.normal(0.0, 0.015, size=(n, body.n_markers, 3))
    return q, log_scale, offsets


def test_importing_kinematics_does_not_import_datajoint():
    code = ("import sys, compute.kinematics, compute.markersets; "
            "assert not {'datajoint', 'pipeline', 'schemas'} & set(sys.modules), 'imports the database'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_joint_names_are_the_40_opensim_coordinates_in_qpos_order(body, mj_model):
    assert K.JOINT_NAMES == EXPECTED_JOINT_NAMES
    assert body.joint_names == EXPECTED_JOINT_NAMES
    assert mj_model.nq == 40 and mj_model.njnt == 40
    assert [mj_model.jnt_qposadr[j] for j in range(40)] == list(range(40))
    assert set(body.body_names) == EXPECTED_BODIES and len(body.body_names) == 21


def test_joint_ranges_are_anatomical(body):
    lo, hi = np.asarray(body.joint_lower), np.asarray(body.joint_upper)
    assert np.all(lo < hi)
    rng = dict(zip(body.joint_names, zip(lo, hi)))
    deg = np.pi / 180
    for side in "rl":
        assert rng[f"knee_angle_{side}"][0] <= 0.0 and rng[f"knee_angle_{side}"][1] >= 110 * deg
        assert rng[f"hip_flexion_{side}"][0] <= -20 * deg and rng[f"hip_flexion_{side}"][1] >= 100 * deg
        assert rng[f"ankle_angle_{side}"][0] <= -30 * deg and rng[f"ankle_angle_{side}"][1] >= 20 * deg
        assert rng[f"elbow_flex_{side}"][0] <= 0.0 and rng[f"elbow_flex_{side}"][1] >= 130 * deg
    for name in body.joint_names[3:]:  # hinges: within one turn
        assert -np.pi - 1e-6 <= rng[name][0] and rng[name][1] <= np.pi + 1e-6
    assert rng["pelvis_tz"][0] <= 0.0 and rng["pelvis_tz"][1] >= 2.0
    assert rng["pelvis_tx"][0] <= -10 and rng["pelvis_tx"][1] >= 10


def test_scale_matrix_groups(body):
    S = np.asarray(body.scale_matrix)
    groups = dict(zip(body.body_names, S))
    g = {n: i for i, n in enumerate(body.scale_group_names)}
    assert body.scale_group_names == K.SCALE_GROUP_NAMES and S.shape == (21, 8)
    assert np.all(S[:, g["overall"]] == 1)
    assert groups["pelvis"].sum() == 2 and groups["pelvis"][g["pelvis"]] == 1
    assert groups["torso"].sum() == 1 and groups["head"].sum() == 1
    assert groups["femur_l"][g["thigh_l"]] == 1 and groups["femur_l"].sum() == 2
    for b in ("tibia", "talus", "calcn", "toes"):
        assert groups[f"{b}_r"][g["shank_foot_r"]] == 1 and groups[f"{b}_r"].sum() == 2
    for b in ("humerus", "ulna", "radius", "hand"):
        assert groups[f"{b}_l"][g["arm_l"]] == 1 and groups[f"{b}_l"].sum() == 2


def test_neutral_pose_stands_on_the_floor_facing_heading(body, over_time):
    G, J = len(K.SCALE_GROUP_NAMES), body.n_markers
    qs = jnp.stack([K.neutral_qpos(body)] * (BATCH // 2) + [K.neutral_qpos(body, (1.0, 2.0, 0.93), np.pi / 2)]
                   * (BATCH // 2))
    x = np.asarray(over_time(qs, jnp.zeros(G), jnp.zeros((J, 3))))
    idx = {n: i for i, n in enumerate(body.marker_names)}
    standing = x[0]
    for heel in ("lhee", "rhee"):
        assert 0.02 <= standing[idx[heel], 2] <= 0.045
    for toe in ("ltoe", "rtoe", "lfifthmetatarsal", "rfirstmetatarsal"):
        assert 0.0 <= standing[idx[toe], 2] <= 0.04
    assert standing[:, 2].min() >= 0.0
    assert 1.70 <= standing[:, 2].max() <= 1.80          # ~1.75 m adult
    assert standing[idx["ltoe"], 0] > standing[idx["lhee"], 0] + 0.2   # facing +X
    assert standing[idx["lsho"], 1] > 0 > standing[idx["rsho"], 1]     # Y = left
    # heading pi/2 turns the body to face +Y about the root
    turned = x[-1]
    rot = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    expected = (standing - [0, 0, 0.93]) @ rot.T + [1.0, 2.0, 0.93]
    np.testing.assert_allclose(turned, expected, atol=2e-6)


def test_mjx_markers_equal_c_mujoco_for_random_poses_and_scales(body, mj_model, over_time):
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(4):  # 4 random subjects (scales, offsets) x 8 random poses
        q, s, o = random_inputs(body, rng, BATCH)
        x = np.asarray(over_time(jnp.asarray(q, jnp.float32), jnp.asarray(s[0], jnp.float32),
                                 jnp.asarray(o[0], jnp.float32)))
        assert x.shape == (BATCH, body.n_markers, 3)
        for i in range(BATCH):
            ref, _ = c_markers(body, mj_model, q[i], s[0], o[0])
            worst = max(worst, np.abs(x[i] - ref).max())
    assert worst < 1e-5, worst


def test_scaling_thigh_by_ten_percent_lengthens_only_the_thigh(body, mj_model):
    g = list(K.SCALE_GROUP_NAMES)
    log_scale = np.zeros(len(g))
    log_scale[g.index("thigh_l")] = np.log(1.1)
    rng = np.random.default_rng(0)
    q = np.array(K.neutral_qpos(body), dtype=np.float64)
    q[3:] = rng.uniform(np.asarray(body.joint_lower)[3:], np.asarray(body.joint_upper)[3:]) * 0.5
    poses = jax.jit(lambda q, s: K.body_poses(body, q, s))
    names = list(body.body_names)
    xpos0, _ = (np.asarray(a) for a in poses(jnp.asarray(q, jnp.float32), jnp.zeros(len(g))))
    xpos1, xmat1 = (np.asarray(a) for a in poses(jnp.asarray(q, jnp.float32), jnp.asarray(log_scale)))
    dist = lambda x, a, b: np.linalg.norm(x[names.index(a)] - x[names.index(b)])  # noqa: E731
    np.testing.assert_allclose(dist(xpos1, "femur_l", "tibia_l"), 1.1 * dist(xpos0, "femur_l", "tibia_l"),
                               rtol=1e-5)
    np.testing.assert_allclose(dist(xpos1, "tibia_l", "talus_l"), dist(xpos0, "tibia_l", "talus_l"), rtol=1e-5)
    np.testing.assert_allclose(dist(xpos1, "femur_r", "tibia_r"), dist(xpos0, "femur_r", "tibia_r"), rtol=1e-5)
    # body poses agree with C MuJoCo on the scaled model
    _, d = c_markers(body, mj_model, q, log_scale, np.zeros((body.n_markers, 3)))
    np.testing.assert_allclose(xpos1, d.xpos[1:], atol=1e-5)
    np.testing.assert_allclose(xmat1, d.xmat[1:].reshape(-1, 3, 3), atol=1e-5)


def test_jacobians_match_central_differences_in_float64(mj_model):
    """Jacobian-vector products of forward_kinematics along random directions in qpos, log_scale and
    offsets (each block separately) equal central differences of the C MuJoCo reference, in float64."""
    rng = np.random.default_rng(7)
    with jax.enable_x64(True):
        body64 = K.load_body_model("MOVI87")
        assert body64.mjx_model.body_pos.dtype == jnp.float64
        q, s, o = (a[0] for a in random_inputs(body64, rng, 1))
        n_dir = 2
        dirs = []
        for block in range(3):
            for _ in range(n_dir):
                d = [np.zeros_like(q), np.zeros_like(s), np.zeros_like(o)]
                d[block] = rng.normal(size=d[block].shape)
                dirs.append(d)
        dq, ds, do = (jnp.asarray(np.stack([d[k] for d in dirs])) for k in range(3))

        def value_and_jvp(dq, ds, do):
            return jax.jvp(lambda q, s, o: K.forward_kinematics(body64, q, s, o),
                           (jnp.asarray(q), jnp.asarray(s), jnp.asarray(o)), (dq, ds, do))

        value, tangents = jax.jit(jax.vmap(value_and_jvp))(dq, ds, do)
        value, tangents = np.asarray(value[0]), np.asarray(tangents)
    ref, _ = c_markers(body64, mj_model, q, s, o)
    np.testing.assert_allclose(value, ref, atol=1e-9)      # float64 forward kinematics equals C MuJoCo
    h = 1e-6
    for i, (vq, vs, vo) in enumerate(dirs):
        plus = c_markers(body64, mj_model, q + h * vq, s + h * vs, o + h * vo)[0]
        minus = c_markers(body64, mj_model, q - h * vq, s - h * vs, o - h * vo)[0]
        fd = (plus - minus) / (2 * h)
        assert np.abs(fd).max() > 1e-3
        np.testing.assert_allclose(tangents[i], fd, atol=1e-6, err_msg=f"direction {i} (block {i // n_dir})")


def test_equality_residuals_empty_and_joint_limit_violation(body):
    q = K.neutral_qpos(body)
    assert K.equality_residuals(body, q).shape == (0,)
    assert float(K.joint_limit_violation(body, q).sum()) == 0.0
    knee = body.joint_names.index("knee_angle_l")
    v = K.joint_limit_violation(body, q.at[knee].set(body.joint_upper[knee] + 0.1))
    np.testing.assert_allclose(float(v[knee]), 0.1, atol=1e-6)


def test_load_body_model_rejects_bad_marker_sites():
    with pytest.raises(ValueError, match="marker_sites"):
        K.load_body_model("COCO17", marker_sites=np.zeros((3, 3)))


# (coordinate, marker, world axis, expected sign of the marker's displacement) for +0.3 rad from standing
SIGN_CONVENTIONS = [
    ("hip_flexion_r", "rkne", 0, +1),        # thigh forward
    ("hip_adduction_r", "rkne", 1, +1),      # right knee toward the midline (+Y)
    ("hip_adduction_l", "lkne", 1, -1),
    ("knee_angle_l", "lank", 0, -1),         # flexion positive: ankle moves back
    ("ankle_angle_r", "rtoe", 2, +1),        # dorsiflexion: toes up
    ("subtalar_angle_r", "rfirstmetatarsal", 2, +1),  # inversion: medial forefoot up
    ("subtalar_angle_l", "lfirstmetatarsal", 2, +1),
    ("mtp_angle_r", "rtoe", 2, +1),          # toe extension
    ("pelvis_tilt", "clavicle", 0, -1),      # posterior tilt: trunk back
    ("pelvis_list", "lasis", 2, +1),         # left side up
    ("pelvis_rotation", "rasis", 0, +1),     # turn left: right ASIS forward
    ("lumbar_extension", "clavicle", 0, -1),  # extension: trunk back
    ("lumbar_bending", "clavicle", 1, -1),   # bend right
    ("lumbar_rotation", "rshom", 0, +1),     # turn left
    ("neck_flexion", "head", 0, +1),         # flexion: head forward/down
    ("arm_flex_l", "lelb", 0, +1),           # arm forward
    ("arm_add_r", "relb", 1, +1),            # adduction toward the body (+Y for the right arm)
    ("elbow_flex_r", "rwri", 0, +1),         # forearm forward
    ("pro_sup_r", "rthumb", 1, +1),          # pronation: right thumb from lateral toward medial
    ("pro_sup_l", "lthumb", 1, -1),
    ("wrist_flex_l", "lfin", 0, +1),         # palm side (anterior in anatomical position)
]


@pytest.mark.parametrize("coordinate,marker,axis,sign", SIGN_CONVENTIONS)
def test_joint_sign_conventions(body, mj_model, coordinate, marker, axis, sign):
    q = np.array(K.neutral_qpos(body), dtype=np.float64)
    zeros = np.zeros((body.n_markers, 3))
    base, _ = c_markers(body, mj_model, q, np.zeros(8), zeros)
    q[body.joint_names.index(coordinate)] += 0.3
    moved, _ = c_markers(body, mj_model, q, np.zeros(8), zeros)
    i = body.marker_names.index(marker)
    assert sign * (moved[i, axis] - base[i, axis]) > 0.005
