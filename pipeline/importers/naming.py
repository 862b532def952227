"""Matching camera names of keypoint sources to calibration sections.

Normalisation (:func:`normalize_camera_name`): lower-case; a trailing ``_json``/``-json``/``_pose``/``_keypoints``
is dropped; a name containing ``cam`` (or ``camera``) followed by a number becomes ``cam_<number without leading
zeros>``; a bare number ``N`` becomes ``cam_N``. So ``cam01_json``, ``cam1``, ``Cam_01``, ``camera-1`` and ``1`` all
become ``cam_1``. Other names are kept (lower-case). An explicit ``camera_map = {source = "calibration name"}``
in the manifest overrides this. Two sources (or two calibration cameras) with the same normalised name are an error,
and so is a source whose camera has no calibration.
"""
from __future__ import annotations

import re
from pathlib import Path

from pipeline.importers.errors import IngestError

_SUFFIX = re.compile(r"[_\-.]?(json|pose|keypoints|openpose)$")
_CAMERA_NUMBER = re.compile(r"cam(?:era)?[_\-\s]*0*(\d+)")


def normalize_camera_name(name: str) -> str:
    text = str(name).strip().lower()
    previous = None
    while previous != text:
        previous, text = text, _SUFFIX.sub("", text)
    if text.isdigit():
        return f"cam_{int(text)}"
    match = _CAMERA_NUMBER.search(text)
    if match:
        return f"cam_{int(match.group(1))}"
    return text


def match_cameras(source_names: list[str], calibration_names: list[str], camera_map: dict[str, str] | None,
                  source: str | Path, field: str = "camera") -> dict[str, str]:
    """Map each keypoint source name to a calibration camera name (the calibration's own spelling).

    Raises IngestError for ambiguity or a source without calibration.
    """
    camera_map = dict(camera_map or {})
    by_normalized: dict[str, str] = {}
    for name in calibration_names:
        key = normalize_camera_name(name)
        if key in by_normalized:
            raise IngestError(source, field, f"calibration cameras with distinct normalised names, but "
                                             f"{by_normalized[key]!r} and {name!r} both normalise to {key!r}")
        by_normalized[key] = name
    result: dict[str, str] = {}
    for name in source_names:
        if str(name) in camera_map:
            target = camera_map[str(name)]
            if target in calibration_names:
                result[name] = target
                continue
            target_key = normalize_camera_name(target)
            if target_key not in by_normalized:
                raise IngestError(source, f"camera_map.{name}", f"a calibrated camera ({', '.join(calibration_names)}),"
                                                                f" got {target!r}")
            result[name] = by_normalized[target_key]
            continue
        key = normalize_camera_name(name)
        if key not in by_normalized:
            raise IngestError(source, f"{field} {name!r}", f"a camera present in the calibration "
                                                            f"({', '.join(calibration_names)}); add camera_map if "
                                                            f"names differ")
        result[name] = by_normalized[key]
    targets = list(result.values())
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        clash = [s for s, t in result.items() if t in duplicates]
        raise IngestError(source, field, f"one keypoint source per camera, but {clash} all map to {duplicates}")
    return result
