"""The report's figures from synthetic arrays: every function writes a PNG and a vector PDF (no database, no fit)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.report import figures

COORDINATES = ("pelvis_tilt", "hip_flexion_r", "hip_adduction_r", "knee_angle_r", "ankle_angle_r",
               "hip_flexion_l", "hip_adduction_l", "knee_angle_l", "ankle_angle_l")


def synthetic_cycles(n_strides: int, rng: np.random.Generator, knee_peak_deg: float = 60.0) -> np.ndarray:
    """(S, 101, Q) rad: gait-like curves (knee peak in swing) with stride-to-stride noise."""
    percent = np.linspace(0, 100, 101)
    base = np.stack([
        np.full_like(percent, 10.0),                                          # pelvis tilt
        30 * np.cos(2 * np.pi * percent / 100),                               # hip flexion
        5 * np.sin(2 * np.pi * percent / 100),                                # hip adduction
        knee_peak_deg * np.exp(-((percent - 72) / 12) ** 2) + 15 * np.exp(-((percent - 15) / 8) ** 2),
        10 * np.sin(2 * np.pi * (percent - 40) / 100),                        # ankle
    ], axis=-1)
    per_side = np.concatenate([base, base[:, 1:]], axis=-1)                   # (101, Q) same curve both sides
    return np.radians(per_side[None] + rng.normal(0, 3, (n_strides, 1, len(COORDINATES))))


def assert_png_and_vector_pdf(png) -> None:
    assert png.suffix == ".png" and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = png.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-64:]
    assert re.search(rb"/Type\s*/Page\b", pdf), "the PDF has no page"
    assert b"/Subtype /Image" not in pdf, "the PDF embeds a raster image: not vector"


def test_cycle_joint_angles_reads_each_strides_own_side():
    rng = np.random.default_rng(0)
    angles = synthetic_cycles(4, rng)
    angles[:, :, COORDINATES.index("knee_angle_l")] = 1.0
    sides = np.array(["L", "R", "L", "R"])
    picked = figures.cycle_joint_angles(angles, COORDINATES, sides)
    assert picked.shape == (4, 101, len(figures.GAIT_CYCLE_JOINTS))
    knee = [stem for stem, _, _ in figures.GAIT_CYCLE_JOINTS].index("knee_angle")
    np.testing.assert_allclose(picked[sides == "L", :, knee], 1.0)
    np.testing.assert_allclose(picked[sides == "R", :, knee], angles[sides == "R", :, COORDINATES.index("knee_angle_r")])
    with pytest.raises(KeyError, match="hip_adduction_l"):
        figures.cycle_joint_angles(angles[:, :, :6], COORDINATES[:6], sides)


def test_gait_cycle_angles_with_reference_band(tmp_path):
    rng = np.random.default_rng(1)
    angles = np.concatenate([synthetic_cycles(8, rng), synthetic_cycles(6, rng, knee_peak_deg=35.0)])
    sides = np.tile(["L", "R"], 7)
    groups = np.array(["control"] * 8 + ["neurologic"] * 6)
    picked = figures.cycle_joint_angles(angles, COORDINATES, sides)
    picked[0, 50:60] = np.nan  # a gap in one stride must not blank the mean
    reference = figures.mean_sd_band(picked[groups == "control"])
    assert reference[0].shape == (101, len(figures.GAIT_CYCLE_JOINTS)) and np.isfinite(reference[0]).all()
    path = figures.plot_gait_cycle_angles(picked, sides, groups, tmp_path / "cycles.png", reference=reference,
                                          reference_label="Control population (mean ± SD)",
                                          toe_off_percent=np.full(14, 61.0))
    assert_png_and_vector_pdf(path)


def test_spatiotemporal_by_population(tmp_path):
    rng = np.random.default_rng(2)
    rows = [dict(subject_id=f"S{s}", population=pop, side=side, walking_speed_m_s=speed + rng.normal(0, 0.05),
                 cadence_steps_per_min=100 + rng.normal(0, 5), stance_percent=60 + rng.normal(0, 2),
                 step_length_m=0.6 * speed + rng.normal(0, 0.02))
            for s, (pop, speed) in enumerate([("control", 1.3), ("control", 1.2), ("neurologic", 0.7), ("llpu", 1.0)])
            for side in "LR" for _ in range(2)]
    path = figures.plot_spatiotemporal_by_population(pd.DataFrame(rows), tmp_path / "spatiotemporal.png")
    assert_png_and_vector_pdf(path)
    with pytest.raises(KeyError, match="cadence_steps_per_min"):
        figures.plot_spatiotemporal_by_population(pd.DataFrame(rows).drop(columns="cadence_steps_per_min"),
                                                  tmp_path / "bad.png")


def test_trial_qc_page(tmp_path):
    rng = np.random.default_rng(3)
    n_cameras, n_frames, n_keypoints = 4, 90, 17
    times = np.arange(n_frames) / 30.0
    names = ["hip_flexion_l", "knee_angle_l", "ankle_angle_l", "hip_flexion_r", "knee_angle_r", "ankle_angle_r"]
    qpos = np.radians(30 * np.sin(2 * np.pi * times[:, None] + np.arange(len(names))))
    observed = rng.uniform(100, 900, (n_cameras, n_frames, n_keypoints, 2))
    predicted = observed + rng.normal(0, 2.0, observed.shape) * np.arange(1, n_cameras + 1)[:, None, None, None]
    confidence = rng.uniform(0.3, 1.0, (n_cameras, n_frames, n_keypoints))
    confidence[1, 30:50] = 0.0          # camera 1 loses the subject
    confidence[:, :, 5] = 0.0           # keypoint 5 never detected
    errors = figures.reprojection_errors_by_camera(predicted, observed, confidence)
    assert len(errors) == n_cameras and np.median(errors[3]) > np.median(errors[0])
    by_keypoint, by_time, edges = figures.missing_keypoint_shares(confidence)
    np.testing.assert_allclose(by_keypoint[:, 5], 1.0)
    assert by_time.shape == (n_cameras, edges.size - 1) and by_time[1].max() == 1.0
    gc_curve = np.clip(np.linspace(0.2, 1.0, 20), 0, 1)
    path = figures.plot_trial_qc(times, qpos, names, confidence, errors, gc_curve, tmp_path / "qc.png",
                                 camera_names=[f"cam_{c}" for c in range(n_cameras)], title="S01 walk01 — QC")
    assert_png_and_vector_pdf(path)


def test_every_figure_also_writes_pdf(tmp_path):
    path = figures.plot_gc_curves({"a": np.linspace(0, 1, 20)[None]}, tmp_path / "gc.png")
    assert_png_and_vector_pdf(path)


def test_gait_figures_from_report_frames_use_the_control_population_as_reference(tmp_path):
    rng = np.random.default_rng(4)
    angles = np.concatenate([synthetic_cycles(6, rng), synthetic_cycles(4, rng, knee_peak_deg=30.0)])
    strides = pd.DataFrame(dict(side=list("LR" * 5), population=["control"] * 6 + ["llpu"] * 4,
                                toe_off_percent=[60.0] * 9 + [None], angles=list(angles),
                                coordinate_names=[COORDINATES] * 10))
    spatiotemporal = pd.DataFrame(dict(subject_id=["S1", "S1", "S2", "S2"], population=["control"] * 2 + ["llpu"] * 2,
                                       walking_speed_m_s=[1.3, 1.2, 0.9, 0.8], cadence_steps_per_min=[110, 108, 95, 97],
                                       stance_percent=[60, 61, 65, 66], step_length_m=[0.7, 0.68, 0.5, 0.52]))
    paths = figures.gait_figures(strides, spatiotemporal, tmp_path, condition="body40 + BA")
    assert set(paths) == {"gait_cycle_angles", "spatiotemporal"}
    for path in paths.values():
        assert_png_and_vector_pdf(path)
    assert figures.gait_figures(pd.DataFrame(), pd.DataFrame(), tmp_path) == {}
