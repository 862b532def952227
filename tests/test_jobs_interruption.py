"""Jobs survive their workers: stale reservations are released, interrupted fits go back to the queue.

The rules (``pipeline.jobs.stale_reason``) are checked without a database; the rest runs real ``mmc worker``
processes (``python -m pipeline.cli --prefix <test prefix> worker``) on tiny synthetic sessions, each restricted
to its own subject, and interrupts them the way a user, SLURM or the kernel would: ``kill -9`` while a fit runs,
SIGTERM (preemption), SIGINT (Ctrl-C), and a session deleted under a running fit.
"""
from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.jobs import MISSED_BEATS, Reservation, stale_reason

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.datetime(2026, 1, 1, 12, 0, 0)


def _reservation(host: str, pid: int = 4242, reserved_s_ago: float = 3600.0,
                 beat_s_ago: float | None = None, interval_s: float = 10.0) -> Reservation:
    beat = None if beat_s_ago is None else NOW - datetime.timedelta(seconds=beat_s_ago)
    return Reservation(table="BilevelFit", key={"subject_id": "S"}, host=host, pid=pid,
                       reserved_time=NOW - datetime.timedelta(seconds=reserved_s_ago), last_beat=beat,
                       interval_s=None if beat is None else interval_s)


def test_reservation_of_a_dead_process_on_this_host_is_stale_at_once():
    fresh = _reservation("here", reserved_s_ago=0.1, beat_s_ago=0.1)
    assert "is gone" in stale_reason(fresh, now=NOW, host="here", alive=lambda pid: False)
    assert stale_reason(fresh, now=NOW, host="here", alive=lambda pid: True) is None
    # a long fit on this host is never stale while its process lives, heartbeat or not
    assert stale_reason(_reservation("here"), now=NOW, host="here", alive=lambda pid: True) is None


def test_reservation_from_another_host_is_stale_after_missed_heartbeats():
    never_alive = lambda pid: False  # noqa: E731  (pids of other hosts are never looked up)
    timeout_s = MISSED_BEATS * 10.0
    beating = _reservation("node7", beat_s_ago=timeout_s - 1)
    assert stale_reason(beating, now=NOW, host="here", alive=never_alive) is None
    silent = _reservation("node7", beat_s_ago=timeout_s + 1)
    assert "no heartbeat" in stale_reason(silent, now=NOW, host="here", alive=never_alive)
    # without any heartbeat row, the reservation's own age counts, against the default interval
    assert stale_reason(_reservation("node7", reserved_s_ago=5), now=NOW, host="here", alive=never_alive) is None
    assert stale_reason(_reservation("node7"), now=NOW, host="here", alive=never_alive) is not None


# ------------------------------------------------------------------------------------------ with a database
@pytest.fixture(scope="module")
def fit_key_for(activated_schemas):
    """A function: subject id -> FitTask key of a fresh tiny session of that subject (tiny parameters)."""
    from schemas import fitting, model
    from tests.fit_fixtures import TEST_PARAMS_NAME, add_test_params, insert_synthetic_session, tiny_session

    model.ensure_default_model()
    add_test_params()

    def make(subject_id: str) -> dict:
        session_key = insert_synthetic_session(tiny_session(seed=7), subject_id=subject_id)
        key = dict(session_key, base_model="body40", params_name=TEST_PARAMS_NAME)
        fitting.FitTask.insert1(key)
        return key

    return make


@pytest.mark.db
def test_release_stale_frees_silent_remote_reservations_only(activated_schemas):
    from pipeline.jobs import release_stale, server_now
    from schemas import fitting, jobs

    tables = {"BilevelFit": fitting.BilevelFit}
    job_table = fitting.BilevelFit.jobs
    job_table.refresh()
    now = server_now(jobs.WorkerHeartbeat.connection)
    base = dict(base_model="body40", params_name="cpu_default", session_id="2024-01-01", priority=5)
    long_ago = now - datetime.timedelta(hours=2)
    for subject, host, pid in (("R_silent", "node-silent", 11), ("R_beating", "node-beating", 12)):
        job_table.insert1(dict(base, subject_id=subject, status="reserved", host=host, pid=pid,
                               reserved_time=long_ago))
    jobs.WorkerHeartbeat.insert([
        dict(host="node-silent", pid=11, started=long_ago, last_beat=now - datetime.timedelta(seconds=100),
             interval_s=10.0, connection_id=0),
        dict(host="node-beating", pid=12, started=long_ago, last_beat=now, interval_s=10.0, connection_id=0)])
    try:
        released = release_stale(tables, jobs.WorkerHeartbeat)
        assert [(r.key["subject_id"], r.host) for r, _ in released] == [("R_silent", "node-silent")]
        assert not (job_table & "subject_id='R_silent'")
        assert len(job_table.reserved & "subject_id='R_beating'") == 1
        assert not (jobs.WorkerHeartbeat & "host='node-silent'")
    finally:
        (job_table & "subject_id like 'R\\_%%'").delete_quick()
        (jobs.WorkerHeartbeat & "host like 'node-%%'").delete_quick()


