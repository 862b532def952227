"""The real Caliscope 4-camera MediaPipe Holistic recording goes in through its manifest (see SOURCE.md)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pipeline.cli import main

MANIFEST = Path(__file__).parent / "data" / "caliscope_manifest.toml"
SHARED = Path(__file__).resolve().parents[2] / "shared"
RECORDING = SHARED / "data" / "caliscope_4cam_holistic" / "tests" / "sessions" / "4_cam_recording"
CSV = RECORDING / "recordings" / "recording_1" / "HOLISTIC" / "xy_HOLISTIC.csv"

pytestmark = pytest.mark.skipif(not CSV.is_file(),
                                reason=f"shared Caliscope data not found at {RECORDING} (../shared is absent)")

# SOURCE.md: frames with detections per port, and rows per port (all point ids)
FRAMES_PER_PORT = {"cam_0": 267, "cam_1": 262, "cam_2": 267, "cam_3": 266}
ROWS_PER_PORT = {"cam_0": 13_971, "cam_1": 16_564, "cam_2": 18_721, "cam_3": 15_014}


def test_body_points_kept_and_hand_face_points_counted():
    from pipeline.importers.keypoints import read_caliscope_csv

    cameras = read_caliscope_csv(CSV, 33, "BLAZEPOSE33")
    for name, camera in cameras.items():
        assert len(camera.frame_index) == FRAMES_PER_PORT[name]
        kept = int(np.sum(camera.confidence > 0))
        assert kept + sum(camera.left_out.values()) == ROWS_PER_PORT[name]
    assert "face" not in cameras["cam_1"].left_out  # port 1 has no face points (SOURCE.md)


def test_caliscope_session_ingests(db_prefix, capsys):
    from schemas import acquisition as acq

    assert main(["--prefix", db_prefix, "ingest", "session", str(MANIFEST)]) == 0
    out = capsys.readouterr().out
    assert "face 5600" in out and "hand 31826" in out
    key = {"subject_id": "CALISCOPE01", "session_id": "2023-05-06"}
    assert len(acq.Camera & key) == 4
    trial = (acq.Trial & key).fetch1()
    assert trial["n_frames"] == 267 and trial["keypoint_set"] == "BLAZEPOSE33"
    config = tomllib.loads((RECORDING / "config.toml").read_text())
    for row in (acq.Keypoints & key).to_dicts():
        assert row["points"].shape == (267, 33, 2) and row["confidence"].shape == (267, 33)
        assert 267 - row["n_missing_frames"] == FRAMES_PER_PORT[row["camera_name"]]
        assert set(np.unique(row["confidence"])) <= {0.0, 1.0}
        np.testing.assert_array_equal(row["frame_index"], np.arange(267))
    # world_alignment = "auto": stored extrinsics are in the aligned world X' = R_a X + t_a, so the file's are
    # R = R' R_a and t = t' + R' t_a (pipeline/manifest.py)
    alignment = (acq.Session & key).fetch1("world_alignment")
    assert alignment["method"] == "auto" and alignment["up_source"] == "level cameras"
    R_a, t_a = np.array(alignment["rotation"]), np.array(alignment["translation"])
    np.testing.assert_allclose(R_a @ R_a.T, np.eye(3), atol=1e-9)
    assert R_a[2] @ [1.0, 0.0, 0.0] > np.cos(np.deg2rad(10))  # SOURCE.md: up is roughly +X of camera 1's frame
    for row in (acq.Camera & key).to_dicts():
        section = config[row["camera_name"]]
        R_stored = Rotation.from_rotvec(np.array(row["rotation"])).as_matrix()
        np.testing.assert_allclose(R_stored @ R_a, section["rotation"], atol=1e-5)
        np.testing.assert_allclose(np.array(row["translation"]) + R_stored @ t_a, section["translation"], atol=1e-6)
        assert (row["image_width"], row["image_height"]) == (1280, 720) and row["calibration_unit"] == "m"
