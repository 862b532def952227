"""Marker sets: which keypoint of a detector sits where on the body model.

A marker set is data (``compute/markersets/<NAME>.json``, written by ``compute/models/generate_body40.py``):
for every keypoint, in detector output order, the body it is attached to, its position in that body's
frame of the *unscaled* base model (metres; body frames X anterior, Y left, Z up in the standing pose) and
the anatomical landmark it stands for. Detector keypoints are not joint centres: e.g. the OpenPose "hip" is
~2 cm lateral and 1.5 cm below the hip joint centre; MoVi/MeTRAbs joint-centre points (``lhip``, ``lkne``,
...) are at the joint centres. Heel keypoints carry ``"heel": true`` (the trilevel fit freezes them).

The files are the only source of keypoint names (``keypoint_names``), of the detector descriptions and of the
foot roles used for gait events (``foot_keypoints``: the heel and toe keypoint of each foot, ``"feet"`` in the
file); every other module asks this one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

MARKER_SET_NAMES: tuple[str, ...] = ("MOVI87", "HALPE26", "BODY25", "BODY25B", "COCO17", "BLAZEPOSE33")
MARKERSETS_DIR = Path(__file__).resolve().parent / "markersets"


@dataclass(frozen=True, eq=False)
class MarkerSet:
    """One detector's keypoints on the body model.

    name: marker-set name (e.g. ``"MOVI87"``); keypoint_names: (J,) in detector order; bodies: (J,) body
    names; positions: (J, 3) metres in the body frame of the unscaled base model; landmarks: (J,) what
    anatomical point each keypoint means; heel_mask: (J,) bool, True for heel keypoints; description: the
    detector it comes from; feet: ``{"left": {"heel": name, "toe": name}, "right": {...}}`` or None when the
    set has no foot keypoints (COCO17).
    """

    name: str
    keypoint_names: tuple[str, ...]
    bodies: tuple[str, ...]
    positions: np.ndarray
    landmarks: tuple[str, ...]
    heel_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    description: str = ""
    feet: Mapping[str, Mapping[str, str]] | None = None

    def __len__(self) -> int:
        return len(self.keypoint_names)


def load_marker_set(name: str) -> MarkerSet:
    """Read ``compute/markersets/<name>.json`` (keypoints in detector order).

    Every field is required: a file missing ``name``, ``description``, ``feet`` or a keypoint's ``name``,
    ``body``, ``pos``, ``landmark`` or ``heel`` is an error naming the file and the field.
    """
    path = MARKERSETS_DIR / f"{name}.json"
    if not path.exists():
        raise ValueError(f"{path}: unknown marker set {name!r}; expected one of {MARKER_SET_NAMES}")
    doc = json.loads(path.read_text())
    rows = [dict(_require(path, row, ("name", "body", "pos", "landmark", "heel"), f"keypoints[{j}]"))
            for j, row in enumerate(_require(path, doc, ("keypoints",))["keypoints"])]
    _require(path, doc, ("name", "description", "feet"))
    if doc["name"] != name:
        raise ValueError(f"{path}: name {doc['name']!r} differs from the file name {name!r}")
    keypoint_names = tuple(r["name"] for r in rows)
    feet = doc["feet"]
    if feet is not None:
        for side in ("left", "right"):
            for role in ("heel", "toe"):
                keypoint = feet.get(side, {}).get(role)
                if keypoint not in keypoint_names:
                    raise ValueError(f"{path}: feet.{side}.{role} = {keypoint!r} is not one of its keypoints")
        feet = MappingProxyType({side: MappingProxyType(dict(feet[side])) for side in ("left", "right")})
    positions = np.asarray([r["pos"] for r in rows], dtype=np.float64).reshape(len(rows), 3)
    return MarkerSet(
        name=doc["name"],
        keypoint_names=keypoint_names,
        bodies=tuple(r["body"] for r in rows),
        positions=positions,
        landmarks=tuple(r["landmark"] for r in rows),
        heel_mask=np.asarray([bool(r["heel"]) for r in rows], dtype=bool),
        description=str(doc["description"]),
        feet=feet,
    )


def _require(path: Path, doc: dict, fields: tuple[str, ...], where: str = "") -> dict:
    missing = [f for f in fields if f not in doc]
    if missing:
        raise ValueError(f"{path}: {where + ' ' if where else ''}missing field(s) {missing}")
    return doc


@lru_cache(maxsize=None)
def _cached_marker_set(name: str) -> MarkerSet:
    return load_marker_set(name)


def keypoint_names(set_name: str) -> tuple[str, ...]:
    """(J,) keypoint names of ``set_name`` in detector output order (index j = keypoint j)."""
    return _cached_marker_set(set_name).keypoint_names


def keypoint_set_description(set_name: str) -> str:
    """One line naming the detector / format of ``set_name``."""
    return _cached_marker_set(set_name).description


def foot_keypoints(set_name: str) -> dict[str, dict[str, int]]:
    """Indices of the gait-event keypoints: ``{"left": {"heel": j, "toe": j}, "right": {...}}``.

    The toe is the most distal toe keypoint of the set (big toe / foot index / ``ltoe``). Raises ValueError for a
    set without foot keypoints (COCO17), naming the sets that have them.
    """
    marker_set = _cached_marker_set(set_name)
    if marker_set.feet is None:
        with_feet = [n for n in MARKER_SET_NAMES if _cached_marker_set(n).feet is not None]
        raise ValueError(f"keypoint set {set_name!r} has no heel/toe keypoints (sets with feet: {with_feet})")
    names = marker_set.keypoint_names
    return {side: {role: names.index(marker_set.feet[side][role]) for role in ("heel", "toe")}
            for side in ("left", "right")}


# A pelvis seen through at most this many keypoints (two hips, perhaps their midpoint) leaves its sagittal tilt to
# be traded against lumbar extension and hip flexion at almost no reprojection cost.
SPARSE_PELVIS_KEYPOINTS = 3


def is_sparse(set_name: str) -> bool:
    """True when ``set_name`` sees the pelvis only as hip points (COCO17, HALPE26, BODY25, BODY25B,
    BLAZEPOSE33): pelvis tilt, lumbar extension and hip flexion are then not all determined by the images and a
    fit needs posture priors; False for dense sets with pelvic landmarks (MOVI87)."""
    return _cached_marker_set(set_name).bodies.count("pelvis") <= SPARSE_PELVIS_KEYPOINTS


def keypoint_sets() -> Mapping[str, tuple[str, ...]]:
    """``{set name: (J,) keypoint names}`` for every packaged marker set (read-only)."""
    return MappingProxyType({name: keypoint_names(name) for name in MARKER_SET_NAMES})


def heel_marker_mask(marker_set: MarkerSet | str) -> np.ndarray:
    """(J,) bool: True for the heel keypoints (MOVI87 lhee/rhee, OpenPose LHeel/RHeel, BlazePose
    left_heel/right_heel; all False for COCO17)."""
    if isinstance(marker_set, str):
        marker_set = load_marker_set(marker_set)
    return np.asarray(marker_set.heel_mask, dtype=bool)


KEYPOINT_SETS: Mapping[str, tuple[str, ...]] = keypoint_sets()
"""``{set name: (J,) keypoint names}``, read once from the packaged files (read-only)."""
