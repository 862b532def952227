"""Every source file is recorded with its hash; calibration files labs already have (Pose2Sim section names,
Qualisys QTM, Vicon) go in and reproject like the equivalent OpenCV cameras (real server)."""
from __future__ import annotations

import hashlib
import json
import shutil
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pipeline.cli import main
from pipeline.importers.calibration import (read_anipose_calibration, read_qualisys_calibration,
                                            read_vicon_calibration)

DATA = Path(__file__).parent / "data"
MINI = DATA / "mini_session"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
QCA = SHARED / "pose2sim_demo_multiperson" / "calibration" / "Calib.qca.txt"


def _copy_session(tmp_path: Path) -> tuple[Path, str]:
    subject = f"PV_{uuid.uuid4().hex[:10]}"
    target = tmp_path / "session"
    shutil.copytree(MINI, target)
    manifest = target / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('id = "MINI01"', f'id = "{subject}"'))
    return target, subject


def _project(camera, points: np.ndarray) -> np.ndarray:
    """(N, 3) m -> (N, 2) px through an importer's CameraCalibration, with OpenCV (an independent projector)."""
    uv, _ = cv2.projectPoints(points.astype(np.float64), camera.rvec, camera.tvec, camera.K, camera.dist)
    return uv.reshape(-1, 2)


# ------------------------------------------------------------------------------------------------ provenance
def test_every_source_file_is_recorded_with_its_hash(db_prefix, tmp_path, capsys):
    from schemas import acquisition as acq

    session_dir, subject = _copy_session(tmp_path)
    assert main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml")]) == 0
    rows = (acq.SourceFile & {"subject_id": subject}).to_dicts()
    by_role = {}
    for row in rows:
        by_role.setdefault(row["role"], []).append(row)
        content = Path(row["path"]).read_bytes()
        assert row["size_bytes"] == len(content) and row["sha256"] == hashlib.sha256(content).hexdigest()
    assert {k: len(v) for k, v in by_role.items()} == {"manifest": 1, "calibration": 1, "keypoints": 11,
                                                        "walkway": 1}
    assert sorted(r["file_index"] for r in rows) == list(range(14))
    assert {(r["trial_name"], r["camera_name"]) for r in by_role["keypoints"]} == {("walk01", "cam_1"),
                                                                                  ("walk01", "cam_2")}
    assert by_role["walkway"][0]["trial_name"] == "walk01" and by_role["manifest"][0]["trial_name"] == ""
    # a trial added later gets the next file indices
    assert main(["--prefix", db_prefix, "ingest", "keypoints", "--subject", subject, "--session", "2024-02-28",
                 "--trial", "walk02", "--activity", "walk", "--fps", "30", "--format", "openpose",
                 "--keypoint-set", "BODY25", str(session_dir / "walk01" / "pose")]) == 0
    later = (acq.SourceFile & {"subject_id": subject, "trial_name": "walk02"}).to_dicts()
    assert sorted(r["file_index"] for r in later) == list(range(14, 25))


def test_dry_run_lists_every_file_and_marks_those_outside_the_folder(db_prefix, tmp_path, capsys):
    session_dir, subject = _copy_session(tmp_path)
    outside = tmp_path / "elsewhere" / "steps.csv"
    outside.parent.mkdir()
    shutil.move(session_dir / "walk01" / "steps.csv", outside)
    manifest = session_dir / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('walkway = "walk01/steps.csv"',
                                                     'walkway = "../elsewhere/steps.csv"'))
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest), "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = [line for line in out.splitlines() if "sha256" in line]
    assert len(listed) == 14 and "files read (14)" in out
    marked = [line for line in listed if "outside the manifest's folder" in line]
    assert len(marked) == 1 and str(outside) in marked[0]
    assert "SourceFile 14" in out


