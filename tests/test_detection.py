"""The embedded 2D detector: SSD anchors, NMS, crop geometry, tracking, video reading, model install, and
BlazePose on a real multi-person lab recording (Pose2Sim's demo, 4 cameras, two participants)."""
from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest

from pipeline.detection import (
    BlazePoseDetector, Detector, ModelFilesMissing, PersonDetection, TrackingOptions, detect_video,
    installed_blazepose_models, iter_frames, read_video_info, track_people,
)
from pipeline.detection.blazepose import (
    away_from_cut_edges, cut_square, decode_detections, detector_views, region_from_alignment,
    region_from_landmarks, same_region, ssd_anchor_centres, to_image, weighted_nms,
)
from pipeline.detection.models import MODEL_FILES, extract_models
from tests.conftest import SHARED_DATA

VIDEOS = SHARED_DATA / "pose2sim_demo_multiperson" / "videos"
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_ANKLE, R_ANKLE = 11, 12, 23, 24, 27, 28


def test_pose_detector_anchors_are_the_2254_ssd_grid_centres():
    anchors = ssd_anchor_centres()
    assert anchors.shape == (2254, 2)
    # stride 8: a 28 × 28 grid, 2 anchors per cell, row by row
    np.testing.assert_allclose(anchors[:4], [[0.5 / 28, 0.5 / 28]] * 2 + [[1.5 / 28, 0.5 / 28]] * 2)
    # the three stride-32 layers share one 7 × 7 grid with 6 anchors per cell
    np.testing.assert_allclose(anchors[-6:], [[6.5 / 7, 6.5 / 7]] * 6)


def test_decoding_offsets_boxes_and_keypoints_from_their_anchor():
    anchors = np.array([[0.5, 0.5], [0.25, 0.75]], dtype=np.float32)
    raw = np.zeros((2, 12), dtype=np.float32)
    raw[1, :4] = [22.4, 0.0, 44.8, 22.4]           # +0.1 in x; 0.2 × 0.1 box
    raw[1, 4:6] = [0.0, -22.4]                     # keypoint 0 at −0.1 in y
    boxes, keypoints, scores = decode_detections(raw, np.array([-5.0, 5.0]), anchors, min_score=0.5)
    assert len(scores) == 1 and scores[0] == pytest.approx(1 / (1 + np.exp(-5)))
    np.testing.assert_allclose(boxes[0], [0.25, 0.70, 0.45, 0.80], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 0], [0.25, 0.65], atol=1e-6)


def test_weighted_nms_averages_overlapping_boxes_and_keeps_separate_ones():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=float)
    keypoints = boxes[:, None, :2].copy()
    scores = np.array([0.9, 0.3, 0.5])
    out_boxes, out_keypoints, out_scores = weighted_nms(boxes, keypoints, scores)
    np.testing.assert_allclose(out_scores, [0.9, 0.5])
    np.testing.assert_allclose(out_boxes[0], [0.25, 0, 10.25, 10])          # (0.9·0 + 0.3·1) / 1.2
    np.testing.assert_allclose(out_keypoints[1, 0], [50, 50])


def test_a_rotated_crop_and_its_back_projection_agree():
    image = np.zeros((400, 300, 3), dtype=np.uint8)
    cv2.circle(image, (200, 120), 3, (255, 255, 255), -1)                  # a dot at (200.5, 120.5) px
    region = region_from_alignment(np.array([150.0, 200.0]), np.array([190.0, 110.0]))
    crop = cut_square(image, region, 128)
    yx = np.argwhere(crop[..., 0] > 128).mean(axis=0)
    back = to_image(yx[::-1] + 0.5, region, 128)
    np.testing.assert_allclose(back, [200.5, 120.5], atol=1.5)
    # the crop's "up" is the hip-to-scale-point direction
    up = to_image(np.array([64.0, 0.0]), region, 128) - to_image(np.array([64.0, 64.0]), region, 128)
    np.testing.assert_allclose(up / np.linalg.norm(up), region.up, atol=1e-9)


def test_portrait_frames_get_two_overlapping_tiles_and_cut_heads_are_not_trusted():
    views = detector_views(1920, 1088, tiles=True)
    assert [tuple(v.bounds().round()) for v in views[1:]] == [(0, 0, 1088, 1088), (0, 832, 1088, 1920)]
    assert len(detector_views(1000, 1000, tiles=True)) == 1
    bottom = views[2]
    boxes = np.array([[100, 900, 300, 1100], [100, 1300, 300, 1500]], dtype=float)  # near the cut / well inside
    assert away_from_cut_edges(boxes, bottom, 1920, 1088).tolist() == [False, True]


def test_a_previous_pose_proposes_an_upright_roi_around_its_body():
    keypoints = np.zeros((33, 2))
    keypoints[:] = [300.0, 500.0]
    keypoints[[L_HIP, R_HIP]] = [[290.0, 500.0], [310.0, 500.0]]
    keypoints[[L_SHOULDER, R_SHOULDER]] = [[280.0, 300.0], [320.0, 300.0]]
    keypoints[0] = [300.0, 250.0]                                       # nose: 250 px above the hip centre
    keypoints[L_ANKLE] = [300.0, 900.0]                                 # the farthest landmark, 400 px below
    region = region_from_landmarks(keypoints)
    np.testing.assert_allclose(region.centre, [300.0, 500.0])
    np.testing.assert_allclose(region.up, [0.0, -1.0])
    assert region.side == pytest.approx(2 * 400 * 1.08 * 1.25)
    x0, y0, x1, y1 = region.bounds()
    assert y0 < 250 and y1 > 900
    assert same_region(region, region_from_alignment(np.array([310.0, 510.0]), np.array([310.0, 80.0])))
    assert not same_region(region, region_from_alignment(np.array([700.0, 500.0]), np.array([700.0, 70.0])))


