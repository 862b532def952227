"""Renderings of a fit: the MuJoCo body video, per-camera overlays and frame strips, on a short synthetic walk.

The walk is a few frames of hand-made joint angles (hips and knees swinging, pelvis moving along +X) on a
scaled body40; its virtual markers come from MuJoCo's own forward kinematics of the scaled model, and the
cameras from the synthetic rig. Images are small so the module runs in seconds on a CPU.
"""
from __future__ import annotations

import cv2
import mujoco
import numpy as np
import pytest

from compute import synthetic
from compute.cameras import project_points_numpy, unstack_cameras
from compute.kinematics import JOINT_NAMES, MARKER_SITE_PREFIX, SCALE_GROUP_NAMES, build_mj_model
from pipeline.rendering import (BodyRenderStyle, OverlayStyle, iter_overlay_frames,
                                render_body_strip, render_body_video, render_overlay_strip, render_overlay_video,
                                scale_mj_model, scaled_body_model, skeleton_over_time, working_gl_backend,
                                write_mp4)

T = 6
IMAGE_SIZE = (320, 240)          # camera image (width, height), px


@pytest.fixture(scope="module")
def gl_backend() -> str:
    """An offscreen GL backend that works here; the rendering tests skip, with every backend's error, if none."""
    try:
        return working_gl_backend()
    except RuntimeError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def walk() -> dict:
    """qpos (T, Q), log_scale (G,), markers (T, J, 3) m of a short synthetic walk of a 6 % taller body."""
    index = {name: k for k, name in enumerate(JOINT_NAMES)}
    phase = np.linspace(0.0, 2 * np.pi, T, endpoint=False)
    qpos = np.zeros((T, len(JOINT_NAMES)))
    qpos[:, index["pelvis_tx"]] = np.linspace(-0.5, 0.5, T)
    qpos[:, index["pelvis_tz"]] = 0.93 * 1.06
    qpos[:, index["hip_flexion_r"]] = 0.45 * np.sin(phase)
    qpos[:, index["hip_flexion_l"]] = -0.45 * np.sin(phase)
    qpos[:, index["knee_angle_r"]] = 0.6 * (1 + np.sin(phase + 1.0))
    qpos[:, index["knee_angle_l"]] = 0.6 * (1 - np.sin(phase + 1.0))
    qpos[:, index["arm_flex_r"]] = -0.35 * np.sin(phase)
    qpos[:, index["arm_flex_l"]] = 0.35 * np.sin(phase)
    log_scale = np.zeros(len(SCALE_GROUP_NAMES))
    log_scale[SCALE_GROUP_NAMES.index("overall")] = np.log(1.06)
    model = scale_mj_model(build_mj_model("MOVI87"), log_scale)
    sites = [k for k in range(model.nsite) if model.site(k).name.startswith(MARKER_SITE_PREFIX)]
    data = mujoco.MjData(model)
    markers = np.empty((T, len(sites), 3))
    for t in range(T):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        markers[t] = data.site_xpos[sites]
    return {"qpos": qpos, "log_scale": log_scale, "markers": markers}


@pytest.fixture(scope="module")
def camera():
    """The first camera of a synthetic rig around the walkway, images IMAGE_SIZE."""
    rig, _ = synthetic.sample_rig(np.random.default_rng(3), 4, IMAGE_SIZE)
    return unstack_cameras(rig)[0]


