"""GaitCycle and SpatiotemporalParameters on the real database, against the synthetic generator's truth.

Two synthetic sessions (one control, one hemiparetic subject stored as ``neurologic``; one straight walk each,
2 cameras, MOVI87) are inserted into the acquisition tables, and each gets a ``BilevelFit`` row holding the
generator's TRUE joint angles and markers, inserted directly: a perfect fit, so the tables are tested without
the minutes a real fit takes on a shared CPU (fit accuracy is tested in the fitting tests). ``GaitMetrics``,
``GaitCycle`` and ``SpatiotemporalParameters`` are then populated as ``mmc populate`` does.

Truth and tolerances: the walk starts from standing and stops after the walkway, so the per-trial means include
acceleration and deceleration strides and the generator's nominal (steady) speed is not the trial's speed.
Cadence must be within 5 % of the generator's nominal cadence; walking speed within 5 % of the speed computed
from the generator's own footfall record (its contact times and heel positions, same stride rules).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytestmark = pytest.mark.db

PARAMS_NAME = "test_truth"
JOINT_NAMES: list[str] = []  # qpos column order of the generator, filled by the fixture
POPULATIONS = {"GT_CTRL": ("control", "control"), "GT_NEURO": ("hemiparetic", "neurologic")}


def _insert_true_fit(session, session_key: dict, base_model: str) -> dict:
    """FitTask + BilevelFit (+ Trial parts) whose trajectories are the generator's truth."""
    from compute.params import PARAMETER_SETS
    from schemas import fitting

    fitting.FitParams.insert_params(PARAMS_NAME, PARAMETER_SETS["cpu_default"].replace(steps=1),
                                    "tests: rows inserted from the synthetic truth")
    key = dict(session_key, base_model=base_model, params_name=PARAMS_NAME)
    fitting.FitTask.insert1(key)
    fitting.BilevelFit.insert1(dict(
        key, keypoint_set="MOVI87", log_scale=np.asarray(session.log_scale, np.float64),
        scale_group_names=[f"g{i}" for i in range(len(session.log_scale))],
        offsets=np.asarray(session.offsets, np.float64), final_loss=0.0, final_losses={}, gc5=1.0,
        gc_curve=np.ones(20), iterations=0, stop_reason="synthetic truth", wall_time_s=0.0, seed=0,
        loss_history=np.zeros((0, 1)),
        loss_history_columns=["total"], code_version="test", package_versions={}, compute_host="test"),
        allow_direct_insert=True)
    for trial in session.trials:
        fitting.BilevelFit.Trial.insert1(dict(
            key, trial_name=trial.name, times=np.asarray(trial.times, np.float64),
            joint_names=list(session.joint_names), qpos=np.asarray(trial.qpos, np.float64),
            markers=np.asarray(trial.markers, np.float64), network_weights=b"", network_config={}, gc5=1.0,
            gc_curve=np.ones(20), final_loss=0.0), allow_direct_insert=True)
    return key


@pytest.fixture(scope="module")
def truth(activated_schemas):
    """{subject_id: (fit key, synthetic trial)} with GaitMetrics, GaitCycle, SpatiotemporalParameters filled."""
    from compute import synthetic
    from compute.kinematics import load_body_model
    from pipeline.populate import computed_tables
    from schemas import model
    from tests.fit_fixtures import insert_synthetic_session

    base_model = model.ensure_default_model()
    body = load_body_model("MOVI87")
    out = {}
    for seed, (subject_id, (style, population)) in enumerate(POPULATIONS.items(), start=31):
        config = synthetic.SyntheticSessionConfig(seed=seed, population=style, n_cameras=2,
                                                  trials=synthetic.default_trials(1, static=False, tug=False))
        session = synthetic.generate_session(config, body)
        session_key = insert_synthetic_session(dataclasses.replace(session, population=population), subject_id)
        out[subject_id] = (_insert_true_fit(session, session_key, base_model), session.trials[0])
    JOINT_NAMES[:] = body.joint_names
    tables = computed_tables(activated_schemas)
    for name in ("GaitMetrics", "GaitCycle", "SpatiotemporalParameters"):
        for key, _ in out.values():
            result = tables[name].populate(key, suppress_errors=True)
            assert result["success_count"] == 1, (name, result["error_list"])
    return out


