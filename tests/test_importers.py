"""Importers read each format correctly; a valid session goes into the database whole (real server)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pipeline.cli import main
from pipeline.importers import IngestError
from pipeline.importers.calibration import read_anipose_calibration, read_caliscope_calibration
from pipeline.importers.keypoints import align_frames, choose_tracked_person, read_npz_folder, read_openpose_folder
from pipeline.importers.naming import match_cameras, normalize_camera_name
from pipeline.importers.walkway import read_walkway_csv
from compute.markersets import KEYPOINT_SETS

BODY25, COCO17 = KEYPOINT_SETS["BODY25"], KEYPOINT_SETS["COCO17"]

MINI = Path(__file__).parent / "data" / "mini_session"


def test_keypoint_set_orders_match_keypoints_md():
    assert {k: len(v) for k, v in KEYPOINT_SETS.items()} == {
        "MOVI87": 87, "HALPE26": 26, "BODY25": 25, "BODY25B": 25, "COCO17": 17, "BLAZEPOSE33": 33}
    assert BODY25[:3] == ("Nose", "Neck", "RShoulder") and KEYPOINT_SETS["BODY25B"][17] == "UpperNeck"
    assert KEYPOINT_SETS["MOVI87"][21] == "lhee" and KEYPOINT_SETS["BLAZEPOSE33"][29] == "left_heel"


def test_anipose_unit_is_inferred_as_mm_and_converted_to_metres():
    calibration = read_anipose_calibration(MINI / "calib" / "calibration.toml")
    assert calibration.unit == "mm" and calibration.unit_inferred
    np.testing.assert_allclose(calibration.cameras[0].tvec, [-0.1, 0.8, 4.0])
    assert calibration.cameras[0].dist.shape == (5,) and calibration.cameras[0].dist[4] == 0
    given = read_anipose_calibration(MINI / "calib" / "calibration.toml", unit="mm")
    assert given.unit == "mm" and not given.unit_inferred
    np.testing.assert_allclose(given.cameras[0].tvec, [-0.1, 0.8, 4.0])
    # declared metres, but the cameras would be 8 km apart: an error that suggests millimetres
    with pytest.raises(IngestError, match='8212 m apart.*calibration_unit = "mm"'):
        read_anipose_calibration(MINI / "calib" / "calibration.toml", unit="m")


def test_caliscope_rotation_matrix_becomes_rodrigues(tmp_path):
    R = Rotation.from_rotvec([0.1, -0.4, 0.3]).as_matrix()
    (tmp_path / "config.toml").write_text(
        "[cam_4]\nport = 4\nsize = [640, 480]\nmatrix = [[500.0,0,320],[0,500.0,240],[0,0,1]]\n"
        f"distortions = [0.1, 0, 0, 0, 0]\nrotation = {R.tolist()}\ntranslation = [0.1, 0.2, 2.0]\n")
    camera = read_caliscope_calibration(tmp_path / "config.toml").cameras[0]
    assert camera.name == "cam_4" and camera.image_size == (640, 480)
    np.testing.assert_allclose(camera.rvec, [0.1, -0.4, 0.3], atol=1e-12)


@pytest.mark.parametrize("source", ["cam01_json", "cam1", "cam_01", "Camera-1", "1", "cam01"])
def test_camera_names_normalise(source):
    assert normalize_camera_name(source) == "cam_1"


def test_ambiguous_or_uncalibrated_camera_names_are_errors():
    assert match_cameras(["cam01_json"], ["cam_1", "cam_2"], None, "f") == {"cam01_json": "cam_1"}
    assert match_cameras(["left"], ["cam_1"], {"left": "cam_1"}, "f") == {"left": "cam_1"}
    with pytest.raises(IngestError, match="both normalise"):
        match_cameras(["cam1"], ["cam01", "cam_1"], None, "f")
    with pytest.raises(IngestError, match="one keypoint source per camera"):
        match_cameras(["cam1", "cam01_json"], ["cam_1"], None, "f")
    with pytest.raises(IngestError, match="present in the calibration"):
        match_cameras(["cam9"], ["cam_1"], None, "f")


def test_openpose_tracks_the_same_person_and_counts_missing_frames():
    cameras = read_openpose_folder(MINI / "walk01" / "pose", 25, "BODY25")
    assert set(cameras) == {"cam01_json", "cam02_json"}
    cam1 = cameras["cam01_json"]
    np.testing.assert_array_equal(cam1.frame_index, np.arange(6))
    # the tracked subject has confidence 0.9 (the bystander 0.6), keypoint 3 is missing (conf 0 -> NaN)
    assert np.all(cam1.confidence[:, [0, 1, 2, 4]] == np.float32(0.9))
    assert np.all(cam1.confidence[:, 3] == 0) and np.all(np.isnan(cam1.points[:, 3]))
    aligned = align_frames(cameras, MINI)
    assert aligned.points.shape == (2, 6, 25, 2)
    assert aligned.missing_frames == {"cam01_json": 0, "cam02_json": 1}
    c2 = aligned.cameras.index("cam02_json")
    assert np.all(aligned.confidence[c2, 4] == 0) and np.all(np.isnan(aligned.points[c2, 4]))


def test_tracking_prefers_the_person_nearest_to_the_previous_choice():
    previous = np.zeros((3, 3)); previous[:, 2] = 1
    near = np.column_stack([np.ones((3, 2)) * 5, np.full(3, 0.5)])
    far_but_confident = np.column_stack([np.ones((3, 2)) * 500, np.full(3, 1.0)])
    people = np.stack([far_but_confident, near])
    assert choose_tracked_person(people, None) == 0
    assert choose_tracked_person(people, previous) == 1


def test_npz_folder_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 1000, (8, 17, 2)).astype(np.float32)
    confidence = rng.uniform(0, 1, (8, 17)).astype(np.float32)
    confidence[2, 5] = 0
    points[2, 5] = np.nan
    np.savez(tmp_path / "cam_3.npz", keypoints=points, confidence=confidence, joint_names=np.array(COCO17),
             frame_index=np.arange(10, 18), detector=np.array("metrabs 1.0"))
    camera = read_npz_folder(tmp_path, COCO17, "COCO17")["cam_3"]
    np.testing.assert_array_equal(camera.frame_index, np.arange(10, 18))
    np.testing.assert_array_equal(camera.points, points)
    assert camera.detector == "metrabs 1.0"
    np.savez(tmp_path / "cam_3.npz", keypoints=points, confidence=confidence, joint_names=np.array(COCO17[::-1]))
    with pytest.raises(IngestError, match="joint_names"):
        read_npz_folder(tmp_path, COCO17, "COCO17")


def test_walkway_csv():
    rows = read_walkway_csv(MINI / "walk01" / "steps.csv")
    assert [r["foot"] for r in rows] == ["L", "R", "L"]
    assert rows[1]["toe_off_time"] is None and rows[2]["heel_x"] == pytest.approx(1.9)


def test_dry_run_inserts_nothing(db_prefix, capsys):
    from schemas import acquisition as acq

    assert main(["--prefix", db_prefix, "ingest", "session", str(MINI / "manifest.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "mm inferred" in out and "Keypoints 2" in out
    assert not acq.Session & {"subject_id": "MINI01"}


def test_session_manifest_is_ingested_whole(db_prefix, tmp_path):
    from schemas import acquisition as acq

    session_dir = tmp_path / "mini"
    shutil.copytree(MINI, session_dir)
    text = (session_dir / "manifest.toml").read_text().replace('id = "MINI01"', 'id = "MINI02"')
    (session_dir / "manifest.toml").write_text(text)
    assert main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml")]) == 0
    key = {"subject_id": "MINI02"}
    assert len(acq.Camera & key) == 2 and len(acq.Keypoints & key) == 2
    trial = (acq.Trial & key).fetch1()
    assert trial["n_frames"] == 6 and trial["keypoint_set"] == "BODY25" and trial["fps"] == 30
    camera = (acq.Camera & key & {"camera_name": "cam_1"}).fetch1()
    assert camera["calibration_unit"] == "mm" and camera["unit_inferred"]
    np.testing.assert_allclose(camera["translation"], [-0.1, 0.8, 4.0])
    keypoints = (acq.Keypoints & key & {"camera_name": "cam_2"}).fetch1()
    assert keypoints["points"].shape == (6, 25, 2) and keypoints["n_missing_frames"] == 1
    assert keypoints["detector"] == "openpose 1.7.0"
    assert len(acq.WalkwaySteps.Footfall & key) == 3

    # adding a second trial to the existing session, and its walkway steps, through the partial ingests
    assert main(["--prefix", db_prefix, "ingest", "keypoints", "--subject", "MINI02", "--session", "2024-02-28",
                 "--trial", "walk02", "--activity", "walk", "--fps", "30", "--format", "openpose",
                 "--keypoint-set", "BODY25", str(session_dir / "walk01" / "pose")]) == 0
    assert main(["--prefix", db_prefix, "ingest", "walkway", "--subject", "MINI02", "--session", "2024-02-28",
                 "--trial", "walk02", str(session_dir / "walk01" / "steps.csv")]) == 0
    assert len(acq.Trial & key) == 2 and len(acq.WalkwaySteps.Footfall & key & {"trial_name": "walk02"}) == 3


def test_help_lists_every_command_and_an_unknown_one_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out
    for command in ("db", "ingest", "populate", "worker", "status", "jobs", "report", "export", "synth", "demo"):
        assert f"\n    {command} " in listed, command
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate", "--x"])
    assert exit_info.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err
