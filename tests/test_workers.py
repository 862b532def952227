"""Two ``mmc worker`` processes share 4 fit tasks through the jobs tables: each fit is computed exactly once.

The workers run ``python -m pipeline.cli --prefix <test prefix> worker`` (``mmc worker``) against this test
session's schema prefix, with ``DJ_JOBS_KEEP_COMPLETED=true`` so every finished job stays in the jobs table with
the process id that ran it. Each worker compiles the fit once (shared persistent JAX cache).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fit_fixtures import TEST_PARAMS_NAME, add_test_params, insert_synthetic_session, tiny_session

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def four_tasks(activated_schemas):
    from schemas import fitting, model

    model.ensure_default_model()
    add_test_params()
    keys = []
    for i in range(4):
        session_key = insert_synthetic_session(tiny_session(seed=100 + i), subject_id=f"W{i}")
        key = dict(session_key, base_model="body40", params_name=TEST_PARAMS_NAME)
        fitting.FitTask.insert1(key)
        keys.append(key)
    return keys


def _worker_env(db_config) -> dict:
    env = dict(os.environ)
    env.update(DJ_HOST=str(db_config.host), DJ_PORT=str(db_config.port),
               DJ_USER=db_config.user, DJ_PASS=db_config.password, DJ_JOBS_KEEP_COMPLETED="true",
               PYTHONPATH=str(ROOT))
    env.setdefault("MMC_JAX_CACHE", str(Path.home() / ".cache" / "mmc" / "jax"))
    return env


def test_two_workers_compute_each_fit_exactly_once(four_tasks, db_prefix, db_config):
    from schemas import fitting, gait

    command = [sys.executable, "-m", "pipeline.cli", "--prefix", db_prefix, "worker", "BilevelFit", "GaitMetrics",
               "--exit-when-idle", "--no-auto-task", "--where", "subject_id like 'W%%'"]
    env = _worker_env(db_config)
    workers = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=420) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]

    keys = [{k: key[k] for k in ("subject_id", "session_id")} for key in four_tasks]
    assert len(fitting.BilevelFit & keys) == 4, [err[-3000:] for _, err in outputs]
    assert len(fitting.BilevelFit.Trial & keys) == 4
    assert len(fitting.RefinedCalibration & keys) == 4 * 3
    # every job finished once, by one of the two workers, none failed or is left reserved
    jobs = (fitting.BilevelFit.jobs & keys).to_dicts()
    assert sorted(j["status"] for j in jobs) == ["success"] * 4
    assert {j["pid"] for j in jobs} <= {w.pid for w in workers}
    made = sum(int(line.rsplit(":", 1)[1].split()[0]) for out, _ in outputs for line in out.splitlines()
               if "] BilevelFit:" in line)
    assert made == 4, [o for o, _ in outputs]
    assert len(gait.GaitMetrics & keys) == 4
