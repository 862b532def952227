"""From a trial's videos to the keypoints a fit uses: video ingest rows, the detection runner, subject choice.

1. Ingest (:func:`plan_trial_videos`): a manifest trial's ``videos`` (a table ``{camera = "path"}`` or a
   folder of ``<camera>.<ext>`` files) becomes one ``Video`` row per calibrated camera (path, SHA-256, fps,
   frame count, size, per-frame container timestamps), a ``VideoFile`` row per distinct file and a
   ``SourceFile`` row per file. Frame counts or frame rates that differ across cameras, or from the trial's
   ``fps``, become the trial's stored warning. Several participants filmed together are ``[[subjects]]`` in the
   manifest, each with a rule choosing them (:func:`selection_from_manifest`: ``near_m``, ``track`` or
   ``person``); each becomes its own subject and session over the same videos.
2. Detection (:func:`populate_detections`): ``Detection`` runs the detector named by a ``DetectorParams`` row
   (:func:`blazepose_params_row`) once per video *file* (keyed by its SHA-256) and stores every tracked person
   with the detector's name, version and model checksum.
3. Keypoints (:func:`keypoints_from_detections`): the subject is the person whose tracks triangulate
   consistently across cameras (:func:`pipeline.importers.multiperson.choose_subject`), picked by the trial's
   rule (default: the most confident); their detections become the trial's ``Keypoints`` rows (T = the trial's
   frames, confidence 0 in frames the detector did not see) and the rule, the seed frame and each camera's
   track ids are recorded in ``DetectedSubject``.

``mmc populate`` runs 2 and 3 for every video trial without keypoints before the fits (:func:`video_step`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipeline.importers.errors import IngestError
from pipeline.importers.files import FileRecord, resolve_path
from pipeline.importers.keypoints import OpenPoseDetections
from pipeline.importers.multiperson import (SubjectChoice, SubjectPicker, choose_subject, nearest_to,
                                            rig_from_rows)
from pipeline.importers.naming import match_cameras, normalize_camera_name

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
FPS_TOLERANCE = 1e-3  # relative: 59.94 vs 60 is a different frame rate, 60.0000001 is not


@dataclass
class TrialVideos:
    """One trial's video rows before insertion (keys without the trial key), in camera order."""

    videos: list[dict]
    files: list[tuple[FileRecord, str]]  # (file, camera name)
    warning: str
    n_frames: int                         # fewest frames of any camera

    def summary_lines(self) -> list[str]:
        lines = [f"    video {v['camera_name']}: {v['frame_count']} frames at {v['fps']:g} fps, {v['width']}×"
                 f"{v['height']} px{'' if v['timestamps'] is not None else ', no timestamps'}" for v in self.videos]
        return lines + ([f"    warning: {self.warning}"] if self.warning else [])


def read_video_timestamps(path: Path) -> np.ndarray | None:
    """(F,) float64 s: each decoded frame's presentation time from the container; None when the container gives
    none (every time 0, or times not increasing)."""
    capture = cv2.VideoCapture(str(path))
    stamps = []
    try:
        while capture.grab():
            stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    finally:
        capture.release()
    times = np.asarray(stamps, np.float64)
    if len(times) < 2 or not np.all(np.diff(times) > 0):
        return None
    return times


