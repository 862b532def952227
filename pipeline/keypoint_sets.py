"""Ordered keypoint names of the detector formats we import (index = position in the detector output).

The lists are copied from ``KEYPOINTS.md`` so that this module works standalone; when H1's packaged marker sets
(``compute/markersets/<NAME>.json``) exist, :func:`keypoint_names` checks that they agree.
"""
from __future__ import annotations

import json
from pathlib import Path

MOVI87: tuple[str, ...] = (
    'backneck', 'upperback', 'clavicle', 'sternum', 'umbilicus', 'lfronthead', 'lbackhead', 'lback', 'lshom',
    'lupperarm', 'lelbm', 'lforearm', 'lwrithumbside', 'lwripinkieside', 'lfin', 'lasis', 'lpsis',
    'lfrontthigh', 'lthigh', 'lknem', 'lankm', 'lhee', 'lfifthmetatarsal', 'ltoe', 'lcheek', 'lbreast',
    'lelbinner', 'lwaist', 'lthumb', 'lfrontinnerthigh', 'linnerknee', 'lshin', 'lfirstmetatarsal',
    'lfourthtoe', 'lscapula', 'lbum', 'rfronthead', 'rbackhead', 'rback', 'rshom', 'rupperarm', 'relbm',
    'rforearm', 'rwrithumbside', 'rwripinkieside', 'rfin', 'rasis', 'rpsis', 'rfrontthigh', 'rthigh',
    'rknem', 'rankm', 'rhee', 'rfifthmetatarsal', 'rtoe', 'rcheek', 'rbreast', 'relbinner', 'rwaist',
    'rthumb', 'rfrontinnerthigh', 'rinnerknee', 'rshin', 'rfirstmetatarsal', 'rfourthtoe', 'rscapula',
    'rbum', 'head', 'mhip', 'pelv', 'thor', 'lank', 'lelb', 'lhip', 'lhan', 'lkne', 'lsho', 'lwri', 'lfoo',
    'rank', 'relb', 'rhip', 'rhan', 'rkne', 'rsho', 'rwri', 'rfoo',
)

HALPE26: tuple[str, ...] = (
    'Nose', 'LEye', 'REye', 'LEar', 'REar', 'LShoulder', 'RShoulder', 'LElbow', 'RElbow', 'LWrist', 'RWrist',
    'LHip', 'RHip', 'LKnee', 'RKnee', 'LAnkle', 'RAnkle', 'Head', 'Neck', 'Hip', 'LBigToe', 'RBigToe',
    'LSmallToe', 'RSmallToe', 'LHeel', 'RHeel',
)

BODY25: tuple[str, ...] = (
    'Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist', 'MidHip', 'RHip',
    'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar', 'LBigToe', 'LSmallToe',
    'LHeel', 'RBigToe', 'RSmallToe', 'RHeel',
)

BODY25B: tuple[str, ...] = (
    'Nose', 'LEye', 'REye', 'LEar', 'REar', 'LShoulder', 'RShoulder', 'LElbow', 'RElbow', 'LWrist', 'RWrist',
    'LHip', 'RHip', 'LKnee', 'RKnee', 'LAnkle', 'RAnkle', 'UpperNeck', 'HeadTop', 'LBigToe', 'LSmallToe',
    'LHeel', 'RBigToe', 'RSmallToe', 'RHeel',
)

COCO17: tuple[str, ...] = (
    'Nose', 'LEye', 'REye', 'LEar', 'REar', 'LShoulder', 'RShoulder', 'LElbow', 'RElbow', 'LWrist', 'RWrist',
    'LHip', 'RHip', 'LKnee', 'RKnee', 'LAnkle', 'RAnkle',
)

BLAZEPOSE33: tuple[str, ...] = (
    'nose', 'left_eye_inner', 'left_eye', 'left_eye_outer', 'right_eye_inner', 'right_eye',
    'right_eye_outer', 'left_ear', 'right_ear', 'mouth_left', 'mouth_right', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_pinky', 'right_pinky',
    'left_index', 'right_index', 'left_thumb', 'right_thumb', 'left_hip', 'right_hip', 'left_knee',
    'right_knee', 'left_ankle', 'right_ankle', 'left_heel', 'right_heel', 'left_foot_index',
    'right_foot_index',
)

KEYPOINT_SETS: dict[str, tuple[str, ...]] = {
    "MOVI87": MOVI87,
    "HALPE26": HALPE26,
    "BODY25": BODY25,
    "BODY25B": BODY25B,
    "COCO17": COCO17,
    "BLAZEPOSE33": BLAZEPOSE33,
}

KEYPOINT_SET_DESCRIPTIONS: dict[str, str] = {
    "MOVI87": "MoVi / MeTRAbs bml_movi_87: 67 surface markers + 20 joint centres",
    "HALPE26": "AlphaPose / RTMPose body-26 (Halpe)",
    "BODY25": "OpenPose BODY_25 (default model)",
    "BODY25B": "OpenPose experimental body_25b",
    "COCO17": "COCO 17 body keypoints (indices 0-16 of HALPE26)",
    "BLAZEPOSE33": "MediaPipe Pose / BlazePose 33 landmarks",
}

_MARKERSET_DIR = Path(__file__).resolve().parents[1] / "compute" / "markersets"


def keypoint_names(name: str) -> tuple[str, ...]:
    """Ordered keypoint names of keypoint set ``name`` (KeyError if unknown).

    If ``compute/markersets/<name>.json`` exists and lists ``keypoint_names``, they must equal ours.
    """
    names = KEYPOINT_SETS[name]
    packaged = _MARKERSET_DIR / f"{name}.json"
    if packaged.is_file():
        try:
            data = json.loads(packaged.read_text())
            other = tuple(data.get("keypoint_names", names))
        except (OSError, ValueError, AttributeError):
            other = names
        if other != names:
            raise ValueError(f"{packaged}: keypoint_names differ from KEYPOINTS.md order for {name}")
    return names


def lookup_rows() -> list[dict]:
    """Rows for the ``KeypointSet`` lookup table."""
    return [
        dict(keypoint_set=name, n_joints=len(names), joint_names=list(names),
             description=KEYPOINT_SET_DESCRIPTIONS[name])
        for name, names in KEYPOINT_SETS.items()
    ]
