"""The fit drawn over each camera's picture: skeleton and virtual markers projected through the camera.

Points are projected with the camera model the fit uses (``compute.cameras.project_points_numpy``: OpenCV
pinhole with ``(k1, k2, p1, p2, k3)`` distortion, ``x_cam = R X + t``), so a drawn marker sits exactly where
the reprojection loss saw it. Pixel coordinates are OpenCV's: origin at the centre of the top-left pixel,
``u`` along the width, ``v`` along the height. Drawing uses sub-pixel coordinates (OpenCV ``shift``).
Frames are RGB ``(H, W, 3)`` uint8; when there is no video the picture is a plain background of the
camera's image size.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from compute.cameras import Camera, project_points_numpy
from pipeline.rendering.body import Skeleton
from pipeline.rendering.video import frame_strip, read_frames, strip_frame_indices, write_mp4, write_png

__all__ = ["OverlayStyle", "project_to_image", "draw_overlay", "iter_overlay_frames", "render_overlay_video",
           "render_overlay_strip"]

_SUBPIXEL_BITS = 4                      # OpenCV drawing `shift`: coordinates in 1/16 px
_SUBPIXEL = 1 << _SUBPIXEL_BITS
_DRAWABLE_MARGIN = 4.0                  # points beyond 4 image sizes are not drawn (int overflow in OpenCV)


@dataclass(frozen=True)
class OverlayStyle:
    """Colours (RGB 0-255) and sizes (px) of an overlay.

    Markers are filled discs of ``marker_radius_px`` in ``marker_rgb``, drawn last (on top); skeleton
    segments are lines of ``line_width_px`` coloured by side (left / right / midline); joint centres are
    discs of ``joint_radius_px``; ``background_rgb`` fills frames without video.
    """

    marker_radius_px: int = 3
    marker_rgb: tuple[int, int, int] = (255, 215, 0)
    line_width_px: int = 3
    joint_radius_px: int = 3
    left_rgb: tuple[int, int, int] = (70, 150, 255)
    right_rgb: tuple[int, int, int] = (255, 80, 70)
    midline_rgb: tuple[int, int, int] = (90, 220, 110)
    background_rgb: tuple[int, int, int] = (32, 32, 32)


def _image_size(camera: Camera) -> tuple[int, int]:
    size = np.asarray(camera.size, np.float64)
    if size.shape != (2,):
        raise ValueError(f"expected one camera (size (2,)), got camera.size of shape {size.shape}: split a rig "
                         "with compute.cameras.unstack_cameras")
    return int(round(size[0])), int(round(size[1]))


def project_to_image(camera: Camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points ``(..., 3)`` m into one camera: pixels ``(..., 2)`` and drawable ``(...)`` bool.

    Drawable: finite, in front of the camera (``z_cam > 0``) and within four image sizes of the picture
    (farther points would overflow OpenCV's integer drawing coordinates; a segment to such a point is
    dropped, not clipped).
    """
    width, height = _image_size(camera)
    pixels, z = project_points_numpy(camera, points)
    with np.errstate(invalid="ignore"):
        near = ((np.abs(pixels[..., 0] - width / 2) < _DRAWABLE_MARGIN * width)
                & (np.abs(pixels[..., 1] - height / 2) < _DRAWABLE_MARGIN * height))
        drawable = np.all(np.isfinite(pixels), axis=-1) & (z > 0) & near
    return pixels, drawable


def _fixed(point: np.ndarray) -> tuple[int, int]:
    return int(round(point[0] * _SUBPIXEL)), int(round(point[1] * _SUBPIXEL))


def draw_overlay(image: np.ndarray, marker_px: np.ndarray, marker_drawable: np.ndarray,
                 skeleton_px: np.ndarray | None = None, skeleton_drawable: np.ndarray | None = None,
                 segments: np.ndarray | None = None, segment_sides: Sequence[str] = (),
                 style: OverlayStyle = OverlayStyle()) -> np.ndarray:
    """Draw one frame's skeleton and markers on a copy of ``image`` (H, W, 3) uint8 RGB.

    marker_px (J, 2) px and marker_drawable (J,) bool; skeleton_px (P, 2) px and skeleton_drawable (P,) bool
    for the skeleton points, segments (S, 2) point indices with segment_sides (S,) ``"l"``/``"r"``/``""``
    (as in ``pipeline.rendering.body.Skeleton``). Returns the new image.
    """
    out = np.ascontiguousarray(image, np.uint8).copy()
    if skeleton_px is not None:
        colours = {"l": style.left_rgb, "r": style.right_rgb, "": style.midline_rgb}
        for (a, b), side in zip(np.asarray(segments), segment_sides):
            if skeleton_drawable[a] and skeleton_drawable[b]:
                cv2.line(out, _fixed(skeleton_px[a]), _fixed(skeleton_px[b]), colours[side],
                         style.line_width_px, cv2.LINE_AA, _SUBPIXEL_BITS)
        for point in skeleton_px[skeleton_drawable]:
            cv2.circle(out, _fixed(point), style.joint_radius_px * _SUBPIXEL, (255, 255, 255), -1, cv2.LINE_AA,
                       _SUBPIXEL_BITS)
    for point in marker_px[marker_drawable]:
        cv2.circle(out, _fixed(point), style.marker_radius_px * _SUBPIXEL, style.marker_rgb, -1, cv2.LINE_AA,
                   _SUBPIXEL_BITS)
    return out


