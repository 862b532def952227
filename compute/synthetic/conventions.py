"""Joint indices and anatomical signs of a body model, found by probing its forward kinematics.

The generator writes angles anatomically (flexion, adduction, dorsiflexion positive; pelvis anterior tilt,
left-side-up obliquity and left-side-forward rotation positive) and makes no assumption about the model's own
sign choices: each driven joint is moved by a small angle once and the direction in which a marker on the
moved segment travels gives its sign (world frame: metres, Z up, facing +X in the neutral pose).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from compute.kinematics import BodyModel, neutral_qpos
from compute.synthetic.forward import forward_markers


@dataclass(frozen=True)
class JointConventions:
    """Joint indices and anatomical signs of a body model (q_model = neutral + sign * anatomical angle).

    index: joint name -> qpos index; sign: joint name -> ±1 so that positive means the anatomical direction
    listed in this module's docstring; pelvis_axes (3, 3): local axes of pelvis_tilt, pelvis_list,
    pelvis_rotation (rows); pelvis_frame (3, 3): the pelvis body's rest orientation.
    """

    index: dict
    sign: dict
    neutral: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    pelvis_axes: np.ndarray
    pelvis_frame: np.ndarray


# (joint, probing marker, world direction that means "positive" anatomically); l/r expanded below.
_PROBES = [
    ("hip_flexion_{s}", "{s}kne", (1, 0, 0)),
    ("knee_angle_{s}", "{s}ank", (-1, 0, 0)),
    ("ankle_angle_{s}", "{s}toe", (0, 0, 1)),
    ("hip_adduction_{s}", "{s}kne", "medial"),
    ("hip_rotation_{s}", "{s}toe", "medial"),
    ("arm_flex_{s}", "{s}elb", (1, 0, 0)),
    ("elbow_flex_{s}", "{s}wri", (1, 0, 0)),
    ("pelvis_tilt", "thor", (1, 0, 0)),
    ("pelvis_list", "lasis", (0, 0, 1)),
    ("pelvis_rotation", "lasis", (1, 0, 0)),
    ("lumbar_rotation", "lsho", (1, 0, 0)),
    ("lumbar_extension", "thor", (-1, 0, 0)),
]
_PROBE_ANGLE = 0.3


def _expand_probes(joint_names, marker_names):
    probes = []
    for joint, marker, direction in _PROBES:
        for side in (("l", "r") if "{s}" in joint else ("",)):
            j, m = joint.format(s=side), marker.format(s=side)
            if j not in joint_names or m not in marker_names:
                continue
            d = direction
            if d == "medial":
                d = (0, -1, 0) if side == "l" else (0, 1, 0)
            probes.append((j, m, np.asarray(d, float)))
    return probes


def joint_conventions(body: BodyModel) -> JointConventions:
    """Probe the model once (one batched FK call) for the signs of the joints the gait generator drives."""
    names = tuple(body.joint_names)
    markers = tuple(body.marker_names)
    required = ("pelvis_tx", "pelvis_ty", "pelvis_tz", "pelvis_tilt", "pelvis_list", "pelvis_rotation",
                "hip_flexion_l", "hip_flexion_r", "knee_angle_l", "knee_angle_r", "ankle_angle_l", "ankle_angle_r")
    for name in required:
        if name not in names:
            raise ValueError(f"joint_conventions: body.joint_names must contain {name!r}")
    neutral = np.asarray(neutral_qpos(body, root_xyz=(0.0, 0.0, 1.0), heading=0.0), dtype=np.float64)
    lower = np.asarray(body.joint_lower, np.float64)
    upper = np.asarray(body.joint_upper, np.float64)
    probes = _expand_probes(names, markers)
    qs, deltas = [neutral], []
    for joint, _, _ in probes:
        i = names.index(joint)
        delta = _PROBE_ANGLE if neutral[i] + _PROBE_ANGLE <= upper[i] else -_PROBE_ANGLE
        q = neutral.copy()
        q[i] += delta
        qs.append(q)
        deltas.append(delta)
    G = len(body.scale_group_names)
    pts = forward_markers(body, np.stack(qs), np.zeros(G), np.zeros((len(markers), 3)))
    sign = {}
    for k, (joint, marker, direction) in enumerate(probes):
        j = markers.index(marker)
        moved = float((pts[k + 1, j] - pts[0, j]) @ direction)
        if abs(moved) < 1e-4:
            raise ValueError(f"joint_conventions: probing {joint} did not move marker {marker}")
        sign[joint] = float(np.sign(moved) * np.sign(deltas[k]))
    model = body.mjx_model
    jnt_axis = np.asarray(model.jnt_axis, np.float64)
    jnt_body = np.asarray(model.jnt_bodyid)
    jnt_names = list(names)   # qpos order = MuJoCo joint order (one hinge/slide per coordinate)
    pelvis_axes = np.stack([jnt_axis[jnt_names.index(n)] for n in ("pelvis_tilt", "pelvis_list", "pelvis_rotation")])
    pelvis_body = int(jnt_body[jnt_names.index("pelvis_tilt")])
    quat = np.asarray(model.body_quat, np.float64)[pelvis_body]
    pelvis_frame = Rotation.from_quat([quat[1], quat[2], quat[3], quat[0]]).as_matrix()
    return JointConventions({n: i for i, n in enumerate(names)}, sign, neutral, lower, upper, pelvis_axes,
                            pelvis_frame)


def pelvis_angles_with_heading(conv: JointConventions, angles: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Model pelvis hinge angles (T, 3) for heading-relative hinge angles (T, 3) and a world yaw (T,) rad.

    The pelvis orientation is ``F Rot(a1,q1) Rot(a2,q2) Rot(a3,q3)`` (F = body rest frame, a_i local axes);
    the desired one is ``Rz(heading) F Rot(a1,g1) Rot(a2,g2) Rot(a3,g3)``: solve for q by an Euler
    decomposition in the axes' own basis.
    """
    if not np.any(heading):
        return angles
    axes = conv.pelvis_axes
    P = axes.T.copy()
    flip = np.linalg.det(P) < 0
    if flip:
        P[:, 2] *= -1
    g = angles.copy()
    if flip:
        g[:, 2] *= -1
    local = Rotation.from_euler("XYZ", g)  # in the axes' basis
    M_local = P @ local.as_matrix() @ P.T                     # Rot(a1,g1) Rot(a2,g2) Rot(a3,g3)
    F = conv.pelvis_frame
    yaw = Rotation.from_euler("z", np.asarray(heading)[:, None]).as_matrix()
    M = F.T @ yaw @ F @ M_local
    q = Rotation.from_matrix(P.T @ M @ P).as_euler("XYZ")
    if flip:
        q[:, 2] *= -1
    q = np.unwrap(q, axis=0)
    return q
