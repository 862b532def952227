"""The peer benchmark's Pose2Sim-layout writer (bench/peer_layout.py) round-trips through our own importers.

Pose2Sim itself is not needed: the files are read back with the project's anipose/Pose2Sim calibration reader and
OpenPose folder reader, and the axis convention of Pose2Sim's .trc (``zup2yup``: columns are the Z-up world's
Y, Z, X) is undone exactly.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"bench_{name}"] = module   # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def layout():
    return _load("peer_layout")


def _rig(n: int) -> SimpleNamespace:
    rng = np.random.default_rng(0)
    K = np.array([[1500.0, 0, 1000], [0, 1500.0, 760], [0, 0, 1]])
    return SimpleNamespace(size=np.tile([2048, 1536], (n, 1)), K=np.tile(K, (n, 1, 1)),
                           dist=rng.normal(0, 0.01, (n, 5)) * [1, 1, 0.01, 0.01, 0],
                           rvec=rng.normal(0, 1.0, (n, 3)), tvec=rng.normal(0, 3.0, (n, 3)))


def test_calibration_reads_back_with_our_importer(layout, tmp_path):
    from pipeline.importers.calibration import read_anipose_calibration

    rig = _rig(3)
    names = ("cam01", "cam02", "cam03")
    path = layout.write_pose2sim_calibration(rig, names, tmp_path / "calibration" / "Calib_x.toml")
    calibration = read_anipose_calibration(path, unit="m")
    assert [c.name for c in calibration.cameras] == list(names)
    for c, camera in enumerate(calibration.cameras):
        np.testing.assert_allclose(camera.K, rig.K[c])
        np.testing.assert_allclose(camera.rvec, rig.rvec[c])
        np.testing.assert_allclose(camera.tvec, rig.tvec[c])
        np.testing.assert_allclose(camera.dist[:4], rig.dist[c, :4])
        assert camera.image_size == (2048, 1536)


def test_openpose_frames_read_back_with_missing_points(layout, tmp_path):
    from pipeline.importers.keypoints import read_openpose_folder

    rng = np.random.default_rng(1)
    T, J = 5, 26
    points = rng.uniform(10, 1000, (T, J, 2)).astype(np.float32)
    confidence = rng.uniform(0.4, 1.0, (T, J)).astype(np.float32)
    points[1, 3] = np.nan       # dropped point
    confidence[1, 3] = 0.0
    confidence[2, 4] = 0.0      # zero confidence: written as (0, 0, 0)
    layout.write_openpose_camera(points, confidence, tmp_path / "pose" / "cam01_json", "cam01")
    files = sorted((tmp_path / "pose" / "cam01_json").glob("*.json"))
    assert [f.name for f in files][:2] == ["cam01_000000.json", "cam01_000001.json"]
    assert json.loads(files[1].read_text())["people"][0]["pose_keypoints_2d"][9:12] == [0.0, 0.0, 0.0]
    cameras = read_openpose_folder(tmp_path / "pose", J, "HALPE26")
    read = cameras["cam01_json"]
    np.testing.assert_array_equal(read.frame_index, np.arange(T))
    valid = confidence > 0
    np.testing.assert_allclose(read.points[valid], points[valid], atol=1e-3)
    assert np.isnan(read.points[1, 3]).all() and np.isnan(read.points[2, 4]).all()
    np.testing.assert_allclose(read.confidence[valid], confidence[valid], atol=1e-3)


def test_config_overrides_keep_the_template(layout):
    template = {"project": {"multi_person": True, "frame_range": "auto"}, "pose": {"pose_model": "Body_with_feet",
                "mode": "balanced"}, "kinematics": {"use_augmentation": True, "use_simple_model": False}}
    spec = layout.PeerSessionSpec(n_cameras=4, n_frames=100)
    merged = layout.merge_config(template, layout.pose2sim_overrides(spec, 1.71, 65.0))
    assert merged["pose"] == {"pose_model": "HALPE_26", "mode": "balanced"}
    assert merged["kinematics"] == {"use_augmentation": False, "use_simple_model": False}
    assert merged["project"]["multi_person"] is False and merged["project"]["frame_range"] == "auto"
    assert merged["project"]["participant_height"] == 1.71 and merged["project"]["frame_rate"] == 30.0
    assert template["project"]["multi_person"] is True   # the template is not modified


def test_pose2sim_trc_axes_are_undone():
    score = _load("peer_score")
    world = np.array([[[1.0, 2.0, 3.0]]])
    pose2sim_columns = world[..., [1, 2, 0]]            # what Pose2Sim's zup2yup writes
    np.testing.assert_array_equal(score.pose2sim_yup_to_world(pose2sim_columns), world)
    truth = np.zeros((2, 2, 3))
    estimate = truth + np.array([0.003, 0.004, 0.0])    # 5 mm everywhere
    result = score.keypoint_error(estimate[:, ::-1], ("b", "a"), truth, ("a", "b"))
    assert result.mean_mm == pytest.approx(5.0) and result.n == 4
