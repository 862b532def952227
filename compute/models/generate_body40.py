"""Generator of ``body40.xml`` (the 40-DoF full-body MJCF) and of ``compute/markersets/*.json``.

The XML and JSON files are the data the library reads; this script is how they were written, kept so
the numbers can be reviewed and regenerated: ``.venv/bin/python -m compute.models.generate_body40``.

Sources. Joint structure, axes, sign conventions and ranges follow the OpenSim gait models
(gait2392 / Hamner 2010 / Rajagopal 2015; the arms are Holzbaur's). OpenSim frames (X anterior,
Y up, Z right) are converted to ours (X anterior, Y left, Z up): ``ours = (x, -z, y)``, a proper
rotation, so every OpenSim sign convention is unchanged. Left-side quantities are mirror images of the
right side across the sagittal plane: positions ``(x, y, z) -> (x, -y, z)``, hinge axes (pseudo-vectors)
``(ax, ay, az) -> (-ax, ay, -az)``. Segment lengths are those of the unscaled OpenSim model adjusted to
a ~1.75 m adult (de Leva 1996): pelvis origin 0.93 m above the floor when standing, thigh (hip to knee
joint centre) 0.395 m, shank (knee to ankle) 0.405 m, upper arm 0.286 m, forearm 0.25 m, foot 0.25 m.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent
MARKERSETS_DIR = MODELS_DIR.parent / "markersets"

DEG = np.pi / 180.0


def _os(x: float, y: float, z: float) -> tuple[float, float, float]:
    """OpenSim (X anterior, Y up, Z right) vector -> ours (X anterior, Y left, Z up)."""
    return (x, -z, y)


def _mirror_pos(p):
    return (p[0], -p[1], p[2])


def _mirror_axis(a):
    return (-a[0], a[1], -a[2])


# ---------------------------------------------------------------------------------------------
# Skeleton (right side; the left side is mirrored). Positions are of the child body origin (= joint
# centre) in the parent body frame, metres. Hinge axes in the child body frame.
# ---------------------------------------------------------------------------------------------
HIP_R = (-0.0707, -0.0835, -0.0661)         # gait2392 (-0.0707, -0.0661, 0.0835) in OpenSim axes
KNEE_IN_FEMUR = (-0.0045, 0.0, -0.395)
ANKLE_IN_TIBIA = (0.0, 0.0, -0.405)
CALCN_IN_TALUS_R = _os(-0.04877, -0.04195, 0.00792)
TOES_IN_CALCN_R = _os(0.1788, -0.002, 0.00108)
LUMBAR_IN_PELVIS = _os(-0.1007, 0.0815, 0.0)
NECK_IN_TORSO = (0.0, 0.0, 0.43)             # C7/T1 level, just above the acromia
SHOULDER_R_IN_TORSO = _os(0.003155, 0.3715, 0.17)
ELBOW_IN_HUMERUS_R = _os(0.013144, -0.286273, -0.009595)
RADIUS_IN_ULNA_R = _os(-0.006727, -0.013007, 0.026083)
WRIST_IN_RADIUS_R = _os(-0.008797, -0.235841, 0.01361)
# End bodies have no child joint; their display segment ends at these points (also used by tests).
HEAD_END = (0.03, 0.0, 0.305)                # vertex, 1.75 m above the floor when standing
HAND_END = (0.0, 0.0, -0.18)                 # tip of the middle finger
TOES_END = (0.06, 0.0, 0.0)                  # tip of the second toe

AX_X, AX_Y, AX_Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
AX_RIGHT = (0.0, -1.0, 0.0)                  # OpenSim +Z
ANKLE_AXIS_R = _os(-0.105014, -0.174022, 0.979126)
SUBTALAR_AXIS_R = _os(0.78718, 0.604747, -0.120949)
MTP_AXIS_R = _os(-0.580954, 0.0, 0.813936)
ELBOW_AXIS_R = _os(0.226047, 0.022269, 0.973862)
PRO_SUP_AXIS_R = _os(0.056398, 0.998406, 0.001952)

# (name, axis for the right side or unsided joint, lower, upper) -- radians; see kinematics.py docstring
PELVIS_JOINTS = [
    ("pelvis_tx", "slide", AX_X, -50.0, 50.0),
    ("pelvis_ty", "slide", AX_Y, -50.0, 50.0),
    ("pelvis_tz", "slide", AX_Z, -1.0, 3.0),
    ("pelvis_tilt", "hinge", AX_RIGHT, -90 * DEG, 90 * DEG),
    ("pelvis_list", "hinge", AX_X, -90 * DEG, 90 * DEG),
    ("pelvis_rotation", "hinge", AX_Z, -180 * DEG, 180 * DEG),
]
LUMBAR_JOINTS = [
    ("lumbar_extension", AX_RIGHT, -90 * DEG, 0.377),
    ("lumbar_bending", AX_X, -0.754, 0.754),
    ("lumbar_rotation", AX_Z, -0.754, 0.754),
]
NECK_JOINTS = [
    ("neck_flexion", AX_Y, -60 * DEG, 70 * DEG),
    ("neck_bending", AX_X, -45 * DEG, 45 * DEG),
    ("neck_rotation", AX_Z, -80 * DEG, 80 * DEG),
]
HIP_JOINTS = [
    ("hip_flexion", AX_RIGHT, -30 * DEG, 120 * DEG),
    ("hip_adduction", AX_X, -50 * DEG, 30 * DEG),
    ("hip_rotation", AX_Z, -40 * DEG, 40 * DEG),
]
KNEE_JOINT = ("knee_angle", AX_Y, -10 * DEG, 120 * DEG)
ANKLE_JOINT = ("ankle_angle", ANKLE_AXIS_R, -40 * DEG, 30 * DEG)
SUBTALAR_JOINT = ("subtalar_angle", SUBTALAR_AXIS_R, -20 * DEG, 20 * DEG)
MTP_JOINT = ("mtp_angle", MTP_AXIS_R, -30 * DEG, 30 * DEG)
SHOULDER_JOINTS = [
    ("arm_flex", AX_RIGHT, -90 * DEG, 90 * DEG),
    ("arm_add", AX_X, -120 * DEG, 90 * DEG),
    ("arm_rot", AX_Z, -90 * DEG, 90 * DEG),
]
ELBOW_JOINT = ("elbow_flex", ELBOW_AXIS_R, 0.0, 150 * DEG)
PRO_SUP_JOINT = ("pro_sup", PRO_SUP_AXIS_R, 0.0, 160 * DEG)
WRIST_JOINTS = [
    ("wrist_flex", AX_RIGHT, -70 * DEG, 70 * DEG),
    ("wrist_dev", AX_X, -25 * DEG, 35 * DEG),
]


def _fmt(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in v)


def _hinge(name, axis, lo, hi, side):
    if side == "l":
        axis = _mirror_axis(axis)
    n = np.asarray(axis, float)
    n = n / np.linalg.norm(n)
    return f'<joint name="{name}_{side}" type="hinge" axis="{_fmt(n)}" range="{lo:.6g} {hi:.6g}"/>'


def _capsule(name, a, b, r):
    return f'<geom name="{name}" type="capsule" fromto="{_fmt(a)} {_fmt(b)}" size="{r}"/>'


def _leg(side: str, ind: str) -> str:
    m = (lambda p: p) if side == "r" else _mirror_pos
    hip, knee, ankle = m(HIP_R), KNEE_IN_FEMUR, ANKLE_IN_TIBIA
    calcn, toes = m(CALCN_IN_TALUS_R), m(TOES_IN_CALCN_R)
    o = (0, 0, 0)
    s = side
    return f"""
{ind}<body name="femur_{s}" pos="{_fmt(hip)}">
{ind}  {_hinge(*HIP_JOINTS[0], s)}
{ind}  {_hinge(*HIP_JOINTS[1], s)}
{ind}  {_hinge(*HIP_JOINTS[2], s)}
{ind}  {_capsule(f"femur_{s}_geom", o, knee, 0.055)}
{ind}  <body name="tibia_{s}" pos="{_fmt(knee)}">
{ind}    {_hinge(*KNEE_JOINT, s)}
{ind}    {_capsule(f"tibia_{s}_geom", o, ankle, 0.045)}
{ind}    <body name="talus_{s}" pos="{_fmt(ankle)}">
{ind}      {_hinge(*ANKLE_JOINT, s)}
{ind}      <geom name="talus_{s}_geom" type="sphere" size="0.025"/>
{ind}      <body name="calcn_{s}" pos="{_fmt(calcn)}">
{ind}        {_hinge(*SUBTALAR_JOINT, s)}
{ind}        {_capsule(f"calcn_{s}_geom", o, toes, 0.03)}
{ind}        <body name="toes_{s}" pos="{_fmt(toes)}">
{ind}          {_hinge(*MTP_JOINT, s)}
{ind}          {_capsule(f"toes_{s}_geom", o, m(TOES_END), 0.02)}
{ind}          <site name="toes_{s}_end" pos="{_fmt(m(TOES_END))}"/>
{ind}        </body>
{ind}      </body>
{ind}    </body>
{ind}  </body>
{ind}</body>"""


def _arm(side: str, ind: str) -> str:
    m = (lambda p: p) if side == "r" else _mirror_pos
    sh, el, ra, wr, he = (m(SHOULDER_R_IN_TORSO), m(ELBOW_IN_HUMERUS_R), m(RADIUS_IN_ULNA_R),
                          m(WRIST_IN_RADIUS_R), m(HAND_END))
    o = (0, 0, 0)
    s = side
    return f"""
{ind}<body name="humerus_{s}" pos="{_fmt(sh)}">
{ind}  {_hinge(*SHOULDER_JOINTS[0], s)}
{ind}  {_hinge(*SHOULDER_JOINTS[1], s)}
{ind}  {_hinge(*SHOULDER_JOINTS[2], s)}
{ind}  {_capsule(f"humerus_{s}_geom", o, el, 0.04)}
{ind}  <body name="ulna_{s}" pos="{_fmt(el)}">
{ind}    {_hinge(*ELBOW_JOINT, s)}
{ind}    {_capsule(f"ulna_{s}_geom", o, ra, 0.03)}
{ind}    <body name="radius_{s}" pos="{_fmt(ra)}">
{ind}      {_hinge(*PRO_SUP_JOINT, s)}
{ind}      {_capsule(f"radius_{s}_geom", o, wr, 0.03)}
{ind}      <body name="hand_{s}" pos="{_fmt(wr)}">
{ind}        {_hinge(*WRIST_JOINTS[0], s)}
{ind}        {_hinge(*WRIST_JOINTS[1], s)}
{ind}        {_capsule(f"hand_{s}_geom", o, he, 0.025)}
{ind}        <site name="hand_{s}_end" pos="{_fmt(he)}"/>
{ind}      </body>
{ind}    </body>
{ind}  </body>
{ind}</body>"""


def body40_xml() -> str:
    """The MJCF text of the 40-DoF, 21-body model (Z up, standing pose at qpos = 0 with pelvis_tz = 0.93)."""
    o = (0, 0, 0)
    pelvis_joints = "\n".join(
        f'      <joint name="{n}" type="{t}" axis="{_fmt(a)}" range="{lo:.6g} {hi:.6g}"/>'
        for n, t, a, lo, hi in PELVIS_JOINTS)
    lumbar = "\n".join(f'        <joint name="{n}" type="hinge" axis="{_fmt(a)}" range="{lo:.6g} {hi:.6g}"/>'
                       for n, a, lo, hi in LUMBAR_JOINTS)
    neck = "\n".join(f'          <joint name="{n}" type="hinge" axis="{_fmt(a)}" range="{lo:.6g} {hi:.6g}"/>'
                     for n, a, lo, hi in NECK_JOINTS)
    shoulder_l, shoulder_r = _mirror_pos(SHOULDER_R_IN_TORSO), SHOULDER_R_IN_TORSO
    return f"""<!-- Generated by compute/models/generate_body40.py; edit that script, not this file. -->
