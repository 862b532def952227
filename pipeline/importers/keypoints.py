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
  person chosen last; if no keypoints are shared, again the most confident. A frame with no detection is not an
  error: ``people`` empty, a person entry without ``pose_keypoints_2d`` (Pose2Sim's person association writes
  ``{"people": [{}]}``), a zero-length ``pose_keypoints_2d``, or a frame file missing from the numbering all give
  confidence 0 / NaN for that camera and frame, counted as missing in the summary.
  :func:`read_openpose_detections_folder` keeps every person instead, for choosing the subject across cameras
  (:mod:`pipeline.importers.multiperson`, used by the session ingest when a frame holds several people).
- **Caliscope CSV** (:func:`read_caliscope_csv`): long format ``sync_index, port, point_id, img_loc_x, img_loc_y``;
  camera ``cam_<port>``; frame = ``sync_index``; point ids ``0..J-1`` are the keypoint indices (BlazePose 33), any
  other id (hands 100+, 200+, face 500+) is left out and counted. No confidence is stored: 1 where a point is
  present, 0 where missing.
- **NPZ** (:func:`read_npz_folder`): one ``<camera>.npz`` per camera with ``keypoints (T,J,2)`` px,
  ``confidence (T,J)`` in [0,1], ``joint_names (J,)`` equal to the keypoint set's order, optional
  ``frame_index (T,)`` (default ``arange(T)``) and ``detector`` (0-d string).

Validation (all readers): J must match the keypoint set; confidences finite and in [0, 1]; coordinates finite
(also as float32) and within ±``MAX_ABS_COORDINATE_PX`` where confidence > 0 (NaN with confidence 0 is a missing
point); frame indices in ``[0, MAX_FRAME_INDEX)``. A point at exactly (0, 0) is how OpenPose writes a missing
keypoint, so it is treated as missing (confidence 0) whatever its confidence, and counted (``zero_points``).
Every file read is recorded (path, size, SHA-256) in ``CameraKeypoints.files``.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.importers.errors import IngestError
from pipeline.importers.files import MB, FileRecord, decode_text, read_input

# Frames no camera has are kept as frames without detection (align_frames); a span that would be mostly such
# frames (a stray frame number, indices that are not frame numbers) is an error rather than gigabytes of NaN.
MAX_GAP_FACTOR = 9      # at most 9 empty frames per frame with keypoints ...
MAX_GAP_FRAMES = 36_000  # ... or 10 min at 60 fps of empty frames, whichever is more
MAX_FRAME_INDEX = 1_000_000_000           # ~190 days at 60 fps: beyond it the index is not a frame number
MAX_ABS_COORDINATE_PX = 1e6               # float32 keeps 0.06 px here; image-size plausibility is checked later
MAX_OPENPOSE_FILE_BYTES = 16 * MB         # one frame of one camera


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
    zero_points: int = 0       # points at exactly (0, 0) with confidence > 0, treated as missing
    files: tuple[FileRecord, ...] = ()


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
    zero_points: dict[str, int]  # per source: points at (0, 0) treated as missing
    files: dict[str, tuple[FileRecord, ...]]  # per source: the files read