def _video_sources(spec, base: Path, manifest: Path, field_name: str) -> dict[str, Path]:
    """{source camera name: path} from a ``videos`` table or folder."""
    if isinstance(spec, dict):
        sources = {}
        for name, relative in spec.items():
            if not isinstance(relative, str) or not relative.strip():
                raise IngestError(manifest, f"{field_name}.{name}", f"a video path, got {relative!r}")
            sources[str(name)] = resolve_path(base / relative, manifest, f"{field_name}.{name}")
        return sources
    if not isinstance(spec, str) or not spec.strip():
        raise IngestError(manifest, field_name, f"a folder of videos or a table {{camera = \"path\"}}, got {spec!r}")
    folder = resolve_path(base / spec, manifest, field_name)
    if not folder.is_dir():
        raise IngestError(manifest, field_name, f"a folder of videos, {folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not files:
        raise IngestError(folder, field_name, f"video files ({', '.join(VIDEO_SUFFIXES)})")
    return {p.stem: p for p in files}


def plan_trial_videos(spec, manifest: Path, field_name: str, calibration_cameras: dict[str, dict],
                      camera_map: dict, fps: float) -> TrialVideos:
    """Read every video a trial names (geometry, hash, timestamps); nothing touches the database.

    ``calibration_cameras``: {calibration name: Camera row}; ``fps``: the trial's frames per second.
    """
    from pipeline.detection.video import read_video_info

    sources = _video_sources(spec, manifest.parent, manifest, field_name)
    mapping = match_cameras(list(sources), list(calibration_cameras), camera_map, manifest, field=field_name)
    videos, files = [], []
    for source_name, path in sources.items():
        camera = calibration_cameras[mapping[source_name]]
        if not path.is_file():
            raise IngestError(manifest, f"{field_name}.{source_name}", f"an existing video file, {path} is not")
        try:
            info = read_video_info(path)
        except ValueError as error:
            raise IngestError(path, "video", f"a video OpenCV can decode with a frame rate ({error})") from None
        if (info.width, info.height) != (camera["image_width"], camera["image_height"]):
            raise IngestError(path, "video", f"frames of {camera['image_width']}×{camera['image_height']} px as "
                                             f"calibrated for {camera['camera_name']}, got {info.width}×"
                                             f"{info.height}")
        size = path.stat().st_size
        videos.append(dict(camera_name=camera["camera_name"], path=str(path)[:1000], sha256=info.sha256,
                           size_bytes=size, fps=info.fps, frame_count=info.frame_count, width=info.width,
                           height=info.height, timestamps=read_video_timestamps(path)))
        files.append((FileRecord(path, "video", size, info.sha256), camera["camera_name"]))
    videos.sort(key=lambda v: v["camera_name"])
    files.sort(key=lambda f: f[1])
    return TrialVideos(videos, files, consistency_warning(videos, fps), min(v["frame_count"] for v in videos))


def consistency_warning(videos: list[dict], fps: float) -> str:
    """What differs across the cameras' videos (frame counts, frame rates) or from the trial's fps; "" if nothing."""
    problems = []
    counts = {v["camera_name"]: v["frame_count"] for v in videos}
    if len(set(counts.values())) > 1:
        problems.append("frame counts differ across cameras (" + ", ".join(f"{k} {n}" for k, n in counts.items())
                        + f"); the trial uses the first {min(counts.values())}")
    rates = {v["camera_name"]: v["fps"] for v in videos}
    if any(not math.isclose(r, fps, rel_tol=FPS_TOLERANCE) for r in rates.values()):
        problems.append(f"frame rates differ from the trial's {fps:g} fps ("
                        + ", ".join(f"{k} {r:g}" for k, r in rates.items()) + ")")
    return "; ".join(problems)[:2000]


# --------------------------------------------------------------------------------------------- detection
def blazepose_params_row(name: str = "blazepose", options: dict | None = None) -> dict:
    """A ``DetectorParams`` row for the installed BlazePose detector.

    options: ``start``, ``stop``, ``step`` (frames decoded, as :func:`pipeline.detection.iter_frames`),
    ``blazepose`` (:class:`~pipeline.detection.BlazePoseOptions` fields), ``tracking``
    (:class:`~pipeline.detection.TrackingOptions` fields); omitted ones take their defaults.
    """
    from pipeline.detection import BlazePoseDetector, BlazePoseOptions
    from schemas.video import options_hash

    options = dict(options or {})
    # the detector states its own name and version (it reads the installed model files, never downloads)
    detector = BlazePoseDetector.from_installed(BlazePoseOptions(**options.get("blazepose", {})))
    return dict(detector_params=name, detector=detector.name, detector_version=detector.version, options=options,
                params_hash=options_hash(detector.name, detector.version, options))


def run_blazepose(path: str, params: dict) -> dict:
    """:data:`schemas.video.DetectionRunner` for BlazePose: detect and track everyone in one video."""
    from pipeline.detection import BlazePoseDetector, BlazePoseOptions, TrackingOptions, detect_video

    options = params["options"]
    detector = BlazePoseDetector.from_installed(BlazePoseOptions(**options.get("blazepose", {})))
    poses = detect_video(Path(path), detector, start=int(options.get("start", 0)), stop=options.get("stop"),
                         step=int(options.get("step", 1)), tracking=TrackingOptions(**options.get("tracking", {})))
    return dict(detector_name=poses.detector.name, detector_version=poses.detector.version,
                model_checksum=poses.detector.model_checksum, keypoint_set=poses.detector.keypoint_set,
                frame_index=poses.frame_index.astype(np.int64), timestamp_s=poses.timestamp_s.astype(np.float64),
                seconds_detecting=poses.seconds_detecting,
                tracks=[dict(track_id=t.track_id, keypoints=t.keypoints, confidence=t.confidence, score=t.score)
                        for t in poses.tracks])


def populate_detections(*restrictions, params_row: dict | None = None,
                        failures: list[str] | None = None) -> int:
    """Insert ``params_row`` (default: :func:`blazepose_params_row`) unless present, then populate ``Detection``
    for it with the BlazePose runner, for the video files of the ``Video`` rows matching ``restrictions`` (all
    when none); returns the number of Detection rows made. A file already detected with these parameters (same
    checksum, e.g. filmed for another participant or ingested again) is not detected again.

    A file that cannot be read (moved, changed since ingest, corrupt) does not stop the others: its one-line
    error is appended to ``failures`` when given, else raised as a ``RuntimeError`` after the others ran."""
    from schemas import video

    row = params_row or blazepose_params_row()
    video.DetectorParams.insert1(row, skip_duplicates=True)
    stored = (video.DetectorParams & {"detector_params": row["detector_params"]}).fetch1("params_hash")
    if stored != row["params_hash"]:
        raise ValueError(f"DetectorParams {row['detector_params']!r} is stored with other settings (hash "
                         f"{stored[:12]} vs {row['params_hash'][:12]}): choose another name")
    videos = video.Video
    for restriction in restrictions:
        videos = videos & restriction
    files = [{"sha256": s} for s in sorted(set(videos.to_arrays("sha256")))]
    if not files:
        return 0
    before = len(video.Detection())
    video.use_detection_runner(run_blazepose)
    try:
        outcome = video.Detection.populate({"detector_params": row["detector_params"]}, files,
                                           suppress_errors=True)
    finally:
        video.use_detection_runner(None)
    errors = [f"detection of {key.get('sha256', '?')[:12]}…: {message}" for key, message in
              (_error_pair(e) for e in (outcome or {}).get("error_list", []))]
    if errors and failures is None:
        raise RuntimeError("; ".join(errors))
    if failures is not None:
        failures.extend(errors)
    return len(video.Detection()) - before


def _error_pair(entry) -> tuple[dict, str]:
    """(key, message) of one ``populate(suppress_errors=True)`` error entry (a ``(key, message)`` pair)."""
    if isinstance(entry, (tuple, list)) and len(entry) == 2:
        return dict(entry[0]) if isinstance(entry[0], dict) else {}, str(entry[1])
    return {}, str(entry)


def insert_trial_videos(video_trial: dict, videos: list[dict]) -> None:
    """Insert a trial's ``VideoTrial`` row and its ``Video`` rows (each with ``sha256`` and ``size_bytes`` as
    :func:`plan_trial_videos` gives them), adding the ``VideoFile`` rows not yet stored (call inside a
    transaction)."""
    from schemas import video

    video.VideoFile.insert([dict(sha256=v["sha256"], size_bytes=v["size_bytes"]) for v in videos],
                           skip_duplicates=True)
    video.VideoTrial.insert1(video_trial)
    video.Video.insert([{k: v for k, v in row.items() if k != "size_bytes"} for row in videos])


# --------------------------------------------------------------------------------------------- subject rules
SELECTION_KEYS = ("person", "near_m", "track")


def selection_from_manifest(table: dict, manifest: Path, section: str) -> dict | None:
    """The subject rule of a manifest ``[subject]`` / ``[[subjects]]`` entry (at most one of ``person = N``,
    ``near_m = [x, y]`` (world metres, Z up: the person nearest this floor point, e.g. the walkway centre),
    ``track = { camera = "cam01", id = N }`` (the person detected as track N in that camera)); None when none is
    given (the most confident person)."""
    given = [k for k in SELECTION_KEYS if k in table]
    if len(given) > 1:
        raise IngestError(manifest, f"{section}.{given[1]}", f"one subject rule, got {' and '.join(given)}")
    if not given:
        return None
    value = table[given[0]]
    field_name = f"{section}.{given[0]}"
    if given[0] == "person":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise IngestError(manifest, field_name, f"a person number ≥ 0, got {value!r}")
        return {"rule": "person", "rank": value}
    if given[0] == "near_m":
        if (not isinstance(value, list) or len(value) not in (2, 3)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           and abs(v) <= 1000 for v in value)):
            raise IngestError(manifest, field_name, f"[x, y] (or [x, y, z]) world metres within ±1000, got {value!r}")
        return {"rule": "near", "point_m": [float(v) for v in value[:2]]}
    if (not isinstance(value, dict) or set(value) != {"camera", "id"} or not isinstance(value["camera"], str)
            or not isinstance(value["id"], int) or isinstance(value["id"], bool) or value["id"] < 0):
        raise IngestError(manifest, field_name, f'{{ camera = "NAME", id = N ≥ 0 }}, got {value!r}')
    return {"rule": "track", "camera": normalize_camera_name(value["camera"]), "track_id": value["id"]}


