"""Benchmark of sparse keypoint sets: joint-angle RMSE per marker set x DoF x activity x camera count.

Usage:  .venv/bin/python bench/bench_sparse.py [--sets BODY25B COCO17 ...] [--cameras 8 4] [--params cpu_sparse]
            [--steps N] [--swap-fraction 0.05] [--prior-scale 1.0] [--lumbar-neutral DEG] [--detail]
Writes markdown tables to stdout.

* Session per (marker set, camera count): synthetic control subject, 1.5 px noise, 10 % dropped, 3 % outliers,
  one walk (4 s), one quiet-standing trial (3 s) and one sit-to-stand (3 s), all fitted together.
* Optionally ``--swap-fraction f`` exchanges the left/right keypoints of a fraction f of the frames in camera 0
  (a single-view detector's left/right swap); cpu_sparse corrects them before the fit.
* Reported per activity: RMSE (deg) against the true trajectory of the DoF groups of the acceptance targets
  (``compute.synthetic.acceptance``: pelvis tilt, lumbar flex/ext, hip/knee/ankle flexion <= 5 deg, hip
  adduction/rotation <= 6, shoulder flexion/adduction, humeral rotation and elbow <= 8; x1.5 with 4 cameras), and
  the median posterior SD (deg) that the fit stores for each group (``TrialFit.coordinate_sd_rad``: large = the
  images do not determine it and the prior sets it); with ``--detail`` the mean truth and mean error (bias) of
  every coordinate, which separates a prior's constant offset from tracking error.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from pipeline.jax_setup import configure_jax  # noqa: E402  (before JAX starts: XLA options, cache)

configure_jax()


import numpy as np  # noqa: E402

from compute.fit import TrialObservations, fit_session  # noqa: E402
from compute.kinematics import load_body_model  # noqa: E402
from compute.params import PARAMETER_SETS  # noqa: E402
from compute.synthetic import generate_session  # noqa: E402
from compute.synthetic.acceptance import (DOF_GROUPS as GROUPS, angle_rmse_by_group,  # noqa: E402
                                          sparse_session_config, swap_left_right, target_deg)

SPARSE_SETS = ("BODY25B", "HALPE26", "COCO17", "BLAZEPOSE33")


def observations(session, body, swap_fraction: float = 0.0, swap_camera: int = 0,
                 seed: int = 0) -> list[TrialObservations]:
    """Fit inputs of the session's trials; ``swap_fraction`` of the frames of ``swap_camera`` get their
    left/right keypoints exchanged."""
    rng = np.random.default_rng(seed)
    out = []
    for t in session.trials:
        keypoints, confidence = np.array(t.keypoints, np.float32), np.array(t.confidence, np.float32)
        if swap_fraction > 0:
            keypoints, confidence, _ = swap_left_right(keypoints, confidence, body.marker_names, swap_fraction,
                                                       swap_camera, rng)
        out.append(TrialObservations(t.name, t.fps, keypoints, confidence))
    return out


def rmse_table(fit, session, body) -> dict[str, dict[str, float]]:
    """{activity: {group: RMSE deg}} of the fitted trajectories against the truth."""
    return {tr.activity: angle_rmse_by_group(tf.qpos, tr.qpos, body.joint_names)
            for tf, tr in zip(fit.trials, session.trials)}


def bias_lines(fit, session, body, coordinates: tuple[str, ...]) -> list[str]:
    """Per activity and coordinate: mean truth, mean fit error and RMSE (deg), one markdown row each."""
    lines = []
    for tf, tr in zip(fit.trials, session.trials):
        for name in coordinates:
            if name in body.joint_names:
                i = body.joint_names.index(name)
                err = np.rad2deg(tf.qpos[:, i] - tr.qpos[:, i])
                lines.append(f"| {tr.activity} | {name} | {np.rad2deg(tr.qpos[:, i]).mean():.1f} | {err.mean():.1f} "
                             f"| {np.sqrt(np.mean(err ** 2)):.1f} |")
    return lines


def sd_table(fit, body) -> dict[str, float]:
    """{group: median posterior SD deg over trials and the group's coordinates}."""
    sd = np.stack([tf.coordinate_sd_rad for tf in fit.trials])
    out = {}
    for group, (names, _) in GROUPS.items():
        idx = [body.joint_names.index(n) for n in names if n in body.joint_names]
        if idx:
            out[group] = float(np.rad2deg(np.median(sd[:, idx])))
    return out


def scaled_priors(params, scale: float):
    """``params`` with every prior weight multiplied by ``scale``."""
    priors = params.loss.priors
    return params.replace(priors=dataclasses.replace(
        priors, posture_weight=scale * priors.posture_weight, joint_limit_weight=scale * priors.joint_limit_weight,
        lumbopelvic_weight=scale * priors.lumbopelvic_weight))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SPARSE_SETS))
    parser.add_argument("--cameras", nargs="+", type=int, default=[8, 4])
    parser.add_argument("--params", nargs="+", default=["cpu_sparse"])
    parser.add_argument("--steps", type=int, default=PARAMETER_SETS["cpu_default"].optimiser.steps)
    parser.add_argument("--swap-fraction", type=float, default=0.0)
    parser.add_argument("--prior-scale", type=float, default=1.0, help="multiplies the prior weights")
    parser.add_argument("--lumbar-neutral", type=float, default=None, help="override lumbar_extension_neutral_deg")
    parser.add_argument("--detail", action="store_true", help="also print per-coordinate truth and bias")
    args = parser.parse_args()

    groups = list(GROUPS)
    print(f"steps {args.steps}, swaps {args.swap_fraction:.0%} of camera 0, prior scale {args.prior_scale:g}\n")
    print("| set | cams | params | activity | " + " | ".join(groups) + " | fails |")
    print("|---" * (len(groups) + 5) + "|")
    for marker_set in args.sets:
        for n_cameras in args.cameras:
            body = load_body_model(marker_set)
            session = generate_session(sparse_session_config(marker_set, n_cameras), body)
            trials = observations(session, body, args.swap_fraction)
            for name in args.params:
                params = PARAMETER_SETS[name].replace(steps=args.steps)
                if args.prior_scale != 1.0:
                    params = scaled_priors(params, args.prior_scale)
                if args.lumbar_neutral is not None:
                    params = params.replace(priors=dataclasses.replace(
                        params.loss.priors, lumbar_extension_neutral_deg=args.lumbar_neutral))
                start = time.perf_counter()
                fit = fit_session(body, session.cameras_given, trials, params, seed=0)
                wall = time.perf_counter() - start
                for activity, row in rmse_table(fit, session, body).items():
                    fails = [g for g in groups if g in row and row[g] > target_deg(g, n_cameras)]
                    print(f"| {marker_set} | {n_cameras} | {name} | {activity} | "
                          + " | ".join(f"{row[g]:.1f}" if g in row else "-" for g in groups)
                          + f" | {', '.join(fails) or 'none'} |", flush=True)
                sd = sd_table(fit, body)
                print(f"| {marker_set} | {n_cameras} | {name} | posterior SD | "
                      + " | ".join(f"{sd[g]:.2f}" if g in sd else "-" for g in groups)
                      + f" | wall {wall:.0f} s, GC_5 {fit.gc5:.3f} |", flush=True)
                if args.detail:
                    names = tuple(n for g in GROUPS.values() for n in g[0])
                    print("\n| activity | coordinate | truth mean deg | mean error deg | RMSE deg |\n|---|---|---|---|---|")
                    print("\n".join(bias_lines(fit, session, body, names)) + "\n", flush=True)


if __name__ == "__main__":
    main()
