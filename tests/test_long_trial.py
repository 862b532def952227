"""A long trial goes in whole: Keypoints rows are inserted in statements under the server's ``max_allowed_packet``
(real server, through ``mmc ingest session``); a camera row that alone exceeds it goes in ``Keypoints.Chunk`` parts."""
from __future__ import annotations

import uuid

import numpy as np
import pytest

from compute.markersets import keypoint_names
from pipeline.cli import main
from tests.test_time_axis import CAMERAS, random_keypoints, stored_trial, write_npz_session

BODY25 = keypoint_names("BODY25")
FPS = 60.0
SECONDS = 360.0  # 6 minutes: 21,600 frames


@pytest.fixture
def subject_id() -> str:
    return f"LT_{uuid.uuid4().hex[:8]}"


def _server_packet(db_connection) -> int:
    return int(db_connection.query("SELECT @@max_allowed_packet").fetchone()[0])


def test_six_minute_four_camera_trial_round_trips_exactly(tmp_path, db_prefix, db_connection, subject_id, capsys):
    n_frames = int(FPS * SECONDS)
    per_camera = {camera: (*random_keypoints(n_frames, seed=c, n_joints=len(BODY25)),
                           np.arange(n_frames, dtype=np.int64)) for c, camera in enumerate(CAMERAS)}
    raw_bytes = sum(p.nbytes + c.nbytes + f.nbytes for p, c, f in per_camera.values())
    assert raw_bytes > _server_packet(db_connection)  # all cameras in one INSERT would not fit
    manifest = write_npz_session(tmp_path / "session", subject_id, per_camera, fps=FPS, keypoint_set="BODY25")
    code = main(["--prefix", db_prefix, "ingest", "session", str(manifest)])
    assert code == 0, capsys.readouterr().err

    trial, keypoints = stored_trial(subject_id)
    assert trial["n_frames"] == n_frames and sorted(keypoints) == list(CAMERAS)
    for camera, (points, confidence, frame_index) in per_camera.items():
        row = keypoints[camera]
        np.testing.assert_array_equal(row["points"], points)
        np.testing.assert_array_equal(row["confidence"], confidence)
        np.testing.assert_array_equal(row["frame_index"], frame_index)
        assert row["points"].dtype == np.float32 and row["n_missing_frames"] == 0


def test_a_camera_row_above_the_packet_limit_is_stored_in_chunks_and_read_back_whole(
        tmp_path, db_prefix, subject_id, capsys, monkeypatch):
    """A server whose limit (1 MiB here) is below one camera's row, as 16 MB is below an hours-long trial: the
    camera goes in ``Keypoints.Chunk`` parts of consecutive frames and the read side joins them exactly."""
    from pipeline import manifest as manifest_module
    from schemas import acquisition as acq
    from schemas.reads.observations import trial_keypoints

    monkeypatch.setattr(manifest_module, "max_packet_bytes", lambda connection: 2**20)
    n_frames = 6000  # 6000 x 25 x 3 float32 = 1.8 MB per camera
    per_camera = {camera: (*random_keypoints(n_frames, seed=c, n_joints=len(BODY25)),
                           np.arange(n_frames, dtype=np.int64)) for c, camera in enumerate(CAMERAS[:2])}
    path = write_npz_session(tmp_path / "session", subject_id, per_camera, fps=FPS, keypoint_set="BODY25")
    assert main(["--prefix", db_prefix, "ingest", "session", str(path)]) == 0, capsys.readouterr().err

    trial, rows = stored_trial(subject_id)
    assert all(row["points"] is None for row in rows.values())
    assert len(acq.Keypoints.Chunk & {"subject_id": subject_id}) >= 2 * 2
    names = sorted(per_camera)
    points, confidence = trial_keypoints(trial, names, n_frames, len(BODY25))
    for c, camera in enumerate(names):
        np.testing.assert_array_equal(points[c], per_camera[camera][0])
        np.testing.assert_array_equal(confidence[c], per_camera[camera][1])
        np.testing.assert_array_equal(rows[camera]["frame_index"], per_camera[camera][2])


def test_a_frame_larger_than_the_packet_limit_is_a_one_line_error(tmp_path, db_prefix, subject_id, capsys,
                                                                  monkeypatch):
    """A limit too small for even the frame indices: refused before anything is written, one line."""
    from pipeline import manifest as manifest_module
    from schemas import acquisition as acq

    monkeypatch.setattr(manifest_module, "max_packet_bytes", lambda connection: 2**10)
    n_frames = 6000
    per_camera = {camera: (*random_keypoints(n_frames, seed=c, n_joints=len(BODY25)),
                           np.arange(n_frames, dtype=np.int64)) for c, camera in enumerate(CAMERAS[:2])}
    path = write_npz_session(tmp_path / "session", subject_id, per_camera, fps=FPS, keypoint_set="BODY25")
    tables = (acq.Subject, acq.Session, acq.Camera, acq.Trial, acq.Keypoints, acq.Keypoints.Chunk)
    before = {t.__name__: len(t()) for t in tables}
    assert main(["--prefix", db_prefix, "ingest", "session", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "keypoints" in err and "max_allowed_packet" in err, err
    assert {t.__name__: len(t()) for t in tables} == before


def test_rows_are_grouped_under_the_limit():
    from pipeline.manifest import encoded_row_bytes, keypoint_batches

    class Trial:  # the two attributes keypoint_batches reads of a TrialPlan
        trial = {"trial_name": "walk01"}
        keypoints = [dict(camera_name=f"cam_{c}", source="x", points=random_keypoints(2000, c, 25)[0],
                          confidence=random_keypoints(2000, c, 25)[1], frame_index=np.arange(2000))
                     for c in range(5)]

    sizes = [encoded_row_bytes(row) for row in Trial.keypoints]
    limit = int(2.5 * max(sizes))
    (statements,) = keypoint_batches([Trial()], limit)
    assert [(table, len(rows)) for table, rows in statements] == [("Keypoints", 2), ("Keypoints", 2),
                                                                   ("Keypoints", 1)]
    assert sum((rows for _, rows in statements), []) == Trial.keypoints
