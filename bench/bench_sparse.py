"""Benchmark of the joint-angle priors on a sparse keypoint set: cpu_default vs cpu_sparse on synthetic BODY25B.

Usage:  .venv/bin/python bench/bench_sparse.py [--steps N] [--duration S] [--walks N]
Writes a markdown table to stdout.

* Session: synthetic control subject, 8 cameras, 1.5 px noise (10 % dropped, 3 % outliers), BODY25B keypoints
  (two hip and two shoulder points: pelvis tilt, lumbar extension and hip flexion are weakly determined).
* Both parameter sets are fitted with the same seed and step budget; RMSE (deg) against the true trajectory over
  every frame of every trial for lumbar_extension, pelvis_tilt and hip_flexion_r/l, GC_5, the median posterior
  SD (deg) that the fit reports for the same coordinates (``TrialFit.coordinate_sd_rad``) and the wall time.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax

jax.config.update("jax_compilation_cache_dir", str(Path.home() / ".cache" / "mmc" / "jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

import numpy as np  # noqa: E402

from compute import synthetic  # noqa: E402
from compute.fit import TrialObservations, fit_session  # noqa: E402
from compute.kinematics import load_body_model  # noqa: E402
from compute.params import PARAMETER_SETS  # noqa: E402

COORDINATES = ("lumbar_extension", "pelvis_tilt", "hip_flexion_r", "hip_flexion_l")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=PARAMETER_SETS["cpu_default"].optimiser.steps)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per walk")
    parser.add_argument("--walks", type=int, default=2)
    parser.add_argument("--sets", nargs="+", default=["cpu_default", "cpu_sparse"])
    parser.add_argument("--prior-scale", type=float, default=1.0, help="multiplies cpu_sparse's prior weights")
    args = parser.parse_args()

    body = load_body_model("BODY25B")
    config = synthetic.SyntheticSessionConfig(
        seed=11, n_cameras=8, pixel_noise_px=1.5, marker_set="BODY25B",
        trials=synthetic.default_trials(n_walks=args.walks, static=False, tug=False, duration_s=args.duration))
    session = synthetic.generate_session(config, body)
    trials = [TrialObservations(t.name, t.fps, np.asarray(t.keypoints, np.float32),
                                np.asarray(t.confidence, np.float32)) for t in session.trials]
    index = [body.joint_names.index(name) for name in COORDINATES]
    print(f"BODY25B, 8 cameras, 1.5 px, {args.walks} walks x {args.duration:g} s, {args.steps} steps\n")
    print("| parameter set | " + " | ".join(f"{c} RMSE deg" for c in COORDINATES)
          + " | GC_5 | " + " | ".join(f"{c} SD deg" for c in COORDINATES) + " | wall s |")
    print("|---" * (2 * len(COORDINATES) + 3) + "|")
    for name in args.sets:
        params = PARAMETER_SETS[name].replace(steps=args.steps)
        priors = params.loss.priors
        if priors.enabled and args.prior_scale != 1.0:
            name = f"{name} x{args.prior_scale:g}"
            params = params.replace(priors=dataclasses.replace(
                priors, posture_weight=args.prior_scale * priors.posture_weight,
                joint_limit_weight=args.prior_scale * priors.joint_limit_weight,
                lumbopelvic_weight=args.prior_scale * priors.lumbopelvic_weight))
        start = time.perf_counter()
        fit = fit_session(body, session.cameras_given, trials, params, seed=0)
        wall = time.perf_counter() - start
        errors = np.concatenate([tf.qpos[:, index] - tr.qpos[:, index] for tf, tr in zip(fit.trials, session.trials)])
        rmse = np.rad2deg(np.sqrt(np.mean(errors**2, axis=0)))
        sd = np.rad2deg(np.median(np.stack([tf.coordinate_sd_rad[index] for tf in fit.trials]), axis=0))
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in rmse) + f" | {fit.gc5:.3f} | "
              + " | ".join(f"{v:.2f}" for v in sd) + f" | {wall:.0f} |", flush=True)
        bias = np.rad2deg(errors.mean(axis=0))
        truth = np.rad2deg(np.concatenate([tr.qpos[:, index] for tr in session.trials]).mean(axis=0))
        print("|   mean error / true mean deg | " + " | ".join(f"{b:+.1f} / {t:+.1f}" for b, t in zip(bias, truth))
              + " |", flush=True)


if __name__ == "__main__":
    main()