def check_subject_tables(data: dict, manifest: Path) -> None:
    """Check a manifest's ``[subject]`` or ``[[subjects]]`` (not both; each entry a table with a subject rule
    when there are several) and put the first entry in ``data["subject"]`` so the rest of the manifest reads
    as with one subject."""
    if "subjects" not in data:
        return
    subjects = data["subjects"]
    if "subject" in data:
        raise IngestError(manifest, "[[subjects]]", "either [subject] or [[subjects]], got both")
    if not isinstance(subjects, list) or not subjects or not all(isinstance(t, dict) for t in subjects):
        raise IngestError(manifest, "[[subjects]]", "a non-empty array of tables")
    rules = []
    for index, table in enumerate(subjects):
        rule = selection_from_manifest(table, manifest, f"subjects[{index}]")
        if len(subjects) > 1 and rule is None:
            raise IngestError(manifest, f"subjects[{index}]", f"a subject rule ({', '.join(SELECTION_KEYS)}) for "
                                                              f"each of several subjects filmed together")
        if rule is not None and rule in rules:
            raise IngestError(manifest, f"subjects[{index}]", f"a rule other subjects do not have, got {rule}")
        rules.append(rule)
    ids = [str(t.get("id", "")).casefold() for t in subjects]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise IngestError(manifest, "subjects.id", f"distinct ids ignoring letter case, repeated: {repeated}")
    data["subject"] = subjects[0]


