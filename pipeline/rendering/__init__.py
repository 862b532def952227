"""Renderings of a fit that people would rather look at than read: videos and frame strips.

* ``body``: the fitted, scaled MuJoCo body walking on a floor, seen by a virtual camera that follows the
  pelvis, virtual markers as spheres (as in Cotton 2024, "Differentiable Biomechanics Unlocks Opportunities
  for Markerless Motion Capture", fig. 2). Offscreen OpenGL on the CPU (EGL or OSMesa).
* ``overlay``: per camera, the fitted skeleton and virtual markers projected through the (refined) camera
  and drawn over its video, or over a plain frame of its image size.
* ``video``: H.264 MP4 writing, video reading, PNG frame strips for a QC page.

Every function takes plain arrays and dataclasses (joint angles ``(T, Q)`` rad, log scales ``(G,)``,
markers ``(T, J, 3)`` m, a ``compute.cameras.Camera``, a video path, fps), never database rows.

    from pipeline.rendering import render_body_video, render_overlay_video, scaled_body_model, skeleton_over_time
    render_body_video("walk_body.mp4", qpos, log_scale, fps=30, markers=markers)
    skeleton = skeleton_over_time(scaled_body_model(log_scale), qpos)
    render_overlay_video("walk_cam1.mp4", camera, markers, fps=30, skeleton=skeleton, video_path="cam1.mp4")
"""
from pipeline.rendering.body import (FRONT_VIEW, GL_BACKENDS, SIDE_VIEW, BodyRenderer, BodyRenderStyle, Skeleton,
                                     TrackingView, body_scene_model, default_gl_backend, iter_body_frames,
                                     render_body_strip, render_body_video, scale_mj_model, scaled_body_model,
                                     skeleton_over_time, working_gl_backend)
from pipeline.rendering.overlay import (OverlayStyle, draw_overlay, iter_overlay_frames, project_to_image,
                                        render_overlay_strip, render_overlay_video)
from pipeline.rendering.video import (frame_strip, read_frames, strip_frame_indices, video_frame_size, write_mp4,
                                      write_png)

__all__ = [
    "GL_BACKENDS", "default_gl_backend", "working_gl_backend", "TrackingView", "SIDE_VIEW", "FRONT_VIEW",
    "BodyRenderStyle", "Skeleton",
    "BodyRenderer", "scale_mj_model", "scaled_body_model", "body_scene_model", "skeleton_over_time",
    "iter_body_frames", "render_body_video", "render_body_strip",
    "OverlayStyle", "project_to_image", "draw_overlay", "iter_overlay_frames", "render_overlay_video",
    "render_overlay_strip",
    "write_mp4", "read_frames", "video_frame_size", "frame_strip", "strip_frame_indices", "write_png",
]
