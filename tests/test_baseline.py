"""Two-stage baseline (triangulation + per-frame IK): same outputs as the end-to-end fit, sane accuracy."""
from __future__ import annotations

import numpy as np

from compute import synthetic
from compute.fit import TrialObservations, fit_two_stage
from compute.kinematics import load_body_model
from compute.params import PARAMETER_SETS


def test_two_stage_recovers_walking_pose_from_clean_keypoints():
    body = load_body_model("MOVI87")
    config = synthetic.SyntheticSessionConfig(
        seed=21, n_cameras=8, pixel_noise_px=0.5, drop_fraction=0.0, outlier_fraction=0.0,
        trials=synthetic.default_trials(n_walks=1, static=False, tug=False, duration_s=1.5))
    session = synthetic.generate_session(config, body)
    trials = [TrialObservations(t.name, t.fps, t.keypoints, t.confidence) for t in session.trials]
    fit = fit_two_stage(body, session.cameras_given, trials, PARAMETER_SETS["cpu_default"])
    truth = session.trials[0]
    assert fit.trials[0].qpos.shape == truth.qpos.shape and fit.gc_curve.shape == (20,)
    root = np.sqrt(np.mean(np.sum((fit.trials[0].qpos[:, :3] - truth.qpos[:, :3]) ** 2, -1)))
    knee = np.rad2deg(np.sqrt(np.mean((fit.trials[0].qpos[:, 9] - truth.qpos[:, 9]) ** 2)))
    assert body.joint_names[9] == "knee_angle_r"
    assert root < 0.03 and knee < 5.0, (root, knee)
    assert fit.gc5 > 0.5
