"""Specification of the marker-set data files (compute/markersets/*.json). No JAX compilation."""
from __future__ import annotations

import mujoco
import numpy as np
import pytest

from compute import kinematics as K
import json

from compute import markersets
from compute.markersets import (KEYPOINT_SETS, MARKER_SET_NAMES, foot_keypoints, heel_marker_mask, keypoint_names,
                                load_marker_set)

MOVI87 = (
    "backneck upperback clavicle sternum umbilicus lfronthead lbackhead lback lshom lupperarm "
    "lelbm lforearm lwrithumbside lwripinkieside lfin lasis lpsis lfrontthigh lthigh lknem "
    "lankm lhee lfifthmetatarsal ltoe lcheek lbreast lelbinner lwaist lthumb lfrontinnerthigh "
    "linnerknee lshin lfirstmetatarsal lfourthtoe lscapula lbum rfronthead rbackhead rback rshom "
    "rupperarm relbm rforearm rwrithumbside rwripinkieside rfin rasis rpsis rfrontthigh rthigh "
    "rknem rankm rhee rfifthmetatarsal rtoe rcheek rbreast relbinner rwaist rthumb "
    "rfrontinnerthigh rinnerknee rshin rfirstmetatarsal rfourthtoe rscapula rbum head mhip pelv "
    "thor lank lelb lhip lhan lkne lsho lwri lfoo rank relb rhip rhan rkne rsho rwri rfoo").split()
HALPE26 = ("Nose LEye REye LEar REar LShoulder RShoulder LElbow RElbow LWrist RWrist LHip RHip LKnee "
           "RKnee LAnkle RAnkle Head Neck Hip LBigToe RBigToe LSmallToe RSmallToe LHeel RHeel").split()
BODY25 = ("Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist MidHip RHip RKnee RAnkle LHip LKnee "
          "LAnkle REye LEye REar LEar LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel").split()
BODY25B = ("Nose LEye REye LEar REar LShoulder RShoulder LElbow RElbow LWrist RWrist LHip RHip LKnee "
           "RKnee LAnkle RAnkle UpperNeck HeadTop LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel").split()
BLAZEPOSE33 = ("nose left_eye_inner left_eye left_eye_outer right_eye_inner right_eye right_eye_outer "
               "left_ear right_ear mouth_left mouth_right left_shoulder right_shoulder left_elbow "
               "right_elbow left_wrist right_wrist left_pinky right_pinky left_index right_index "
               "left_thumb right_thumb left_hip right_hip left_knee right_knee left_ankle right_ankle "
               "left_heel right_heel left_foot_index right_foot_index").split()
EXPECTED = {"MOVI87": MOVI87, "HALPE26": HALPE26, "BODY25": BODY25, "BODY25B": BODY25B,
            "COCO17": HALPE26[:17], "BLAZEPOSE33": BLAZEPOSE33}
HEELS = {"MOVI87": {"lhee", "rhee"}, "HALPE26": {"LHeel", "RHeel"}, "BODY25": {"LHeel", "RHeel"},
         "BODY25B": {"LHeel", "RHeel"}, "COCO17": set(), "BLAZEPOSE33": {"left_heel", "right_heel"}}
FEET = {"MOVI87": ("lhee", "ltoe", "rhee", "rtoe"), "HALPE26": ("LHeel", "LBigToe", "RHeel", "RBigToe"),
        "BODY25": ("LHeel", "LBigToe", "RHeel", "RBigToe"), "BODY25B": ("LHeel", "LBigToe", "RHeel", "RBigToe"),
        "BLAZEPOSE33": ("left_heel", "left_foot_index", "right_heel", "right_foot_index")}
MAX_DISTANCE_TO_SEGMENT_M = 0.15


@pytest.fixture(scope="module")
def mj_model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(K.BODY40_XML_PATH))