def _true_speed(trial) -> dict[str, float]:
    """{side: walking speed, m/s} from the generator's own footfall record (same strides rule as the table)."""
    from compute import gait
    from compute.gait_cycle import find_strides
    from compute.spatiotemporal import spatiotemporal_parameters

    rows = trial.footfalls
    footfalls = gait.make_footfalls([f["foot"] for f in rows], [f["contact_time"] for f in rows],
                                    [f["heel_world"][:2] for f in rows], [f["toe_world"][:2] for f in rows],
                                    [f["toe_off_time"] for f in rows])
    return {side: p.walking_speed_m_s for side, p in
            spatiotemporal_parameters(footfalls, find_strides(footfalls)).items()}


def test_spatiotemporal_parameters_match_the_generator(truth):
    from schemas import gait

    for subject_id, (key, trial) in truth.items():
        rows = (gait.SpatiotemporalParameters & key).to_dicts(order_by="side")
        true_speed = _true_speed(trial)
        assert [r["side"] for r in rows] == ["L", "R"]
        for row in rows:
            assert row["n_strides"] >= 2, (subject_id, row)
            assert row["cadence_steps_per_min"] == pytest.approx(trial.cadence_steps_per_min, rel=0.05), subject_id
            assert row["walking_speed_m_s"] == pytest.approx(true_speed[row["side"]], rel=0.05), subject_id
            assert row["swing_percent"] == pytest.approx(100.0 - row["stance_percent"], abs=1e-9)
            assert 0.0 < row["step_width_m"] < 0.4 and 0.2 < row["step_length_m"] < 1.2
            assert 0.0 < row["knee_flexion_rom_rad"] < np.deg2rad(90.0), subject_id


def test_gait_cycles_hold_one_normalised_curve_per_stride(truth):
    from schemas import gait

    for key, trial in truth.values():
        master = (gait.GaitCycle & key).fetch1()
        strides = (gait.GaitCycle.Stride & key).to_dicts(order_by="stride_index")
        assert master["n_strides"] == len(strides) >= 4
        names = master["coordinate_names"]
        assert "knee_angle_r" in names and not any(n.endswith(("_tx", "_ty", "_tz")) for n in names)
        per_side = {side: sum(1 for s in strides if s["side"] == side) for side in "LR"}
        assert per_side == {side: row["n_strides"] for side, row in zip("LR", (
            gait.SpatiotemporalParameters & key).to_dicts(order_by="side"))}
        for stride in strides:
            angles = np.asarray(stride["angles"])
            assert angles.shape == (101, len(names))
            assert 0.8 < stride["end_time"] - stride["start_time"] < 2.0
            assert 30.0 < stride["toe_off_percent"] < 80.0  # stance %, first strides from standing included
            # 0 % and 100 % of the cycle are the stride's two contacts: the stored curve starts and ends on the
            # true joint angles at those instants (linear interpolation between frames: within 0.02 rad)
            frames = np.arange(trial.qpos.shape[0])
            for percent, time in ((0, stride["start_time"]), (100, stride["end_time"])):
                for name in ("knee_angle_r", "hip_flexion_l"):
                    true = np.interp(time * trial.fps, frames, trial.qpos[:, JOINT_NAMES.index(name)])
                    assert angles[percent, names.index(name)] == pytest.approx(true, abs=0.02), (name, percent)


def test_parameters_are_queryable_by_population(truth):
    from schemas import acquisition, gait

    neurologic = (gait.SpatiotemporalParameters * acquisition.Subject) & 'population="neurologic"'
    assert {r["subject_id"] for r in neurologic.to_dicts()} == {"GT_NEURO"}
    assert len(neurologic) == 2
    control = (gait.GaitCycle.Stride * acquisition.Subject) & 'population="control"'
    assert {r["subject_id"] for r in control.proj().to_dicts()} == {"GT_CTRL"}