# ------------------------------------------------------------------------------------------------ Pose2Sim TOML
def test_pose2sim_section_names_are_accepted(db_prefix, tmp_path, capsys):
    from schemas import acquisition as acq

    session_dir, subject = _copy_session(tmp_path)
    calibration = session_dir / "calib" / "calibration.toml"
    text = calibration.read_text()
    text = text.replace('[cam_0]\nname = "cam01"', '[int_cam01_img]\nname = "int_cam01_img"')
    text = text.replace('[cam_1]\nname = "cam02"', "[cam_02]")  # no name: the section name is the camera
    calibration.write_text(text)
    assert main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml")]) == 0
    assert set((acq.Camera & {"subject_id": subject}).to_arrays("camera_name")) == {"cam_1", "cam_2"}


# ------------------------------------------------------------------------------------------------ Vicon
def test_vicon_xcp_reprojects_like_the_anipose_calibration_it_encodes():
    vicon = read_vicon_calibration(DATA / "vicon" / "mini_session.xcp")
    anipose = read_anipose_calibration(MINI / "calib" / "calibration.toml")
    assert [c.name for c in vicon.cameras] == ["1", "2"] and vicon.unit == "mm"
    points = np.random.default_rng(0).uniform([-1, -1, 0], [1, 1, 1.8], (50, 3))
    for a, b in zip(vicon.cameras, anipose.cameras):
        assert a.image_size == b.image_size
        np.testing.assert_allclose(_project(a, points), _project(b, points), atol=1e-3)


def test_vicon_session_ingests(db_prefix, tmp_path, capsys):
    from schemas import acquisition as acq

    session_dir, subject = _copy_session(tmp_path)
    shutil.copy(DATA / "vicon" / "mini_session.xcp", session_dir / "calib" / "rig.xcp")
    manifest = session_dir / "manifest.toml"
    manifest.write_text(manifest.read_text().replace('calibration = "calib/calibration.toml"',
                                                     'calibration = "calib/rig.xcp"')
                        .replace('calibration_format = "anipose"', 'calibration_format = "vicon"'))
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0, capsys.readouterr().err
    rows = (acq.Camera & {"subject_id": subject}).to_dicts()
    assert {r["camera_name"] for r in rows} == {"cam_1", "cam_2"}
    assert {r["calibration_format"] for r in rows} == {"vicon"}


# ------------------------------------------------------------------------------------------------ Qualisys
needs_qca = pytest.mark.skipif(not QCA.is_file(), reason=f"shared Pose2Sim demo calibration not found at {QCA}")


def _pose2sim_conversion(path: Path) -> list[dict]:
    """The Qualisys file converted as Pose2Sim's ``calib_qca_fun`` does (column-order transform, camera→world
    transposed, then rotated by π about the camera x axis; position mm → m), written out independently of our
    reader; distortion kept raw (the physical values)."""
    cameras = []
    for element in ElementTree.parse(path).getroot().iter("camera"):
        transform, intrinsic, fov = element.find("transform"), element.find("intrinsic"), element.find("fov_video")
        r = np.array([float(transform.get(f"r{i}{j}")) for i in (1, 2, 3) for j in (1, 2, 3)]).reshape(3, 3).T
        position = np.array([float(transform.get(k)) for k in "xyz"]) / 1000
        R_world_to_camera, t = r.T, -r.T @ position
        flip = np.diag([1.0, -1.0, -1.0])
        R, t = flip @ R_world_to_camera, flip @ t
        value = lambda key: float(intrinsic.get(key))  # noqa: E731
        K = np.array([[value("focalLengthU") / 64, 0, value("centerPointU") / 64 - float(fov.get("left"))],
                      [0, value("focalLengthV") / 64, value("centerPointV") / 64 - float(fov.get("top"))],
                      [0, 0, 1]])
        dist = [value("radialDistortion1"), value("radialDistortion2"), value("tangentalDistortion1"),
                value("tangentalDistortion2"), value("radialDistortion3")]
        size = [int(fov.get("right")) - int(fov.get("left")) + 1, int(fov.get("bottom")) - int(fov.get("top")) + 1]
        cameras.append(dict(name=element.get("serial"), size=size, K=K, dist=np.array(dist),
                            rvec=Rotation.from_matrix(R).as_rotvec(), tvec=t))
    return cameras


