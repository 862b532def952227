"""End to end on the real database: synthetic session files → ``mmc ingest session`` → FitTask → BilevelFit →
GaitMetrics → Table I report → OpenSim export.

One short session (1 control subject, 2 walking trials of 4 s, 4 cameras, MOVI87, walkway CSVs) is written,
ingested and fitted once (module-scoped fixture) with a test-only parameter set of 300 steps and a small
network. The fit is short, so the assertions are about structure and about the walkway matching working end
to end (steps matched to footfalls, finite errors), not about accuracy (tested in tests/test_fit.py and
tests/test_gait_synthetic.py). Budget: < 3 minutes cold on 2 cores.
"""
from __future__ import annotations

import numpy as np
import pytest

from compute.params import PARAMETER_SETS

pytestmark = pytest.mark.db

E2E_PARAMS_NAME = "test_e2e"
# a few hundred steps of a small network: enough for the fitted feet to walk, seconds per 100 steps on a CPU
E2E_PARAMS = PARAMETER_SETS["cpu_default"].replace(
    hidden_widths=(64, 64), steps=300, time_points_per_trial=32, warmup_steps=30, history_every=10,
    divergence_check_every=50)
N_CAMERAS = 4
TRIAL_NAMES = ("walk01", "walk02")
N_FRAMES = 120  # 4 s at 30 fps


@pytest.fixture(scope="module")
def synthetic_session(tmp_path_factory):
    """(session, manifest path): one control subject, two 4 s walks, written with ``pipeline.synth``."""
    from compute import synthetic
    from compute.kinematics import load_body_model
    from pipeline.synth import write_session

    config = synthetic.SyntheticSessionConfig(
        seed=3, subject_id="E2E01", population="control", n_cameras=N_CAMERAS,
        trials=synthetic.default_trials(n_walks=len(TRIAL_NAMES), static=False, tug=False, duration_s=4.0))
    session = synthetic.generate_session(config, load_body_model("MOVI87"))
    manifest = write_session(session, tmp_path_factory.mktemp("e2e") / "E2E01")
    return session, manifest


@pytest.fixture(scope="module")
def fitted(db_prefix, activated_schemas, synthetic_session):
    """Ingest through the CLI, add a FitTask with the test parameters, populate BilevelFit and GaitMetrics."""
    from pipeline import cli
    from schemas import acquisition, fitting, gait, model

    session, manifest = synthetic_session
    assert cli.main(["--prefix", db_prefix, "ingest", "session", str(manifest)]) == 0
    session_key = (acquisition.Session & {"subject_id": session.subject_id}).fetch1("KEY")
    base_model = model.ensure_default_model()
    fitting.FitParams.insert_params(E2E_PARAMS_NAME, E2E_PARAMS, "tests: end-to-end, 300 steps")
    key = dict(session_key, base_model=base_model, params_name=E2E_PARAMS_NAME)
    fitting.FitTask.insert1(dict(key, seed=5))
    result = fitting.BilevelFit.populate(key, suppress_errors=True)
    assert result["success_count"] == 1, result["error_list"]
    result = gait.GaitMetrics.populate(key, suppress_errors=True)
    assert result["success_count"] == len(TRIAL_NAMES), result["error_list"]
    return key


def test_ingest_created_the_session_cameras_trials_and_walkway(fitted, synthetic_session):
    from schemas import acquisition

    session, _ = synthetic_session
    session_key = {k: fitted[k] for k in ("subject_id", "session_id")}
    assert len(acquisition.Camera & session_key) == N_CAMERAS
    assert sorted(r["trial_name"] for r in (acquisition.Trial & session_key).keys()) == list(TRIAL_NAMES)
    assert len(acquisition.Keypoints & session_key) == N_CAMERAS * len(TRIAL_NAMES)
    for trial in session.trials:
        on_walkway = sum(bool(f["on_walkway"]) for f in trial.footfalls)
        assert len(acquisition.WalkwaySteps.Footfall & session_key & {"trial_name": trial.name}) == on_walkway > 0


def test_bilevel_fit_row_carries_its_provenance(fitted):
    from schemas import fitting

    fit = (fitting.BilevelFit & fitted).fetch1()
    params_hash = (fitting.FitParams & fitted).fetch1("params_hash")
    assert params_hash == E2E_PARAMS.hash and len(params_hash) == 40
    assert fit["iterations"] == E2E_PARAMS.optimiser.steps and fit["seed"] == 5
    assert fit["wall_time_s"] > 0
    assert fit["code_version"] and fit["compute_host"]
    assert {"jax", "mujoco", "equinox", "optax", "datajoint"} <= set(fit["package_versions"])
    assert all(fit["package_versions"][name] for name in ("jax", "datajoint"))
    history = fit["loss_history"]
    assert history.ndim == 2 and history.shape[0] >= E2E_PARAMS.optimiser.steps // E2E_PARAMS.checks.history_every
    assert history.shape[1] == len(fit["loss_history_columns"]) and np.isfinite(history).all()
    assert fit["log_scale"].shape == (8,) and fit["offsets"].shape == (87, 3)
    assert 0.0 <= fit["gc5"] <= 1.0 and fit["gc_curve"].shape == (20,)