def subject_entry(data: dict, index: int, manifest: Path) -> tuple[dict, dict | None]:
    """The manifest as if it named only subject ``index`` (its rule keys removed) and that subject's rule."""
    table = data["subjects"][index] if "subjects" in data else data["subject"]
    section = f"subjects[{index}]" if "subjects" in data else "subject"
    selection = selection_from_manifest(table, manifest, section)
    return dict(data, subject={k: v for k, v in table.items() if k not in SELECTION_KEYS}), selection


def apply_subject_rule(plans: list, selection: dict | None, manifest: Path, subject_index: int) -> None:
    """Give each video trial plan (``TrialPlan``) the subject's rule; a rule on a trial with keypoint files, or
    beside the trial's own ``person``, is an error."""
    if selection is None:
        return
    for index, plan in enumerate(plans):
        if plan.trial["keypoints_format"] != "video":
            raise IngestError(manifest, f"trials[{index}]", f"`videos` only (the subject rule {selection} applies "
                                                            f"to trials whose keypoints come from detection)")
        if plan.person is not None:
            raise IngestError(manifest, f"trials[{index}].person", f"absent: the subject has a rule ({selection})")
        cameras = {v["camera_name"] for v in plan.videos.videos}
        if selection["rule"] == "track" and selection["camera"] not in cameras:
            raise IngestError(manifest, f"subjects[{subject_index}].track.camera",
                              f"a camera with a video ({', '.join(sorted(cameras))}), got {selection['camera']}")
        plan.selection = selection


def describe_selection(selection: dict | None) -> str:
    """Words for a subject rule (None: the default)."""
    if selection is None:
        return "the most confident person"
    if selection["rule"] == "person":
        return f"person {selection['rank']} by summed confidence"
    if selection["rule"] == "near":
        x, y = selection["point_m"]
        return f"the person nearest ({x:g}, {y:g}) m"
    return f"track {selection['track_id']} of {selection['camera']}"


