"""End-to-end fit of the real Caliscope recording (SOURCE.md): world alignment at ingest, then fit_session.

Ingest without a database (pipeline.manifest.plan_session, world_alignment = "auto"), fit BLAZEPOSE33 0-32
(confidence 1 where present) with cpu_default shortened to 600 steps (cold ~3 min on a loaded 2-core box, of which
~2.4 min is compilation; the steps take ~10 s). Bounds are set from the measured values (H9, seed 0):
per-port median reprojection 10.7 / 19.9 / 12.6 / 8.4 px vs Caliscope's triangulation 13.8 / 18.0 / 14.7 / 7.7
(ratio <= 1.11, asserted <= 1.5); 3D distance to xyz_HOLISTIC: face/shoulders 1-4 cm, median over all body
points 2.7 cm (asserted < 5 cm); legs are poorly determined (mostly 2 views): thigh 0.23 / 0.30 m and shank
0.13 / 0.16 m vs the reference 0.39 / 0.31 m - an expected failure, recorded below.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

MANIFEST = Path(__file__).parent / "data" / "caliscope_manifest.toml"
RECORDING = Path(__file__).resolve().parents[2] / "shared" / "data" / "caliscope_4cam_holistic" / "tests" / \
    "sessions" / "4_cam_recording"
XYZ = RECORDING / "recordings" / "recording_1" / "HOLISTIC" / "xyz_HOLISTIC.csv"

pytestmark = pytest.mark.skipif(not XYZ.is_file(), reason=f"shared Caliscope data not found at {RECORDING} "
                                                          f"(../shared is absent)")
BASELINE_MEDIAN_PX = np.array([13.8, 18.0, 14.7, 7.7])  # SOURCE.md, body points 0-32, ports 0..3
STEPS = 600


@pytest.fixture(scope="module")
def fitted():
    from compute.cameras import make_camera
    from compute.fit import TrialObservations, fit_session
    from compute.kinematics import load_body_model
    from compute.params import PARAMETER_SETS
    from pipeline.manifest import plan_session

    plan = plan_session(MANIFEST)
    rows = {row["camera_name"]: row for row in plan.cameras}
    trial = plan.trials[0]
    cams = [rows[k["camera_name"]] for k in trial.keypoints]
    rig = make_camera(np.stack([c["intrinsics"] for c in cams]), np.stack([c["distortion"] for c in cams]),
                      np.stack([c["rotation"] for c in cams]), np.stack([c["translation"] for c in cams]),
                      np.array([[c["image_width"], c["image_height"]] for c in cams], np.float64))
    keypoints = np.stack([k["points"] for k in trial.keypoints])
    confidence = np.stack([k["confidence"] for k in trial.keypoints])
    params = dataclasses.replace(PARAMETER_SETS["cpu_default"], steps=STEPS)
    fit = fit_session(load_body_model("BLAZEPOSE33"), rig,
                      [TrialObservations(trial.trial["trial_name"], trial.trial["fps"], keypoints, confidence)],
                      params, seed=0)
    return plan, fit


def reference_points() -> np.ndarray:
    import pandas as pd

    table = pd.read_csv(XYZ)
    table = table[table.point_id < 33]
    ref = np.full((267, 33, 3), np.nan)
    ref[table.sync_index.to_numpy(), table.point_id.to_numpy()] = table[["x_coord", "y_coord", "z_coord"]].to_numpy()
    return ref


def test_reprojection_close_to_caliscope_baseline(fitted):
    _, fit = fitted
    median = np.asarray(fit.trials[0].per_camera_median_error_px)
    print("per-port median px", median.round(1), "baseline", BASELINE_MEDIAN_PX, "fit time s", fit.wall_time_s)
    assert np.all(median <= 1.5 * BASELINE_MEDIAN_PX), median


def test_markers_near_caliscope_triangulation_and_bones_constant(fitted):
    plan, fit = fitted
    alignment = plan.session["world_alignment"]
    R_a, t_a = np.array(alignment["rotation"]), np.array(alignment["translation"])
    markers = fit.trials[0].markers
    in_calibration_world = (markers - t_a) @ R_a  # X = R_a^T (X' - t_a)
    distance = np.linalg.norm(in_calibration_world - reference_points(), axis=-1)
    print("3D distance to xyz_HOLISTIC, median m", np.nanmedian(distance), np.nanmedian(distance, axis=0).round(3))
    assert np.nanmedian(distance) < 0.05
    assert np.nanmedian(distance[:, :13]) < 0.03  # face and shoulders
    for a, b in ((23, 25), (24, 26), (25, 27), (26, 28), (11, 12), (11, 13), (13, 15)):
        length = np.linalg.norm(markers[:, a] - markers[:, b], axis=-1)
        assert length.std() < 1e-3, (a, b, length.std())  # rigid segments: constant by construction
    # the floor is at z = 0 and up is +Z: the subject's head is above the hips, which are above the ankles
    z = np.median(markers[..., 2], axis=0)
    assert z[0] > z[23] > z[27] > -0.05


@pytest.mark.xfail(reason="measured (600 steps): thigh 0.23/0.30 m, shank 0.13/0.16 m vs reference 0.39/0.31 m; "
                          "legs seen by ~2 cameras and marker offsets absorb them (H5 fit tuning)", strict=False)
def test_leg_lengths_near_reference(fitted):
    _, fit = fitted
    markers = fit.trials[0].markers
    thigh = [np.linalg.norm(markers[:, a] - markers[:, b], axis=-1).mean() for a, b in ((23, 25), (24, 26))]
    shank = [np.linalg.norm(markers[:, a] - markers[:, b], axis=-1).mean() for a, b in ((25, 27), (26, 28))]
    np.testing.assert_allclose(thigh, 0.39, rtol=0.15)
    np.testing.assert_allclose(shank, 0.31, rtol=0.15)