def test_joint_angles_and_markers_per_trial(fitted):
    from compute.kinematics import JOINT_NAMES
    from schemas import fitting

    rows = (fitting.BilevelFit.Trial & fitted).to_dicts(order_by="trial_name")
    assert [r["trial_name"] for r in rows] == list(TRIAL_NAMES)
    for row in rows:
        assert row["qpos"].shape == (N_FRAMES, len(JOINT_NAMES)) and np.isfinite(row["qpos"]).all()
        assert row["joint_names"] == list(JOINT_NAMES)
        assert row["markers"].shape == (N_FRAMES, 87, 3) and np.isfinite(row["markers"]).all()
        np.testing.assert_allclose(row["times"], np.arange(N_FRAMES) / 30.0, atol=1e-9)
        # the pelvis walks forward along +X over the 4 s
        pelvis_x = row["qpos"][:, JOINT_NAMES.index("pelvis_tx")]
        assert pelvis_x[-1] - pelvis_x[0] > 2.0


def test_refined_calibration_for_every_camera(fitted):
    from schemas import acquisition, fitting

    session_key = {k: fitted[k] for k in ("subject_id", "session_id")}
    cameras = {r["camera_name"] for r in (acquisition.Camera & session_key).keys()}
    refined = (fitting.RefinedCalibration & fitted).to_dicts()
    assert {r["camera_name"] for r in refined} == cameras and len(refined) == N_CAMERAS
    for row in refined:
        assert row["rotation"].shape == (3,) and row["translation"].shape == (3,)
        assert np.isfinite(row["rotation_change_deg"]) and np.isfinite(row["translation_change_mm"])
    assert len(fitting.BilevelFit.CameraResidual & fitted) == N_CAMERAS * len(TRIAL_NAMES)


def test_gait_steps_are_matched_to_walkway_footfalls(fitted):
    """Regression: a trial with both matched and unmatched steps used to fail to insert its Step rows."""
    from schemas import gait

    metrics = (gait.GaitMetrics & fitted).to_dicts(order_by="trial_name")
    assert [m["trial_name"] for m in metrics] == list(TRIAL_NAMES)
    for m in metrics:
        steps = (gait.GaitMetrics.Step & fitted & {"trial_name": m["trial_name"]}).to_dicts(order_by="step_index")
        assert m["has_walkway"] and m["walkway_alignment"] is not None
        assert len(steps) == m["n_contacts"] >= 4
        matched = [s for s in steps if s["footfall_index"] is not None]
        assert len(matched) == m["n_matched"]
        assert len(matched) >= 0.5 * len(steps), f"{m['trial_name']}: {len(matched)}/{len(steps)} matched"
        errors = np.array([s["step_length_error"] for s in matched if s["step_length_error"] is not None], float)
        assert errors.size >= 2 and np.isfinite(errors).all()
        # structure, not accuracy: a 300-step fit still puts feet within decimetres of the walkway
        assert np.median(np.abs(errors)) < 0.2
        assert all(s["contact_time_error"] is None or np.isfinite(s["contact_time_error"]) for s in matched)


def test_report_builds_table_one_from_the_database(fitted, database, tmp_path):
    from pipeline import report

    steps, trials = report.fetch_report_frames(database, report.ReportRestriction(param_set=[E2E_PARAMS_NAME]))
    assert len(trials) == len(TRIAL_NAMES) and len(steps) > 0
    table = report.table_one(steps).set_index("population")
    assert "control" in table.index
    rep = report.make_report(steps, trials)
    paths = report.write_report(rep, tmp_path)
    assert all(p.exists() for p in paths.values())
    assert "control" in paths["table1"].read_text() and "Table I" in paths["markdown"].read_text()


def test_export_writes_mot_and_trc_for_the_trial(fitted, database, tmp_path):
    from pipeline import exporters

    written = exporters.export_fits(database, dict(fitted, trial_name="walk01"), tmp_path)
    assert len(written) == 1
    paths = written[0]
    header, angles = exporters.read_mot(paths["mot"])
    assert len(angles) == N_FRAMES and "knee_angle_r" in angles.columns
    trc_header, times, markers, names = exporters.read_trc(paths["trc"])
    assert markers.shape == (N_FRAMES, 87, 3) and len(names) == 87 and np.isfinite(markers).all()
