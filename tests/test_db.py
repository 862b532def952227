"""Configuration resolution, schema activation, status, transactions and the private server (real MariaDB/MySQL)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline import db
from pipeline.config import is_reachable, load_config


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_environment_variables_win(tmp_path):
    config = load_config({"DJ_HOST": "db.example.org:3310", "DJ_USER": "alice", "DJ_PASS": "secret",
                          "MMC_SCHEMA_PREFIX": "lab", "MMC_DATA_DIR": str(tmp_path)})
    assert (config.host, config.port, config.user, config.password) == ("db.example.org", 3310, "alice", "secret")
    assert config.schema_prefix == "lab" and config.data_dir == tmp_path and config.source == "env"


def test_defaults_without_environment(tmp_path):
    config = load_config({"MMC_DATA_DIR": str(tmp_path)}, probe=False)
    assert (config.host, config.port, config.user, config.schema_prefix) == ("127.0.0.1", 3306, "root", "mmc")


def test_unreachable_default_falls_back_to_recorded_private_server(tmp_path, db_config):
    # pretend the default port is dead and a private server was recorded on the port that works
    (tmp_path / "mysql").mkdir()
    (tmp_path / "mysql" / "server.json").write_text(json.dumps({"pid": 1, "port": db_config.port,
                                                                "datadir": "/nonexistent"}))
    config = load_config({"DJ_PORT": str(_free_port()), "MMC_DATA_DIR": str(tmp_path)})
    assert config.source == "private" and config.port == db_config.port


def test_activate_creates_every_schema_with_lookups(db_connection, db_prefix, activated_schemas):
    from schemas import acquisition as acq

    assert "acquisition" in activated_schemas
    assert acq.schema.database == f"{db_prefix}_acquisition"
    assert {"control", "llpu", "neurologic", "orthopedic", "pediatric", "other"} <= {
        r["population"] for r in acq.Population().to_dicts()}
    assert {"walk", "tug", "fsst", "static", "other"} <= {r["activity"] for r in acq.Activity().to_dicts()}
    sets = {r["keypoint_set"]: r for r in acq.KeypointSet().to_dicts()}
    assert {"MOVI87", "HALPE26", "BODY25", "BODY25B", "COCO17", "BLAZEPOSE33"} <= set(sets)
    assert sets["MOVI87"]["n_joints"] == 87 and sets["BODY25"]["joint_names"][:2] == ["Nose", "Neck"]
    # nothing may be called pid (DataJoint's jobs tables use it)
    for table in (acq.Subject, acq.Session, acq.Trial, acq.Camera, acq.Keypoints, acq.WalkwaySteps):
        assert "pid" not in table.heading.names


def test_status_lists_schemas_and_row_counts(db_test_config, db_connection, db_prefix):
    status = db.server_status(db_test_config, db_connection)
    assert status["version"]
    tables = status["schemas"][f"{db_prefix}_acquisition"]
    assert tables["#population"] >= 6 and tables["#keypoint_set"] >= 6
    assert f"{db_prefix}_acquisition" in db.format_status(status)


def test_open_database_binds_every_schema_under_the_prefix(db_config, db_prefix):
    database = db.open_database(db_prefix, config=db_config)
    assert database.prefix == database.config.schema_prefix == db_prefix
    names = list(database.schemas)
    # dependency order: every schema after the ones its tables reference
    assert names.index("acquisition") < names.index("model") < names.index("fitting") < names.index("gait")
    for name, module in database.schemas.items():
        assert module.schema.database == f"{db_prefix}_{name}"


def test_cli_prefix_travels_as_an_argument_not_through_the_environment(db_prefix, capsys, monkeypatch):
    import os

    from pipeline import cli

    monkeypatch.delenv("MMC_SCHEMA_PREFIX", raising=False)
    assert cli.main(["--prefix", db_prefix, "db", "status"]) == 0
    assert f"{db_prefix}_acquisition" in capsys.readouterr().out
    assert "MMC_SCHEMA_PREFIX" not in os.environ


def test_configured_server_that_does_not_answer_is_an_error_not_a_private_server(tmp_path, monkeypatch, capsys):
    from pipeline import cli

    port = _free_port()
    config = load_config({"DJ_HOST": f"127.0.0.1:{port}", "MMC_DATA_DIR": str(tmp_path)})
    with pytest.raises(db.ConfiguredServerUnreachable, match=f"127.0.0.1:{port} \\(set by DJ_HOST\\)"):
        db.ensure_server(config, verbose=False)
    monkeypatch.setenv("DJ_HOST", f"127.0.0.1:{port}")
    monkeypatch.setenv("MMC_DATA_DIR", str(tmp_path))
    assert cli.main(["db", "up"]) == cli.EXIT_BAD_INPUT
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: no server answers at 127.0.0.1:{port}")
    assert not (tmp_path / "mysql").exists()  # no private server was started


def test_transaction_rolls_back_everything_on_error(db_connection, db_prefix):
    from schemas import acquisition as acq

    before = len(acq.Subject())
    with pytest.raises(RuntimeError):
        with db_connection.transaction:
            acq.Subject.insert1(dict(subject_id="ROLLBACK", population="control"))
            raise RuntimeError("boom")
    assert len(acq.Subject()) == before


def test_blob_round_trip_keeps_float32_and_nan(db_connection, db_prefix):
    from schemas import acquisition as acq

    key = dict(subject_id="BLOB01", session_id="s1", camera_name="cam_1")
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    with db_connection.transaction:
        acq.Subject.insert1(dict(subject_id="BLOB01", population="control"))
        acq.Session.insert1(dict(subject_id="BLOB01", session_id="s1"))
        acq.Camera.insert1(dict(key, image_width=1280, image_height=720, intrinsics=K, distortion=np.zeros(5),
                                rotation=np.zeros(3), translation=np.array([0, 0, 3.0]), calibration_file="x",
                                calibration_format="anipose", calibration_unit="m", unit_inferred=False))
        acq.Trial.insert1(dict(subject_id="BLOB01", session_id="s1", trial_name="t", activity="static",
                               keypoint_set="COCO17", fps=30, n_frames=2, keypoints_file="x",
                               keypoints_format="npz"))
        points = np.array(np.random.default_rng(0).normal(size=(2, 17, 2)), dtype=np.float32)
        points[0, 3] = np.nan
        acq.Keypoints.insert1(dict(key, trial_name="t", points=points, confidence=np.ones((2, 17), np.float32),
                                   frame_index=np.arange(2), n_missing_frames=0))
    row = (acq.Keypoints & key).fetch1()
    assert row["points"].dtype == np.float32 and row["points"].shape == (2, 17, 2)
    np.testing.assert_array_equal(row["points"], points)
    (acq.Subject & {"subject_id": "BLOB01"}).delete(prompt=False)


def test_missing_server_binary_gives_install_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "find_server_binary", lambda: None)
    config = load_config({"DJ_PORT": str(_free_port()), "MMC_DATA_DIR": str(tmp_path)}, probe=False)
    with pytest.raises(db.DatabaseError, match="apt-get install mariadb-server.*datajoint/mysql:8.0"):
        db.ensure_server(config, verbose=False)


@pytest.mark.skipif(db.find_server_binary() is None, reason="no mariadbd/mysqld binary installed")
def test_private_server_starts_on_its_own_port_and_stops(tmp_path):
    import pymysql

    config = load_config({"DJ_PORT": str(_free_port()), "MMC_DATA_DIR": str(tmp_path)}, probe=False)
    private = db.ensure_server(config, verbose=False)
    try:
        assert private.source == "private" and private.port != 3306
        assert (tmp_path / "mysql" / "data" / "mysql").is_dir()
        info = json.loads((tmp_path / "mysql" / "server.json").read_text())
        assert private.password  # generated at initialisation (tests/test_db_users.py checks the rest)
        with pymysql.connect(host="127.0.0.1", port=private.port, user="root", password=private.password) as conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                assert cursor.fetchone()[0]
        # a second call reuses the running server
        assert db.ensure_server(config, verbose=False).port == private.port
    finally:
        assert db.stop_server(config)
    assert not is_reachable("127.0.0.1", info["port"])
    assert not (tmp_path / "mysql" / "server.json").exists()
    shutil.rmtree(tmp_path / "mysql", ignore_errors=True)


@pytest.mark.parametrize("prefix", ["a;drop", "Lab-1", "1lab", "x" * 41, "lab name", ""])
def test_a_prefix_that_cannot_name_a_database_is_a_one_line_error(prefix, db_connection, capsys):
    from pipeline import cli

    before = {row[0] for row in db_connection.query("SHOW DATABASES").fetchall()}
    assert cli.main(["--prefix", prefix, "db", "status"]) == cli.EXIT_BAD_INPUT
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "--prefix" in errors[0] and "lower-case letter" in errors[0]
    assert {row[0] for row in db_connection.query("SHOW DATABASES").fetchall()} == before


def test_commands_print_no_import_noise(tmp_path):
    """No "Failed to import warp" (mujoco-mjx) and no packaging deprecation warnings on an ordinary command."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "--help"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0
    noise = [line for line in (done.stdout + done.stderr).splitlines()
             if "warp" in line.lower() or "Warning" in line]
    assert noise == []
