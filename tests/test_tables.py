"""Computed tables on the real database: parameter sets, default model, tasks, the three-part make of
BilevelFit, a diverging fit, mixed keypoint sets, cascade on delete, and GaitMetrics.

Fits use a tiny synthetic session (3 cameras, 24 frames) and the ``test_tiny`` parameters (30 steps): the first
fit compiles (~1 min on 2 cores), later ones take seconds. Fit accuracy is tested in the fitting tests.
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.fit_fixtures import TEST_PARAMS_NAME, add_test_params, insert_synthetic_session, tiny_session

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def tables(activated_schemas):
    from schemas import acquisition, fitting, gait, model

    model.ensure_default_model()
    add_test_params()
    return dict(acquisition=acquisition, fitting=fitting, gait=gait, model=model)


@pytest.fixture(scope="module")
def fitted_key(tables):
    """One session fitted through the three make phases called directly (also the test of those phases)."""
    fitting = tables["fitting"]
    session_key = insert_synthetic_session(tiny_session(seed=11), subject_id="T_direct")
    key = dict(session_key, base_model="body40", params_name=TEST_PARAMS_NAME)
    fitting.FitTask.insert1(key)
    table = fitting.BilevelFit()
    (inputs,) = table.make_fetch(key)
    (rows,) = table.make_compute(key, inputs)
    connection = table.connection
    connection.start_transaction()
    try:
        table.make_insert(key, rows)
    except BaseException:
        connection.cancel_transaction()
        raise
    connection.commit_transaction()
    return key


def test_paper_and_cpu_default_parameter_sets_exist_with_their_hashes(tables):
    from compute.params import PARAMETER_SETS

    rows = {r["params_name"]: r for r in tables["fitting"].FitParams.to_dicts()}
    for name in ("paper", "cpu_default"):
        assert rows[name]["params_hash"] == PARAMETER_SETS[name].hash
        assert tables["fitting"].FitParams.load(name) == PARAMETER_SETS[name]


def test_identical_parameters_under_a_new_name_are_refused(tables):
    from compute.params import PARAMETER_SETS

    with pytest.raises(ValueError, match="already exist as 'paper'"):
        tables["fitting"].FitParams.insert_params("paper_copy", PARAMETER_SETS["paper"])


def test_default_model_holds_sites_for_every_keypoint_set(tables):
    acquisition, model = tables["acquisition"], tables["model"]
    for row in acquisition.KeypointSet.to_dicts():
        sites = model.marker_sites("body40", row["keypoint_set"])
        assert sites.marker_names == tuple(row["joint_names"])
        assert sites.sites.shape == (row["n_joints"], 3)
    assert len((model.BaseModel & {"base_model": "body40"}).fetch1("content_hash")) == 40


def test_populate_adds_a_default_task_only_for_sessions_without_one(tables):
    acquisition, fitting = tables["acquisition"], tables["fitting"]
    acquisition.Subject.insert1(dict(subject_id="T_task", population="control"))
    acquisition.Session.insert1(dict(subject_id="T_task", session_id="s1"))
    acquisition.Session.insert1(dict(subject_id="T_task", session_id="s2"))
    acquisition.Session.insert1(dict(subject_id="T_task", session_id="s3"))   # a COCO17 recording
    acquisition.Trial.insert1(dict(subject_id="T_task", session_id="s3", trial_name="walk01", activity="walk",
                                   keypoint_set="COCO17", fps=30.0, n_frames=10, keypoints_file="walk01.npz",
                                   keypoints_format="npz"))
    fitting.FitTask.insert1(dict(subject_id="T_task", session_id="s2", base_model="body40",
                                 params_name=TEST_PARAMS_NAME))
    added = fitting.add_missing_fit_tasks(restriction={"subject_id": "T_task"})
    assert added == 2
    tasks = (fitting.FitTask & {"subject_id": "T_task"}).to_dicts(order_by="session_id")
    # two hip points leave pelvis tilt to the priors of cpu_sparse
    assert [(t["session_id"], t["params_name"]) for t in tasks] == [("s1", "cpu_default"), ("s2", TEST_PARAMS_NAME),
                                                                   ("s3", "cpu_sparse")]
    (acquisition.Subject & {"subject_id": "T_task"}).delete(prompt=False)


def test_three_make_phases_insert_a_complete_fit(tables, fitted_key):
    from compute.kinematics import JOINT_NAMES

    fitting = tables["fitting"]
    fit = (fitting.BilevelFit & fitted_key).fetch1()
    assert fit["iterations"] == 30 and 0.0 <= fit["gc5"] <= 1.0 and fit["gc_curve"].shape == (20,)
    assert fit["log_scale"].shape == (8,) and fit["offsets"].shape == (87, 3)
    assert fit["loss_history"].shape[1] == len(fit["loss_history_columns"])
    assert fit["final_loss"] == pytest.approx(fit["final_losses"]["loss"], rel=1e-5)
    assert fit["code_version"].startswith("0.") and fit["package_versions"]["jax"]
    assert set(fit["package_versions"]) >= {"jax", "jaxlib", "mujoco", "mujoco-mjx", "equinox", "optax",
                                            "datajoint", "numpy"}
    trial = (fitting.BilevelFit.Trial & fitted_key).fetch1()
    assert trial["qpos"].shape == (24, len(JOINT_NAMES)) and trial["joint_names"] == list(JOINT_NAMES)
    assert trial["markers"].shape == (24, 87, 3) and np.isfinite(trial["markers"]).all()
    assert np.allclose(trial["times"], np.arange(24) / 30.0)
    assert isinstance(trial["network_weights"], bytes) and len(trial["network_weights"]) > 1000
    assert len(fitting.RefinedCalibration & fitted_key) == 3
    assert len(fitting.BilevelFit.CameraResidual & fitted_key) == 3
    calibration = (fitting.RefinedCalibration & fitted_key).to_dicts()
    assert all(np.isfinite(c["rotation_change_deg"]) and c["rotation"].shape == (3,) for c in calibration)


def test_stored_network_reproduces_the_stored_joint_angles(tables, fitted_key):
    from compute.fit import evaluate_trajectory

    trial = (tables["fitting"].BilevelFit.Trial & fitted_key).fetch1()
    qpos = evaluate_trajectory(trial["network_weights"], trial["network_config"], trial["times"])
    np.testing.assert_allclose(np.asarray(qpos), trial["qpos"], atol=1e-4)


def test_diverging_fit_leaves_an_error_job_and_no_row(tables):
    fitting = tables["fitting"]
    # keypoints at 1e30 px with confidence 0.9: the reprojection loss overflows to inf at the first step
    session_key = insert_synthetic_session(tiny_session(seed=12, keypoint_scale=1e30), subject_id="T_diverge")
    key = dict(session_key, base_model="body40", params_name=TEST_PARAMS_NAME)
    fitting.FitTask.insert1(key)
    result = fitting.BilevelFit.populate(key, reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 0 and len(result["error_list"]) == 1
    assert not (fitting.BilevelFit & key)
    assert not (fitting.BilevelFit.Trial & key)
    job = (fitting.BilevelFit.jobs & key).fetch1()
    assert job["status"] == "error"
    assert job["error_message"].startswith("FitDivergedError")
    assert "Traceback" in job["error_stack"]


def test_session_mixing_keypoint_sets_is_a_clear_error(tables):
    acquisition, fitting = tables["acquisition"], tables["fitting"]
    session_key = insert_synthetic_session(tiny_session(seed=13), subject_id="T_mixed")
    acquisition.Trial.insert1(dict(session_key, trial_name="walk_coco", activity="walk", keypoint_set="COCO17",
                                   fps=30.0, n_frames=24, keypoints_file="synthetic", keypoints_format="npz"))
    key = dict(session_key, base_model="body40", params_name=TEST_PARAMS_NAME)
    fitting.FitTask.insert1(key)
    with pytest.raises(ValueError, match=r"mix keypoint sets .*COCO17.*MOVI87"):
        fitting.BilevelFit().make_fetch(key)


def test_gait_metrics_of_a_fitted_walking_trial(tables, fitted_key):
    gait = tables["gait"]
    gait.GaitMetrics.populate(fitted_key)
    row = (gait.GaitMetrics & fitted_key).fetch1()
    assert row["n_contacts"] == len(gait.GaitMetrics.Step & fitted_key)
    assert row["has_walkway"] == 0 and row["walkway_alignment"] is None


def test_cross_validation_of_a_fit_stores_every_camera_and_reaches_the_report(tables, fitted_key):
    """``CrossValidation`` through the database: one ``HeldOutCamera`` row per camera of the fit, finite held-out
    and triangulation errors in px, a verdict per camera, provenance, and the report's per-camera table."""
    from pipeline.report.builder import cross_validation_table
    from schemas import validation
    from schemas.reads import results

    assert validation.add_cross_validation_tasks(fitted_key) == 1
    assert validation.add_cross_validation_tasks(fitted_key) == 0          # requested once
    validation.CrossValidation.populate(fitted_key, reserve_jobs=True)
    row = (validation.CrossValidation & fitted_key).fetch1()
    assert row["refit_steps"] > 0 and row["warm_start"] and row["held_out_frame_every"] >= 2
    assert row["code_version"] and row["package_versions"]["jax"] and row["wall_time_s"] > 0
    cameras = (validation.CrossValidation.HeldOutCamera & fitted_key).to_dicts(order_by="camera_name")
    assert len(cameras) == len(tables["acquisition"].Camera & fitted_key) == 3
    for camera in cameras:
        assert camera["n_keypoints"] > 0
        assert 0.0 <= camera["fit_median_px"] < 50.0, camera
        assert np.isfinite(camera["triangulation_median_px"]) and camera["triangulation_coverage"] > 0.5
        assert camera["fit_gc_curve"].shape == camera["triangulation_gc_curve"].shape == (20,)
        assert camera["in_sample_median_px"] <= camera["fit_median_px"] + 1e-3  # it saw its own camera
        assert camera["calibration_verdict"] in ("improves", "no improvement")
    assert row["max_held_out_median_px"] == pytest.approx(max(c["fit_median_px"] for c in cameras), rel=1e-5)
    table = cross_validation_table(results.cross_validation_cameras(
        {k: fitted_key[k] for k in ("subject_id", "session_id")}))
    assert list(table["camera_name"]) == [c["camera_name"] for c in cameras]
    np.testing.assert_allclose(table["held_out_px"], [c["fit_median_common_px"] for c in cameras], rtol=1e-6)


def test_deleting_a_session_cascades_to_its_fits(tables, fitted_key):
    acquisition, fitting, gait = tables["acquisition"], tables["fitting"], tables["gait"]
    session = {k: fitted_key[k] for k in ("subject_id", "session_id")}
    assert fitting.BilevelFit & session
    (acquisition.Session & session).delete(prompt=False)
    from schemas import validation

    for table in (fitting.FitTask, fitting.BilevelFit, fitting.BilevelFit.Trial, fitting.RefinedCalibration,
                  fitting.BilevelFit.CameraResidual, gait.GaitMetrics, gait.GaitMetrics.Step,
                  validation.CrossValidation, validation.CrossValidation.HeldOutCamera):
        assert not (table & session), table.__name__