def subject_picker(selection: dict | None, camera_names: list[str], per_camera: list[OpenPoseDetections],
                   track_ids: list[list[list[int]]]) -> tuple[int | None, SubjectPicker | None]:
    """(``person``, ``pick``) arguments of :func:`choose_subject` for a subject rule. ``track_ids[c][t][k]``:
    the track id of detection k of camera c's t-th frame."""
    if selection is None:
        return None, None
    if selection["rule"] == "person":
        return int(selection["rank"]), None
    if selection["rule"] == "near":
        return None, nearest_to(tuple(selection["point_m"]))
    if selection["camera"] not in camera_names:
        raise ValueError(f"subject rule names camera {selection['camera']}; the detections are of "
                         f"{', '.join(camera_names)}")
    c = camera_names.index(selection["camera"])
    positions = {int(f): t for t, f in enumerate(per_camera[c].frame_index)}

    def pick(frame: int, people: list, keypoints_3d: list) -> int | None:
        t = positions.get(frame)
        for n, (combination, _, _) in enumerate(people):
            index = combination[c]
            if t is not None and index is not None and track_ids[c][t][index] == selection["track_id"]:
                return n
        return None

    return None, pick


# --------------------------------------------------------------------------------------------- subject choice
@dataclass
class DetectedKeypoints:
    """A trial's chosen subject: Keypoints rows, the ``DetectedSubject`` row and its per-camera rows."""

    keypoints: list[dict]
    subject: dict
    views: list[dict] = field(default_factory=list)


def camera_detections(frame_index: np.ndarray, tracks: list[dict], n_frames: int,
                      source: str = "") -> tuple[OpenPoseDetections, list[list[int]]]:
    """One camera's tracked people as :func:`choose_subject` wants them: per frame below ``n_frames``, a
    (P, J, 3) array (x, y px, NaN where confidence is 0; confidence) and the track id of each of its P rows.

    tracks: dicts with ``track_id``, ``keypoints`` (T, J, 2) px, ``confidence`` (T, J), ``score`` (T,) (0 where
    not detected), over the detected frames ``frame_index`` (T,)."""
    J = tracks[0]["keypoints"].shape[1] if tracks else 0
    frames = [int(f) for f in frame_index if f < n_frames]
    people, ids = [], []
    for t, _ in enumerate(frames):
        rows = [(tr["track_id"], np.concatenate([tr["keypoints"][t], tr["confidence"][t][:, None]], axis=1))
                for tr in tracks if tr["score"][t] > 0]
        ids.append([int(r[0]) for r in rows])
        stack = np.stack([r[1] for r in rows]).astype(np.float64) if rows else np.zeros((0, J, 3))
        stack[..., :2] = np.where(stack[..., 2:3] > 0, stack[..., :2], np.nan)
        people.append(stack)
    zero = [np.zeros(len(p), int) for p in people]
    return OpenPoseDetections(Path(source), np.asarray(frames, np.int64), people, zero, ()), ids


def choose_detected_subject(per_camera: list[OpenPoseDetections], track_ids: list[list[list[int]]],
                            camera_rows: list[dict], selection: dict | None) -> SubjectChoice:
    """The subject across cameras by ``selection`` (see :func:`selection_from_manifest`); ``camera_rows``:
    Camera rows in the order of ``per_camera``. Raises ValueError saying why nobody could be chosen."""
    names = [r["camera_name"] for r in camera_rows]
    person, pick = subject_picker(selection, names, per_camera, track_ids)
    diagonals = np.array([math.hypot(r["image_width"], r["image_height"]) for r in camera_rows])
    choice = choose_subject(per_camera, rig_from_rows(camera_rows), diagonals, person, pick)
    if choice is None:
        raise ValueError(f"{describe_selection(selection)}: nobody seen consistently across cameras in the first "
                         f"frames with detections")
    if isinstance(choice, int):
        raise ValueError(f"{describe_selection(selection)}: only {choice} people were seen consistently across "
                         f"cameras")
    return choice


def seed_and_main_tracks(choice: SubjectChoice, per_camera: list[OpenPoseDetections],
                         track_ids: list[list[list[int]]]) -> list[tuple[int | None, int, np.ndarray]]:
    """Per camera: the track id chosen at the seed frame (None: not seen there), the track id kept in most
    frames (-1: none) and the (T_c,) track id kept per detected frame (-1: none)."""
    out = []
    for c, found in enumerate(per_camera):
        used = np.array([track_ids[c][t][i] if i is not None else -1 for t, i in enumerate(choice.choices[c])],
                        np.int16)
        seed_positions = np.flatnonzero(found.frame_index == choice.seed_frame)
        seed = int(used[seed_positions[0]]) if len(seed_positions) and used[seed_positions[0]] >= 0 else None
        kept = used[used >= 0]
        main = int(np.bincount(kept).argmax()) if len(kept) else -1
        out.append((seed, main, used))
    return out