@needs_qca
def test_qualisys_reader_matches_the_pose2sim_conversion_to_subpixel():
    calibration = read_qualisys_calibration(QCA)
    expected = _pose2sim_conversion(QCA)
    assert [c.name for c in calibration.cameras] == ["cam01", "cam02", "cam03", "cam04"]
    points = np.random.default_rng(1).uniform([-1, -1, 0], [1, 1, 1.8], (100, 3))  # the capture volume, m
    for camera, reference in zip(calibration.cameras, expected):
        assert camera.image_size == (1088, 1920) == tuple(reference["size"])
        uv = _project(camera, points)
        ref, _ = cv2.projectPoints(points, reference["rvec"], reference["tvec"], reference["K"], reference["dist"])
        assert np.max(np.abs(uv - ref.reshape(-1, 2))) < 0.1
        # physically sensible: the lab's origin is in front of every camera and inside its image, and up in the
        # lab (Z) is up in the portrait image
        depth = (Rotation.from_rotvec(camera.rvec).as_matrix() @ points.T).T + camera.tvec
        assert np.all(depth[:, 2] > 1.0)
        origin, head = _project(camera, np.array([[0.0, 0, 0], [0, 0, 1.8]]))
        assert 0 < origin[0] < 1088 and 0 < origin[1] < 1920 and head[1] < origin[1] - 500


@needs_qca
def test_qualisys_session_ingests_and_reprojects(db_prefix, tmp_path, capsys):
    """Keypoints made by projecting a standing figure through the Pose2Sim conversion are ingested with the
    Qualisys file; the stored cameras reproject the figure onto them to sub-pixel."""
    from schemas import acquisition as acq

    subject = f"QTM_{uuid.uuid4().hex[:8]}"
    session_dir = tmp_path / "qtm"
    (session_dir / "calib").mkdir(parents=True)
    shutil.copy(QCA, session_dir / "calib" / "Calib.qca.txt")
    rng = np.random.default_rng(2)
    figure = np.column_stack([rng.uniform(-0.25, 0.25, 25), rng.uniform(-0.15, 0.15, 25), rng.uniform(0.05, 1.75, 25)])
    for camera in _pose2sim_conversion(QCA):
        folder = session_dir / "pose" / f"{camera['name']}_json"
        folder.mkdir(parents=True)
        for frame in range(3):
            moved = figure + [0.01 * frame, 0, 0]
            uv, _ = cv2.projectPoints(moved, camera["rvec"], camera["tvec"], camera["K"], camera["dist"])
            keypoints = np.column_stack([uv.reshape(-1, 2), np.full(25, 0.9)]).ravel().tolist()
            (folder / f"trial_{frame:012d}_keypoints.json").write_text(
                json.dumps({"people": [{"pose_keypoints_2d": keypoints}]}))
    (session_dir / "manifest.toml").write_text(f"""
[subject]
id = "{subject}"
population = "control"
[session]
id = "demo"
calibration = "calib/Calib.qca.txt"
calibration_format = "qualisys"
[[trials]]
name = "t1"
activity = "walk"
fps = 60
keypoints = "pose"
keypoints_format = "openpose"
keypoint_set = "BODY25"
""")
    assert main(["--prefix", db_prefix, "ingest", "session", str(session_dir / "manifest.toml")]) == 0, \
        capsys.readouterr().err
    key = {"subject_id": subject}
    cameras = {r["camera_name"]: r for r in (acq.Camera & key).to_dicts()}
    assert set(cameras) == {"cam_1", "cam_2", "cam_3", "cam_4"}
    for row in (acq.Keypoints & key).to_dicts():
        camera = cameras[row["camera_name"]]
        assert camera["calibration_format"] == "qualisys" and camera["calibration_unit"] == "mm"
        for frame in range(3):
            uv, _ = cv2.projectPoints(figure + [0.01 * frame, 0, 0], np.asarray(camera["rotation"]),
                                      np.asarray(camera["translation"]), np.asarray(camera["intrinsics"]),
                                      np.asarray(camera["distortion"]))
            assert np.max(np.abs(uv.reshape(-1, 2) - row["points"][frame])) < 0.01
