"""Real recordings go in and nothing is lost: variants real tools write are accepted, data that would be lost,
misplaced or implausible is a one-line error (exit 2, database unchanged), never a traceback (real server)."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from compute.markersets import keypoint_names
from pipeline.cli import EXIT_BAD_INPUT, main

MINI = Path(__file__).parent / "data" / "mini_session"
POSE = Path("walk01") / "pose"
CAM1, CAM2 = POSE / "cam01_json", POSE / "cam02_json"


def _frame(camera: Path, number: int) -> Path:
    return camera / f"walk01_{number:012d}_keypoints.json"


def _counts() -> dict[str, int]:
    from schemas import acquisition as acq

    tables = (acq.Subject, acq.Session, acq.Camera, acq.Trial, acq.Keypoints, acq.WalkwaySteps,
              acq.WalkwaySteps.Footfall, acq.SourceFile)
    return {t.__name__: len(t()) for t in tables}


def _copy_session(tmp_path: Path, subject_id: str) -> Path:
    target = tmp_path / f"session_{uuid.uuid4().hex[:6]}"
    shutil.copytree(MINI, target)
    _edit(target, 'id = "MINI01"', f'id = "{subject_id}"')
    return target


@pytest.fixture
def session_dir(tmp_path, db_prefix) -> Path:
    return _copy_session(tmp_path, f"RW_{uuid.uuid4().hex[:10]}")


def _edit(session_dir: Path, old: str, new: str, file: str = "manifest.toml") -> None:
    path = session_dir / file
    text = path.read_text()
    assert old in text, (old, file)
    path.write_text(text.replace(old, new, 1))


def _subject_id(session_dir: Path) -> str:
    import tomllib

    return tomllib.loads((session_dir / "manifest.toml").read_text())["subject"]["id"]


def _ingest(session_dir: Path, db_prefix: str, *extra: str) -> int:
    return main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml"), *extra])


def _accepted(session_dir: Path, db_prefix: str, capsys) -> str:
    code = _ingest(session_dir, db_prefix)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _rejected(session_dir: Path, db_prefix: str, capsys, *fragments: str) -> str:
    before = _counts()
    code = _ingest(session_dir, db_prefix)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert _counts() == before
    return err


def _stored_keypoints(session_dir: Path, camera: str) -> dict:
    from schemas import acquisition as acq

    return (acq.Keypoints & {"subject_id": _subject_id(session_dir), "camera_name": camera}).fetch1()


# ------------------------------------------------------------------------------------------------ 1. JSON variants
def test_openpose_frames_without_a_detection_are_missing_not_errors(session_dir, db_prefix, capsys):
    (session_dir / _frame(CAM1, 2)).write_text(json.dumps({"version": 1.3, "people": [{}]}))  # Pose2Sim association
    (session_dir / _frame(CAM1, 3)).write_text(json.dumps({"version": 1.3, "people": []}))
    (session_dir / _frame(CAM2, 1)).write_text(json.dumps({"people": [{"person_id": [-1], "pose_keypoints_2d": []}]}))
    # an empty entry next to a real detection: the detection is used
    frame = json.loads((session_dir / _frame(CAM2, 2)).read_text())
    frame["people"].insert(0, {})
    (session_dir / _frame(CAM2, 2)).write_text(json.dumps(frame))
    # cam02 has no file for frame 4 at all (the mini session's missing frame file)
    out = _accepted(session_dir, db_prefix, capsys)
    assert "cam_1: 6×25 keypoints" in out and "2 frames missing" in out
    cam1, cam2 = _stored_keypoints(session_dir, "cam_1"), _stored_keypoints(session_dir, "cam_2")
    assert cam1["n_missing_frames"] == 2 and cam2["n_missing_frames"] == 2
    assert np.all(cam1["confidence"][[2, 3]] == 0) and np.all(np.isnan(cam1["points"][[2, 3]]))
    assert np.all(cam2["confidence"][[1, 4]] == 0)
    assert np.all(cam2["confidence"][2, [0, 1, 2, 4]] == np.float32(0.9))  # the tracked subject, not skipped


# ------------------------------------------------------------------------------------------------ 2. lost data
def _caliscope_config(ports: list[int]) -> str:
    rotations = [[1.2, -1.2, 1.2], [1.2, 1.2, -1.2], [0.3, 0.2, 0.1]]
    translations = [[-0.1, 0.8, 4.0], [0.2, 0.7, 4.2], [1.0, 0.5, 3.0]]
    lines = []
    for index, port in enumerate(ports):
        R = Rotation.from_rotvec(rotations[index]).as_matrix()
        lines += [f"[cam_{index}]", f"port = {port}", "size = [1280, 720]",
                  "matrix = [[1000.0, 0.0, 640.0], [0.0, 1000.0, 360.0], [0.0, 0.0, 1.0]]",
                  "distortions = [0.01, -0.02, 0.0, 0.0, 0.0]", f"rotation = {R.tolist()}",
                  f"translation = {translations[index]}", ""]
    return "\n".join(lines)


def test_caliscope_sections_sharing_a_port_are_an_error(session_dir, db_prefix, capsys):
    (session_dir / "calib" / "config.toml").write_text(_caliscope_config([1, 2, 1]))
    _edit(session_dir, 'calibration = "calib/calibration.toml"', 'calibration = "calib/config.toml"')
    _edit(session_dir, 'calibration_format = "anipose"', 'calibration_format = "caliscope"')
    _rejected(session_dir, db_prefix, capsys, "config.toml", "[cam_2].port", "port 1", "[cam_0]")


@pytest.mark.parametrize("bad_id", ["MINI01 ", " MINI01", "MI\\u0000NI", "MI\\tNI", "MI\\u200bNI"])
def test_ids_with_edge_whitespace_or_control_characters_are_refused(session_dir, db_prefix, capsys, bad_id):
    _edit(session_dir, f'id = "{_subject_id(session_dir)}"', f'id = "{bad_id}"')
    _rejected(session_dir, db_prefix, capsys, "subject.id", "control characters")


def test_subject_ids_differing_only_in_case_are_an_error_naming_both(tmp_path, db_prefix, capsys):
    upper = f"SYN{uuid.uuid4().hex[:8].upper()}"
    first = _copy_session(tmp_path, upper)
    _accepted(first, db_prefix, capsys)
    second = _copy_session(tmp_path, upper.lower())
    _edit(second, 'id = "2024-02-28"', 'id = "2024-03-01"')
    _edit(second, "mass_kg = 70.0", "mass_kg = 82.5")
    _rejected(second, db_prefix, capsys, "subject.id", repr(upper), repr(upper.lower()), "letter case")


def test_session_ids_differing_only_in_case_are_an_error_naming_both(tmp_path, db_prefix, capsys):
    subject = f"SES{uuid.uuid4().hex[:8]}"
    first = _copy_session(tmp_path, subject)
    _edit(first, 'id = "2024-02-28"', 'id = "Visit-A"')
    _accepted(first, db_prefix, capsys)
    second = _copy_session(tmp_path, subject)
    _edit(second, 'id = "2024-02-28"', 'id = "visit-a"')
    _rejected(second, db_prefix, capsys, "session.id", f"{subject}/Visit-A", "letter case")


def test_redeclared_subject_must_keep_its_attributes(tmp_path, db_prefix, capsys):
    subject = f"RED{uuid.uuid4().hex[:8]}"
    _accepted(_copy_session(tmp_path, subject), db_prefix, capsys)
    same = _copy_session(tmp_path, subject)  # identical re-declaration, a new session: fine
    _edit(same, 'id = "2024-02-28"', 'id = "2024-03-01"')
    _accepted(same, db_prefix, capsys)
    heavier = _copy_session(tmp_path, subject)
    _edit(heavier, 'id = "2024-02-28"', 'id = "2024-03-02"')
    _edit(heavier, "mass_kg = 70.0", "mass_kg = 82.5")
    _rejected(heavier, db_prefix, capsys, "subject.mass_kg", "70.0", "82.5", "already stored")


def test_trial_names_differing_only_in_case_are_an_error(session_dir, db_prefix, capsys):
    text = (session_dir / "manifest.toml").read_text()
    trial = text[text.index("[[trials]]"):]
    (session_dir / "manifest.toml").write_text(text + "\n" + trial.replace('name = "walk01"', 'name = "WALK01"'))
    _rejected(session_dir, db_prefix, capsys, "trials.name", "walk01", "WALK01", "letter case")


def test_ingest_keypoints_for_an_existing_trial_is_one_line(session_dir, db_prefix, capsys):
    _accepted(session_dir, db_prefix, capsys)
    before = _counts()
    code = main(["--prefix", db_prefix, "ingest", "keypoints", "--subject", _subject_id(session_dir), "--session",
                 "2024-02-28", "--trial", "WALK01", "--activity", "walk", "--fps", "30", "--format", "openpose",
                 "--keypoint-set", "BODY25", str(session_dir / POSE)])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and len(err.splitlines()) == 1, err
    assert "already in session" in err and "'walk01'" in err
    assert _counts() == before


@pytest.mark.parametrize("old,new,field,suggestion", [
    ('walkway = "walk01/steps.csv"', 'walkways = "walk01/steps.csv"', "trials[0].walkways", "'walkway'"),
    ("mass_kg = 70.0", "mass_kgs = 70.0", "subject.mass_kgs", "'mass_kg'"),
    ('calibration_format = "anipose"', 'calibration_format = "anipose"\ncalibration_units = "mm"',
     "session.calibration_units", "'calibration_unit'"),
    ('calibration_format = "anipose"', 'calibration_format = "anipose"\nworld_alignments = "auto"',
     "session.world_alignments", "'world_alignment'"),
    ("[subject]", 'colour = "x"\n[subject]', "colour", "valid keys: subject, subjects, session, trials"),
    ("[subject]", "[subjekt]\nid = 1\n[subject]", "subjekt", "'subject'"),
    ("[subject]", "[[subjects]]\nid = 1\n[subject]", "[[subjects]]", "either [subject] or [[subjects]]"),
])
def test_unknown_manifest_keys_are_errors_with_a_suggestion(session_dir, db_prefix, capsys, old, new, field,
                                                            suggestion):
    _edit(session_dir, old, new)
    _rejected(session_dir, db_prefix, capsys, "manifest.toml", field, suggestion)


# ------------------------------------------------------------------------------------------------ 3. bad values
def _npz_session(session_dir: Path, points: np.ndarray, confidence: np.ndarray) -> None:
    npz_dir = session_dir / "walk01" / "npz"
    npz_dir.mkdir()
    for camera in ("cam_1", "cam_2"):
        np.savez(npz_dir / f"{camera}.npz", keypoints=points, confidence=confidence,
                 joint_names=np.array(keypoint_names("COCO17")))
    _edit(session_dir, 'keypoints = "walk01/pose"', 'keypoints = "walk01/npz"')
    _edit(session_dir, 'keypoints_format = "openpose"', 'keypoints_format = "npz"')
    _edit(session_dir, 'keypoint_set = "BODY25"', 'keypoint_set = "COCO17"')


def test_npz_value_beyond_float32_is_an_error(session_dir, db_prefix, capsys):
    points = np.full((4, 17, 2), 300.0)
    points[1, 2, 0] = 1e39  # float64: would be stored as float32 inf with confidence 0.8
    _npz_session(session_dir, points, np.full((4, 17), 0.8))
    _rejected(session_dir, db_prefix, capsys, "cam_1.npz", "keypoints", "within")


def test_npz_points_at_zero_zero_are_missing(session_dir, db_prefix, capsys):
    points = np.full((4, 17, 2), 300.0)
    points[2, 5] = 0.0
    _npz_session(session_dir, points, np.full((4, 17), 0.8))
    out = _accepted(session_dir, db_prefix, capsys)
    assert "points at exactly (0, 0) treated as missing: cam_1 1, cam_2 1" in out
    assert _stored_keypoints(session_dir, "cam_1")["confidence"][2, 5] == 0


CALIBRATION = "calib/calibration.toml"


@pytest.mark.parametrize("old,new,fragments", [
    ("size = [1280, 720]", "size = [0.5, 720]", ("[cam_0].size", "whole pixels")),
    ("[0.0, 0.0, 1.0]]", "[0.0, 0.0, 0.0]]", ("[cam_0].matrix", "[0, 0, 1]")),
    ("rotation = [1.2, -1.2, 1.2]", "rotation = [1e6, 0.0, 0.0]", ("[cam_0].rotation", "2π")),
    ("distortions = [0.01, -0.02, 0.0, 0.0]", "distortions = [1e9, -0.02, 0.0, 0.0]", ("[cam_0].distortions",)),
    ("matrix = [[1000.0, 0.0, 640.0], [0.0, 1000.0, 360.0]", "matrix = [[10.0, 0.0, 640.0], [0.0, 10.0, 360.0]",
     ("[cam_0].matrix", "focal length fx", "64..64000")),
    ("matrix = [[1000.0, 0.0, 640.0], [0.0, 1000.0, 360.0]", "matrix = [[1e6, 0.0, 640.0], [0.0, 1e6, 360.0]",
     ("[cam_0].matrix", "focal length")),
])
def test_implausible_calibration_values_are_errors(session_dir, db_prefix, capsys, old, new, fragments):
    _edit(session_dir, old, new, CALIBRATION)
    _rejected(session_dir, db_prefix, capsys, "calibration.toml", *fragments)


def test_cameras_all_at_one_pose_are_an_error(session_dir, db_prefix, capsys):
    _edit(session_dir, "rotation = [1.2, 1.2, -1.2]\ntranslation = [200.0, 700.0, 4200.0]",
          "rotation = [1.2, -1.2, 1.2]\ntranslation = [-100.0, 800.0, 4000.0]", CALIBRATION)
    _rejected(session_dir, db_prefix, capsys, "calibration.toml", "distinct positions", "cam01", "cam02")


def test_rig_in_millimetres_declared_as_metres_is_an_error(session_dir, db_prefix, capsys):
    _edit(session_dir, 'calibration_format = "anipose"', 'calibration_format = "anipose"\ncalibration_unit = "m"')
    _rejected(session_dir, db_prefix, capsys, "calibration_unit", "unit 'm'", 'calibration_unit = "mm"')


@pytest.mark.parametrize("fps", ["1e-30", "0", "-5", "nan", "inf", "20000"])
def test_implausible_frame_rates_are_errors(session_dir, db_prefix, capsys, fps):
    _edit(session_dir, "fps = 30", f"fps = {fps}")
    _rejected(session_dir, db_prefix, capsys, "trials[0].fps")


def test_frame_numbers_beyond_a_billion_are_an_error(session_dir, db_prefix, capsys):
    for camera in (CAM1, CAM2):
        for path in sorted((session_dir / camera).glob("*.json")):
            number = int(path.stem.split("_")[1])
            path.rename(path.with_name(f"walk01_{10**12 + number}_keypoints.json"))
    _rejected(session_dir, db_prefix, capsys, "cam01_json", "frame number", "999999999")


def test_points_at_zero_zero_are_missing_and_counted(session_dir, db_prefix, capsys):
    path = session_dir / _frame(CAM1, 2)
    data = json.loads(path.read_text())
    subject = max(data["people"], key=lambda p: p["pose_keypoints_2d"][2])
    subject["pose_keypoints_2d"][0:3] = [0.0, 0.0, 0.9]  # OpenPose's "not detected", with a confidence
    subject["pose_keypoints_2d"][3:5] = [-200.0, 900.0]  # moderately outside the 1280×720 image: legal
    path.write_text(json.dumps(data))
    out = _accepted(session_dir, db_prefix, capsys)
    assert "points at exactly (0, 0) treated as missing: cam_1 1" in out
    cam1 = _stored_keypoints(session_dir, "cam_1")
    assert cam1["confidence"][2, 0] == 0 and np.all(np.isnan(cam1["points"][2, 0]))
    np.testing.assert_array_equal(cam1["points"][2, 1], [-200.0, 900.0])


def test_points_far_outside_the_image_are_an_error(session_dir, db_prefix, capsys):
    path = session_dir / _frame(CAM1, 2)
    data = json.loads(path.read_text())
    subject = max(data["people"], key=lambda p: p["pose_keypoints_2d"][2])
    subject["pose_keypoints_2d"][0:3] = [20000.0, 300.0, 0.9]  # 15 image widths to the right
    path.write_text(json.dumps(data))
    _rejected(session_dir, db_prefix, capsys, "cam01_json", "within 10 image sizes", "1280×720", "20000")


def test_every_confidence_zero_is_an_error(session_dir, db_prefix, capsys):
    for camera in (CAM1, CAM2):
        for path in (session_dir / camera).glob("*.json"):
            data = json.loads(path.read_text())
            for person in data["people"]:
                person["pose_keypoints_2d"][2::3] = [0.0] * 25
            path.write_text(json.dumps(data))
    _rejected(session_dir, db_prefix, capsys, "confidence", "nothing to fit")


def test_a_one_camera_trial_is_an_error(session_dir, db_prefix, capsys):
    shutil.rmtree(session_dir / CAM2)
    _rejected(session_dir, db_prefix, capsys, "pose", "at least 2 calibrated cameras with keypoints", "cam01_json")


# ------------------------------------------------------------------------------------------------ 4. tracebacks
@pytest.mark.parametrize("old,new,field", [
    ("mass_kg = 70.0", "mass_kg = 1e39", "subject.mass_kg"),
    ("height_m = 1.72", "height_m = 1720.0", "subject.height_m"),
    ('sex = "F"', 'sex = "F"\nbirth_year = 99999', "subject.birth_year"),
])
def test_numbers_beyond_column_ranges_are_one_line_errors(session_dir, db_prefix, capsys, old, new, field):
    _edit(session_dir, old, new)
    _rejected(session_dir, db_prefix, capsys, field, "between")


def test_symlink_loops_are_one_line_errors(session_dir, db_prefix, capsys):
    loop = session_dir / "walk01" / "loop.csv"
    os.symlink(loop, loop)
    _edit(session_dir, 'walkway = "walk01/steps.csv"', 'walkway = "walk01/loop.csv"')
    _rejected(session_dir, db_prefix, capsys, "loop.csv")


def test_symlink_loop_among_keypoint_files_is_one_line(session_dir, db_prefix, capsys):
    loop = session_dir / _frame(CAM1, 9)
    os.symlink(loop, loop)
    _rejected(session_dir, db_prefix, capsys, loop.name, "readable")


def test_folder_given_as_walkway_file(session_dir, db_prefix, capsys):
    _edit(session_dir, 'walkway = "walk01/steps.csv"', 'walkway = "walk01"')
    _rejected(session_dir, db_prefix, capsys, "walk01", "got a folder")


@pytest.mark.parametrize("device", ["/dev/zero", "fifo"])
def test_devices_and_fifos_are_refused_without_reading(session_dir, db_prefix, capsys, device):
    if device == "fifo":
        os.mkfifo(session_dir / "walk01" / "steps.fifo")
        device = "walk01/steps.fifo"
    _edit(session_dir, 'walkway = "walk01/steps.csv"', f'walkway = "{device}"')
    _rejected(session_dir, db_prefix, capsys, "a regular walkway file")


def test_deeply_nested_json_is_one_line(session_dir, db_prefix, capsys):
    (session_dir / _frame(CAM1, 2)).write_text('{"people": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _rejected(session_dir, db_prefix, capsys, _frame(CAM1, 2).name, "nested")


def test_non_integer_caliscope_port_is_one_line(session_dir, db_prefix, capsys):
    (session_dir / "calib" / "config.toml").write_text(_caliscope_config([1, 2]).replace("port = 2", 'port = "two"'))
    _edit(session_dir, 'calibration = "calib/calibration.toml"', 'calibration = "calib/config.toml"')
    _edit(session_dir, 'calibration_format = "anipose"', 'calibration_format = "caliscope"')
    _rejected(session_dir, db_prefix, capsys, "[cam_1].port", "integer", "'two'")


def test_walkway_csv_with_a_byte_order_mark_is_accepted(session_dir, db_prefix, capsys):
    path = session_dir / "walk01" / "steps.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    _accepted(session_dir, db_prefix, capsys)
    from schemas import acquisition as acq

    assert len(acq.WalkwaySteps.Footfall & {"subject_id": _subject_id(session_dir)}) == 3
