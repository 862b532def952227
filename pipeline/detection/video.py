"""Reading a video file frame by frame with OpenCV, with what a stored detection needs to know about the file."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.detection.models import sha256_of


@dataclass(frozen=True)
class VideoInfo:
    """A video file's identity and geometry.

    Attributes:
        path: the file.
        sha256: SHA-256 hex digest of the file's bytes.
        fps: frames per second, as the container states it.
        frame_count: number of frames, as the container states it (decoding may yield fewer).
        width, height: frame size, px.
    """

    path: Path
    sha256: str
    fps: float
    frame_count: int
    width: int
    height: int


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``index`` (0-based), ``timestamp_s`` = index / fps, ``image_bgr`` (H, W, 3) uint8."""

    index: int
    timestamp_s: float
    image_bgr: np.ndarray


def _open(path: Path) -> cv2.VideoCapture:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open it as a video")
    return capture


def read_video_info(path: Path) -> VideoInfo:
    """Size, frame rate, frame count and SHA-256 of a video file.

    Raises:
        FileNotFoundError: no such file. ValueError: OpenCV cannot decode it, or it states no positive fps.
    """
    path = Path(path)
    capture = _open(path)
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if not fps > 0:
        raise ValueError(f"{path}: the container states no frame rate (fps = {fps})")
    return VideoInfo(path, sha256_of(path), fps, count, width, height)


def iter_frames(path: Path, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
    """Decode frames ``start, start + step, …`` before ``stop`` (default: to the end), in order.

    Timestamps are ``index / fps`` (constant frame rate assumed, as for hardware-synchronised lab cameras).
    Frames before ``start`` and between steps are decoded and discarded: seeking in H.264 is not frame-exact.
    """
    if start < 0 or step < 1:
        raise ValueError(f"iter_frames: start must be ≥ 0 and step ≥ 1, got start={start}, step={step}")
    capture = _open(Path(path))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        index = 0
        while stop is None or index < stop:
            ok, image = capture.read()
            if not ok:
                return
            if index >= start and (index - start) % step == 0:
                yield Frame(index, index / fps, image)
            index += 1
    finally:
        capture.release()