def validate_keypoints(source: Path | str, field_prefix: str, points: np.ndarray, confidence: np.ndarray,
                       n_joints: int, keypoint_set: str) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes/values; return (points float32 with NaN where conf == 0, confidence float32).

    Points at exactly (0, 0) must already have confidence 0 (:func:`zero_points_to_missing`)."""
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
    too_far = (confidence > 0) & np.any(np.abs(np.nan_to_num(points)) > MAX_ABS_COORDINATE_PX, axis=-1)
    if np.any(too_far):
        t, j = np.argwhere(too_far)[0]
        raise IngestError(source, f"{field_prefix}keypoints", f"pixel coordinates within ±{MAX_ABS_COORDINATE_PX:g} "
                                                              f"where confidence > 0, got {points[t, j].tolist()} at "
                                                              f"frame {t} keypoint {j}")
    points = np.where(confidence[..., None] > 0, points, np.nan).astype(np.float32)
    return points, confidence.astype(np.float32)


def zero_points_to_missing(points: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, int]:
    """Confidence set to 0 where a point is exactly (0, 0) (OpenPose's "not detected"); returns (confidence, count).

    ``points`` (..., 2) px, ``confidence`` (...) — a copy is returned."""
    zero = np.all(np.asarray(points) == 0, axis=-1) & (np.asarray(confidence) > 0)
    return np.where(zero, 0.0, confidence), int(np.sum(zero))


def check_frame_index(source: Path | str, field_name: str, frame_index: np.ndarray) -> None:
    """Frame indices must be in [0, MAX_FRAME_INDEX)."""
    if len(frame_index) and (frame_index.min() < 0 or frame_index.max() >= MAX_FRAME_INDEX):
        raise IngestError(source, field_name, f"frame numbers in 0..{MAX_FRAME_INDEX - 1}, got "
                                              f"{int(frame_index.min())}..{int(frame_index.max())}")


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


def _read_openpose_people(path: Path, n_joints: int, keypoint_set: str) -> tuple[np.ndarray, FileRecord]:
    """People in one OpenPose file as (P, J, 3) float64 (x, y, c), and the file's provenance.

    Entries without ``pose_keypoints_2d`` or with an empty one are no detection (P may be 0)."""
    file = read_input(path, "keypoints", max_bytes=MAX_OPENPOSE_FILE_BYTES)
    text = decode_text(file, "OpenPose JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise IngestError(path, "file", f"valid JSON (truncated or not JSON: {error.msg} at char {error.pos})") \
            from None
    except RecursionError:
        raise IngestError(path, "file", "OpenPose JSON (nested far too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise IngestError(path, "people", "a list of detected people (OpenPose JSON)")
    people = []
    for index, person in enumerate(data["people"]):
        if not isinstance(person, dict):
            raise IngestError(path, f"people[{index}]", "an object with pose_keypoints_2d")
        values = person.get("pose_keypoints_2d", [])
        if isinstance(values, list) and len(values) == 0:
            continue  # no detection (Pose2Sim person association, or an empty OpenPose entry)
        if not isinstance(values, list):
            raise IngestError(path, f"people[{index}].pose_keypoints_2d", "a list of x, y, c numbers")
        if len(values) != 3 * n_joints:
            raise IngestError(path, f"people[{index}].pose_keypoints_2d",
                              f"{3 * n_joints} numbers ({n_joints} keypoints of {keypoint_set} × x,y,c), "
                              f"got {len(values)}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise IngestError(path, f"people[{index}].pose_keypoints_2d", "numbers")
        people.append(np.asarray(values, dtype=np.float64).reshape(n_joints, 3))
    return (np.stack(people) if people else np.zeros((0, n_joints, 3))), file.record()


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


@dataclass
class OpenPoseDetections:
    """Every person one camera detected, frame by frame, before the subject is chosen."""

    source: Path
    frame_index: np.ndarray              # (F,) int64, strictly increasing
    people: list[np.ndarray]             # F arrays (P_t, J, 3): x, y px and confidence (0 where the point is (0, 0))
    zero_points: list[np.ndarray]        # F arrays (P_t,): points at (0, 0) set to confidence 0, per person
    files: tuple[FileRecord, ...]

    @property
    def max_people(self) -> int:
        return max((len(p) for p in self.people), default=0)


def read_openpose_detections(folder: Path, n_joints: int, keypoint_set: str) -> OpenPoseDetections:
    """Read and validate every frame file of one camera folder (every person, none chosen yet)."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise IngestError(folder, "files", "one OpenPose *.json file per frame")
    frame_index = _frame_numbers(files)
    check_frame_index(folder, "frame number in file names", frame_index)
    order = np.argsort(frame_index, kind="stable")
    files = [files[i] for i in order]
    people_per_frame, zeros_per_frame, records = [], [], []
    for path in files:
        people, record = _read_openpose_people(path, n_joints, keypoint_set)
        records.append(record)
        zero = np.all(people[..., :2] == 0, axis=-1) & (people[..., 2] > 0)
        people[..., 2] = np.where(zero, 0.0, people[..., 2])
        # validate per file so the error names the file
        validate_keypoints(path, "people.pose_keypoints_2d: ", people[..., :2], people[..., 2], n_joints,
                           keypoint_set)
        people_per_frame.append(people)
        zeros_per_frame.append(zero.sum(axis=-1))
    return OpenPoseDetections(folder, frame_index[order], people_per_frame, zeros_per_frame, tuple(records))


def track_single_view(detections: OpenPoseDetections) -> list[int | None]:
    """The tracked person's index in every frame (None: no detection), by :func:`choose_tracked_person`."""
    previous, choice = None, []
    for people in detections.people:
        if len(people) == 0:
            choice.append(None)
            continue
        index = choose_tracked_person(people, previous)
        previous = people[index]
        choice.append(index)
    return choice


def keypoints_of_choice(detections: OpenPoseDetections, choice: list[int | None], n_joints: int,
                        keypoint_set: str) -> CameraKeypoints:
    """One camera's keypoints from the chosen person per frame (``choice[t]`` index into ``people[t]`` or None)."""
    F = len(detections.frame_index)
    points, confidence = np.full((F, n_joints, 2), np.nan), np.zeros((F, n_joints))
    zero_points = 0
    for t, index in enumerate(choice):
        if index is None:
            continue
        person = detections.people[t][index]
        points[t], confidence[t] = person[:, :2], person[:, 2]
        zero_points += int(detections.zero_points[t][index])
    empty = sum(1 for people in detections.people if len(people) == 0)
    points, confidence = validate_keypoints(detections.source, "", points, confidence, n_joints, keypoint_set)
    return CameraKeypoints(detections.source, detections.frame_index, points, confidence,
                           frames_without_detection=empty, zero_points=zero_points, files=detections.files)


def read_openpose_camera(folder: Path, n_joints: int, keypoint_set: str) -> CameraKeypoints:
    """One camera folder, the subject tracked in this view alone (:func:`track_single_view`)."""
    detections = read_openpose_detections(folder, n_joints, keypoint_set)
    return keypoints_of_choice(detections, track_single_view(detections), n_joints, keypoint_set)


def openpose_camera_folders(folder: str | Path) -> list[Path]:
    """The per-camera sub-folders of an OpenPose output folder, sorted by name (hidden ones left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(folder, "keypoints", "a folder with one sub-folder of OpenPose JSON files per camera")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise IngestError(folder, "keypoints", "one sub-folder per camera")
    return subfolders


def read_openpose_folder(folder: str | Path, n_joints: int, keypoint_set: str) -> dict[str, CameraKeypoints]:
    """``folder`` holds one sub-folder of per-frame JSON files per camera; keys are the sub-folder names."""
    return {sub.name: read_openpose_camera(sub, n_joints, keypoint_set) for sub in openpose_camera_folders(folder)}


def read_openpose_detections_folder(folder: str | Path, n_joints: int, keypoint_set: str
                                    ) -> dict[str, OpenPoseDetections]:
    """Like :func:`read_openpose_folder` but every person of every frame (the subject is chosen later)."""
    return {sub.name: read_openpose_detections(sub, n_joints, keypoint_set)
            for sub in openpose_camera_folders(folder)}


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
    file = read_input(path, "keypoints")
    try:
        table = pd.read_csv(io.BytesIO(file.data), encoding="utf-8-sig")
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
    check_frame_index(path, "sync_index", table["sync_index"].to_numpy())
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
        confidence, zero_points = zero_points_to_missing(points, confidence)
        points, confidence = validate_keypoints(path, f"port {port} ", points, confidence, n_joints, keypoint_set)
        cameras[f"cam_{int(port)}"] = CameraKeypoints(path, frames.astype(np.int64), points, confidence,
                                                      detector="", left_out=left_out, zero_points=zero_points,
                                                      files=(file.record(),))
    if not cameras:
        raise IngestError(path, "rows", "at least one keypoint row")
    return cameras


# ------------------------------------------------------------------------------------------------ NPZ
def read_npz_camera(path: Path, keypoint_names: tuple[str, ...], keypoint_set: str) -> CameraKeypoints:
    file = read_input(path, "keypoints")
    try:
        with np.load(io.BytesIO(file.data), allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
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
    if points.shape[:-1] == confidence.shape and points.shape[-1:] == (2,):
        confidence, zero_points = zero_points_to_missing(points, confidence)
    else:
        zero_points = 0  # shapes are reported by validate_keypoints
    points, confidence = validate_keypoints(path, "", points, confidence, len(keypoint_names), keypoint_set)
    if "frame_index" in data:
        frame_index = np.asarray(data["frame_index"])
        if frame_index.shape != (len(points),) or not np.issubdtype(frame_index.dtype, np.integer):
            raise IngestError(path, "frame_index", f"(T,) = ({len(points)},) integers, got {frame_index.shape} "
                                                   f"{frame_index.dtype}")
        if np.any(np.diff(frame_index) <= 0):
            raise IngestError(path, "frame_index", "strictly increasing frame numbers")
        check_frame_index(path, "frame_index", frame_index)
    else:
        frame_index = np.arange(len(points))
    detector = str(data["detector"]) if "detector" in data else ""
    return CameraKeypoints(path, frame_index.astype(np.int64), points, confidence, detector=detector,
                           zero_points=zero_points, files=(file.record(),))


def read_npz_folder(folder: str | Path, keypoint_names: tuple[str, ...], keypoint_set: str
                    ) -> dict[str, CameraKeypoints]:
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(folder, "keypoints", "a folder with one <camera_name>.npz per camera")
    files = sorted(p for p in folder.glob("*.npz") if not p.name.startswith("."))
    if not files:
        raise IngestError(folder, "keypoints", "one <camera_name>.npz per camera")
    return {path.stem: read_npz_camera(path, keypoint_names, keypoint_set) for path in files}


# ------------------------------------------------------------------------------------------------ alignment
def align_frames(cameras: dict[str, CameraKeypoints], source: Path | str) -> AlignedKeypoints:
    """Put every camera on every frame index from the first to the last any camera has.

    Error if two or more cameras share no frame. Frame indices count video frames, and a fit places frame ``t``
    of the trial at ``t / fps`` s; so frames no camera has (a detector that skips frames without a person, a
    gap in every view) are kept as frames without a detection (NaN points, confidence 0) rather than dropped,
    which would join the frames on either side of the gap and compress time.
    """
    names = list(cameras)
    if not names:
        raise IngestError(source, "keypoints", "at least one camera")
    frame_sets = [set(cameras[n].frame_index.tolist()) for n in names]
    if len(names) > 1 and not set.intersection(*frame_sets):
        raise IngestError(source, "frame_index", "cameras that share at least one frame index; "
                          + ", ".join(f"{n}: {cameras[n].frame_index.min()}..{cameras[n].frame_index.max()}"
                                      for n in names if len(cameras[n].frame_index)))
    seen = set.union(*frame_sets)
    frames = np.arange(min(seen), max(seen) + 1, dtype=np.int64) if seen else np.zeros(0, dtype=np.int64)
    if len(frames) - len(seen) > max(MAX_GAP_FACTOR * len(seen), MAX_GAP_FRAMES):
        raise IngestError(source, "frame_index", f"frame numbers of one recording; frames {frames[0]}..{frames[-1]} "
                                                 f"hold only {len(seen)} frames with keypoints in any camera")
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
                            {n: cameras[n].detector for n in names}, left_out,
                            {n: cameras[n].zero_points for n in names}, {n: cameras[n].files for n in names})


def read_keypoints(path: str | Path, keypoints_format: str, keypoint_names: tuple[str, ...], keypoint_set: str
                   ) -> dict[str, CameraKeypoints]:
    if keypoints_format == "openpose":
        return read_openpose_folder(path, len(keypoint_names), keypoint_set)
    if keypoints_format == "caliscope":
        return read_caliscope_csv(path, len(keypoint_names), keypoint_set)
    if keypoints_format == "npz":
        return read_npz_folder(path, keypoint_names, keypoint_set)
    raise IngestError(path, "keypoints_format", f"'openpose', 'caliscope' or 'npz', got {keypoints_format!r}")