def _read_video(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def _body_mask(frame: np.ndarray) -> np.ndarray:
    # body40's capsules are skin-coloured (R > G > B); the floor is grey and the sky bluish
    rgb = frame.astype(int)
    return (rgb[..., 0] - rgb[..., 2] > 50) & (rgb[..., 0] > 120)


def test_scaled_skeleton_scales_segments_as_the_fit_does(walk):
    """A group's factor multiplies the joint-centre offsets its bodies carry (their children's ``body_pos``).

    Overall × 1.06 lengthens every segment by 6 %; the right thigh group × 1.2 on top lengthens only the
    right femur (hip → knee) segment.
    """
    standing = walk["qpos"][:1] * 0.0
    base = skeleton_over_time(scaled_body_model(np.zeros(len(SCALE_GROUP_NAMES))), standing)
    scaled = skeleton_over_time(scaled_body_model(walk["log_scale"]), standing)
    thigh = walk["log_scale"].copy()
    thigh[SCALE_GROUP_NAMES.index("thigh_r")] = np.log(1.2)
    long_thigh = skeleton_over_time(scaled_body_model(thigh), standing)

    def lengths(skeleton):
        a, b = skeleton.segments.T
        return np.linalg.norm(skeleton.positions[0, b] - skeleton.positions[0, a], axis=-1)

    np.testing.assert_allclose(lengths(scaled), 1.06 * lengths(base), rtol=1e-9)
    femur = [k for k, (a, b) in enumerate(base.segments)
             if base.names[a] == "femur_r" and base.names[b] == "tibia_r"]
    ratio = lengths(long_thigh) / lengths(scaled)
    np.testing.assert_allclose(ratio[femur], 1.2, rtol=1e-9)
    assert np.allclose(np.delete(ratio, femur), 1.0)


def test_body_video_has_every_frame_and_the_body_moves(walk, gl_backend, tmp_path):
    style = BodyRenderStyle(width=160, height=120)
    path = render_body_video(tmp_path / "body.mp4", walk["qpos"], walk["log_scale"], fps=30.0,
                             markers=walk["markers"], style=style, gl_backend=gl_backend)
    frames = _read_video(path)
    assert len(frames) == T
    assert frames[0].shape == (120, 160, 3)
    masks = [_body_mask(f) for f in frames]
    for frame, mask in zip(frames, masks):
        assert frame.std() > 10, "frame is blank"
        assert 150 < mask.sum() < 0.5 * mask.size, f"body covers {mask.sum()} px"
    overlap = (masks[0] & masks[T // 2]).sum() / (masks[0] | masks[T // 2]).sum()
    assert overlap < 0.85, f"the body's pixels barely move between frames (IoU {overlap:.2f})"


def test_overlay_draws_markers_where_the_camera_projects_them(walk, camera, tmp_path):
    style = OverlayStyle(marker_radius_px=6)
    markers = walk["markers"][:, :1]                      # one marker, so discs cannot overlap
    frames = list(iter_overlay_frames(camera, markers, style=style))
    assert len(frames) == T and frames[0].shape == (IMAGE_SIZE[1], IMAGE_SIZE[0], 3)
    pixels, depth = project_points_numpy(camera, markers[:, 0])
    assert np.all(depth > 0)
    for frame, (u, v) in zip(frames, pixels):
        assert 0 <= u < IMAGE_SIZE[0] and 0 <= v < IMAGE_SIZE[1]
        assert tuple(frame[int(round(v)), int(round(u))]) == style.marker_rgb
        assert tuple(frame[int(round(v)), (int(round(u)) + 40) % IMAGE_SIZE[0]]) == style.background_rgb
    path = render_overlay_video(tmp_path / "cam.mp4", camera, markers, fps=30.0, style=style)
    decoded = _read_video(path)
    assert len(decoded) == T
    u, v = np.round(pixels[0]).astype(int)
    assert np.abs(decoded[0][v, u].astype(int) - style.marker_rgb).max() < 40   # H.264 is lossy


def test_overlay_over_the_camera_video_keeps_its_pictures(walk, camera, tmp_path):
    """Skeleton and markers go over the matching video frames (offset by ``video_start_frame``)."""
    width, height = IMAGE_SIZE
    video = [np.full((height, width, 3), 20 * k, np.uint8) for k in range(T + 2)]
    source, _ = write_mp4(tmp_path / "source.mp4", video, fps=30.0)
    skeleton = skeleton_over_time(scaled_body_model(walk["log_scale"]), walk["qpos"])
    frames = list(iter_overlay_frames(camera, walk["markers"], skeleton, video_path=source, video_start_frame=2))
    assert len(frames) == T
    for t, frame in enumerate(frames):
        corner = frame[:8, :8].astype(int)                 # far from the subject: the video's own pixels
        assert np.abs(corner - 20 * (t + 2)).max() <= 3
        assert (frame != frame[0, 0]).any(axis=-1).sum() > 200, "nothing drawn"


def test_frame_strips_have_the_expected_size(walk, camera, gl_backend, tmp_path):
    overlay = cv2.imread(str(render_overlay_strip(tmp_path / "cam_strip.png", camera, walk["markers"], n_tiles=4,
                                                  tile_height=60)))
    assert overlay.shape == (60, 4 * 80 + 3 * 4, 3)         # 320×240 tiles at 60 px high, 4 px gaps
    body = cv2.imread(str(render_body_strip(tmp_path / "body_strip.png", walk["qpos"], walk["log_scale"],
                                            n_tiles=3, style=BodyRenderStyle(width=160, height=120),
                                            tile_height=60, gl_backend=gl_backend)))
    assert body.shape == (60, 3 * 80 + 2 * 4, 3)


def test_odd_sized_frames_are_padded_not_resized(tmp_path):
    frames = [np.full((61, 81, 3), 200, np.uint8)] * 3
    path, count = write_mp4(tmp_path / "odd.mp4", frames, fps=10.0)
    decoded = _read_video(path)
    assert count == 3 and len(decoded) == 3
    assert decoded[0].shape == (62, 82, 3)
    assert np.abs(decoded[0][:61, :81].astype(int) - 200).max() <= 3
