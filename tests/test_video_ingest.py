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
    assert populate_detections({"subject_id": subject}, params_row=params) == 2
    detections = (video.Detection & {"subject_id": subject}).to_dicts(order_by="camera_name")
    for row in detections:
        assert row["frame_index"].tolist() == [0, 1, 2, 3, 4] and row["n_tracks"] >= 1
        assert row["model_checksum"] == installed_blazepose_models().checksum and row["keypoint_set"] == "BLAZEPOSE33"
    track = (video.Detection.Track & {"subject_id": subject}).to_dicts(limit=1)[0]
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
    video.VideoTrial.insert1(dict(trial_key, n_videos=1))
    video.Video.insert1(dict(trial_key, camera_name="cam_1", path=str(clip), sha256="0" * 64, size_bytes=1,
                             fps=trial["fps"], frame_count=trial["n_frames"], width=size[0], height=size[1]))

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