def _backgrounds(camera: Camera, video_path: Path | str | None, video_start_frame: int,
                 style: OverlayStyle) -> Iterator[np.ndarray]:
    """Endless picture stream: the video's frames from ``video_start_frame``, then plain background."""
    width, height = _image_size(camera)
    if video_path is not None:
        for index, frame in enumerate(read_frames(video_path, video_start_frame)):
            if frame.shape[:2] != (height, width):
                raise ValueError(f"{video_path}: frames are {frame.shape[1]}×{frame.shape[0]} px, the camera's "
                                 f"image size is {width}×{height} px")
            yield frame
    blank = np.empty((height, width, 3), np.uint8)
    blank[:] = style.background_rgb
    while True:
        yield blank


def iter_overlay_frames(camera: Camera, markers: np.ndarray, skeleton: Skeleton | None = None,
                        video_path: Path | str | None = None, video_start_frame: int = 0,
                        frame_indices: Sequence[int] | None = None,
                        style: OverlayStyle = OverlayStyle()) -> Iterator[np.ndarray]:
    """Overlay frames of one camera, RGB (H, W, 3) uint8 with (W, H) = ``camera.size``.

    camera: one ``compute.cameras.Camera`` (the refined calibration); markers: (T, J, 3) virtual markers, m;
    skeleton: optional joint centres over the same T frames (``skeleton_over_time``); video_path: the
    camera's video, whose frame ``video_start_frame + t`` shows fit frame t (frames past the video's end, or
    every frame when there is no video, are plain background); frame_indices: the fit frames to produce, in
    increasing order (default all T).
    """
    markers = np.asarray(markers, np.float64)
    if markers.ndim != 3 or markers.shape[2] != 3:
        raise ValueError(f"markers has shape {markers.shape}, expected (T, J, 3)")
    T = markers.shape[0]
    if skeleton is not None and skeleton.positions.shape[0] != T:
        raise ValueError(f"skeleton has {skeleton.positions.shape[0]} frames, markers {T}")
    wanted = np.arange(T) if frame_indices is None else np.asarray(frame_indices, int)
    if wanted.size and (np.any(np.diff(wanted) <= 0) or wanted[0] < 0 or wanted[-1] >= T):
        raise ValueError(f"frame_indices must increase strictly within [0, {T}), got {wanted.tolist()}")
    marker_px, marker_ok = project_to_image(camera, markers[wanted])
    skeleton_px = skeleton_ok = None
    if skeleton is not None:
        skeleton_px, skeleton_ok = project_to_image(camera, skeleton.positions[wanted])
    backgrounds = _backgrounds(camera, video_path, video_start_frame, style)
    position = 0
    for k, t in enumerate(wanted):
        while position < t:            # decode and drop the frames between wanted ones
            next(backgrounds)
            position += 1
        background = next(backgrounds)
        position += 1
        yield draw_overlay(background, marker_px[k], marker_ok[k],
                           None if skeleton is None else skeleton_px[k],
                           None if skeleton is None else skeleton_ok[k],
                           None if skeleton is None else skeleton.segments,
                           () if skeleton is None else skeleton.segment_sides, style)


def render_overlay_video(path: Path | str, camera: Camera, markers: np.ndarray, fps: float,
                         skeleton: Skeleton | None = None, video_path: Path | str | None = None,
                         video_start_frame: int = 0, style: OverlayStyle = OverlayStyle()) -> Path:
    """Write one camera's overlay (skeleton and markers over its video) as an H.264 MP4 of T frames.

    Arguments as in ``iter_overlay_frames``; fps: frames per second of the fit frames. Returns the path.
    """
    written, _ = write_mp4(path, iter_overlay_frames(camera, markers, skeleton, video_path, video_start_frame,
                                                     None, style), fps)
    return written


def render_overlay_strip(path: Path | str, camera: Camera, markers: np.ndarray, n_tiles: int = 6,
                         tile_height: int = 240, skeleton: Skeleton | None = None,
                         video_path: Path | str | None = None, video_start_frame: int = 0,
                         style: OverlayStyle = OverlayStyle()) -> Path:
    """Write a PNG of ``n_tiles`` overlay frames spread evenly over the trial, side by side.

    Each tile is ``tile_height`` px high with the camera's aspect ratio (``frame_strip``). Other arguments as
    in ``iter_overlay_frames``. Returns the path.
    """
    indices = strip_frame_indices(np.asarray(markers).shape[0], n_tiles)
    frames = list(iter_overlay_frames(camera, markers, skeleton, video_path, video_start_frame, indices, style))
    return write_png(path, frame_strip(frames, tile_height))
