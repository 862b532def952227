"""End-to-end fit of the real Caliscope recording (SOURCE.md): world alignment at ingest, then fit_session.

Ingest without a database (pipeline.manifest.plan_session, world_alignment = "auto": the subject sits, up is
taken from the cameras), fit BLAZEPOSE33 0-32 (confidence 1 where present) with cpu_sparse (the parameter set
``mmc populate`` gives a sparse keypoint set). Measured (seed 0): per-port median reprojection 5.7 / 11.2 / 7.5 /
4.6 px against 13.8 / 18.0 / 14.7 / 7.7 px for Caliscope's own unconstrained triangulation (asserted: no port
worse than it); lumbar extension +0.2 deg, hips 72-75 deg and knees 93-100 deg flexed (sitting; asserted: lumbar
within 15 deg of neutral); thigh 0.35 / 0.43 m and shank 0.31 / 0.24 m against 0.39 / 0.43 and 0.31 / 0.23 m in
Caliscope's triangulation (asserted within 15 %); 3D distance to it after a similarity alignment 1.8 cm median
(asserted < 3 cm).
"""
from __future__ import annotations

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


@pytest.fixture(scope="module")
def fitted():
    from compute.cameras import make_camera
    from compute.fit import TrialObservations, fit_session
    from compute.kinematics import load_body_model
    from compute.markersets import is_sparse
    from compute.params import PARAMETER_SETS, default_params_name
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
    params = PARAMETER_SETS[default_params_name(is_sparse("BLAZEPOSE33"))]   # what mmc populate uses: cpu_sparse
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
    # a rigid, scaled skeleton reprojects at least as well as Caliscope's unconstrained per-point triangulation
    assert np.all(median <= BASELINE_MEDIAN_PX), median


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Umeyama: the similarity transform of ``source`` (N,3) that best matches ``target`` (N,3), applied."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    xs, xt = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(xt.T @ xs / len(source))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(sigma) @ d) / xs.var(0).sum()
    return scale * source @ rotation.T + (mu_t - scale * rotation @ mu_s)


def test_markers_near_caliscope_triangulation_and_bones_constant(fitted):
    plan, fit = fitted
    alignment = plan.session["world_alignment"]
    R_a, t_a = np.array(alignment["rotation"]), np.array(alignment["translation"])
    markers = fit.trials[0].markers
    in_calibration_world = (markers - t_a) @ R_a  # X = R_a^T (X' - t_a)
    ref = reference_points()
    # Bundle adjustment moves the reconstruction's frame against the input calibration by a few cm (measured:
    # 1.2 cm median distance without it, 5 cm with it, the same 4-5 cm on the face): compare shapes after the
    # best similarity transform, as one compares two reconstructions of different calibrations.
    both = np.isfinite(ref).all(-1)
    aligned = np.full_like(in_calibration_world, np.nan)
    aligned[both] = similarity_align(in_calibration_world[both], ref[both])
    distance = np.linalg.norm(aligned - ref, axis=-1)
    print("3D distance to xyz_HOLISTIC after similarity alignment, median m", np.nanmedian(distance),
          np.nanmedian(distance, axis=0).round(3))
    assert np.nanmedian(distance) < 0.03
    assert np.nanmedian(distance[:, :13]) < 0.03  # face and shoulders
    from compute.kinematics import load_body_model

    # markers on one body keep their distances exactly (Caliscope's triangulated "bones" vary by 1-2.5 cm)
    body_ids = np.asarray(load_body_model("BLAZEPOSE33").marker_body_ids)
    pairs = [(a, b) for a in range(33) for b in range(a + 1, 33) if body_ids[a] == body_ids[b]]
    assert len(pairs) > 20
    for a, b in pairs:
        length = np.linalg.norm(markers[:, a] - markers[:, b], axis=-1)
        assert length.std() < 1e-4, (a, b, length.std())
    # the floor is at z = 0 and up is +Z: the subject's head is above the hips, which are above the ankles
    z = np.median(markers[..., 2], axis=0)
    assert z[0] > z[23] > z[27] > -0.05


def test_leg_lengths_near_caliscope_triangulation(fitted):
    """Thigh and shank of the scaled model within 15 % of the same segments in Caliscope's triangulation."""
    _, fit = fitted
    markers, ref = fit.trials[0].markers, reference_points()
    for a, b in ((23, 25), (24, 26), (25, 27), (26, 28)):  # thighs (hip-knee), shanks (knee-ankle)
        fitted_length = np.linalg.norm(markers[:, a] - markers[:, b], axis=-1).mean()
        reference_length = np.nanmedian(np.linalg.norm(ref[:, a] - ref[:, b], axis=-1))
        print("segment", a, b, "fit", round(float(fitted_length), 3), "caliscope", round(float(reference_length), 3))
        assert abs(fitted_length / reference_length - 1) < 0.15, (a, b, fitted_length, reference_length)


def test_sitting_posture_is_recovered(fitted):
    """The subject sits with hips and knees flexed (SOURCE.md): the fit must not fold the legs backwards."""
    _, fit = fitted
    from compute.kinematics import JOINT_NAMES

    median_deg = np.degrees(np.median(fit.trials[0].qpos, axis=0))
    angles = dict(zip(JOINT_NAMES, median_deg))
    for side in ("r", "l"):
        assert 40 < angles[f"hip_flexion_{side}"] < 110, angles
        assert 60 < angles[f"knee_angle_{side}"] < 120, angles
    # sitting upright: the lumbar spine within 15 deg of neutral (with BLAZEPOSE33's two hip points the images
    # barely see it: posture priors of cpu_sparse; measured -2.0 deg, hips 69-70 deg, knees 92-107 deg)
    assert abs(angles["lumbar_extension"]) < 15, angles