def body_segments(m: mujoco.MjModel, body_id: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A body's bone: segments from its origin to each child joint centre, and to its '<body>_end' site
    (end bodies: head vertex, fingertip, toe tip). Body frame, unscaled, metres."""
    origin = np.zeros(3)
    ends = [m.body_pos[c] for c in range(m.nbody) if m.body_parentid[c] == body_id and c != body_id]
    ends += [m.site_pos[s] for s in range(m.nsite)
             if m.site_bodyid[s] == body_id and m.site(s).name.endswith("_end")]
    return [(origin, np.asarray(e, float)) for e in ends] or [(origin, origin)]


def distance_to_segments(p: np.ndarray, segments) -> float:
    best = np.inf
    for a, b in segments:
        ab = b - a
        t = 0.0 if ab @ ab == 0 else float(np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0))
        best = min(best, float(np.linalg.norm(p - (a + t * ab))))
    return best


@pytest.mark.parametrize("name", MARKER_SET_NAMES)
def test_marker_set_has_detector_names_in_order(name):
    ms = load_marker_set(name)
    assert ms.name == name
    assert list(ms.keypoint_names) == EXPECTED[name]
    assert ms.positions.shape == (len(EXPECTED[name]), 3)
    assert len(ms.bodies) == len(ms.landmarks) == len(ms)
    assert all(len(text) > 5 for text in ms.landmarks)


@pytest.mark.parametrize("name", MARKER_SET_NAMES)
def test_every_marker_lies_within_15_cm_of_its_body_segment(name, mj_model):
    ms = load_marker_set(name)
    for kp, body, pos in zip(ms.keypoint_names, ms.bodies, ms.positions):
        body_id = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_BODY, body)
        assert body_id > 0, f"{name}.{kp}: unknown body {body}"
        d = distance_to_segments(pos, body_segments(mj_model, body_id))
        assert d <= MAX_DISTANCE_TO_SEGMENT_M, f"{name}.{kp} is {d:.3f} m from the {body} segment"


@pytest.mark.parametrize("name", MARKER_SET_NAMES)
def test_heel_marker_mask(name):
    ms = load_marker_set(name)
    mask = heel_marker_mask(ms)
    assert mask.dtype == bool and mask.shape == (len(ms),)
    assert {n for n, h in zip(ms.keypoint_names, mask) if h} == HEELS[name]
    for n, h, body in zip(ms.keypoint_names, mask, ms.bodies):
        if h:
            assert body.startswith("calcn_")


def test_left_and_right_markers_are_mirror_images():
    ms = load_marker_set("MOVI87")
    pos = dict(zip(ms.keypoint_names, ms.positions))
    bodies = dict(zip(ms.keypoint_names, ms.bodies))
    for n in ms.keypoint_names:
        if n.startswith("l") and "r" + n[1:] in pos:
            np.testing.assert_allclose(pos[n] * [1, -1, 1], pos["r" + n[1:]], atol=1e-9)
            assert bodies[n].replace("_l", "_r") == bodies["r" + n[1:]]


def test_joint_centre_keypoints_sit_at_the_joint_centres(mj_model):
    ms = load_marker_set("MOVI87")
    kp = dict(zip(ms.keypoint_names, zip(ms.bodies, ms.positions)))
    body_pos = {mj_model.body(b).name: mj_model.body_pos[b] for b in range(mj_model.nbody)}
    assert kp["lhip"][0] == "femur_l" and np.allclose(kp["lhip"][1], 0)
    np.testing.assert_allclose(kp["lkne"][1], body_pos["tibia_l"])
    np.testing.assert_allclose(kp["rank"][1], body_pos["talus_r"])
    np.testing.assert_allclose(kp["relb"][1], body_pos["ulna_r"])
    np.testing.assert_allclose(kp["lsho"][1], body_pos["humerus_l"])
    np.testing.assert_allclose(kp["lwri"][1], body_pos["hand_l"])
    # detector hips are 2 cm lateral and 1.5 cm below the hip joint centre
    op = load_marker_set("BODY25")
    lhip = op.positions[op.keypoint_names.index("LHip")]
    np.testing.assert_allclose(lhip - body_pos["femur_l"], [0.0, 0.02, -0.015], atol=1e-9)


@pytest.mark.parametrize("name", MARKER_SET_NAMES)
def test_keypoint_names_come_from_the_packaged_files_in_detector_order(name):
    assert keypoint_names(name) == tuple(EXPECTED[name])
    assert KEYPOINT_SETS[name] == tuple(EXPECTED[name])
    assert markersets.keypoint_set_description(name)


@pytest.mark.parametrize("name", MARKER_SET_NAMES)
def test_foot_keypoints_give_heel_and_toe_of_each_foot(name):
    if name not in FEET:
        with pytest.raises(ValueError, match="no heel/toe keypoints"):
            foot_keypoints(name)
        return
    feet = foot_keypoints(name)
    names = EXPECTED[name]
    found = tuple(names[feet[side][role]] for side in ("left", "right") for role in ("heel", "toe"))
    assert found == FEET[name]


def _write_copy(tmp_path, name, edit) -> None:
    doc = json.loads((markersets.MARKERSETS_DIR / f"{name}.json").read_text())
    edit(doc)
    (tmp_path / f"{name}.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("edit, message", [
    (lambda doc: doc.pop("feet"), "missing field"),
    (lambda doc: doc["feet"]["left"].update(toe="LPinkyToe"), "feet.left.toe"),
    (lambda doc: doc["keypoints"][3].pop("heel"), r"keypoints\[3\] missing field"),
    (lambda doc: doc.update(name="BODY25B"), "differs from the file name"),
])
def test_a_marker_set_file_that_breaks_the_format_is_an_error_naming_the_field(tmp_path, monkeypatch, edit, message):
    _write_copy(tmp_path, "BODY25", edit)
    monkeypatch.setattr(markersets, "MARKERSETS_DIR", tmp_path)
    with pytest.raises(ValueError, match=message):
        load_marker_set("BODY25")
