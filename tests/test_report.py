"""Table I / Table II, comparisons with subjects as the unit (conditions: repeated measures on subject means;
populations: mixed model / ANOVA on subject means), the spatiotemporal table, and the figures, on frames with
known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline import report
from pipeline.report import figures
from pipeline.report.stats import comparison_estimates, comparison_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _steps() -> pd.DataFrame:
    """Errors 0..100 mm (IQR 50 mm -> σ_IQR 37.065 mm) for control, twice that for hemiparetic."""
    rows = []
    for population, scale, subjects in (("control", 1.0, ("c1", "c2")), ("hemiparetic", 2.0, ("h1",))):
        errors_m = scale * np.arange(101) / 1000.0  # 101 steps
        for i, e in enumerate(errors_m):
            subject = subjects[i % len(subjects)]
            rows.append(dict(population=population, subject_id=subject, trial=f"{subject}/walk{i % 3}",
                             step_width_error_m=e, stride_length_error_m=-e, step_length_error_m=0.5 * e,
                             base_model="body40", bundle_adjustment=bool(i % 2)))
    return pd.DataFrame(rows)


def _trials() -> pd.DataFrame:
    """GC_5 per trial for three conditions: two equal, one 0.1 higher."""
    rng = np.random.default_rng(3)
    rows = []
    for model, ba, mean in (("body40", False, 0.60), ("body40", True, 0.60), ("trilevel", True, 0.70)):
        values = mean + rng.normal(0.0, 0.01, 8)
        values += mean - values.mean()  # exact group mean
        for i, v in enumerate(values):
            rows.append(dict(base_model=model, bundle_adjustment=ba, gc5=v, subject_id=f"s{i % 4}",
                             trial=f"{model}{ba}{i}", population="control",
                             gc_curve=np.clip(np.linspace(0.15, 1.0, 20) + (v - 0.6), 0, 1)))
    return pd.DataFrame(rows)


def test_sigma_iqr_is_0_7413_times_iqr():
    assert report.sigma_iqr(np.arange(101.0)) == pytest.approx(0.7413 * 50.0)
    assert report.sigma_iqr([1.0, np.nan, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(0.7413 * 2.0)
    # for a large normal sample σ_IQR estimates the standard deviation
    assert report.sigma_iqr(np.random.default_rng(0).normal(0, 2.0, 200_000)) == pytest.approx(2.0, rel=0.01)


def test_table_one_spreads_and_counts_by_population():
    table = report.table_one(_steps()).set_index("population")
    assert list(table.index) == ["control", "hemiparetic", "All"]
    assert list(table.columns) == ["n_subjects", "n_trials", "n_steps", "step_width_sigma_iqr_mm",
                                   "stride_length_sigma_iqr_mm", "step_length_sigma_iqr_mm"]
    assert table.loc["control", "n_subjects"] == 2 and table.loc["hemiparetic", "n_subjects"] == 1
    assert table.loc["control", "n_trials"] == 6 and table.loc["hemiparetic", "n_trials"] == 3
    assert table.loc["control", "n_steps"] == 101 and table.loc["All", "n_steps"] == 202
    assert table.loc["control", "step_width_sigma_iqr_mm"] == pytest.approx(37.065)
    assert table.loc["control", "stride_length_sigma_iqr_mm"] == pytest.approx(37.065)
    assert table.loc["control", "step_length_sigma_iqr_mm"] == pytest.approx(37.065 / 2)
    assert table.loc["hemiparetic", "step_width_sigma_iqr_mm"] == pytest.approx(2 * 37.065)
    assert table.loc["All", "n_subjects"] == 3


def test_table_two_gc5_by_model_and_bundle_adjustment():
    table = report.table_two(_trials(), _steps())
    assert list(zip(table["base_model"], table["bundle_adjustment"])) == [
        ("body40", "off"), ("body40", "on"), ("trilevel", "on")]
    np.testing.assert_allclose(table["gc5_mean"], [0.60, 0.60, 0.70], atol=1e-12)
    assert (table["n_trials"] == 8).all() and (table["n_subjects"] == 4).all()
    # step spreads joined by condition; 'trilevel' has no steps
    assert np.isfinite(table.loc[0, "step_width_sigma_iqr_mm"])
    assert np.isnan(table.loc[2, "step_width_sigma_iqr_mm"])


def test_conditions_are_compared_on_subject_means_with_repeated_measures():
    trials = _trials()
    result = report.compare_conditions(trials)
    # hand computation: subject x condition means (4 x 3), two-way decomposition without interaction
    means = trials.assign(condition=[f"{m}{b}" for m, b in zip(trials["base_model"], trials["bundle_adjustment"])]
                          ).groupby(["subject_id", "condition"])["gc5"].mean().unstack().to_numpy()
    n, k = means.shape
    grand = means.mean()
    ss_condition = n * ((means.mean(axis=0) - grand) ** 2).sum()
    ss_subject = k * ((means.mean(axis=1) - grand) ** 2).sum()
    ss_error = ((means - grand) ** 2).sum() - ss_condition - ss_subject
    f_hand = (ss_condition / (k - 1)) / (ss_error / ((k - 1) * (n - 1)))
    assert result.method == "repeated_measures_anova_subject_means"
    assert result.statistic == pytest.approx(f_hand, rel=1e-9)
    assert result.p_value == pytest.approx(stats.f.sf(f_hand, k - 1, (k - 1) * (n - 1)), rel=1e-9)
    assert (result.df_numerator, result.df_denominator) == (2, 6)  # subjects, not the 24 trials, set the df
    assert result.n_subjects == 4 and result.n_trials == 24 and result.p_value < 1e-3
    assert len(result.subject_means) == 12 and "n = 4 subjects" in result.summary()
    row = result.as_frame().iloc[0]
    assert row["n_subjects"] == 4 and row["method"] == result.method


def test_conditions_need_two_conditions_and_two_subjects():
    trials = _trials()
    result = report.compare_conditions(trials[trials["base_model"] == "trilevel"])
    assert result.method == "not_testable" and "at least 2 conditions" in result.reason
    assert np.isnan(result.p_value) and "not tested" in result.summary()
    one_subject = report.compare_conditions(trials[trials["subject_id"] == "s0"])
    assert one_subject.method == "not_testable" and np.isnan(one_subject.statistic)


def _spatiotemporal() -> pd.DataFrame:
    """Two populations x 3 subjects x 4 trials x 2 sides. Cadence: control 110, neurologic 90 steps/min, plus a
    subject offset (-4, 0, +4) and a trial offset; the two sides differ by +-1 (their mean is the trial value)."""
    rows = []
    for population, base in (("control", 110.0), ("neurologic", 90.0)):
        for s, subject_offset in enumerate((-4.0, 0.0, 4.0)):
            subject = f"{population[0]}{s}"
            for t, trial_offset in enumerate((-1.5, -0.5, 0.5, 1.5)):
                for side, side_offset in (("L", -1.0), ("R", 1.0)):
                    rows.append(dict(population=population, subject_id=subject, session_id="2024-01-01",
                                     trial_name=f"walk{t}", side=side,
                                     cadence_steps_per_min=base + subject_offset + trial_offset + side_offset,
                                     walking_speed_m_s=1.0 + 0.01 * s + 0.001 * t,
                                     knee_flexion_rom_rad=np.nan if population == "neurologic" and t == 0
                                     else 1.0))
    return pd.DataFrame(rows)


def test_spatiotemporal_table_by_population_uses_subject_means():
    table = report.spatiotemporal_table(_spatiotemporal()).set_index(["population", "parameter"])
    cadence = table.loc[("control", "cadence_steps_per_min")]
    assert cadence["n_subjects"] == 3 and cadence["n_trials"] == 12
    assert cadence["mean"] == pytest.approx(110.0) and cadence["sd"] == pytest.approx(4.0)  # SD of (106, 110, 114)
    assert table.loc[("neurologic", "knee_flexion_rom_rad"), "n_trials"] == 9  # NaN trials left out


def test_population_comparisons_count_subjects_not_trials():
    frame = _spatiotemporal()
    comparisons = report.population_comparisons(None, frame)
    cadence = comparisons["cadence_steps_per_min"]
    assert cadence.method == "mixed_model"
    assert cadence.n_subjects == 6 and cadence.n_trials == 24  # trials = one value per trial (sides averaged)
    assert (cadence.df_numerator, cadence.df_denominator) == (1, 4)
    # balanced design: the mixed model's F equals the one-way ANOVA on subject means
    means = frame.groupby(["population", "subject_id"])["cadence_steps_per_min"].mean()
    expected = stats.f_oneway(means["control"], means["neurologic"])
    assert cadence.statistic == pytest.approx(expected.statistic, rel=1e-3)  # REML optimiser tolerance
    assert cadence.p_value == pytest.approx(expected.pvalue, rel=1e-2)
    assert cadence.estimates["control"] == pytest.approx(110.0)
    assert cadence.estimates["neurologic"] == pytest.approx(90.0)
    table = comparison_table(comparisons).set_index("outcome")
    assert table.loc["cadence_steps_per_min", "n_subjects"] == 6
    assert table.loc["cadence_steps_per_min", "n_trials"] == 24
    estimates = comparison_estimates(comparisons)
    assert set(estimates["population"]) == {"control", "neurologic"}
    assert list(estimates.columns) == ["outcome", "population", "n_subjects", "n_trials", "estimate",
                                       "standard_error", "subject_sigma_iqr"]


def test_report_files_markdown_and_csv(tmp_path):
    steps = _steps().assign(bundle_adjustment=True)  # one method: Table I covers every step
    rep = report.make_report(steps, _trials(), {"population": "control"}, spatiotemporal=_spatiotemporal())
    paths = report.write_report(rep, tmp_path)
    assert set(paths) == {"markdown", "table1", "table2", "conditions", "condition_subject_means",
                          "spatiotemporal", "comparisons", "estimates"}
    text = paths["markdown"].read_text()
    assert "Table I" in text and "Table II" in text and "population = control" in text
    assert "Tukey" not in text.replace("no Tukey HSD", "")
    assert "| control | 2 | 6 | 101 | 37.1 | 37.1 | 18.5 |" in text
    assert "Spatiotemporal parameters by population" in text and "110.000 ± 4.000 (n=3)" in text
    assert "mixed_model" in text and "effective n = subjects" in text
    back = pd.read_csv(paths["table1"])
    assert back.loc[0, "step_width_sigma_iqr_mm"] == pytest.approx(37.065)
    for name in ("table1", "table2", "conditions", "spatiotemporal", "comparisons", "estimates"):
        header = pd.read_csv(paths[name]).columns
        assert all(c == c.lower() and " " not in c and "σ" not in c for c in header), (name, list(header))
    comparisons = pd.read_csv(paths["comparisons"]).set_index("outcome")
    assert comparisons.loc["cadence_steps_per_min", "n_subjects"] == 6
    assert comparisons.loc["gc5", "n_subjects"] == 4  # the report's trials: 4 subjects, 2 trials each, one method


def _assert_png(path):
    assert path.exists() and path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_report_figures_created(tmp_path):
    paths = figures.report_figures(_steps(), _trials(), tmp_path)
    assert set(paths) == {"gc_curves", "gc_curves_population", "step_errors"}
    for path in paths.values():
        _assert_png(path)


def test_waveform_and_overlay_figures(tmp_path):
    times = np.arange(90) / 30.0
    names = ("hip_flexion_r", "knee_angle_r", "ankle_angle_r", "hip_flexion_l", "knee_angle_l", "ankle_angle_l")
    qpos = np.radians(20.0) * np.sin(2 * np.pi * times[:, None] + np.arange(6))
    footfalls = pd.DataFrame(dict(foot=["R", "L", "R"], contact_time=[0.1, 0.6, 1.1], toe_off_time=[0.7, 1.2, 1.7]))
    _assert_png(figures.plot_joint_waveforms(times, qpos, names, tmp_path / "wave.png", footfalls=footfalls,
                                             detected_contacts=footfalls, title="test"))
    rng = np.random.default_rng(1)
    predicted = rng.uniform(100, 900, (2, 3, 10, 2))
    observed = predicted + rng.normal(0, 3, predicted.shape)
    confidence = rng.uniform(0, 1, (2, 3, 10))
    _assert_png(figures.plot_reprojection_overlay(predicted, observed, confidence, [0, 2], [0, 1], (1024, 768),
                                                  tmp_path / "blank.png"))
    video = {(1, 2): rng.integers(0, 255, (768, 1024, 3), dtype=np.uint8)}
    _assert_png(figures.plot_reprojection_overlay(predicted, observed, confidence, [2], [1], (1024, 768),
                                                  tmp_path / "video.png", images=video))
    # every figure is written as PNG (returned) and as a vector PDF of the same name
    png = figures.plot_gc_curves({"a": np.linspace(0, 1, 20)}, tmp_path / "gc.pdf")
    _assert_png(png)
    assert png.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"


# ------------------------------------------------------------------------------------------ database layer
@pytest.fixture(scope="module")
def fake_fits(database):
    """Two subjects (control, neurologic), one walking trial each, COCO17 keypoints in two cameras, fitted
    under a bundle-adjusting and a camera-frozen parameter set; rows inserted directly (no fitting)."""
    from compute.params import PARAMETER_SETS

    acq, model, fitting, gait = (database.schemas[m] for m in ("acquisition", "model", "fitting", "gait"))
    fitting.FitParams.ensure_defaults()
    frozen = PARAMETER_SETS["cpu_default"].replace(camera_start_fraction=1.0)
    fitting.FitParams.insert_params("test_no_ba", frozen)
    joints = tuple(acq.KeypointSet.proj("joint_names").to_dicts()[0]["joint_names"])
    keypoint_set = acq.KeypointSet.proj("joint_names").to_dicts()[0]["keypoint_set"]
    n_markers, n_frames = len(joints), 30
    model.BaseModel.insert1(dict(base_model="fake40", model_version="0", mjcf_xml="<mujoco/>", body_names=["pelvis"],
                                 scale_group_names=["overall"], scale_matrix=np.ones((1, 1)), content_hash="f" * 40))
    rng = np.random.default_rng(0)
    K = np.array([[1000.0, 0, 512], [0, 1000.0, 384], [0, 0, 1]])
    cameras = {"cam_0": (np.array([1.2, -1.2, 1.2]), np.array([0.0, 1.0, 4.0])),
               "cam_1": (np.array([1.2, 1.2, -1.2]), np.array([0.0, 1.0, 4.0]))}
    for subject, population, gc5 in (("T01", "control", 0.70), ("T02", "neurologic", 0.60)):
        session = dict(subject_id=subject, session_id="2024-02-28")
        acq.Subject.insert1(dict(subject_id=subject, population=population))
        acq.Session.insert1(session)
        for name, (rvec, tvec) in cameras.items():
            acq.Camera.insert1(dict(session, camera_name=name, image_width=1024, image_height=768, intrinsics=K,
                                    distortion=np.zeros(5), rotation=rvec, translation=tvec,
                                    calibration_file="calib.toml", calibration_format="anipose",
                                    calibration_unit="m", unit_inferred=False))
        trial = dict(session, trial_name="walk01")
        acq.Trial.insert1(dict(trial, activity="walk", keypoint_set=keypoint_set, fps=30.0, n_frames=n_frames,
                               keypoints_file="kp", keypoints_format="npz"))
        markers = rng.uniform(-0.5, 0.5, (n_frames, n_markers, 3)) + np.array([0.0, 0.0, 1.0])
        for name in cameras:
            acq.Keypoints.insert1(dict(trial, camera_name=name, points=rng.uniform(0, 1000, (n_frames, n_markers, 2)),
                                       confidence=rng.uniform(0, 1, (n_frames, n_markers)).astype(np.float32),
                                       frame_index=np.arange(n_frames), n_missing_frames=0))
        acq.WalkwaySteps.insert1(dict(trial, source_file="steps.csv", n_footfalls=2))
        acq.WalkwaySteps.Footfall.insert([
            dict(trial, footfall_index=0, foot="R", contact_time=0.1, toe_off_time=0.7, heel_x=0, heel_y=0, toe_x=0.2,
                 toe_y=0),
            dict(trial, footfall_index=1, foot="L", contact_time=0.6, toe_off_time=None, heel_x=0.6, heel_y=0.1,
                 toe_x=0.8, toe_y=0.1)])
        for params_name, shift in (("cpu_default", 0.05), ("test_no_ba", 0.0)):
            key = dict(session, base_model="fake40", params_name=params_name)
            fitting.FitTask.insert1(key)
            fitting.BilevelFit.insert1(dict(
                key, keypoint_set=keypoint_set, log_scale=np.zeros(8), scale_group_names=["overall"] * 8,
                offsets=np.zeros((n_markers, 3)), final_loss=1.0, final_losses={}, gc5=gc5 + shift,
                gc_curve=np.linspace(0.2, 1, 20), iterations=10, stop_reason="test", wall_time_s=1.0, seed=0,
                loss_history=np.zeros((1, 1)), loss_history_columns=["total"], code_version="test",
                package_versions={}, compute_host="test"), allow_direct_insert=True)
            fitting.BilevelFit.Trial.insert1(dict(
                key, trial_name="walk01", times=np.arange(n_frames) / 30.0, joint_names=list(joints),
                qpos=rng.normal(0, 0.3, (n_frames, n_markers)), markers=markers.astype(np.float32),
                network_weights=b"", network_config={}, gc5=gc5 + shift, gc_curve=np.linspace(0.2, 1, 20) + shift,
                final_loss=1.0), allow_direct_insert=True)
            trial_fit = dict(key, trial_name="walk01")
            gait.GaitMetrics.insert1(dict(trial_fit, n_contacts=4, has_walkway=True, n_matched=4,
                                          walkway_alignment=dict(A=np.eye(2).tolist(), b=[0.0, 0.0],
                                                                 time_offset_s=0.05)), allow_direct_insert=True)
            # step width errors -3, -1, 1, 3 mm: IQR = 3 mm (numpy linear percentiles 1.5 - -1.5 ... )
            gait.GaitMetrics.Step.insert([dict(
                trial_fit, step_index=i, foot="LR"[i % 2], contact_time=0.1 + 0.5 * i, heel_x=0.6 * i,
                heel_y=0.0, step_width_error=(2 * i - 3) / 1000.0, step_length_error=(i - 1.5) / 1000.0,
                stride_length_error=None if i == 0 else 0.002) for i in range(4)], allow_direct_insert=True)
    return database


# other test modules share the session's schema prefix: restrict every query to this module's subjects
OWN = dict(subjects=["T01", "T02"])


@pytest.mark.db
def test_report_frames_from_database(fake_fits, tmp_path):
    steps, trials = report.fetch_report_frames(fake_fits, report.ReportRestriction(**OWN))
    assert len(trials) == 4
    assert len(steps) == 16  # 4 steps per fitted trial
    table = report.table_one(steps[steps["params_name"] == "cpu_default"]).set_index("population")
    assert table.loc["control", "n_steps"] == 4 and table.loc["control", "n_trials"] == 1
    # errors -3, -1, 1, 3 mm: quartiles -1.5 and 1.5 -> σ_IQR = 0.7413 * 3 mm
    assert table.loc["control", "step_width_sigma_iqr_mm"] == pytest.approx(0.7413 * 3.0)
    assert table.loc["control", "stride_length_sigma_iqr_mm"] == pytest.approx(0.0)
    ba = trials.set_index(["subject_id", "params_name"])["bundle_adjustment"]
    assert ba[("T01", "cpu_default")] and not ba[("T01", "test_no_ba")]
    assert set(trials["population"]) == {"control", "neurologic"}
    rep = report.make_report(steps, trials)
    table = rep.table_two.set_index("bundle_adjustment")
    assert table.loc["on", "gc5_mean"] == pytest.approx(0.70, abs=1e-6)
    assert table.loc["off", "gc5_mean"] == pytest.approx(0.65, abs=1e-6)
    only = report.fetch_report_frames(fake_fits, report.ReportRestriction(population=["control"], param_set=["cpu_default"],
                                                               **OWN))[1]
    assert list(only["subject_id"]) == ["T01"]
    later = report.fetch_report_frames(fake_fits, report.ReportRestriction(date_from=__import__("datetime").date(2025, 1, 1),
                                                                **OWN))[1]
    assert len(later) == 0
    paths = report.build_report(fake_fits, report.ReportRestriction(**OWN), tmp_path).paths
    assert {"markdown", "table2", "conditions", "gc_curves"} <= set(paths)


@pytest.mark.db
def test_export_and_trial_figures_from_database(fake_fits, tmp_path):
    from pipeline.exporters import export_fits, read_trc

    # the fake base model has no skeleton to write as .osim (tested in test_exporters.py on the real model)
    written = export_fits(fake_fits, {"subject_id": "T01"}, tmp_path, opensim_models=False)
    assert len(written) == 2
    names = sorted(w["trc"].name for w in written)
    assert names == ["T01_2024-02-28_walk01_fake40_cpu_default.trc", "T01_2024-02-28_walk01_fake40_test_no_ba.trc"]
    header, times, markers, marker_names = read_trc(written[0]["trc"])
    assert header["NumFrames"] == 30 and header["DataRate"] == pytest.approx(30.0) and len(marker_names) == markers.shape[1]
    key = dict(subject_id="T02", session_id="2024-02-28", trial_name="walk01", base_model="fake40",
               params_name="cpu_default")
    walkway = figures.walkway_footfalls_video_clock(key)  # walkway clock -> video clock with the fitted offset
    np.testing.assert_allclose(walkway["contact_time"], [0.05, 0.55])
    assert len(figures.detected_contacts(key)) == 4
    paths = figures.trial_figures(key, tmp_path)
    for path in paths.values():
        _assert_png(path)


def test_table_one_and_population_comparison_describe_the_best_condition():
    trials = _trials()
    trials = trials[trials["base_model"] == "body40"].copy()
    trials.loc[trials["bundle_adjustment"], "gc5"] += 0.1  # bundle adjustment is the better method
    trials["population"] = ["control", "neurologic"] * (len(trials) // 2)
    steps = _steps()
    steps.loc[~steps["bundle_adjustment"], "step_width_error_m"] *= 10  # the worse method's steps are worse
    rep = report.make_report(steps, trials)
    assert rep.primary_condition == "body40 + BA"
    table = rep.table_one.set_index("population")
    assert table.loc["control", "n_steps"] == 50  # only the bundle-adjusted half of the 101 control steps
    assert table.loc["All", "n_steps"] == 100
    gc5 = rep.comparisons.set_index("outcome").loc["gc5"]
    # populations compared within the primary condition: 8 trials of 4 subjects (2 each) -> mixed model, df 4 - 2
    assert gc5["n_trials"] == 8 and gc5["n_subjects"] == 4 and gc5["n_populations"] == 2
    assert gc5["method"] == "mixed_model" and gc5["df_denominator"] == 2
    assert "by population, body40 + BA" in rep.markdown()


def test_a_renamed_step_error_column_is_an_error_naming_table_and_column():
    from types import SimpleNamespace

    from schemas.reads import MissingColumnError, require_columns

    renamed = SimpleNamespace(full_table_name="`mmc_gait`.`gait_metrics__step`",
                              heading=SimpleNamespace(names=["step_index", "step_width_err"]))
    with pytest.raises(MissingColumnError, match=r"gait_metrics__step.*'step_width_error'"):
        require_columns(renamed, "step_index", "step_width_error")


def test_bundle_adjustment_is_read_from_the_parameter_set():
    from compute.params import PARAMETER_SETS
    from pipeline.report.stats import bundle_adjustment_enabled

    default = PARAMETER_SETS["cpu_default"]
    assert bundle_adjustment_enabled(default.to_dict()) and bundle_adjustment_enabled(default.to_json())
    assert not bundle_adjustment_enabled(default.replace(camera_start_fraction=1.0).to_dict())
    assert not bundle_adjustment_enabled(default.replace(camera_learning_rate=0.0).to_dict())
