"""From the lab's videos: a manifest naming videos, the ``Video`` rows, detection as a computed table, and the
subject's keypoints from the detections (real server; the Pose2Sim multi-person demo's videos)."""
from __future__ import annotations

import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from tests.conftest import SHARED_DATA

DEMO = SHARED_DATA / "pose2sim_demo_multiperson"
pytestmark = [pytest.mark.db,
              pytest.mark.skipif(not (DEMO / "videos" / "cam01.mp4").is_file(),
                                 reason=f"{DEMO} (the Pose2Sim multi-person demo) is not present")]


def _manifest(tmp_path: Path, videos: dict[str, Path], fps: float = 60.0) -> tuple[Path, str]:
    subject = f"VID_{uuid.uuid4().hex[:10]}"
    table = ", ".join(f'{name} = "{path}"' for name, path in videos.items())
    path = tmp_path / "manifest.toml"
    path.write_text(f"""[subject]
id = "{subject}"
population = "control"
[session]
id = "2024-05-01"
calibration = "{DEMO / 'calibration' / 'Calib.qca.txt'}"
calibration_format = "qualisys"
[[trials]]
name = "walk01"
activity = "walk"
fps = {fps}
videos = {{ {table} }}
""")
    return path, subject


def _short_video(path: Path, n_frames: int, fps: float, size=(1088, 1920)) -> Path:
    """A tiny synthetic MP4 of ``n_frames`` grey frames, ``size`` (w, h) px."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for k in range(n_frames):
        writer.write(np.full((size[1], size[0], 3), 40 * k % 255, np.uint8))
    writer.release()
    return path


def test_videos_become_video_rows_and_source_files(db_prefix, tmp_path, capsys):
    from schemas import acquisition, video

    manifest, subject = _manifest(tmp_path, {c: DEMO / "videos" / f"{c}.mp4" for c in ("cam01", "cam02")})
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "video cam_1: 100 frames at 60 fps, 1088×1920 px" in out and "warning" not in out, out
    rows = (video.Video & {"subject_id": subject}).to_dicts(order_by="camera_name")
    assert [r["camera_name"] for r in rows] == ["cam_1", "cam_2"]
    for row in rows:
        assert (row["fps"], row["frame_count"], row["width"], row["height"]) == (60.0, 100, 1088, 1920)
        assert len(row["sha256"]) == 64 and row["timestamps"].shape == (100,)
        np.testing.assert_allclose(np.diff(row["timestamps"]), 1 / 60, atol=1e-3)
    trial = (acquisition.Trial & {"subject_id": subject}).fetch1()
    assert (trial["keypoints_format"], trial["keypoint_set"], trial["n_frames"]) == ("video", "BLAZEPOSE33", 100)
    files = (acquisition.SourceFile & {"subject_id": subject, "role": "video"}).to_dicts(order_by="file_index")
    assert [(f["camera_name"], f["sha256"]) for f in files] == [(r["camera_name"], r["sha256"]) for r in rows]
    assert (video.VideoTrial & {"subject_id": subject}).fetch1("consistency_warning") == ""


def test_frame_count_and_rate_disagreement_is_a_stored_warning(db_prefix, tmp_path, capsys):
    from schemas import video

    short = _short_video(tmp_path / "cam02.mp4", 5, 30.0)
    manifest, subject = _manifest(tmp_path, {"cam01": DEMO / "videos" / "cam01.mp4", "cam02": short})
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0
    out = capsys.readouterr().out
    warning = (video.VideoTrial & {"subject_id": subject}).fetch1("consistency_warning")
    assert "frame counts differ across cameras (cam_1 100, cam_2 5)" in warning, warning
    assert "frame rates differ from the trial's 60 fps" in warning and "cam_2 30" in warning
    assert f"warning: {warning}" in out


def test_detection_table_and_keypoints_for_the_chosen_person(db_prefix, db_connection, tmp_path, capsys):
    from pipeline.detection import ModelFilesMissing, installed_blazepose_models
    from pipeline.videos import blazepose_params_row, keypoints_from_detections, populate_detections
    from schemas import acquisition, video

    try:
        installed_blazepose_models()
    except ModelFilesMissing as error:
        pytest.skip(f"BlazePose model files not installed: {error}")
    manifest, subject = _manifest(tmp_path, {c: DEMO / "videos" / f"{c}.mp4" for c in ("cam01", "cam02")})
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0
    params = blazepose_params_row("blazepose_first5", {"stop": 5})
    files = (video.Video & {"subject_id": subject}).proj("sha256")
    already = len(video.Detection & files & {"detector_params": "blazepose_first5"})  # another test's, same bytes
    assert populate_detections({"subject_id": subject}, params_row=params) == 2 - already
    detections = (files * video.Detection & {"detector_params": "blazepose_first5"}).to_dicts(order_by="camera_name")
    assert len(detections) == 2
    for row in detections:
        assert row["frame_index"].tolist() == [0, 1, 2, 3, 4] and row["n_tracks"] >= 1
        assert row["model_checksum"] == installed_blazepose_models().checksum and row["keypoint_set"] == "BLAZEPOSE33"
        assert (row["detector"], row["detector_version"]) == (params["detector"], params["detector_version"])
    track = (video.Detection.Track & detections[0]).to_dicts(limit=1)[0]
    assert track["keypoints"].shape == (5, 33, 2) and track["confidence"].shape == (5, 33)

    trial_key = {"subject_id": subject, "session_id": "2024-05-01", "trial_name": "walk01"}
    plan = keypoints_from_detections(trial_key, "blazepose_first5", db_connection)
    assert "seen consistently across cameras" in plan.subject["explanation"]
    stored = (acquisition.Keypoints & trial_key).to_dicts(order_by="camera_name")
    assert [k["camera_name"] for k in stored] == ["cam_1", "cam_2"]
    for k in stored:
        assert k["points"].shape == (100, 33, 2) and k["confidence"].shape == (100, 33)
        assert np.any(k["confidence"][:5] > 0) and not np.any(k["confidence"][5:] > 0)
        assert k["n_missing_frames"] >= 95
    views = (video.DetectedSubject.View & trial_key).to_dicts()
    assert len(views) == 2 and all(v["n_frames_kept"] >= 1 for v in views)


@pytest.mark.slow
def test_render_command_writes_body_and_overlay_videos(db_prefix, tmp_path, capsys):
    """A real tiny fit (``mmc populate BilevelFit``), one camera with a video: ``mmc render`` writes
    the body MP4 and one overlay per camera, the filmed camera's over its frames."""
    from pipeline.rendering import read_frames, working_gl_backend
    from schemas import acquisition, fitting, model, video
    from tests.fit_fixtures import TEST_PARAMS_NAME, add_test_params, insert_synthetic_session, tiny_session

    try:
        working_gl_backend()
    except RuntimeError as error:
        pytest.skip(str(error))
    model.ensure_default_model()
    add_test_params()
    session_key = insert_synthetic_session(tiny_session(seed=21, n_frames=12, n_cameras=2),
                                           subject_id=f"R_{uuid.uuid4().hex[:10]}")
    fitting.FitTask.insert1(dict(session_key, base_model="body40", params_name=TEST_PARAMS_NAME))
    assert main(["--prefix", db_prefix, "populate", "BilevelFit", "--restrict",
                 f"subject_id={session_key['subject_id']}"]) == 0
    assert fitting.BilevelFit & session_key

    trial = (acquisition.Trial & session_key).to_dicts(order_by="trial_name", limit=1)[0]
    camera = (acquisition.Camera & dict(session_key, camera_name="cam_1")).fetch1()
    size = (int(camera["image_width"]), int(camera["image_height"]))
    clip = _short_video(tmp_path / "cam_1.mp4", trial["n_frames"], trial["fps"], size)
    trial_key = {k: trial[k] for k in ("subject_id", "session_id", "trial_name")}
    from pipeline.videos import insert_trial_videos

    insert_trial_videos(dict(trial_key, n_videos=1), [dict(trial_key, camera_name="cam_1", path=str(clip),
                                                           sha256="0" * 64, size_bytes=1, fps=trial["fps"],
                                                           frame_count=trial["n_frames"], width=size[0],
                                                           height=size[1])])

    out = tmp_path / "render"
    assert main(["--prefix", db_prefix, "render", str(out), "--restrict", f"subject_id={trial['subject_id']}",
                 "--restrict", f"trial_name={trial['trial_name']}"]) == 0
    written = sorted(p.name for p in out.glob("*.mp4"))
    stem = f"{trial['subject_id']}_{trial['session_id']}_{trial['trial_name']}_{TEST_PARAMS_NAME}"
    assert written == [f"{stem}_body.mp4", f"{stem}_cam_1.mp4", f"{stem}_cam_2.mp4"], written
    over_video = list(read_frames(out / f"{stem}_cam_1.mp4"))
    assert len(over_video) == trial["n_frames"]
    assert over_video[0].shape[:2] == (size[1] + size[1] % 2, size[0] + size[0] % 2)
    assert str(out / f"{stem}_body.mp4") in capsys.readouterr().out