def plan_detected_keypoints(trial_key: dict, detector_params: str) -> DetectedKeypoints:
    """Choose the subject across the trial's cameras from its stored detections by the trial's rule
    (``VideoTrial.selection``, else ``person``); nothing is written."""
    from schemas import acquisition as acq
    from schemas import video

    trial = (acq.Trial & trial_key).fetch1()
    trial_only = {k: trial[k] for k in ("subject_id", "session_id", "trial_name")}
    key = dict(trial_only, detector_params=detector_params)
    stored = (video.VideoTrial & trial_only).fetch1()
    selection = stored["selection"] or (None if stored["person"] is None else
                                        {"rule": "person", "rank": int(stored["person"])})
    detections = ((video.Video & trial_only).proj("sha256", "path") * video.Detection
                  & {"detector_params": detector_params}).to_dicts(order_by="camera_name")
    if len(detections) < 2:
        raise ValueError(f"trial {key['trial_name']}: Detection rows for {detector_params!r} in at least 2 cameras, "
                         f"got {len(detections)} (populate Detection first)")
    if any(d["keypoint_set"] != trial["keypoint_set"] for d in detections):
        raise ValueError(f"trial {key['trial_name']}: keypoint set {trial['keypoint_set']}, the detector gives "
                         f"{detections[0]['keypoint_set']}")
    cameras = {r["camera_name"]: r for r in (acq.Camera & trial_only).to_dicts()}
    per_camera, track_ids = [], []
    for d in detections:
        tracks = (video.Detection.Track & {"sha256": d["sha256"], "detector_params": detector_params}
                  ).to_dicts(order_by="track_id")
        found, ids = camera_detections(d["frame_index"], tracks, trial["n_frames"], d["path"])
        per_camera.append(found)
        track_ids.append(ids)
    try:
        choice = choose_detected_subject(per_camera, track_ids, [cameras[d["camera_name"]] for d in detections],
                                         selection)
    except ValueError as error:
        raise ValueError(f"trial {key['trial_name']}: {error}") from None
    rule_text = None if selection is None else f"chosen as {describe_selection(selection)}"
    J = len((acq.KeypointSet & trial).fetch1("joint_names"))
    T = trial["n_frames"]
    out = DetectedKeypoints([], dict(key, selection=selection or {"rule": "person", "rank": 0},
                                     person=choice.person, seed_frame=int(choice.seed_frame),
                                     explanation=choice.explanation(False, rule_text)[:2000]))
    for c, (d, (seed, main, used_detected)) in enumerate(zip(detections,
                                                             seed_and_main_tracks(choice, per_camera, track_ids))):
        points, confidence = np.full((T, J, 2), np.nan, np.float32), np.zeros((T, J), np.float32)
        used = np.full(T, -1, np.int16)
        for t, frame in enumerate(per_camera[c].frame_index):
            index = choice.choices[c][t]
            if index is not None:
                person_row = per_camera[c].people[t][index]
                points[frame], confidence[frame] = person_row[:, :2], person_row[:, 2]
                used[frame] = used_detected[t]
        out.keypoints.append(dict(
            trial_only, camera_name=d["camera_name"], points=points, confidence=confidence,
            frame_index=np.arange(T, dtype=np.int64), n_missing_frames=int(np.sum(~np.any(confidence > 0, axis=1))),
            detector=f"{d['detector']} {d['detector_version']}"[:64], source=d["path"][:1000]))
        out.views.append(dict(key, camera_name=d["camera_name"], seed_track=seed, main_track=main,
                              tracks_used=used, n_frames_kept=int(np.sum(used >= 0))))
    return out


def keypoints_from_detections(trial_key: dict, detector_params: str, connection) -> DetectedKeypoints:
    """Choose the subject (:func:`plan_detected_keypoints`) and insert the trial's ``Keypoints`` and the
    ``DetectedSubject`` record in one transaction."""
    from schemas import acquisition as acq
    from schemas import video

    plan = plan_detected_keypoints(trial_key, detector_params)
    with connection.transaction:
        acq.Keypoints.insert(plan.keypoints)
        video.DetectedSubject.insert1(plan.subject)
        video.DetectedSubject.View.insert(plan.views)
    return plan


