"""Sparse keypoint sets: the posterior-SD flag of coordinates the images cannot determine is exported, and the
synthetic sit-to-stand activity used by the sparse-set benchmark (bench/bench_sparse.py, which holds the
set x activity x camera-count accuracy matrix against the acceptance targets) rises from a chair with the feet
planted.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from compute.fit.observability import weakly_observed


def test_weakly_observed_uses_degrees_for_angles_metres_for_translations_and_flags_nan():
    names = ("pelvis_tx", "pelvis_ty", "knee_angle_r", "lumbar_extension", "pro_sup_r")
    sd = np.array([0.01, 0.05, np.deg2rad(1.0), np.deg2rad(3.0), np.nan])
    assert list(weakly_observed(names, sd)) == [False, True, False, True, True]
    assert list(weakly_observed(names, sd, angle_sd_deg=5.0)) == [False, True, False, False, True]


def test_observability_is_exported_next_to_the_angles(tmp_path):
    from pipeline.exporters import TrialExport, export_trial

    names = ("pelvis_tx", "pelvis_tilt", "knee_angle_r", "pro_sup_r")
    sd = np.array([0.004, np.deg2rad(4.0), np.deg2rad(0.5), np.deg2rad(30.0)])   # m, rad
    times = np.arange(5) / 30.0
    written = export_trial(TrialExport("walk01", times, np.zeros((5, 4)), names, coordinate_sd=sd), tmp_path)
    table = pd.read_csv(written["observability_csv"]).set_index("coordinate")
    assert list(table.index) == list(names)
    assert list(table["unit"]) == ["m", "deg", "deg", "deg"]
    np.testing.assert_allclose(table["posterior_sd"], [0.004, 4.0, 0.5, 30.0], rtol=1e-5)
    assert list(table["determined_by_images"]) == [True, False, True, False]
    # without stored SDs (older fits) no observability file is written
    assert "observability_csv" not in export_trial(TrialExport("walk02", times, np.zeros((5, 4)), names), tmp_path)


def test_sit_to_stand_rises_from_a_chair_with_feet_planted():
    from compute import synthetic
    from compute.kinematics import load_body_model

    body = load_body_model("COCO17")
    config = synthetic.SyntheticSessionConfig(seed=3, n_cameras=2, marker_set="COCO17",
                                              trials=(synthetic.SyntheticTrialSpec("sts", "sit_to_stand", 3.0),))
    trial = synthetic.generate_session(config, body).trials[0]
    q = np.degrees(trial.qpos)
    hip, knee = q[:, body.joint_names.index("hip_flexion_r")], q[:, body.joint_names.index("knee_angle_r")]
    tilt = q[:, body.joint_names.index("pelvis_tilt")]
    assert abs(hip[0] - 90) < 1 and abs(knee[0] - 90) < 1                 # seated
    assert abs(hip[-1]) < 1 and abs(knee[-1]) < 1                         # standing
    assert hip.max() > 105 and tilt.min() < -20                           # trunk leans forward (anterior tilt)
    height = trial.markers[:, body.marker_names.index("LHip"), 2]
    assert height[-1] - height[0] > 0.25                                  # the hips rise from the seat
    for feet in (trial.heel_markers, trial.toe_markers):                  # feet stay on the floor
        assert np.ptp(feet[..., 2], axis=0).max() < 0.02 and np.ptp(feet[..., 0], axis=0).max() < 0.03
    assert trial.footfalls == []