def _two_participants_manifest(tmp_path: Path, cameras=("cam01", "cam02")) -> tuple[Path, list[str]]:
    """One manifest, two participants filmed together: the walker nearest the walkway centre (-1, 0) m, the
    other nearest where she stands (0.2, -0.4) m (positions triangulated from the demo's detections)."""
    subjects = [f"VA_{uuid.uuid4().hex[:10]}", f"VB_{uuid.uuid4().hex[:10]}"]
    table = ", ".join(f'{c} = "{DEMO / "videos" / f"{c}.mp4"}"' for c in cameras)
    path = tmp_path / "two.toml"
    path.write_text(f"""[[subjects]]
id = "{subjects[0]}"
population = "control"
mass_kg = 70.0
near_m = [-1.0, 0.0]
[[subjects]]
id = "{subjects[1]}"
population = "control"
mass_kg = 63.5
near_m = [0.2, -0.4]
[session]
id = "2024-05-02"
calibration = "{DEMO / 'calibration' / 'Calib.qca.txt'}"
calibration_format = "qualisys"
[[trials]]
name = "walk01"
activity = "walk"
fps = 60
videos = {{ {table} }}
""")
    return path, subjects


def test_two_participants_become_two_subjects_detected_once_per_file(db_prefix, db_connection, tmp_path, capsys):
    """The video step of ``mmc populate`` on a two-participant manifest: each video file is detected once
    (keyed by its checksum) for both subjects, each subject gets the keypoints of their own participant, and
    the rule and tracks are recorded."""
    from pipeline.detection import ModelFilesMissing, installed_blazepose_models
    from pipeline.videos import blazepose_params_row, detect_and_choose_subjects, populate_detections
    from schemas import acquisition, video

    try:
        installed_blazepose_models()
    except ModelFilesMissing as error:
        pytest.skip(f"BlazePose model files not installed: {error}")
    manifest, subjects = _two_participants_manifest(tmp_path)
    assert main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert all(f"inserted session {s}/2024-05-02" in out for s in subjects), out
    files = (video.Video & [{"subject_id": s} for s in subjects]).proj("sha256")
    assert len(files) == 4 and len(video.VideoFile & files) == 2         # 2 subjects × 2 cameras, 2 files

    params = blazepose_params_row("blazepose_first5", {"stop": 5})
    already = len(video.Detection & files & {"detector_params": "blazepose_first5"})
    report = detect_and_choose_subjects(([{"subject_id": s} for s in subjects],), db_connection, params_row=params)
    # other tests of this database may have chosen one of these people from the same files already: only a
    # failure between these two subjects would be wrong here
    between_them = [line for line in report.failures if all(s in line for s in subjects)]
    assert report.detections_made == 2 - already and not between_them and len(report.trials) == 2, report
    from pipeline.videos import subjects_with_the_same_tracks

    trial_a = {"subject_id": subjects[0], "session_id": "2024-05-02", "trial_name": "walk01"}
    assert not [other for other in subjects_with_the_same_tracks(trial_a, "blazepose_first5")
                if other.startswith(f"{subjects[1]}/")]

    hips = {}
    for subject, point in zip(subjects, ([-1.0, 0.0], [0.2, -0.4])):
        key = {"subject_id": subject}
        chosen = (video.DetectedSubject & key).fetch1()
        assert chosen["selection"] == {"rule": "near", "point_m": point}
        assert "chosen as the person nearest" in chosen["explanation"]
        views = (video.DetectedSubject.View & key).to_dicts(order_by="camera_name")
        assert all(v["seed_track"] is not None and v["main_track"] == v["seed_track"] for v in views)
        hips[subject] = ({v["camera_name"]: v["main_track"] for v in views},
                         {k["camera_name"]: np.nanmean(k["points"][:5, [23, 24]], axis=(0, 1))
                          for k in (acquisition.Keypoints & key).to_dicts()})
    (tracks_a, hips_a), (tracks_b, hips_b) = hips.values()
    for camera in ("cam_1", "cam_2"):
        assert tracks_a[camera] != tracks_b[camera]                        # two different people in each view
        assert np.linalg.norm(hips_a[camera] - hips_b[camera]) > 100       # px

    (tmp_path / "again").mkdir()
    again, new_subjects = _two_participants_manifest(tmp_path / "again")      # the same files, new subjects
    assert main(["--prefix", db_prefix, "ingest", "session", str(again)]) == 0
    assert populate_detections([{"subject_id": s} for s in new_subjects], params_row=params) == 0  # not twice
    report = detect_and_choose_subjects(([{"subject_id": s} for s in new_subjects],), db_connection,
                                        params_row=params)
    assert report.detections_made == 0 and len(report.trials) == 2
    # the new walker is the first walker again: said, not silently stored as a distinct participant
    assert any(f"the same person as {subjects[0]}/2024-05-02/walk01" in line for line in report.failures), report