def _person(x: float, y: float, score: float = 0.9, J: int = 33) -> PersonDetection:
    offsets = np.stack([np.linspace(-50, 50, J), np.linspace(-200, 200, J)], axis=1)
    return PersonDetection(np.array([x, y]) + offsets, np.full(J, 0.9), np.array([x - 60, y - 210, x + 60, y + 210]),
                           score)


def test_tracking_keeps_identities_when_detection_order_changes_and_bridges_a_gap():
    frames = [
        [_person(100, 500), _person(400, 500)],
        [_person(405, 500), _person(105, 500)],       # order swapped
        [_person(110, 500)],                          # the right person missed
        [_person(415, 502), _person(115, 500)],       # and back
    ]
    tracks = track_people(frames)
    assert len(tracks) == 2
    left, right = sorted(tracks, key=lambda tr: tr.keypoints[0, 0, 0])
    np.testing.assert_array_equal(left.detected, [True, True, True, True])
    np.testing.assert_array_equal(right.detected, [True, True, False, True])
    assert np.all(np.isnan(right.keypoints[2])) and np.all(right.confidence[2] == 0)
    np.testing.assert_allclose(right.keypoints[:, 16, 0], [400, 405, np.nan, 415])


def test_tracking_starts_a_new_identity_for_a_far_jump_and_after_a_long_gap():
    options = TrackingOptions(max_gap_frames=1)
    frames = [[_person(100, 500)], [_person(600, 500)], [], [], [_person(600, 500)]]
    tracks = track_people(frames, options)
    assert [tr.detected.nonzero()[0].tolist() for tr in tracks] == [[0], [1], [4]]
    assert track_people([[], []]) == []


def test_video_reader_gives_indices_timestamps_size_and_checksum(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), 40 * i, dtype=np.uint8))
    writer.release()
    info = read_video_info(path)
    assert (info.width, info.height, info.fps, info.frame_count) == (64, 48, 25.0, 6)
    assert len(info.sha256) == 64
    frames = list(iter_frames(path, start=1, step=2))
    assert [f.index for f in frames] == [1, 3, 5]
    assert [f.timestamp_s for f in frames] == pytest.approx([0.04, 0.12, 0.20])
    assert frames[0].image_bgr.shape == (48, 64, 3) and frames[0].image_bgr.dtype == np.uint8
    with pytest.raises(FileNotFoundError, match="no such video"):
        read_video_info(tmp_path / "missing.mp4")


def test_missing_model_files_name_the_install_command(tmp_path):
    with pytest.raises(ModelFilesMissing, match="python -m pipeline.detection.models"):
        installed_blazepose_models(tmp_path)


def test_a_wheel_with_other_model_bytes_is_refused_and_leaves_nothing(tmp_path):
    wheel = tmp_path / "mediapipe-0.10.21-fake.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in MODEL_FILES:
            archive.writestr(name, b"not the model")
    with pytest.raises(RuntimeError, match="SHA-256"):
        extract_models(wheel, tmp_path / "models")
    assert not any((tmp_path / "models").iterdir())


@pytest.fixture(scope="module")
def detector() -> BlazePoseDetector:
    try:
        return BlazePoseDetector.from_installed()
    except ModelFilesMissing as missing:
        pytest.skip(f"BlazePose model files are not installed here ({missing})")


@pytest.fixture(scope="module")
def cam01_poses(detector):
    video = VIDEOS / "cam01.mp4"
    if not video.is_file():
        pytest.skip(f"the shared demo recording is not here: {video}")
    return detect_video(video, detector, stop=5)


def test_blazepose_satisfies_the_detector_interface(detector):
    assert isinstance(detector, Detector)
    assert detector.keypoint_set == "BLAZEPOSE33" and len(detector.model_checksum) == 64


def test_blazepose_finds_both_participants_with_plausible_skeletons(cam01_poses):
    assert cam01_poses.video.fps == 60.0 and (cam01_poses.video.width, cam01_poses.video.height) == (1088, 1920)
    assert cam01_poses.frame_index.tolist() == [0, 1, 2, 3, 4]
    for people in cam01_poses.detections:
        assert len(people) >= 2
        for p in people:
            x0, y0, x1, y1 = p.box
            inside = (p.keypoints[:, 0] >= x0) & (p.keypoints[:, 0] <= x1) & \
                     (p.keypoints[:, 1] >= y0) & (p.keypoints[:, 1] <= y1)
            assert inside.mean() >= 0.9
            assert np.all((p.confidence >= 0) & (p.confidence <= 1)) and 0 < p.score <= 1
            y = p.keypoints[:, 1]                               # image y grows downwards
            assert max(y[L_SHOULDER], y[R_SHOULDER]) < min(y[L_HIP], y[R_HIP])
            assert max(y[L_HIP], y[R_HIP]) < min(y[L_ANKLE], y[R_ANKLE])


def test_tracking_keeps_both_participants_over_the_frames(cam01_poses):
    tracks = cam01_poses.tracks
    assert len(tracks) == 2 and all(tr.detected.all() for tr in tracks)
    for tr in tracks:
        hips = tr.keypoints[:, [L_HIP, R_HIP]].mean(axis=1)              # (T, 2) px
        assert np.linalg.norm(np.diff(hips, axis=0), axis=1).max() < 40  # 60 fps: small steps per frame
    a, b = (tr.keypoints[:, [L_HIP, R_HIP]].mean(axis=1) for tr in tracks)
    assert np.linalg.norm(a - b, axis=1).min() > 200                     # two different people
