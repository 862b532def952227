"""2D keypoint readers and cross-camera frame alignment.

Every reader returns ``{source camera name: CameraKeypoints}``; :func:`align_frames` puts all cameras of a trial on
the union of their frame indices (``(C, T, J, 2)``), with confidence 0 and NaN coordinates where a camera has no
detection for a frame.

Formats
- **OpenPose JSON** (:func:`read_openpose_folder`): a folder with one sub-folder per camera, one
  ``*_<frame>_keypoints.json`` per frame (frame index = last number in the file name; files without a number are
  numbered in sorted order). ``people[*].pose_keypoints_2d`` holds ``x, y, c`` triplets for the J keypoints.
  *Tracked person*: in the first frame with detections, the person with the largest summed confidence; in every
  later frame, the person whose keypoints are nearest (median px distance over keypoints confident in both) to the
  person chosen last; if no keypoints are shared, again the most confident. Frames with no people count as missing.
- **Caliscope CSV** (:func:`read_caliscope_csv`): long format ``sync_index, port, point_id, img_loc_x, img_loc_y``;
  camera ``cam_<port>``; frame = ``sync_index``; point ids ``0..J-1`` are the keypoint indices (BlazePose 33), any
  other id (hands 100+, 200+, face 500+) is left out and counted. No confidence is stored: 1 where a point is
  present, 0 where missing.
- **NPZ** (:func:`read_npz_folder`): one ``<camera>.npz`` per camera with ``keypoints (T,J,2)`` px,
  ``confidence (T,J)`` in [0,1], ``joint_names (J,)`` equal to the keypoint set's order, optional
  ``frame_index (T,)`` (default ``arange(T)``) and ``detector`` (0-d string).

Validation (all readers): J must match the keypoint set; confidences finite and in [0, 1]; coordinates finite
where confidence > 0 (NaN with confidence 0 is a missing point).
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.importers.errors import IngestError


@dataclass
class CameraKeypoints:
    """Keypoints of one camera as read from its source (not yet aligned)."""

    source: Path
    frame_index: np.ndarray    # (F,) int64, strictly increasing
    points: np.ndarray         # (F, J, 2) float32 px, NaN where confidence == 0
    confidence: np.ndarray     # (F, J) float32 in [0, 1]
    detector: str = ""
    frames_without_detection: int = 0
    left_out: dict[str, int] = field(default_factory=dict)  # e.g. {"hand": 1234, "face": 56} (rows)


@dataclass
class AlignedKeypoints:
    """All cameras of a trial on a common frame axis."""

    frame_index: np.ndarray    # (T,) int64
    cameras: list[str]         # source names, order of axis C
    points: np.ndarray         # (C, T, J, 2) float32 px
    confidence: np.ndarray     # (C, T, J) float32
    missing_frames: dict[str, int]  # per source: frames of the union without any detection in that camera
    sources: dict[str, Path]
    detectors: dict[str, str]
    left_out: dict[str, int]   # summed over cameras


def validate_keypoints(source: Path | str, field_prefix: str, points: np.ndarray, confidence: np.ndarray,
                       n_joints: int, keypoint_set: str) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes/values; return (points float32 with NaN where conf == 0, confidence float32)."""
    points = np.asarray(points, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    if points.ndim != 3 or points.shape[2] != 2:
        raise IngestError(source, f"{field_prefix}keypoints", f"shape (T, J, 2), got {points.shape}")
    if points.shape[1] != n_joints:
        raise IngestError(source, f"{field_prefix}keypoints", f"{n_joints} keypoints for {keypoint_set}, "
                                                              f"got {points.shape[1]}")
    if confidence.shape != points.shape[:2]:
        raise IngestError(source, f"{field_prefix}confidence", f"shape {points.shape[:2]}, got {confidence.shape}")
    if not np.all(np.isfinite(confidence)):
        raise IngestError(source, f"{field_prefix}confidence", "finite values in [0, 1]")
    if np.any((confidence < 0) | (confidence > 1)):
        bad = confidence[(confidence < 0) | (confidence > 1)]
        raise IngestError(source, f"{field_prefix}confidence", f"values in [0, 1], got {bad.flat[0]:.4g}")
    bad_xy = (confidence > 0) & ~np.all(np.isfinite(points), axis=-1)
    if np.any(bad_xy):
        t, j = np.argwhere(bad_xy)[0]
        raise IngestError(source, f"{field_prefix}keypoints", f"finite coordinates where confidence > 0, got "
                                                              f"{points[t, j].tolist()} at frame {t} keypoint {j}")
    points = np.where(confidence[..., None] > 0, points, np.nan).astype(np.float32)
    return points, confidence.astype(np.float32)


# ------------------------------------------------------------------------------------------------ OpenPose
_FRAME_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def _frame_numbers(files: list[Path]) -> np.ndarray:
    numbers = []
    for path in files:
        match = _FRAME_NUMBER.search(path.stem)
        if match is None:
            return np.arange(len(files), dtype=np.int64)
        numbers.append(int(match.group(1)))
    numbers_array = np.asarray(numbers, dtype=np.int64)
    if len(set(numbers)) != len(numbers):
        return np.arange(len(files), dtype=np.int64)
    return numbers_array


def _read_openpose_people(path: Path, n_joints: int, keypoint_set: str) -> np.ndarray:
    """People in one OpenPose file as (P, J, 3) float64 (x, y, c)."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise IngestError(path, "file", "UTF-8 JSON text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise IngestError(path, "file", f"valid JSON (truncated or not JSON: {error.msg} at char {error.pos})") \
            from None
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise IngestError(path, "people", "a list of detected people (OpenPose JSON)")
    people = []
    for index, person in enumerate(data["people"]):
        values = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if not isinstance(values, list):
            raise IngestError(path, f"people[{index}].pose_keypoints_2d", "a list of x, y, c numbers")
        if len(values) != 3 * n_joints:
            raise IngestError(path, f"people[{index}].pose_keypoints_2d",
                              f"{3 * n_joints} numbers ({n_joints} keypoints of {keypoint_set} × x,y,c), "
                              f"got {len(values)}")
        try:
            people.append(np.asarray(values, dtype=np.float64).reshape(n_joints, 3))
        except (TypeError, ValueError):
            raise IngestError(path, f"people[{index}].pose_keypoints_2d", "numbers") from None
    return np.stack(people) if people else np.zeros((0, n_joints, 3))


def choose_tracked_person(people: np.ndarray, previous: np.ndarray | None) -> int:
    """Index of the tracked person among ``people (P, J, 3)`` given the last chosen ``previous (J, 3)`` or None.

    Nearest to ``previous`` (median distance over keypoints with confidence > 0 in both), else most confident.
    """
    scores = np.nan_to_num(people[:, :, 2]).sum(axis=1)
    if previous is None:
        return int(np.argmax(scores))
    distances = []
    for person in people:
        shared = (person[:, 2] > 0) & (previous[:, 2] > 0)
        if not np.any(shared):
            distances.append(np.inf)
            continue
        distances.append(float(np.median(np.linalg.norm(person[shared, :2] - previous[shared, :2], axis=-1))))
    if np.all(np.isinf(distances)):
        return int(np.argmax(scores))
    return int(np.argmin(distances))


def read_openpose_camera(folder: Path, n_joints: int, keypoint_set: str) -> CameraKeypoints:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise IngestError(folder, "files", "one OpenPose *.json file per frame")
    frame_index = _frame_numbers(files)
    order = np.argsort(frame_index, kind="stable")
    files = [files[i] for i in order]
    frame_index = frame_index[order]
    points = np.full((len(files), n_joints, 2), np.nan)
    confidence = np.zeros((len(files), n_joints))
    previous = None
    empty = 0
    for t, path in enumerate(files):
        people = _read_openpose_people(path, n_joints, keypoint_set)
        if len(people) == 0:
            empty += 1
            continue
        chosen = people[choose_tracked_person(people, previous)]
        previous = chosen
        points[t], confidence[t] = chosen[:, :2], chosen[:, 2]
        # validate per file so the error names the file
        validate_keypoints(path, "people.pose_keypoints_2d: ", points[t:t + 1], confidence[t:t + 1], n_joints,
                           keypoint_set)
    points, confidence = validate_keypoints(folder, "", points, confidence, n_joints, keypoint_set)
    return CameraKeypoints(folder, frame_index, points, confidence, frames_without_detection=empty)


def read_openpose_folder(folder: str | Path, n_joints: int, keypoint_set: str) -> dict[str, CameraKeypoints]:
    """``folder`` holds one sub-folder of per-frame JSON files per camera; keys are the sub-folder names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(folder, "keypoints", "a folder with one sub-folder of OpenPose JSON files per camera")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    if not subfolders:
        raise IngestError(folder, "keypoints", "one sub-folder per camera")
    return {sub.name: read_openpose_camera(sub, n_joints, keypoint_set) for sub in subfolders}


# ------------------------------------------------------------------------------------------------ Caliscope
CALISCOPE_COLUMNS = ("sync_index", "port", "point_id", "img_loc_x", "img_loc_y")


def _point_group(point_id: int) -> str:
    if 100 <= point_id < 300:
        return "hand"
    if point_id >= 500:
        return "face"
    return "other"


def read_caliscope_csv(path: str | Path, n_joints: int, keypoint_set: str) -> dict[str, CameraKeypoints]:
    """Caliscope ``xy_*.csv``; keys are ``cam_<port>``. Frames per camera = sync indices with a kept point."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise IngestError(path, "file", "an existing Caliscope CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise IngestError(path, "file", f"a CSV with columns {', '.join(CALISCOPE_COLUMNS)} ({error})") from None
    missing = [c for c in CALISCOPE_COLUMNS if c not in table.columns]
    if missing:
        raise IngestError(path, "header", f"columns {', '.join(CALISCOPE_COLUMNS)}; missing {', '.join(missing)}")
    for column in ("sync_index", "port", "point_id"):
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise IngestError(path, f"row {row + 2} {column}", "an integer")
        table[column] = values.astype(np.int64)
    for column in ("img_loc_x", "img_loc_y"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(np.float64)
    kept_mask = (table["point_id"] >= 0) & (table["point_id"] < n_joints)
    cameras: dict[str, CameraKeypoints] = {}
    for port, rows in table.groupby("port", sort=True):
        left_out: dict[str, int] = {}
        for point_id in rows.loc[~kept_mask[rows.index], "point_id"]:
            group = _point_group(int(point_id))
            left_out[group] = left_out.get(group, 0) + 1
        kept = rows[kept_mask[rows.index]]
        frames = np.unique(kept["sync_index"].to_numpy())
        points = np.full((len(frames), n_joints, 2), np.nan)
        confidence = np.zeros((len(frames), n_joints))
        t = np.searchsorted(frames, kept["sync_index"].to_numpy())
        j = kept["point_id"].to_numpy()
        xy = kept[["img_loc_x", "img_loc_y"]].to_numpy()
        if not np.all(np.isfinite(xy)):
            row = int(kept.index[np.flatnonzero(~np.all(np.isfinite(xy), axis=1))[0]])
            raise IngestError(path, f"row {row + 2} img_loc_x/img_loc_y",
                              "finite pixel coordinates (a listed point has confidence 1)")
        points[t, j] = xy
        confidence[t, j] = 1.0
        points, confidence = validate_keypoints(path, f"port {port} ", points, confidence, n_joints, keypoint_set)
        cameras[f"cam_{int(port)}"] = CameraKeypoints(path, frames.astype(np.int64), points, confidence,
                                                      detector="", left_out=left_out)
    if not cameras:
        raise IngestError(path, "rows", "at least one keypoint row")
    return cameras


# ------------------------------------------------------------------------------------------------ NPZ
def read_npz_camera(path: Path, keypoint_names: tuple[str, ...], keypoint_set: str) -> CameraKeypoints:
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise IngestError(path, "file", "an existing .npz file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise IngestError(path, "file", f"a readable .npz archive ({type(error).__name__})") from None
    for key in ("keypoints", "confidence", "joint_names"):
        if key not in data:
            raise IngestError(path, key, "present (keypoints (T,J,2), confidence (T,J), joint_names (J,))")
    names = tuple(str(n) for n in np.atleast_1d(data["joint_names"]))
    if len(names) != len(keypoint_names):
        raise IngestError(path, "joint_names", f"{len(keypoint_names)} keypoints for {keypoint_set}, got {len(names)}")
    if names != tuple(keypoint_names):
        first = next(i for i, (a, b) in enumerate(zip(names, keypoint_names)) if a != b)
        raise IngestError(path, "joint_names", f"the {keypoint_set} order; index {first} is {names[first]!r}, "
                                               f"expected {keypoint_names[first]!r}")
    try:
        points = np.asarray(data["keypoints"], dtype=np.float64)
        confidence = np.asarray(data["confidence"], dtype=np.float64)
    except (TypeError, ValueError):
        raise IngestError(path, "keypoints", "numeric arrays") from None
    points, confidence = validate_keypoints(path, "", points, confidence, len(keypoint_names), keypoint_set)
    if "frame_index" in data:
        frame_index = np.asarray(data["frame_index"])
        if frame_index.shape != (len(points),) or not np.issubdtype(frame_index.dtype, np.integer):
            raise IngestError(path, "frame_index", f"(T,) = ({len(points)},) integers, got {frame_index.shape} "
                                                   f"{frame_index.dtype}")
        if np.any(np.diff(frame_index) <= 0):
            raise IngestError(path, "frame_index", "strictly increasing frame numbers")
    else:
        frame_index = np.arange(len(points))
    detector = str(data["detector"]) if "detector" in data else ""
    return CameraKeypoints(path, frame_index.astype(np.int64), points, confidence, detector=detector)


def read_npz_folder(folder: str | Path, keypoint_names: tuple[str, ...], keypoint_set: str
                    ) -> dict[str, CameraKeypoints]:
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(folder, "keypoints", "a folder with one <camera_name>.npz per camera")
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise IngestError(folder, "keypoints", "one <camera_name>.npz per camera")
    return {path.stem: read_npz_camera(path, keypoint_names, keypoint_set) for path in files}


# ------------------------------------------------------------------------------------------------ alignment
def align_frames(cameras: dict[str, CameraKeypoints], source: Path | str) -> AlignedKeypoints:
    """Put every camera on the union of frame indices. Error if two or more cameras share no frame."""
    names = list(cameras)
    if not names:
        raise IngestError(source, "keypoints", "at least one camera")
    frame_sets = [set(cameras[n].frame_index.tolist()) for n in names]
    if len(names) > 1 and not set.intersection(*frame_sets):
        raise IngestError(source, "frame_index", "cameras that share at least one frame index; "
                          + ", ".join(f"{n}: {cameras[n].frame_index.min()}..{cameras[n].frame_index.max()}"
                                      for n in names if len(cameras[n].frame_index)))
    frames = np.asarray(sorted(set.union(*frame_sets)), dtype=np.int64)
    J = cameras[names[0]].points.shape[1]
    points = np.full((len(names), len(frames), J, 2), np.nan, dtype=np.float32)
    confidence = np.zeros((len(names), len(frames), J), dtype=np.float32)
    missing, left_out = {}, {}
    for c, name in enumerate(names):
        cam = cameras[name]
        t = np.searchsorted(frames, cam.frame_index)
        points[c, t] = cam.points
        confidence[c, t] = cam.confidence
        detected = np.zeros(len(frames), dtype=bool)
        detected[t] = np.any(cam.confidence > 0, axis=1)
        missing[name] = int(np.sum(~detected))
        for group, count in cam.left_out.items():
            left_out[group] = left_out.get(group, 0) + count
    return AlignedKeypoints(frames, names, points, confidence, missing, {n: cameras[n].source for n in names},
                            {n: cameras[n].detector for n in names}, left_out)


def read_keypoints(path: str | Path, keypoints_format: str, keypoint_names: tuple[str, ...], keypoint_set: str
                   ) -> dict[str, CameraKeypoints]:
    if keypoints_format == "openpose":
        return read_openpose_folder(path, len(keypoint_names), keypoint_set)
    if keypoints_format == "caliscope":
        return read_caliscope_csv(path, len(keypoint_names), keypoint_set)
    if keypoints_format == "npz":
        return read_npz_folder(path, keypoint_names, keypoint_set)
    raise IngestError(path, "keypoints_format", f"'openpose', 'caliscope' or 'npz', got {keypoints_format!r}")
