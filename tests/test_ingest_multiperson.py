"""Raw multi-person OpenPose folders: the subject is one 3D person in every camera, chosen by triangulation, with
an explicit ``person = N`` override (real server)."""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import cv2
import numpy as np

from pipeline.cli import EXIT_BAD_INPUT, main
from pipeline.importers.calibration import read_anipose_calibration

MINI = Path(__file__).parent / "data" / "mini_session"
J = 25


def _two_people_session(tmp_path: Path) -> tuple[Path, str, dict[str, np.ndarray]]:
    """Two participants A and B, 1.2 m apart. Camera 1 sees A more confidently, camera 2 sees B more confidently;
    summed over the cameras A is the more confident. Tracking each view alone pairs A in camera 1 with B in
    camera 2."""
    subject = f"MP_{uuid.uuid4().hex[:10]}"
    session_dir = tmp_path / "multi"
    shutil.copytree(MINI, session_dir)
    manifest = session_dir / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('id = "MINI01"', f'id = "{subject}"'))
    pose = session_dir / "walk01" / "pose"
    shutil.rmtree(pose)
    rng = np.random.default_rng(3)
    bodies = {"A": rng.normal(0, 0.2, (J, 3)) + [0.0, -0.6, 1.0], "B": rng.normal(0, 0.2, (J, 3)) + [0.0, 0.6, 1.0]}
    confidence = {"cam01": {"A": 0.9, "B": 0.5}, "cam02": {"A": 0.6, "B": 0.7}}
    calibration = read_anipose_calibration(MINI / "calib" / "calibration.toml")
    for camera in calibration.cameras:
        folder = pose / f"{camera.name}_json"
        folder.mkdir(parents=True)
        for frame in range(5):
            people = []
            for label in ("B", "A"):
                X = bodies[label] + [0.05 * frame, 0, 0]
                uv, _ = cv2.projectPoints(X, camera.rvec, camera.tvec, camera.K, camera.dist)
                c = np.full(J, confidence[camera.name][label])
                people.append({"pose_keypoints_2d": np.column_stack([uv.reshape(J, 2), c]).ravel().tolist()})
            (folder / f"walk01_{frame:012d}_keypoints.json").write_text(json.dumps({"people": people}))
    expected = {}
    for label, body in bodies.items():
        expected[label] = np.stack([
            np.stack([cv2.projectPoints(body + [0.05 * f, 0, 0], cam.rvec, cam.tvec, cam.K, cam.dist)[0].reshape(J, 2)
                      for f in range(5)]) for cam in calibration.cameras])
    return session_dir, subject, expected


def _stored_points(subject: str) -> np.ndarray:
    from schemas import acquisition as acq

    rows = {r["camera_name"]: r["points"] for r in (acq.Keypoints & {"subject_id": subject}).to_dicts()}
    return np.stack([rows["cam_1"], rows["cam_2"]])


def test_the_same_person_is_chosen_in_every_camera(db_prefix, tmp_path, capsys):
    session_dir, subject, expected = _two_people_session(tmp_path)
    assert main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml")]) == 0
    out = capsys.readouterr().out
    assert "subject = person 0 of 2 seen consistently across cameras at frame 0" in out
    np.testing.assert_allclose(_stored_points(subject), expected["A"], atol=0.01)


def test_person_override_chooses_the_other_participant(db_prefix, tmp_path, capsys):
    session_dir, subject, expected = _two_people_session(tmp_path)
    manifest = session_dir / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('detector = "openpose 1.7.0"',
                                                     'detector = "openpose 1.7.0"\nperson = 1'))
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0
    assert "person 1 of 2" in capsys.readouterr().out
    np.testing.assert_allclose(_stored_points(subject), expected["B"], atol=0.01)


def test_person_out_of_range_is_one_line(db_prefix, tmp_path, capsys):
    session_dir, subject, _ = _two_people_session(tmp_path)
    manifest = session_dir / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('detector = "openpose 1.7.0"',
                                                     'detector = "openpose 1.7.0"\nperson = 5'))
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trials[0].person" in err and "0..1" in err, err