def test_subject_rules_are_checked(tmp_path):
    from pipeline.importers.errors import IngestError
    from pipeline.manifest import ingest_sessions

    manifest, _ = _two_participants_manifest(tmp_path)
    text = manifest.read_text()
    cases = {
        "near_m = [0.2, -0.4]\n": ("subjects[1]", "a subject rule (person, near_m, track)"),
        "near_m = [0.2, -0.4]": ("subjects[1].track", "one subject rule, got near_m and track"),
        "near_m = [-1.0, 0.0]\n": ("subjects[0]", "a subject rule"),
    }
    replacements = {"near_m = [0.2, -0.4]\n": "", "near_m = [-1.0, 0.0]\n": "",
                    "near_m = [0.2, -0.4]": 'near_m = [0.2, -0.4]\ntrack = { camera = "cam01", id = 0 }'}
    for old, (field, expected) in cases.items():
        manifest.write_text(text.replace(old, replacements[old], 1))
        with pytest.raises(IngestError) as error:
            ingest_sessions(manifest, dry_run=True)
        assert f"{field}:" in str(error.value) and expected in str(error.value), str(error.value)
    manifest.write_text(text.replace("near_m = [0.2, -0.4]", "near_m = [-1.0, 0.0]"))
    with pytest.raises(IngestError, match="a rule other subjects do not have"):
        ingest_sessions(manifest, dry_run=True)
    manifest.write_text(text.replace("near_m = [0.2, -0.4]", 'track = { camera = "cam07", id = 0 }'))
    with pytest.raises(IngestError, match=r"subjects\[1\].track.camera: a camera with a video \(cam_1, cam_2\)"):
        ingest_sessions(manifest, dry_run=True)
