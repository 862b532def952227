"""Image and video files for renderings: H.264 MP4 writing, frame reading, PNG frame strips.

Frames are RGB ``(H, W, 3)`` uint8 everywhere in this package (OpenCV's BGR order appears only at the file
boundary). MP4s are H.264 (``libx264``, ``yuv420p``, ``+faststart``), which browsers and every common player
play, written by the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships (no system ffmpeg needed).
OpenCV's own writer cannot produce H.264 from the PyPI wheels (only MPEG-4 part 2, which browsers refuse).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
import warnings
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

__all__ = ["write_mp4", "read_frames", "video_frame_size", "frame_strip", "strip_frame_indices", "write_png"]

# x264 constant-rate factor: 18-23 is visually lossless to good; 20 keeps 1-px skeleton lines crisp
_CRF = "20"


def _even_padded(frame: np.ndarray) -> np.ndarray:
    """Pad a frame by repeating its bottom row / right column when its height / width is odd.

    yuv420p stores chroma at half resolution and needs even sizes; padding (not resizing) keeps every pixel
    coordinate of the frame unchanged, and repeating the edge (not black) keeps the encoder from bleeding a
    dark border into the last real row and column.
    """
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_mp4(path: Path | str, frames: Iterable[np.ndarray], fps: float) -> tuple[Path, int]:
    """Write RGB frames ``(H, W, 3)`` uint8 (all of one size) to an H.264 MP4 at ``fps`` frames per second.

    Frames are consumed one at a time (an iterator of thousands of frames never sits in memory). An odd width
    or height is padded to even by repeating the right column / bottom row. Returns (path, frames written).
    Raises ValueError for an empty sequence, a frame of another size or a non-positive fps.
    """
    if not fps > 0:
        raise ValueError(f"write_mp4: fps must be positive, got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    size = None
    count = 0
    try:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"write_mp4 {path}: frame {count} has shape {frame.shape} {frame.dtype}, "
                                 "expected (H, W, 3) uint8 RGB")
            if size is None:
                size = frame.shape[:2]
                padded = _even_padded(frame)
                writer = imageio_ffmpeg.write_frames(
                    str(path), (padded.shape[1], padded.shape[0]), fps=float(fps), codec="libx264",
                    pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=None, macro_block_size=1,
                    ffmpeg_log_level="error",
                    output_params=["-crf", _CRF, "-preset", "veryfast", "-movflags", "+faststart"])
                with warnings.catch_warnings():
                    # the ffmpeg subprocess is started by fork + exec; JAX (imported by the caller) warns
                    # about any fork in a multithreaded process, but exec follows at once, so it is safe
                    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                    writer.send(None)
            elif frame.shape[:2] != size:
                raise ValueError(f"write_mp4 {path}: frame {count} is {frame.shape[:2]}, the first was {size}")
            writer.send(np.ascontiguousarray(_even_padded(frame)))
            count += 1
    finally:
        if writer is not None:
            writer.close()
    if count == 0:
        raise ValueError(f"write_mp4 {path}: no frames to write")
    return path, count


def video_frame_size(path: Path | str) -> tuple[int, int]:
    """``(width, height)`` in pixels of a video file, as OpenCV decodes it. Raises ValueError if unreadable."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"{path}: OpenCV cannot open it as a video")
        return int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()


def read_frames(path: Path | str, start: int = 0) -> Iterator[np.ndarray]:
    """Decode a video's frames from index ``start`` (0-based) to its end, as RGB ``(H, W, 3)`` uint8.

    Frames before ``start`` are decoded and dropped: seeking in H.264 is not frame-exact.
    Raises FileNotFoundError / ValueError when the file is missing or cannot be decoded.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"{path}: OpenCV cannot open it as a video")
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            if index >= start:
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


def strip_frame_indices(n_frames: int, n_tiles: int) -> np.ndarray:
    """(min(n_tiles, n_frames),) frame indices spread evenly over ``[0, n_frames)``, first and last included."""
    if n_frames < 1 or n_tiles < 1:
        raise ValueError(f"strip_frame_indices: need n_frames ≥ 1 and n_tiles ≥ 1, got {n_frames}, {n_tiles}")
    return np.unique(np.round(np.linspace(0, n_frames - 1, min(n_tiles, n_frames))).astype(int))


def frame_strip(frames: Sequence[np.ndarray], tile_height: int, gap_px: int = 4) -> np.ndarray:
    """Frames side by side, each resized to ``tile_height`` px high (aspect kept), on a white background.

    frames: N RGB ``(H_i, W_i, 3)`` uint8. Returns ``(tile_height, Σ w_i + gap_px·(N−1), 3)`` uint8 with
    ``w_i = round(W_i · tile_height / H_i)``.
    """
    if not frames:
        raise ValueError("frame_strip: no frames")
    tiles = []
    for frame in frames:
        h, w = frame.shape[:2]
        width = max(1, int(round(w * tile_height / h)))
        interpolation = cv2.INTER_AREA if tile_height < h else cv2.INTER_LINEAR
        tiles.append(cv2.resize(np.asarray(frame, np.uint8), (width, tile_height), interpolation=interpolation))
    gap = np.full((tile_height, gap_px, 3), 255, np.uint8)
    parts = [tiles[0]]
    for tile in tiles[1:]:
        parts += [gap, tile]
    return np.concatenate(parts, axis=1)


def write_png(path: Path | str, image: np.ndarray) -> Path:
    """Write an RGB ``(H, W, 3)`` uint8 image as PNG (creating the folder). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2BGR)):
        raise ValueError(f"write_png: OpenCV could not write {path}")
    return path
