"""Benchmark of early stopping: steps saved and GC_5 change of ``cpu_converge`` against ``cpu_default``.

Usage:  .venv/bin/python bench/bench_convergence.py [--walks N] [--duration S] [--seeds 0 1 ...]
Writes a markdown table to stdout.

Both parameter sets are identical except ``convergence.stop_when_converged``; each seed generates a synthetic
control subject (8 cameras, 1.5 px noise, 10 % dropped, 3 % outliers) and fits it with both.  A warm-up fit
excludes compile time from the wall times.
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


def make_session(body, n_walks: int, duration_s: float, seed: int):
    config = synthetic.SyntheticSessionConfig(
        seed=seed, n_cameras=8, trials=synthetic.default_trials(n_walks=n_walks, static=False, tug=False,
                                                                duration_s=duration_s))
    session = synthetic.generate_session(config, body)
    trials = [TrialObservations(t.name, t.fps, np.asarray(t.keypoints, np.float32),
                                np.asarray(t.confidence, np.float32)) for t in session.trials]
    return session, trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walks", type=int, default=1)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per walk")
    parser.add_argument("--seeds", type=int, nargs="+", default=[5])
    args = parser.parse_args()
    body = load_body_model("MOVI87")
    default, converge = PARAMETER_SETS["cpu_default"], PARAMETER_SETS["cpu_converge"]
    session, trials = make_session(body, args.walks, args.duration, args.seeds[0])
    fit_session(body, session.cameras_given, trials, default.replace(steps=2), seed=0)  # compile
    print(f"| seed | set | steps | wall s | GC_5 | stop reason |\n|---|---|---|---|---|---|")
    for seed in args.seeds:
        session, trials = make_session(body, args.walks, args.duration, seed)
        for name, params in (("cpu_default", default), ("cpu_converge", converge)):
            fit = fit_session(body, session.cameras_given, trials, params, seed=0)
            print(f"| {seed} | {name} | {fit.iterations} | {fit.wall_time_s:.0f} | {fit.gc5:.4f} | "
                  f"{fit.stop_reason} |", flush=True)


if __name__ == "__main__":
    main()