# --------------------------------------------------------------------------------------------- the whole step
@dataclass
class VideoStepReport:
    """What :func:`detect_and_choose_subjects` did: detections made, trials given keypoints, and failures."""

    detections_made: int = 0
    trials: list[str] = field(default_factory=list)       # one line per trial given keypoints
    failures: list[str] = field(default_factory=list)     # one line per trial that could not be


def detect_and_choose_subjects(trial_restrictions: tuple, connection, params_row: dict | None = None,
                               announce=print) -> VideoStepReport:
    """For every video trial (``keypoints_format = video``) matching ``trial_restrictions`` that has no
    ``Keypoints`` yet: detect people in its videos (files already detected are skipped) and give it the
    keypoints of its subject (:func:`keypoints_from_detections`). A trial that fails is reported and skipped."""
    from schemas import acquisition as acq

    trials = acq.Trial & {"keypoints_format": "video"}
    for restriction in trial_restrictions:
        trials = trials & restriction
    pending = (trials - acq.Keypoints).keys(order_by="subject_id, session_id, trial_name")
    report = VideoStepReport()
    if not pending:
        return report
    row = params_row or blazepose_params_row()
    announce(f"video trials without keypoints: {len(pending)}; detecting with {row['detector']} "
             f"{row['detector_version']} ({row['detector_params']})")
    report.detections_made = populate_detections(pending, params_row=row, failures=report.failures)
    for key in pending:
        name = "/".join(str(key[k]) for k in ("subject_id", "session_id", "trial_name"))
        try:
            plan = keypoints_from_detections(key, row["detector_params"], connection)
        except ValueError as error:
            report.failures.append(f"{name}: {error}")
            continue
        kept = ", ".join(f"{v['camera_name']} {v['n_frames_kept']}/{len(v['tracks_used'])}" for v in plan.views)
        report.trials.append(f"{name}: {plan.subject['explanation']} (frames kept: {kept})")
        for other in subjects_with_the_same_tracks(key, row["detector_params"]):
            report.failures.append(f"{name}: the same person as {other} (same tracks in every camera): give the "
                                   f"subjects rules that choose different people")
    return report


def subjects_with_the_same_tracks(trial_key: dict, detector_params: str) -> list[str]:
    """Other trials (subject/session/trial) whose chosen person has the same main track as this trial's in every
    video file they share: two subjects that are one participant (their rules chose the same person)."""
    from schemas import video

    views = ((video.DetectedSubject.View & trial_key & {"detector_params": detector_params})
             * video.Video.proj("sha256")).to_dicts()
    mine = {v["sha256"]: v["main_track"] for v in views if v["main_track"] >= 0}
    if not mine:
        return []
    others: dict[str, dict] = {}
    for v in ((video.DetectedSubject.View & {"detector_params": detector_params}) * video.Video.proj("sha256")
              & [{"sha256": sha} for sha in mine]).to_dicts():
        if any(v[k] != trial_key[k] for k in ("subject_id", "session_id", "trial_name")):
            name = "/".join(str(v[k]) for k in ("subject_id", "session_id", "trial_name"))
            others.setdefault(name, {})[v["sha256"]] = v["main_track"]
    return sorted(name for name, tracks in others.items()
                  if tracks and all(mine.get(sha) == track for sha, track in tracks.items()))


def video_step(restrict: list[str] | None, where: list[str] | None, connection, announce=print) -> int:
    """The video step of ``mmc populate``: :func:`detect_and_choose_subjects` for the video trials matching the
    command's ``--restrict``/``--where`` (when they are about trials; otherwise every pending video trial);
    prints what it did and returns the number of trials that failed."""
    from pipeline.restrictions import restrictions_for
    from schemas import acquisition as acq

    try:
        restrictions = restrictions_for(acq.Trial, restrict or [], where or [], "acquisition.Trial")
    except IngestError:  # a restriction about fits (params_name, ...): it does not choose trials
        restrictions = ()
    try:
        report = detect_and_choose_subjects(restrictions, connection, announce=announce)
    except (FileNotFoundError, ValueError) as error:  # model files missing, DetectorParams clash
        announce(f"video trials: detection failed: {error}")
        return 1
    if report.detections_made:
        announce(f"Detection: {report.detections_made} video file(s) detected")
    for line in report.trials:
        announce(f"keypoints from videos: {line}")
    for line in report.failures:
        announce(f"keypoints from videos FAILED: {line}")
    return len(report.failures)
