"""Marker sets: which keypoint of a detector sits where on the body model.

A marker set is data (``compute/markersets/<NAME>.json``, written by ``compute/models/generate_body40.py``):
for every keypoint, in detector output order, the body it is attached to, its position in that body's
frame of the *unscaled* base model (metres; body frames X anterior, Y left, Z up in the standing pose) and
the anatomical landmark it stands for. Detector keypoints are not joint centres: e.g. the OpenPose "hip" is
~2 cm lateral and 1.5 cm below the hip joint centre; MoVi/MeTRAbs joint-centre points (``lhip``, ``lkne``,
...) are at the joint centres. Heel keypoints carry ``"heel": true`` (the trilevel fit freezes them).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MARKER_SET_NAMES: tuple[str, ...] = ("MOVI87", "HALPE26", "BODY25", "BODY25B", "COCO17", "BLAZEPOSE33")
MARKERSETS_DIR = Path(__file__).resolve().parent / "markersets"


@dataclass(frozen=True, eq=False)
class MarkerSet:
    """One detector's keypoints on the body model.

    name: marker-set name (e.g. ``"MOVI87"``); keypoint_names: (J,) in detector order; bodies: (J,) body
    names; positions: (J, 3) metres in the body frame of the unscaled base model; landmarks: (J,) what
    anatomical point each keypoint means; heel_mask: (J,) bool, True for heel keypoints.
    """

    name: str
    keypoint_names: tuple[str, ...]
    bodies: tuple[str, ...]
    positions: np.ndarray
    landmarks: tuple[str, ...]
    heel_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __len__(self) -> int:
        return len(self.keypoint_names)


def load_marker_set(name: str) -> MarkerSet:
    """Read ``compute/markersets/<name>.json`` (keypoints in detector order)."""
    path = MARKERSETS_DIR / f"{name}.json"
    if not path.exists():
        raise ValueError(f"{path}: unknown marker set {name!r}; expected one of {MARKER_SET_NAMES}")
    doc = json.loads(path.read_text())
    rows = doc["keypoints"]
    positions = np.asarray([r["pos"] for r in rows], dtype=np.float64).reshape(len(rows), 3)
    return MarkerSet(
        name=doc.get("name", name),
        keypoint_names=tuple(r["name"] for r in rows),
        bodies=tuple(r["body"] for r in rows),
        positions=positions,
        landmarks=tuple(r.get("landmark", "") for r in rows),
        heel_mask=np.asarray([bool(r.get("heel", False)) for r in rows], dtype=bool),
    )


def heel_marker_mask(marker_set: MarkerSet | str) -> np.ndarray:
    """(J,) bool: True for the heel keypoints (MOVI87 lhee/rhee, OpenPose LHeel/RHeel, BlazePose
    left_heel/right_heel; all False for COCO17)."""
    if isinstance(marker_set, str):
        marker_set = load_marker_set(marker_set)
    return np.asarray(marker_set.heel_mask, dtype=bool)
