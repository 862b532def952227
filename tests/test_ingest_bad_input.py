"""Every kind of bad input: one-line error naming file and field, exit code 2, database unchanged (real server)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import EXIT_BAD_INPUT, main
from compute.markersets import keypoint_names

COCO17 = keypoint_names("COCO17")

MINI = Path(__file__).parent / "data" / "mini_session"
POSE = Path("walk01") / "pose"
FRAME2 = POSE / "cam01_json" / "walk01_000000000002_keypoints.json"


def _counts() -> dict[str, int]:
    from schemas import acquisition as acq

    tables = (acq.Subject, acq.Session, acq.Camera, acq.Trial, acq.Keypoints, acq.WalkwaySteps,
              acq.WalkwaySteps.Footfall)
    return {t.__name__: len(t()) for t in tables}


@pytest.fixture
def session_dir(tmp_path, db_prefix) -> Path:
    target = tmp_path / "session"
    shutil.copytree(MINI, target)
    text = (target / "manifest.toml").read_text().replace('id = "MINI01"', f'id = "BAD_{tmp_path.name[-12:]}"')
    (target / "manifest.toml").write_text(text)
    return target


def _edit_manifest(session_dir: Path, old: str, new: str) -> None:
    path = session_dir / "manifest.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _edit_frame(session_dir: Path, change) -> None:
    path = session_dir / FRAME2
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _assert_rejected(session_dir: Path, db_prefix: str, capsys, *fragments: str) -> str:
    before = _counts()
    code = main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml")])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert _counts() == before
    return err


def test_truncated_json(session_dir, db_prefix, capsys):
    path = session_dir / FRAME2
    path.write_text(path.read_text()[:100])
    _assert_rejected(session_dir, db_prefix, capsys, FRAME2.name, "file", "valid JSON")


def test_not_json_at_all(session_dir, db_prefix, capsys):
    (session_dir / FRAME2).write_bytes(b"\x89PNG\r\n\x1a\n not json")
    _assert_rejected(session_dir, db_prefix, capsys, FRAME2.name, "file")


def test_wrong_keypoint_count_for_the_named_set(session_dir, db_prefix, capsys):
    _edit_manifest(session_dir, 'keypoint_set = "BODY25"', 'keypoint_set = "COCO17"')
    _assert_rejected(session_dir, db_prefix, capsys, "pose_keypoints_2d", "51 numbers", "COCO17", "got 75")


def test_nan_coordinate_with_confidence(session_dir, db_prefix, capsys):
    def change(data):
        data["people"][0]["pose_keypoints_2d"][0] = float("nan")  # json.dumps writes NaN, json.loads reads it
    _edit_frame(session_dir, change)
    _assert_rejected(session_dir, db_prefix, capsys, FRAME2.name, "keypoints", "finite coordinates")


def test_infinite_coordinate_with_confidence_in_npz(session_dir, db_prefix, capsys):
    npz_dir = session_dir / "walk01" / "npz"
    npz_dir.mkdir()
    points = np.full((4, 17, 2), 100.0, np.float32)
    points[1, 2, 0] = np.inf
    for camera in ("cam_1", "cam_2"):
        np.savez(npz_dir / f"{camera}.npz", keypoints=points, confidence=np.full((4, 17), 0.8, np.float32),
                 joint_names=np.array(COCO17))
    _edit_manifest(session_dir, 'keypoints = "walk01/pose"', 'keypoints = "walk01/npz"')
    _edit_manifest(session_dir, 'keypoints_format = "openpose"', 'keypoints_format = "npz"')
    _edit_manifest(session_dir, 'keypoint_set = "BODY25"', 'keypoint_set = "COCO17"')
    _assert_rejected(session_dir, db_prefix, capsys, "cam_1.npz", "keypoints", "finite")


def test_confidence_outside_unit_interval(session_dir, db_prefix, capsys):
    def change(data):
        for person in data["people"]:
            person["pose_keypoints_2d"][2] = 1.5
    _edit_frame(session_dir, change)
    _assert_rejected(session_dir, db_prefix, capsys, FRAME2.name, "confidence", "[0, 1]")


def test_camera_without_calibration(session_dir, db_prefix, capsys):
    (session_dir / POSE / "cam02_json").rename(session_dir / POSE / "cam07_json")
    _assert_rejected(session_dir, db_prefix, capsys, "pose", "cam07_json", "calibration")


def test_cameras_that_share_no_frame(session_dir, db_prefix, capsys):
    for path in (session_dir / POSE / "cam02_json").glob("*.json"):
        number = int(path.stem.split("_")[1])
        path.rename(path.with_name(f"walk01_{number + 1000:012d}_keypoints.json"))
    _assert_rejected(session_dir, db_prefix, capsys, "pose", "frame_index", "share at least one frame")


def test_non_orthonormal_rotation(session_dir, db_prefix, capsys):
    rotation = (np.eye(3) * 1.1).tolist()
    lines = []
    for port in (1, 2):
        lines += [f"[cam_{port}]", f"port = {port}", "size = [1280, 720]",
                  "matrix = [[1000.0, 0.0, 640.0], [0.0, 1000.0, 360.0], [0.0, 0.0, 1.0]]",
                  "distortions = [0.0, 0.0, 0.0, 0.0, 0.0]", f"rotation = {rotation}",
                  "translation = [0.0, 0.0, 4.0]", ""]
    (session_dir / "calib" / "config.toml").write_text("\n".join(lines))
    _edit_manifest(session_dir, 'calibration = "calib/calibration.toml"', 'calibration = "calib/config.toml"')
    _edit_manifest(session_dir, 'calibration_format = "anipose"', 'calibration_format = "caliscope"')
    _assert_rejected(session_dir, db_prefix, capsys, "config.toml", "[cam_1].rotation", "orthonormal")


@pytest.mark.parametrize("old,new,field", [
    ('population = "control"', 'population = "astronaut"', "subject.population"),
    ('activity = "walk"', 'activity = "juggle"', "trials[0].activity"),
    ('keypoint_set = "BODY25"', 'keypoint_set = "BODY99"', "trials[0].keypoint_set"),
])
def test_unknown_lookup_values(session_dir, db_prefix, capsys, old, new, field):
    _edit_manifest(session_dir, old, new)
    _assert_rejected(session_dir, db_prefix, capsys, "manifest.toml", field, new.split('"')[1])


def test_duplicate_ingest(session_dir, db_prefix, capsys):
    assert main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml")]) == 0
    capsys.readouterr()
    _assert_rejected(session_dir, db_prefix, capsys, "manifest.toml", "session.id", "already in the database")


def test_failure_during_insert_leaves_database_unchanged(session_dir, db_prefix, capsys, monkeypatch):
    from schemas import acquisition as acq

    def broken_insert(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(acq.Keypoints, "insert", broken_insert)
    before = _counts()
    with pytest.raises(RuntimeError, match="disk full"):
        main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml")])
    assert _counts() == before
