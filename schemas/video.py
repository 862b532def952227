"""Videos of a trial and the 2D poses a detector found in them.

``VideoFile`` / ``VideoTrial`` / ``Video`` are filled at ingest (one video file per calibrated camera of a trial,
with its SHA-256, frame rate, frame count, size and per-frame timestamps; ``VideoFile`` is the file's bytes,
named by their SHA-256, so two subjects filmed in one recording share it). ``DetectorParams`` names a detector
configuration; ``Detection`` runs it once per video *file* (keyed by its checksum: ingesting the same file again,
or for a second participant, never detects again) and stores every tracked person. ``DetectedSubject`` records
which tracked person of each camera became a trial's ``Keypoints``, by which rule, and why.

The detector itself (model files, image decoding) lives outside the schema package: the application hands a
:data:`DetectionRunner` to :func:`use_detection_runner` before populating ``Detection``, as the fit tables are
handed their provenance provider at activation.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from typing import Callable

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import datajoint as dj

from schemas import acquisition  # noqa: F401  (foreign keys resolve through the module's namespace)
from schemas.acquisition import Camera, Trial

schema = dj.Schema()

# (video path, DetectorParams row) -> dict(detector_name, detector_version, model_checksum, keypoint_set,
# frame_index (T,) int64, timestamp_s (T,) float64, seconds_detecting, tracks: list of dict(track_id,
# keypoints (T, J, 2) px NaN where not detected, confidence (T, J) in [0, 1], score (T,) in [0, 1]))
DetectionRunner = Callable[[str, dict], dict]

_runner: DetectionRunner | None = None


def use_detection_runner(runner: DetectionRunner | None) -> None:
    """Set the function ``Detection.make`` calls to detect and track people in one video (None: unset)."""
    global _runner
    _runner = runner


def options_hash(detector: str, version: str, options: dict) -> str:
    """SHA-256 (hex) of the detector name, version and canonical options JSON: equal hashes, equal detections."""
    text = json.dumps(dict(detector=detector, version=version, options=options), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _path_with_checksum(paths: list[str], sha256: str) -> str:
    """The first of ``paths`` whose bytes still have ``sha256`` (a file edited since ingest is refused)."""
    for path in paths:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            continue
        if digest.hexdigest() == sha256:
            return path
    raise FileNotFoundError(f"no readable video with SHA-256 {sha256[:12]}… among {paths} (moved or changed "
                            f"since ingest)")


@schema
class VideoFile(dj.Manual):
    definition = """
    # the bytes of one video file, named by their checksum (shared by every trial that films with it)
    sha256 : char(64)                  # hex digest of the file's bytes
    ---
    size_bytes : int64
    """


@schema
class VideoTrial(dj.Manual):
    definition = """
    # a trial recorded as video: the cameras' files agree (or the warning says how they do not)
    -> Trial
    ---
    n_videos : int16
    person = null : int16              # which person the subject is (rank among those seen); NULL = the first
    selection = null : json            # subject rule as given: {rule: person | near | track, ...}; NULL: person 0
    consistency_warning = "" : varchar(2000)  # frame counts / frame rates that differ across cameras or from the trial
    """


@schema
class Video(dj.Manual):
    definition = """
    # one camera's video file of a trial
    -> VideoTrial
    -> Camera
    ---
    -> VideoFile
    path : varchar(1000)               # absolute path when ingested, symlinks resolved
    fps : float64                      # frames per second as the container states it
    frame_count : int32                # frames as the container states it
    width : int32                      # px
    height : int32                     # px
    timestamps = null : <blob>         # (frame_count,) float64 s per decoded frame; NULL when the container has none
    """


@schema
class DetectorParams(dj.Lookup):
    definition = """
    # one configuration of a 2D pose detector
    detector_params : varchar(32)
    ---
    detector : varchar(32)             # e.g. blazepose-full
    detector_version : varchar(64)
    options : json                     # frames (start, stop, step), detector thresholds, tracking thresholds
    params_hash : char(64)             # options_hash(detector, detector_version, options)
    """


@schema
class Detection(dj.Computed):
    definition = """
    # every person a detector found and tracked in one video file
    -> VideoFile
    -> DetectorParams
    ---
    video_path : varchar(1000)         # the file read (a Video path whose bytes had this checksum)
    detector : varchar(32)
    detector_version : varchar(64)
    model_checksum : char(64)          # SHA-256 over the model files
    keypoint_set : varchar(16)
    frame_index : <blob>               # (T,) int64 video frames the detector saw
    timestamp_s : <blob>               # (T,) float64 s
    n_tracks : int16
    seconds_detecting : float32        # wall-clock s in the detector
    """

    class Track(dj.Part):
        definition = """
        # one person in this camera over the detected frames (identities are per camera)
        -> master
        track_id : int16
        ---
        keypoints : <blob>             # (T, J, 2) float32 px; NaN where not detected
        confidence : <blob>            # (T, J) float32 in [0, 1]; 0 where not detected
        score : <blob>                 # (T,) float32 detection score; 0 where not detected
        track_score : float32          # mean score over the frames where detected
        n_detected : int32             # frames where detected
        """

    @property
    def key_source(self):
        return (VideoFile & Video).proj() * DetectorParams.proj()

    def make(self, key: dict) -> None:
        if _runner is None:
            raise RuntimeError("Detection.make: no detector; call schemas.video.use_detection_runner first")
        paths = sorted(set((Video & {"sha256": key["sha256"]}).to_arrays("path")))
        path = _path_with_checksum(paths, key["sha256"])
        params = (DetectorParams & key).fetch1()
        result = _runner(path, params)
        if (result["detector_name"], result["detector_version"]) != (params["detector"], params["detector_version"]):
            raise ValueError(f"DetectorParams {params['detector_params']!r} names {params['detector']} "
                             f"{params['detector_version']}, the runner is {result['detector_name']} "
                             f"{result['detector_version']}")
        self.insert1(dict(key, video_path=path[:1000], detector=result["detector_name"],
                          detector_version=result["detector_version"],
                          model_checksum=result["model_checksum"], keypoint_set=result["keypoint_set"],
                          frame_index=result["frame_index"], timestamp_s=result["timestamp_s"],
                          n_tracks=len(result["tracks"]), seconds_detecting=float(result["seconds_detecting"])))
        self.Track.insert([dict(key, track_id=t["track_id"], keypoints=t["keypoints"].astype("float32"),
                                confidence=t["confidence"].astype("float32"), score=t["score"].astype("float32"),
                                track_score=float(t["score"][t["score"] > 0].mean()) if (t["score"] > 0).any()
                                else 0.0, n_detected=int((t["score"] > 0).sum()))
                           for t in result["tracks"]])


@schema
class DetectedSubject(dj.Manual):
    definition = """
    # which tracked person became the trial's Keypoints, chosen consistently across cameras
    -> VideoTrial
    -> DetectorParams
    ---
    selection : json                   # the rule applied (as VideoTrial.selection; the default spelt out)
    person : int16                     # rank (by summed confidence) of the chosen person among those seen at the seed
    seed_frame : int32                 # video frame where the person was chosen
    explanation : varchar(2000)        # how the choice was made
    """

    class View(dj.Part):
        definition = """
        # per camera: the tracks whose detections were kept, and how many frames
        -> master
        -> Video
        ---
        seed_track = null : int16      # the camera's track id chosen at the seed frame (NULL: not seen there)
        main_track : int16             # the track id kept in most frames (-1: none kept)
        tracks_used : <blob>           # (T,) int16 track id per trial frame, -1 where none was kept
        n_frames_kept : int32
        """