<!-- 40-DoF, 21-body full-body skeleton after the OpenSim Hamner/Rajagopal gait models.
     World Z up; body frames X anterior, Y left, Z up in the standing pose facing +X (all angles 0).
     Joint order here = qpos order = compute.kinematics.JOINT_NAMES. Display geometry only: no contacts. -->
<mujoco model="body40">
  <compiler angle="radian" inertiafromgeom="true" autolimits="true"/>
  <default>
    <joint limited="true"/>
    <geom contype="0" conaffinity="0" density="1000" rgba="0.8 0.65 0.5 1"/>
    <site size="0.01" rgba="0.2 0.4 1 1"/>
  </default>
  <worldbody>
    <body name="pelvis" pos="0 0 0">
{pelvis_joints}
      {_capsule("pelvis_geom", _mirror_pos(HIP_R), HIP_R, 0.07)}
      {_capsule("sacrum_geom", o, LUMBAR_IN_PELVIS, 0.05)}
{_leg("r", "      ")}
{_leg("l", "      ")}
      <body name="torso" pos="{_fmt(LUMBAR_IN_PELVIS)}">
{lumbar}
        {_capsule("spine_geom", o, NECK_IN_TORSO, 0.09)}
        {_capsule("shoulder_girdle_geom", shoulder_l, shoulder_r, 0.06)}
        <body name="head" pos="{_fmt(NECK_IN_TORSO)}">
{neck}
          {_capsule("neck_geom", o, (0.03, 0, 0.12), 0.05)}
          <geom name="skull_geom" type="sphere" pos="0.04 0 0.2" size="0.1"/>
          <site name="head_end" pos="{_fmt(HEAD_END)}"/>
        </body>
{_arm("r", "        ")}
{_arm("l", "        ")}
      </body>
    </body>
  </worldbody>
