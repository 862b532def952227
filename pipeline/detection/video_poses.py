"""Running a detector over one camera's video and tracking the people in it."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.detection.base import Detector, PersonDetection
from pipeline.detection.tracking import PoseTrack, TrackingOptions, track_people
from pipeline.detection.video import VideoInfo, iter_frames, read_video_info


@dataclass(frozen=True)
class DetectorIdentity:
    """What produced a set of keypoints: detector ``name``, ``version``, ``model_checksum`` (SHA-256) and
    ``keypoint_set``."""

    name: str
    version: str
    model_checksum: str
    keypoint_set: str

    @classmethod
    def of(cls, detector: Detector) -> "DetectorIdentity":
        return cls(detector.name, detector.version, detector.model_checksum, detector.keypoint_set)


@dataclass(frozen=True, eq=False)
class VideoPoses:
    """Everyone a detector found in one camera's video, tracked.

    Attributes:
        video: the file's identity and geometry.
        detector: what produced the keypoints.
        frame_index: (T,) int, the decoded frames' indices in the video.
        timestamp_s: (T,) float seconds, ``frame_index / fps``.
        detections: T lists of the raw per-frame detections.
        tracks: per-person arrays over the T frames (see ``PoseTrack``), identities per camera only.
        seconds_detecting: wall-clock time spent in ``detector.detect``.
    """

    video: VideoInfo
    detector: DetectorIdentity
    frame_index: np.ndarray
    timestamp_s: np.ndarray
    detections: list[list[PersonDetection]]
    tracks: list[PoseTrack]
    seconds_detecting: float


def detect_video(path: Path, detector: Detector, start: int = 0, stop: int | None = None, step: int = 1,
                 tracking: TrackingOptions = TrackingOptions()) -> VideoPoses:
    """Detect every person in frames ``start:stop:step`` of a video and track them.

    Each frame's detection is given the previous decoded frame's detections (see ``Detector.detect``).
    Tracking sees only the decoded frames, so with ``step > 1`` its thresholds apply per decoded frame.
    """
    info = read_video_info(Path(path))
    indices, stamps, detections = [], [], []
    seconds = 0.0
    for frame in iter_frames(info.path, start, stop, step):
        began = time.perf_counter()
        detections.append(detector.detect(frame.image_bgr, detections[-1] if detections else ()))
        seconds += time.perf_counter() - began
        indices.append(frame.index)
        stamps.append(frame.timestamp_s)
    return VideoPoses(info, DetectorIdentity.of(detector), np.array(indices, dtype=int), np.array(stamps),
                      detections, track_people(detections, tracking), seconds)
