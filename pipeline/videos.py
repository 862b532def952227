"""From a trial's videos to the keypoints a fit uses: video ingest rows, the detection runner, subject choice.

1. Ingest (:func:`plan_trial_videos`): a manifest trial's ``videos`` (a table ``{camera = "path"}`` or a
   folder of ``<camera>.<ext>`` files) becomes one ``Video`` row per calibrated camera (path, SHA-256, fps,
   frame count, size, per-frame container timestamps) and a ``SourceFile`` row per file. Frame counts or frame
   rates that differ across cameras, or from the trial's ``fps``, become the trial's stored warning.
2. Detection (:func:`populate_detections`): ``Detection`` runs the detector named by a ``DetectorParams`` row
   (:func:`blazepose_params_row`) over each video and stores every tracked person.
3. Keypoints (:func:`keypoints_from_detections`): the subject is the person whose tracks triangulate
   consistently across cameras (:func:`pipeline.importers.multiperson.choose_subject`, ranked by summed
   confidence, ``person = N`` in the manifest picks another); their detections become the trial's
   ``Keypoints`` rows (T = the trial's frames, confidence 0 in frames the detector did not see) and the choice
   is recorded in ``DetectedSubject``.
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
from pipeline.importers.multiperson import choose_subject, rig_from_rows
from pipeline.importers.naming import match_cameras

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


def populate_detections(*restrictions, params_row: dict | None = None) -> int:
    """Insert ``params_row`` (default: :func:`blazepose_params_row`) unless present, then populate ``Detection``
    for it with the BlazePose runner; returns the number of Detection rows made."""
    from schemas import video

    row = params_row or blazepose_params_row()
    video.DetectorParams.insert1(row, skip_duplicates=True)
    stored = (video.DetectorParams & {"detector_params": row["detector_params"]}).fetch1("params_hash")
    if stored != row["params_hash"]:
        raise ValueError(f"DetectorParams {row['detector_params']!r} is stored with other settings (hash "
                         f"{stored[:12]} vs {row['params_hash'][:12]}): choose another name")
    before = len(video.Detection())
    video.use_detection_runner(run_blazepose)
    try:
        video.Detection.populate({"detector_params": row["detector_params"]}, *restrictions)
    finally:
        video.use_detection_runner(None)
    return len(video.Detection()) - before


# --------------------------------------------------------------------------------------------- subject choice
@dataclass
class DetectedKeypoints:
    """A trial's chosen subject: Keypoints rows, the ``DetectedSubject`` row and its per-camera rows."""

    keypoints: list[dict]
    subject: dict
    views: list[dict] = field(default_factory=list)


def _camera_detections(detection: dict, tracks: list[dict], n_frames: int) -> tuple[OpenPoseDetections, list]:
    """Per trial frame, the tracked people of one camera as (P, J, 3) arrays (x, y px, confidence) and the track
    id of each row, for :func:`choose_subject`."""
    J = tracks[0]["keypoints"].shape[1] if tracks else 0
    frames = [int(f) for f in detection["frame_index"] if f < n_frames]
    people, ids = [], []
    for t, _ in enumerate(frames):
        rows = [(tr["track_id"], np.concatenate([tr["keypoints"][t], tr["confidence"][t][:, None]], axis=1))
                for tr in tracks if tr["score"][t] > 0]
        ids.append([r[0] for r in rows])
        stack = np.stack([r[1] for r in rows]).astype(np.float64) if rows else np.zeros((0, J, 3))
        stack[..., :2] = np.where(stack[..., 2:3] > 0, stack[..., :2], np.nan)
        people.append(stack)
    zero = [np.zeros(len(p), int) for p in people]
    return OpenPoseDetections(Path(detection["path"]), np.asarray(frames, np.int64), people, zero, ()), ids


def plan_detected_keypoints(trial_key: dict, detector_params: str) -> DetectedKeypoints:
    """Choose the subject across the trial's cameras from its stored detections; nothing is written."""
    from schemas import acquisition as acq
    from schemas import video

    trial = (acq.Trial & trial_key).fetch1()
    key = dict({k: trial[k] for k in ("subject_id", "session_id", "trial_name")}, detector_params=detector_params)
    person = (video.VideoTrial & trial_key).fetch1("person")
    detections = (video.Detection * video.Video.proj("path") & key).to_dicts(order_by="camera_name")
    if len(detections) < 2:
        raise ValueError(f"trial {key['trial_name']}: Detection rows for {detector_params!r} in at least 2 cameras, "
                         f"got {len(detections)} (populate Detection first)")
    if any(d["keypoint_set"] != trial["keypoint_set"] for d in detections):
        raise ValueError(f"trial {key['trial_name']}: keypoint set {trial['keypoint_set']}, the detector gives "
                         f"{detections[0]['keypoint_set']}")
    cameras = {r["camera_name"]: r for r in (acq.Camera & trial_key).to_dicts()}
    per_camera, track_ids = [], []
    for d in detections:
        tracks = (video.Detection.Track & d).to_dicts(order_by="track_id")
        found, ids = _camera_detections(d, tracks, trial["n_frames"])
        per_camera.append(found)
        track_ids.append(ids)
    rows = [cameras[d["camera_name"]] for d in detections]
    diagonals = np.array([math.hypot(r["image_width"], r["image_height"]) for r in rows])
    choice = choose_subject(per_camera, rig_from_rows(rows), diagonals, None if person is None else int(person))
    if choice is None or isinstance(choice, int):
        seen = "nobody" if choice is None else f"{choice} people"
        raise ValueError(f"trial {key['trial_name']}: person {person or 0} seen consistently across cameras; "
                         f"{seen} were")
    J = len((acq.KeypointSet & trial).fetch1("joint_names"))
    T = trial["n_frames"]
    out = DetectedKeypoints([], dict(key, person=choice.person, explanation=choice.explanation(person is not None)
                                     [:2000]))
    for c, d in enumerate(detections):
        points, confidence = np.full((T, J, 2), np.nan, np.float32), np.zeros((T, J), np.float32)
        used = np.full(T, -1, np.int16)
        for t, frame in enumerate(per_camera[c].frame_index):
            index = choice.choices[c][t]
            if index is not None:
                person_row = per_camera[c].people[t][index]
                points[frame], confidence[frame] = person_row[:, :2], person_row[:, 2]
                used[frame] = track_ids[c][t][index]
        out.keypoints.append(dict(
            {k: trial[k] for k in ("subject_id", "session_id", "trial_name")}, camera_name=d["camera_name"],
            points=points, confidence=confidence, frame_index=np.arange(T, dtype=np.int64),
            n_missing_frames=int(np.sum(~np.any(confidence > 0, axis=1))),
            detector=f"{d['detector']} {d['detector_version']}"[:64], source=d["path"][:1000]))
        out.views.append(dict(key, camera_name=d["camera_name"], tracks_used=used,
                              n_frames_kept=int(np.sum(used >= 0))))
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
