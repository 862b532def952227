"""One restriction syntax (``--restrict ATTR=VALUE``, ``--where SQL``) for populate, export and report, checked
against the real table headings on the real database; export file names never collide; bad report dates are
one-line errors. Every rejected command leaves the database and the output folder unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.exporters import file_stem, read_mot

TRIALS = ("walk 01", "walk_01")  # distinct trial names whose sanitised file names used to be the same
N_FRAMES = 12


@pytest.fixture(scope="module")
def two_fits(database):
    """One subject, one session, two fitted trials ``walk 01`` and ``walk_01`` (rows inserted directly, no fit);
    trial ``walk 01`` has qpos 0, trial ``walk_01`` qpos 1, so the exported files tell which trial they hold."""
    acq, model, fitting = (database.schemas[m] for m in ("acquisition", "model", "fitting"))
    fitting.FitParams.ensure_defaults()
    keypoint_set = acq.KeypointSet.proj("joint_names").to_dicts()[0]["keypoint_set"]
    joints = list(acq.KeypointSet.proj("joint_names").to_dicts()[0]["joint_names"])
    model.BaseModel.insert1(dict(base_model="restr40", model_version="0", mjcf_xml="<mujoco/>",
                                 body_names=["pelvis"], scale_group_names=["overall"], scale_matrix=np.ones((1, 1)),
                                 content_hash="d" * 40), skip_duplicates=True)
    session = dict(subject_id="R01", session_id="2024-03-01")
    acq.Subject.insert1(dict(subject_id="R01", population="control"))
    acq.Session.insert1(session)
    key = dict(session, base_model="restr40", params_name="cpu_default")
    fitting.FitTask.insert1(key)
    fitting.BilevelFit.insert1(dict(
        key, keypoint_set=keypoint_set, log_scale=np.zeros(8), scale_group_names=["overall"] * 8,
        offsets=np.zeros((len(joints), 3)), final_loss=1.0, final_losses={}, gc5=0.7, gc_curve=np.zeros(20),
        iterations=1, stop_reason="test", wall_time_s=1.0, seed=0, loss_history=np.zeros((1, 1)),
        loss_history_columns=["total"], code_version="test", package_versions={}, compute_host="test"), allow_direct_insert=True)
    for value, trial_name in enumerate(TRIALS):
        acq.Trial.insert1(dict(session, trial_name=trial_name, activity="walk", keypoint_set=keypoint_set, fps=30.0,
                               n_frames=N_FRAMES, keypoints_file="kp", keypoints_format="npz"))
        fitting.BilevelFit.Trial.insert1(dict(
            key, trial_name=trial_name, times=np.arange(N_FRAMES) / 30.0, joint_names=joints,
            qpos=np.full((N_FRAMES, len(joints)), float(value)), markers=np.zeros((N_FRAMES, len(joints), 3),
                                                                                  np.float32),
            network_weights=b"", network_config={}, gc5=0.7, gc_curve=np.zeros(20), final_loss=1.0),
            allow_direct_insert=True)
    return database


def _row_counts(database) -> dict[str, int]:
    acq, fitting = database.schemas["acquisition"], database.schemas["fitting"]
    return {"FitTask": len(fitting.FitTask()), "BilevelFit": len(fitting.BilevelFit()),
            "BilevelFit.Trial": len(fitting.BilevelFit.Trial()), "Session": len(acq.Session()),
            "jobs": len(fitting.BilevelFit.jobs)}


def _rejected(argv: list[str], database, capsys, *fragments: str) -> str:
    """Run ``mmc argv``; it must exit 2 with one line naming every fragment and change nothing."""
    before = _row_counts(database)
    capsys.readouterr()
    assert main(["--prefix", database.prefix, *argv]) == 2
    err = capsys.readouterr().err.strip()
    with capsys.disabled():
        print(f"\n  mmc {' '.join(argv)}\n    -> {err}")
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    assert _row_counts(database) == before
    return err


# ------------------------------------------------------------------------------------------------- export
def test_file_stems_are_distinct_for_names_that_sanitise_alike():
    assert file_stem("walk_01") == "walk_01"
    assert file_stem("walk 01").startswith("walk_01-") and file_stem("walk 01") != file_stem("walk_01")
    assert file_stem("walk/01") != file_stem("walk 01")


def test_export_writes_one_set_of_files_per_trial(two_fits, tmp_path, capsys):
    argv = ["--prefix", two_fits.prefix, "export", str(tmp_path), "--no-osim", "--restrict", "subject_id=R01"]
    assert main(argv) == 0
    mots = sorted(tmp_path.glob("*.mot"))
    assert len(mots) == 2, capsys.readouterr().out
    values = sorted(float(read_mot(p)[1].iloc[0, -1]) for p in mots)
    np.testing.assert_allclose(values, [0.0, np.degrees(1.0)], atol=1e-6)  # both trials present: nothing overwritten


def test_export_restriction_selects_one_trial_by_typed_value(two_fits, tmp_path):
    assert main(["--prefix", two_fits.prefix, "export", str(tmp_path), "--no-osim", "--restrict", "trial_name=walk 01",
                 "--restrict", "subject_id=R01"]) == 0
    assert len(list(tmp_path.glob("*.mot"))) == 1


def test_export_misspelt_attribute_is_an_error(two_fits, tmp_path, capsys):
    out = tmp_path / "out"
    _rejected(["export", str(out), "--restrict", "subjct_id=R01"], two_fits, capsys,
              "--restrict", "'subjct_id'", "subject_id", "trial_name")
    assert not out.exists()


def test_export_value_of_the_wrong_type_is_an_error(two_fits, tmp_path, capsys):
    _rejected(["export", str(tmp_path / "out"), "--restrict", "gc5=high"], two_fits, capsys, "gc5", "a number")


def test_export_bad_sql_is_an_error(two_fits, tmp_path, capsys):
    _rejected(["export", str(tmp_path / "out"), "--where", "subjct_id = 'R01'"], two_fits, capsys,
              "--where", "subjct_id")


def test_export_malformed_assignment_is_an_error(two_fits, tmp_path, capsys):
    _rejected(["export", str(tmp_path / "out"), "--restrict", "subject_id"], two_fits, capsys, "ATTR=VALUE")


# ----------------------------------------------------------------------------------------------- populate
def test_populate_misspelt_attribute_is_an_error(two_fits, capsys):
    _rejected(["populate", "--restrict", "subjct_id=R01"], two_fits, capsys, "'subjct_id'", "subject_id")


def test_populate_attribute_of_no_selected_table_is_an_error(two_fits, capsys):
    # BilevelFit's key source (FitTask) has no trial_name: the restriction cannot choose BilevelFit keys
    _rejected(["populate", "BilevelFit", "--restrict", "trial_name=walk_01"], two_fits, capsys, "'trial_name'")


def test_populate_invalid_sql_is_an_error(two_fits, capsys):
    _rejected(["populate", "--where", "subject_id = = 'R01'"], two_fits, capsys, "--where")
    _rejected(["populate", "--where", "subjct_id = 'R01'"], two_fits, capsys, "--where", "subjct_id")


def test_worker_misspelt_attribute_is_an_error(two_fits, capsys):
    _rejected(["worker", "--exit-when-idle", "--restrict", "subjct_id=R01"], two_fits, capsys, "'subjct_id'")


def test_populate_valid_restriction_runs(two_fits, capsys):
    assert main(["--prefix", two_fits.prefix, "populate", "--tasks-only", "--restrict", "subject_id=R01"]) == 0


# ------------------------------------------------------------------------------------------------- report
@pytest.mark.parametrize("option", ["--from", "--to"])
def test_report_invalid_date_is_a_one_line_error(two_fits, tmp_path, capsys, option):
    _rejected(["report", option, "2024-13-01", "--out", str(tmp_path / "r"), "--no-figures"], two_fits, capsys,
              option, "YYYY-MM-DD", "2024-13-01")
    assert not (tmp_path / "r").exists()


def test_report_misspelt_attribute_is_an_error(two_fits, tmp_path, capsys):
    _rejected(["report", "--restrict", "subjct_id=R01", "--out", str(tmp_path / "r"), "--no-figures"], two_fits,
              capsys, "'subjct_id'", "subject_id")


def test_sql_habit_quotes_are_dropped_and_sql_conditions_point_to_where(two_fits, tmp_path, capsys):
    assert main(["--prefix", two_fits.prefix, "export", str(tmp_path), "--no-osim",
                 "--restrict", "trial_name='walk_01'"]) == 0
    assert len(list(tmp_path.glob("*.mot"))) == 1
    _rejected(["export", str(tmp_path / "out"), "--restrict", "session_id >= '2024-01-01'"], two_fits, capsys,
              "ATTR=VALUE", "--where")
    assert main(["--prefix", two_fits.prefix, "export", str(tmp_path / "w"), "--no-osim",
                 "--where", "session_id >= '2024-01-01'", "--where", "subject_id = 'R01'"]) == 0
    assert len(list((tmp_path / "w").glob("*.mot"))) == 2