</mujoco>
"""


# ---------------------------------------------------------------------------------------------
# Anatomical landmarks, body frame of the unscaled model (metres). Right side given; "L"/"R" pairs are
# mirrored. Each entry: key -> (body, position, landmark description).
# ---------------------------------------------------------------------------------------------
def _hip_surface(side):   # OpenPose-style hip: 2 cm lateral and 1.5 cm below the hip joint centre
    h = HIP_R if side == "r" else _mirror_pos(HIP_R)
    sgn = -1 if side == "r" else 1
    return (h[0], h[1] + sgn * 0.02, h[2] - 0.015)


def _landmarks_right() -> dict[str, tuple[str, tuple, str]]:
    """Sided landmarks, right side; body names use the suffix '_S' (replaced by _r/_l)."""
    knee, ankle, elbow, wrist = KNEE_IN_FEMUR, ANKLE_IN_TIBIA, ELBOW_IN_HUMERUS_R, WRIST_IN_RADIUS_R
    sh = SHOULDER_R_IN_TORSO
    toes = TOES_IN_CALCN_R
    return {
        # pelvis
        "asis": ("pelvis", (0.015, -0.125, 0.0), "anterior superior iliac spine"),
        "psis": ("pelvis", (-0.155, -0.045, 0.02), "posterior superior iliac spine"),
        "waist": ("pelvis", (-0.03, -0.15, 0.05), "lateral waist at the iliac crest"),
        "bum": ("pelvis", (-0.14, -0.09, -0.08), "buttock, most posterior point of the gluteus"),
        "hip_jc": ("femur_S", (0.0, 0.0, 0.0), "hip joint centre (femoral head)"),
        "hip_detector": ("pelvis", _hip_surface("r"),
                         "detector hip: 2 cm lateral and 1.5 cm below the hip joint centre"),
        # thigh
        "thigh": ("femur_S", (0.0, -0.085, -0.22), "lateral thigh skin, mid-thigh"),
        "frontthigh": ("femur_S", (0.07, -0.04, -0.20), "anterior thigh skin, mid-thigh"),
        "frontinnerthigh": ("femur_S", (0.05, 0.035, -0.15), "anteromedial thigh skin, upper third"),
        "knem": ("femur_S", (knee[0], -0.05, knee[2]), "lateral femoral epicondyle"),
        "innerknee": ("femur_S", (knee[0], 0.05, knee[2]), "medial femoral epicondyle"),
        "knee_jc": ("femur_S", knee, "knee joint centre (midpoint of the epicondyles)"),
        # shank
        "shin": ("tibia_S", (0.035, 0.005, -0.17), "anterior tibial crest, upper half of the shank"),
        "ankm": ("tibia_S", (-0.01, -0.035, ankle[2]), "lateral malleolus"),
        "ankle_jc": ("tibia_S", ankle, "ankle joint centre (midpoint of the malleoli)"),
        # foot
        "hee": ("calcn_S", (-0.015, 0.0, 0.012), "heel, posterior calcaneus"),
        "fifthmetatarsal": ("calcn_S", (0.145, -0.040, 0.003), "lateral head of the fifth metatarsal"),
        "firstmetatarsal": ("calcn_S", (0.16, 0.035, 0.005), "medial head of the first metatarsal"),
        "foot_jc": ("calcn_S", toes, "foot point: ball of the foot at the metatarsophalangeal joint"),
        "toe": ("toes_S", (0.062, 0.010, 0.005), "tip of the second toe"),
        "fourthtoe": ("toes_S", (0.045, -0.025, 0.005), "tip of the fourth toe"),
        "bigtoe": ("toes_S", (0.06, 0.030, 0.0), "tip of the big toe"),
        "smalltoe": ("toes_S", (0.035, -0.040, 0.0), "tip of the small (fifth) toe"),
        # trunk
        "back": ("torso", (-0.09, -0.07, 0.18), "lower back skin over the lower ribs, lateral of the spine"),
        "breast": ("torso", (0.12, -0.09, 0.26), "front of the chest at nipple height"),
        "scapula": ("torso", (-0.10, -0.09, 0.30), "medial scapula"),
        "shom": ("torso", (sh[0], -0.19, 0.405), "acromion"),
        "shoulder_detector": ("torso", (sh[0], -0.19, 0.39),
                              "detector shoulder: near the acromion, ~20 cm lateral of the midline"),
        "shoulder_jc": ("torso", sh, "glenohumeral joint centre"),
        # arm
        "upperarm": ("humerus_S", (0.0, -0.045, -0.15), "lateral upper arm skin, mid-humerus"),
        "elbm": ("humerus_S", (elbow[0], -0.035, elbow[2]), "lateral humeral epicondyle"),
        "elbinner": ("humerus_S", (elbow[0], 0.045, elbow[2]), "medial humeral epicondyle"),
        "elbow_jc": ("humerus_S", elbow, "elbow joint centre"),
        "forearm": ("radius_S", (-0.02, -0.03, -0.12), "dorsolateral forearm skin, mid-forearm"),
        "writhumbside": ("radius_S", (wrist[0], wrist[1] - 0.03, wrist[2]), "radial styloid (thumb side)"),
        "wripinkieside": ("radius_S", (wrist[0], wrist[1] + 0.03, wrist[2]), "ulnar styloid (little-finger side)"),
        "wrist_jc": ("radius_S", wrist, "wrist joint centre"),
        # hand (anatomical position: palm anterior, thumb lateral)
        "fin": ("hand_S", HAND_END, "tip of the middle finger"),
        "thumb": ("hand_S", (0.03, -0.045, -0.10), "tip of the thumb"),
        "hand_jc": ("hand_S", (0.0, 0.0, -0.08), "hand centre at the base of the middle finger"),
        "pinky_knuckle": ("hand_S", (0.0, 0.03, -0.085), "little-finger metacarpophalangeal joint"),
        "index_knuckle": ("hand_S", (0.0, -0.025, -0.09), "index-finger metacarpophalangeal joint"),
        "thumb_knuckle": ("hand_S", (0.03, -0.045, -0.075), "thumb interphalangeal joint"),
        # head
        "fronthead": ("head", (0.12, -0.045, 0.265), "forehead above the eye"),
        "backhead": ("head", (-0.07, -0.045, 0.24), "back of the head, above the ear level"),
        "cheek": ("head", (0.115, -0.055, 0.15), "cheek bone (zygoma)"),
        "eye": ("head", (0.115, -0.032, 0.20), "eye centre (pupil)"),
        "eye_inner": ("head", (0.12, -0.017, 0.20), "inner eye corner"),
        "eye_outer": ("head", (0.105, -0.048, 0.20), "outer eye corner"),
        "ear": ("head", (0.02, -0.075, 0.185), "ear (tragus)"),
        "mouth": ("head", (0.125, -0.025, 0.115), "mouth corner"),
    }


def _landmarks_center() -> dict[str, tuple[str, tuple, str]]:
    return {
        "backneck": ("torso", (-0.06, 0.0, 0.42), "C7 spinous process"),
        "upperback": ("torso", (-0.09, 0.0, 0.33), "upper back between the scapulae (T4)"),
        "clavicle": ("torso", (0.09, 0.0, 0.40), "jugular (sternal) notch between the clavicles"),
        "sternum": ("torso", (0.135, 0.0, 0.28), "lower sternum"),
        "umbilicus": ("torso", (0.13, 0.0, 0.05), "navel (umbilicus)"),
        "thorax_jc": ("torso", (0.02, 0.0, 0.30), "thorax centre (spine at chest height)"),
        "neck_base": ("torso", (0.02, 0.0, 0.40),
                      "OpenPose BODY25 neck: base of the neck, midpoint of the shoulders"),
        "pelvis_jc": ("pelvis", (-0.06, 0.0, -0.04), "pelvis centre"),
        "midhip_jc": ("pelvis", (HIP_R[0], 0.0, HIP_R[2]), "midpoint of the hip joint centres"),
        # OpenPose MidHip / Halpe "Hip" are labelled as the midpoint of the two annotated (detector) hips, which
        # sit 1.5 cm below the hip joint centres: the midpoint is as low
        "midhip_detector": ("pelvis", (HIP_R[0], 0.0, _hip_surface("r")[2]),
                            "midpoint of the two detector hips (1.5 cm below the hip joint centres)"),
        "head_jc": ("head", (0.04, 0.0, 0.19), "head centre, midpoint between the ears"),
        "vertex": ("head", HEAD_END, "top of the head (vertex)"),
        "upperneck": ("head", (0.03, 0.0, 0.10), "upper neck below the chin"),
        "nose": ("head", (0.145, 0.0, 0.16), "tip of the nose"),
    }


def _resolve(key: str, side: str | None):
    """(body, pos, landmark) for a sided key ('r'/'l') or a centre key (side None)."""
    if side is None:
        return _landmarks_center()[key]
    body, pos, text = _landmarks_right()[key]
    body = body.replace("_S", f"_{side}")
    side_word = "right" if side == "r" else "left"
    if side == "l":
        pos = _mirror_pos(pos)
    return body, tuple(float(v) for v in pos), f"{side_word} {text}"


MOVI87_NAMES = (
    "backneck upperback clavicle sternum umbilicus lfronthead lbackhead lback lshom lupperarm "
    "lelbm lforearm lwrithumbside lwripinkieside lfin lasis lpsis lfrontthigh lthigh lknem "
    "lankm lhee lfifthmetatarsal ltoe lcheek lbreast lelbinner lwaist lthumb lfrontinnerthigh "
    "linnerknee lshin lfirstmetatarsal lfourthtoe lscapula lbum rfronthead rbackhead rback rshom "
    "rupperarm relbm rforearm rwrithumbside rwripinkieside rfin rasis rpsis rfrontthigh rthigh "
    "rknem rankm rhee rfifthmetatarsal rtoe rcheek rbreast relbinner rwaist rthumb "
    "rfrontinnerthigh rinnerknee rshin rfirstmetatarsal rfourthtoe rscapula rbum head mhip pelv "
    "thor lank lelb lhip lhan lkne lsho lwri lfoo rank relb rhip rhan rkne rsho rwri rfoo").split()
_MOVI_JOINT_KEYS = {"head": ("head_jc", None), "mhip": ("midhip_jc", None), "pelv": ("pelvis_jc", None),
                    "thor": ("thorax_jc", None), "ank": "ankle_jc", "elb": "elbow_jc", "hip": "hip_jc",
                    "han": "hand_jc", "kne": "knee_jc", "sho": "shoulder_jc", "wri": "wrist_jc",
                    "foo": "foot_jc"}


def _movi87():
    out = []
    for name in MOVI87_NAMES:
        if name in _landmarks_center():
            out.append((name, name, None))
        elif name in ("head", "mhip", "pelv", "thor"):
            key, _ = _MOVI_JOINT_KEYS[name]
            out.append((name, key, None))
        else:
            side, rest = name[0], name[1:]
            key = _MOVI_JOINT_KEYS.get(rest, rest)
            out.append((name, key, side))
    return out


# Detector sets: name -> (key, side)
_OPENPOSE_SIDED = {"Shoulder": "shoulder_detector", "Elbow": "elbow_jc", "Wrist": "wrist_jc",
                   "Hip": "hip_detector", "Knee": "knee_jc", "Ankle": "ankle_jc", "BigToe": "bigtoe",
                   "SmallToe": "smalltoe", "Heel": "hee", "Eye": "eye", "Ear": "ear"}


def _openpose(names: list[str], neck_key: str):
    out = []
    for n in names:
        if n == "Nose":
            out.append((n, "nose", None))
        elif n in ("Neck", "UpperNeck"):
            out.append((n, neck_key if n == "Neck" else "upperneck", None))
        elif n in ("Head", "HeadTop"):
            out.append((n, "vertex", None))
        elif n == "Hip":
            out.append((n, "midhip_detector", None))  # HALPE26 "Hip": midpoint of the two detector hips
        elif n == "MidHip":
            out.append((n, "midhip_detector", None))
        else:
            side = "l" if n[0] == "L" else "r"
            out.append((n, _OPENPOSE_SIDED[n[1:]], side))
    return out


HALPE26_NAMES = ("Nose LEye REye LEar REar LShoulder RShoulder LElbow RElbow LWrist RWrist LHip RHip "
                 "LKnee RKnee LAnkle RAnkle Head Neck Hip LBigToe RBigToe LSmallToe RSmallToe LHeel "
                 "RHeel").split()
BODY25B_NAMES = ("Nose LEye REye LEar REar LShoulder RShoulder LElbow RElbow LWrist RWrist LHip RHip "
                 "LKnee RKnee LAnkle RAnkle UpperNeck HeadTop LBigToe LSmallToe LHeel RBigToe "
                 "RSmallToe RHeel").split()
BODY25_NAMES = ("Nose Neck RShoulder RElbow RWrist LShoulder LElbow LWrist MidHip RHip RKnee RAnkle "
                "LHip LKnee LAnkle REye LEye REar LEar LBigToe LSmallToe LHeel RBigToe RSmallToe "
                "RHeel").split()
BLAZEPOSE33_NAMES = ("nose left_eye_inner left_eye left_eye_outer right_eye_inner right_eye "
                     "right_eye_outer left_ear right_ear mouth_left mouth_right left_shoulder "
                     "right_shoulder left_elbow right_elbow left_wrist right_wrist left_pinky "
                     "right_pinky left_index right_index left_thumb right_thumb left_hip right_hip "
                     "left_knee right_knee left_ankle right_ankle left_heel right_heel "
                     "left_foot_index right_foot_index").split()
_BLAZE_KEYS = {"eye_inner": "eye_inner", "eye": "eye", "eye_outer": "eye_outer", "ear": "ear",
               "mouth": "mouth", "shoulder": "shoulder_detector", "elbow": "elbow_jc", "wrist": "wrist_jc",
               "pinky": "pinky_knuckle", "index": "index_knuckle", "thumb": "thumb_knuckle",
               "hip": "hip_detector", "knee": "knee_jc", "ankle": "ankle_jc", "heel": "hee",
               "foot_index": "toe"}
HEEL_NAMES = {"lhee", "rhee", "LHeel", "RHeel", "left_heel", "right_heel"}


def _blazepose():
    out = []
    for n in BLAZEPOSE33_NAMES:
        if n == "nose":
            out.append((n, "nose", None))
            continue
        if n.startswith("mouth_"):
            out.append((n, "mouth", "l" if n.endswith("left") else "r"))
            continue
        side_word, rest = n.split("_", 1)
        out.append((n, _BLAZE_KEYS[rest], "l" if side_word == "left" else "r"))
    return out


MARKER_SET_DESCRIPTIONS = {
    "MOVI87": "MoVi / MeTRAbs bml_movi_87: 67 surface markers + 20 joint centres",
    "HALPE26": "AlphaPose / RTMPose body-26 (Halpe)",
    "BODY25": "OpenPose BODY_25 (default model)",
    "BODY25B": "OpenPose experimental body_25b",
    "COCO17": "COCO 17 body keypoints (indices 0-16 of HALPE26)",
    "BLAZEPOSE33": "MediaPipe Pose / BlazePose 33 landmarks",
}
# Foot roles for gait events: the heel keypoint and the most distal toe keypoint of each foot (None: no feet).
_OPENPOSE_FEET = {"left": {"heel": "LHeel", "toe": "LBigToe"}, "right": {"heel": "RHeel", "toe": "RBigToe"}}
MARKER_SET_FEET = {
    "MOVI87": {"left": {"heel": "lhee", "toe": "ltoe"}, "right": {"heel": "rhee", "toe": "rtoe"}},
    "HALPE26": _OPENPOSE_FEET,
    "BODY25": _OPENPOSE_FEET,
    "BODY25B": _OPENPOSE_FEET,
    "COCO17": None,
    "BLAZEPOSE33": {"left": {"heel": "left_heel", "toe": "left_foot_index"},
                    "right": {"heel": "right_heel", "toe": "right_foot_index"}},
}


def marker_sets() -> dict[str, list[dict]]:
    halpe = _openpose(HALPE26_NAMES, "upperneck")
    sets = {
        "MOVI87": _movi87(),
        "HALPE26": halpe,
        "BODY25": _openpose(BODY25_NAMES, "neck_base"),
        "BODY25B": _openpose(BODY25B_NAMES, "upperneck"),
        "COCO17": halpe[:17],
        "BLAZEPOSE33": _blazepose(),
    }
    out = {}
    for set_name, entries in sets.items():
        rows = []
        for name, key, side in entries:
            body, pos, text = _resolve(key, side)
            if set_name == "HALPE26" and name == "Neck":
                text = "HALPE neck: upper neck below the chin"
            rows.append({"name": name, "body": body, "pos": [round(float(v), 6) for v in pos],
                         "landmark": text, "heel": name in HEEL_NAMES})
        out[set_name] = rows
    return out


def main() -> None:
    (MODELS_DIR / "body40.xml").write_text(body40_xml())
    MARKERSETS_DIR.mkdir(exist_ok=True)
    for name, rows in marker_sets().items():
        doc = {"name": name, "description": MARKER_SET_DESCRIPTIONS[name],
               "units": "metres, body frame of the unscaled body40 model",
               "feet": MARKER_SET_FEET[name], "keypoints": rows}
        (MARKERSETS_DIR / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
