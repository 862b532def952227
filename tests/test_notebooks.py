"""The notebooks run against a small database built here: `population_queries` only reads, `demo_analysis` writes
only under `demo_output/` (including the report's gait figures, drawn from the gait tables).

The fixture inserts subjects, walking trials, fits and foot events directly (no fitting) with gait-like joint
angles, then populates ``GaitCycle`` and ``SpatiotemporalParameters`` through their own ``make``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.db

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
FPS, DURATION_S = 30.0, 5.0
COORDINATES = ("pelvis_tx", "pelvis_ty", "pelvis_tz", "pelvis_tilt", "hip_flexion_r", "hip_adduction_r",
               "knee_angle_r", "ankle_angle_r", "hip_flexion_l", "hip_adduction_l", "knee_angle_l", "ankle_angle_l")
# subject, population, stride time (s), step length (m), peak swing knee flexion (deg)
WALKERS = (("NB01", "control", 1.10, 0.65, 60.0), ("NB02", "control", 1.05, 0.70, 62.0),
           ("NB03", "neurologic", 1.40, 0.45, 35.0))


def gait_angles_deg(percent: np.ndarray, knee_peak_deg: float) -> dict[str, np.ndarray]:
    """Gait-like sagittal/frontal curves of one leg against % of its cycle (0 = its foot contact)."""
    phase = 2 * np.pi * percent / 100
    return dict(hip_flexion=25 * np.cos(phase) + 5, hip_adduction=5 * np.sin(phase),
                knee_angle=knee_peak_deg * np.exp(-((percent - 72) / 12) ** 2) + 15 * np.exp(-((percent - 15) / 8) ** 2),
                ankle_angle=10 * np.sin(2 * np.pi * (percent - 40) / 100))


def walking_trial(stride_time: float, step_length: float, knee_peak_deg: float):
    """(times (T,), qpos (T, Q) with COORDINATES, steps [dict(foot, contact_time, toe_off_time, heel_x, heel_y)])."""
    times = np.arange(int(DURATION_S * FPS)) / FPS
    first = {"R": 0.2, "L": 0.2 + stride_time / 2}
    qpos = np.zeros((times.size, len(COORDINATES)))
    qpos[:, 0] = step_length / stride_time * 2 * times
    qpos[:, 2] = 0.95
    qpos[:, 3] = np.radians(10 + 2 * np.sin(4 * np.pi * times / stride_time))
    steps = []
    for side, start in first.items():
        percent = 100 * ((times - start) % stride_time) / stride_time
        for stem, curve in gait_angles_deg(percent, knee_peak_deg).items():
            qpos[:, COORDINATES.index(f"{stem}_{side.lower()}")] = np.radians(curve)
        for k, contact in enumerate(np.arange(start, DURATION_S, stride_time)):
            toe_off = contact + 0.6 * stride_time
            steps.append(dict(foot=side, contact_time=float(contact),
                              toe_off_time=float(toe_off) if toe_off < DURATION_S else None,
                              heel_x=float(2 * step_length * (contact - start) / stride_time
                                           + (step_length if side == "L" else 0.0)),
                              heel_y=0.1 if side == "L" else -0.1))
    return times, qpos, sorted(steps, key=lambda s: s["contact_time"])


@pytest.fixture(scope="module")
def gait_lab(database):
    """Three walkers (two control, one neurologic), one fitted walk each, gait tables populated."""
    acq, model, fitting, gait = (database.schemas[m] for m in ("acquisition", "model", "fitting", "gait"))
    fitting.FitParams.ensure_defaults()
    keypoint_set, joints = next((r["keypoint_set"], tuple(r["joint_names"]))
                                for r in acq.KeypointSet.proj("joint_names").to_dicts(order_by="keypoint_set"))
    model.BaseModel.insert1(dict(base_model="nb40", model_version="0", mjcf_xml="<mujoco/>", body_names=["pelvis"],
                                 scale_group_names=["overall"], scale_matrix=np.ones((1, 1)), content_hash="e" * 40),
                            skip_duplicates=True)
    rng = np.random.default_rng(0)
    K = np.array([[1000.0, 0, 512], [0, 1000.0, 384], [0, 0, 1]])
    cameras = {"cam_0": (np.array([1.2, -1.2, 1.2]), np.array([0.0, 1.0, 4.0])),
               "cam_1": (np.array([1.2, 1.2, -1.2]), np.array([0.0, 1.0, 4.0]))}
    for subject, population, stride_time, step_length, knee_peak in WALKERS:
        session = dict(subject_id=subject, session_id="2024-05-02")
        acq.Subject.insert1(dict(subject_id=subject, population=population))
        acq.Session.insert1(session)
        for name, (rvec, tvec) in cameras.items():
            acq.Camera.insert1(dict(session, camera_name=name, image_width=1024, image_height=768, intrinsics=K,
                                    distortion=np.zeros(5), rotation=rvec, translation=tvec,
                                    calibration_file="calib.toml", calibration_format="anipose",
                                    calibration_unit="m", unit_inferred=False))
        times, qpos, steps = walking_trial(stride_time, step_length, knee_peak)
        trial = dict(session, trial_name="walk01")
        acq.Trial.insert1(dict(trial, activity="walk", keypoint_set=keypoint_set, fps=FPS, n_frames=times.size,
                               keypoints_file="kp", keypoints_format="npz"))
        for name in cameras:
            confidence = rng.uniform(0.2, 1, (times.size, len(joints))).astype(np.float32)
            confidence[40:60, :3] = 0  # a stretch of missing keypoints for the QC page
            acq.Keypoints.insert1(dict(trial, camera_name=name, points=rng.uniform(0, 1000, (times.size, len(joints), 2)),
                                       confidence=confidence, frame_index=np.arange(times.size), n_missing_frames=0))
        key = dict(session, base_model="nb40", params_name="cpu_default")
        fitting.FitTask.insert1(key)
        fitting.BilevelFit.insert1(dict(
            key, keypoint_set=keypoint_set, log_scale=np.zeros(8), scale_group_names=["overall"] * 8,
            offsets=np.zeros((len(joints), 3)), final_loss=1.0, final_losses={}, gc5=0.9, gc_curve=np.linspace(0.5, 1, 20),
            iterations=10, stop_reason="step budget: 10 steps", wall_time_s=1.0, seed=0, loss_history=np.zeros((1, 1)),
            loss_history_columns=["total"],
            code_version="test", package_versions={}, compute_host="test"), allow_direct_insert=True)
        trial_fit = dict(key, trial_name="walk01")
        fitting.BilevelFit.Trial.insert1(dict(
            trial_fit, times=times, joint_names=list(COORDINATES), qpos=qpos,
            markers=(rng.uniform(-0.3, 0.3, (times.size, len(joints), 3)) + [0.0, 0.0, 1.0]).astype(np.float32),
            network_weights=b"", network_config={}, gc5=0.9, gc_curve=np.linspace(0.5, 1, 20), final_loss=1.0),
            allow_direct_insert=True)
        gait.GaitMetrics.insert1(dict(trial_fit, n_contacts=len(steps), has_walkway=False, n_matched=0),
                                 allow_direct_insert=True)
        gait.GaitMetrics.Step.insert([dict(trial_fit, step_index=i, **s) for i, s in enumerate(steps)],
                                     allow_direct_insert=True)
    own = [{"subject_id": w[0]} for w in WALKERS]
    gait.GaitCycle.populate(own)
    gait.SpatiotemporalParameters.populate(own)
    return database


def run_notebook(name: str, cwd: Path, prefix: str, monkeypatch) -> None:
    import nbclient
    import nbformat

    monkeypatch.setenv("MMC_SCHEMA_PREFIX", prefix)  # the kernel inherits it: the notebook's first cell reads it
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()


def table_sizes(database) -> dict[str, int]:
    gait, fitting, acq = (database.schemas[m] for m in ("gait", "fitting", "acquisition"))
    return {t.__name__: len(t()) for t in (acq.Subject, acq.Trial, fitting.BilevelFit.Trial, gait.GaitMetrics,
                                           gait.GaitCycle, gait.GaitCycle.Stride, gait.SpatiotemporalParameters)}


def test_the_fixture_has_gait_cycles_of_every_walker(gait_lab):
    from schemas.reads import results

    strides = results.gait_cycle_strides([{"subject_id": w[0]} for w in WALKERS])
    assert {s["subject_id"] for s in strides} == {w[0] for w in WALKERS}
    assert all(np.asarray(s["angles"]).shape == (101, len(s["coordinate_names"])) for s in strides)
    rows = results.spatiotemporal_parameters({"subject_id": "NB03"})
    assert {r["side"] for r in rows} == {"L", "R"}
    assert rows[0]["walking_speed_m_s"] == pytest.approx(2 * 0.45 / 1.40, rel=0.05)


def test_population_queries_notebook_only_reads(gait_lab, db_prefix, tmp_path, monkeypatch):
    before = table_sizes(gait_lab)
    run_notebook("population_queries", tmp_path, db_prefix, monkeypatch)
    assert table_sizes(gait_lab) == before
    assert list(tmp_path.iterdir()) == []


def test_demo_analysis_notebook_writes_only_under_demo_output(gait_lab, db_prefix, tmp_path, monkeypatch):
    run_notebook("demo_analysis", tmp_path, db_prefix, monkeypatch)
    assert [p.name for p in tmp_path.iterdir()] == ["demo_output"]
    written = {p.relative_to(tmp_path / "demo_output" / "notebook").as_posix()
               for p in (tmp_path / "demo_output").rglob("*") if p.is_file()}
    # `mmc report` (report.build_report) draws the gait figures from the gait tables
    for name in ("report/report.md", "report/gait_cycle_angles.png", "report/gait_cycle_angles.pdf",
                 "report/spatiotemporal_by_population.png", "report/spatiotemporal_by_population.pdf"):
        assert name in written
    assert any(name.endswith("_qc.pdf") for name in written)
