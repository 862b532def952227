"""Benchmark of early stopping: steps saved, GC_5 and joint-angle error of the convergence stop against the full
step budget.

Usage:  .venv/bin/python bench/bench_convergence.py [--params cpu_default] [--marker-set MOVI87] [--cameras 8]
            [--walks N] [--duration S] [--seeds 0 1 ...] [--quick]
Writes a markdown table to stdout.

Each seed generates a synthetic control subject (1.5 px noise, 10 % dropped, 3 % outliers): ``--walks`` walks of
``--duration`` s with MOVI87, or with a sparse set (e.g. ``--marker-set HALPE26 --params cpu_sparse``) the
acceptance session of ``compute.synthetic.acceptance`` (walk, standing, sit-to-stand).  It is fitted four
times with ``--params`` changed only in its ``convergence`` section:
* ``full``: the whole step budget;
* ``stop``: stop at the plateau (``convergence_final_steps`` = 0: the learning rates stay at that step's values);
* ``stop+final``: at the plateau, skip to the schedule's last 200 steps and run them;
* ``stop+final+cameras``: the same, once no camera centre delta moved 1 mm over the last window (cpu_default, cpu_sparse).
Reported per fit: steps run, wall time (compile excluded by a warm-up fit), GC_5, and the joint-angle RMSE
against the truth averaged over the DoF groups of the acceptance targets (deg).
"""
from __future__ import annotations

import argparse

from pipeline.jax_setup import configure_jax  # noqa: E402  (before JAX starts: XLA options, cache)

configure_jax()


import numpy as np  # noqa: E402

from compute import synthetic  # noqa: E402
from compute.fit import TrialObservations, fit_session  # noqa: E402
from compute.kinematics import load_body_model  # noqa: E402
from compute.params import PARAMETER_SETS  # noqa: E402
from compute.synthetic.acceptance import angle_rmse_by_group, sparse_session_config  # noqa: E402

VARIANTS = {"full": dict(stop_when_converged=False),
            "stop": dict(stop_when_converged=True, convergence_final_steps=0, convergence_camera_centre_mm=0.0),
            "stop+final": dict(stop_when_converged=True, convergence_final_steps=200,
                               convergence_camera_centre_mm=0.0),
            "stop+final+cameras": dict(stop_when_converged=True, convergence_final_steps=200,
                                       convergence_camera_centre_mm=1.0)}


def make_session(body, marker_set: str, n_cameras: int, n_walks: int, duration_s: float, seed: int):
    if marker_set == "MOVI87":
        config = synthetic.SyntheticSessionConfig(
            seed=seed, n_cameras=n_cameras,
            trials=synthetic.default_trials(n_walks=n_walks, static=False, tug=False, duration_s=duration_s))
    else:
        config = sparse_session_config(marker_set, n_cameras, seed=seed)
    session = synthetic.generate_session(config, body)
    trials = [TrialObservations(t.name, t.fps, np.asarray(t.keypoints, np.float32),
                                np.asarray(t.confidence, np.float32)) for t in session.trials]
    return session, trials


def mean_angle_rmse_deg(fit, session, body) -> float:
    """Joint-angle RMSE (deg) per DoF group and trial, averaged."""
    values = [v for tf, tr in zip(fit.trials, session.trials)
              for v in angle_rmse_by_group(tf.qpos, tr.qpos, body.joint_names).values()]
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="cpu_default")
    parser.add_argument("--marker-set", default="MOVI87")
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--walks", type=int, default=1, help="MOVI87 only")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per walk (MOVI87 only)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[5])
    parser.add_argument("--quick", action="store_true", help="MOVI87 walks of 2 s (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.duration = 2.0
    body = load_body_model(args.marker_set)
    base = PARAMETER_SETS[args.params]
    session, trials = make_session(body, args.marker_set, args.cameras, args.walks, args.duration, args.seeds[0])
    # warm-up: the same step budget (it is compiled into the step's learning-rate schedules), so the timed fits
    # below load nothing and compile nothing
    fit_session(body, session.cameras_given, trials, base.replace(**VARIANTS["stop"]), seed=0)
    print(f"{args.params}, {args.marker_set}, {args.cameras} cameras\n")
    print("| seed | variant | steps | wall s | GC_5 | angle RMSE deg | stop reason |\n|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        session, trials = make_session(body, args.marker_set, args.cameras, args.walks, args.duration, seed)
        for name, convergence in VARIANTS.items():
            fit = fit_session(body, session.cameras_given, trials, base.replace(**convergence), seed=0)
            print(f"| {seed} | {name} | {fit.iterations} | {fit.wall_time_s:.0f} | {fit.gc5:.4f} | "
                  f"{mean_angle_rmse_deg(fit, session, body):.2f} | {fit.stop_reason} |", flush=True)


if __name__ == "__main__":
    main()