def _start_worker(db_prefix: str, db_config, subject_id: str) -> subprocess.Popen:
    env = dict(os.environ, DJ_HOST=str(db_config.host), DJ_PORT=str(db_config.port), DJ_USER=db_config.user,
               DJ_PASS=db_config.password, PYTHONPATH=str(ROOT))
    env.setdefault("MMC_JAX_CACHE", str(Path.home() / ".cache" / "mmc" / "jax"))
    command = [sys.executable, "-m", "pipeline.cli", "--prefix", db_prefix, "worker", "BilevelFit",
               "--exit-when-idle", "--no-auto-task", "--restrict", f"subject_id='{subject_id}'"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until_reserved(worker: subprocess.Popen, key: dict, timeout_s: float = 300.0) -> None:
    """Block until ``worker`` holds the reservation of ``key`` (its fit has started)."""
    from schemas import fitting

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if fitting.BilevelFit.jobs.reserved & key & dict(pid=worker.pid):
            return
        if worker.poll() is not None:
            out, err = worker.communicate()
            pytest.fail(f"worker exited with {worker.returncode} before reserving: {err[-3000:]}")
        time.sleep(0.1)
    worker.kill()
    pytest.fail("worker never reserved its job")


def _job_rows(key: dict) -> list[dict]:
    from schemas import fitting

    return (fitting.BilevelFit.jobs & key).to_dicts()


@pytest.mark.db
def test_killed_worker_leaves_a_stale_reservation_that_the_next_worker_completes(
        fit_key_for, db_prefix, db_config, capsys):
    from pipeline import cli
    from pipeline.jobs import stale_reservations
    from schemas import fitting, jobs

    key = fit_key_for("K9")
    first = _start_worker(db_prefix, db_config, "K9")
    _wait_until_reserved(first, key)
    first.kill()  # SIGKILL: no Python runs, the reservation and the heartbeat row stay behind
    first.communicate()
    stale = stale_reservations({"BilevelFit": fitting.BilevelFit}, jobs.WorkerHeartbeat)
    assert [(r.key["subject_id"], r.pid) for r, _ in stale] == [("K9", first.pid)]
    assert cli.main(["--prefix", db_prefix, "status"]) == 0
    shown = capsys.readouterr().out
    assert f"process {first.pid} on this host" in shown and "mmc jobs --release-stale" in shown, shown

    second = _start_worker(db_prefix, db_config, "K9")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    assert "released stale" in out + err
    assert len(fitting.BilevelFit & key) == 1, (out, err[-3000:], _job_rows(key))
    assert not [row for row in _job_rows(key) if row["status"] != "success"]
    assert not (jobs.WorkerHeartbeat & dict(pid=first.pid))


@pytest.mark.db
@pytest.mark.parametrize("signum, exit_code, subject_id", [(signal.SIGTERM, 143, "TERM"),
                                                            (signal.SIGINT, 130, "INT")])
def test_signalled_worker_exits_cleanly_and_requeues_its_job(fit_key_for, db_prefix, db_config, signum,
                                                              exit_code, subject_id):
    from schemas import fitting, jobs

    key = fit_key_for(subject_id)
    worker = _start_worker(db_prefix, db_config, subject_id)
    _wait_until_reserved(worker, key)
    time.sleep(0.5)
    worker.send_signal(signum)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == exit_code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert not (fitting.BilevelFit & key)
    assert all(row["status"] == "pending" for row in _job_rows(key)), _job_rows(key)  # re-queued, no error
    assert not (jobs.WorkerHeartbeat & dict(pid=worker.pid))
    fitting.BilevelFit.jobs.refresh()
    assert [row["status"] for row in _job_rows(key)] == ["pending"]


@pytest.mark.db
def test_session_deleted_during_its_fit_gives_a_plain_error(fit_key_for, db_prefix, db_config):
    from schemas import acquisition, fitting

    key = fit_key_for("GONE")
    worker = _start_worker(db_prefix, db_config, "GONE")
    _wait_until_reserved(worker, key)
    (acquisition.Session & dict(subject_id="GONE")).delete(prompt=False)
    out, err = worker.communicate(timeout=600)
    assert worker.returncode == 0, err[-3000:]
    assert "was deleted while BilevelFit ran" in err, err[-3000:]
    assert "Traceback" not in err
    errors = [row for row in _job_rows(key) if row["status"] == "error"]
    assert all(row["error_message"].startswith("the Session") for row in errors), errors
