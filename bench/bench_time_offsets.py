"""Benchmark of per-camera time offsets: recovery, GC_5 against the synchronous session, and the cost per step.

Usage:  .venv/bin/python bench/bench_time_offsets.py [--steps N] [--frames T] [--params cpu_default]
Writes a markdown table to stdout.

* Session (tests/time_offset_sessions.py): an analytic walk at 30 fps seen by 8 cameras on a 4 m circle, 1 px
  noise, camera c shifted by OFFSETS_FRAMES[c] (-3..+3 frames, sub-frame ones included); the same session
  recorded in sync is the reference.
* Fits: synchronous session without offsets; shifted session without offsets (what an unsynchronised rig costs);
  shifted session with ``fit_time_offsets`` (full parameter set, default cpu_default's 2000 steps).
* Reported: GC_5 of each fit, the recovered offsets (frames, after removing the mean: the gauge) and their worst
  error, the pre-check's lags (``compute.sync``) and the wall time per step with and without offsets (ratio
  measured in the same run).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline.jax_setup import configure_jax  # noqa: E402  (before JAX starts: XLA options, cache)

configure_jax()

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from compute.fit import TrialObservations, fit_session  # noqa: E402
from compute.kinematics import load_body_model  # noqa: E402
from compute.params import PARAMETER_SETS  # noqa: E402
from compute.sync import check_sync  # noqa: E402
from tests.time_offset_sessions import offset_session  # noqa: E402

OFFSETS_FRAMES = np.array([0.0, -3.0, 2.0, 3.0, -1.5, 0.5, -2.25, 1.0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the parameter set's)")
    parser.add_argument("--frames", type=int, default=120, help="frames of the walk (30 fps)")
    parser.add_argument("--params", default="cpu_default")
    args = parser.parse_args()
    body = load_body_model("MOVI87")
    params = PARAMETER_SETS[args.params]
    if args.steps:
        params = params.replace(steps=args.steps)
    shifted = offset_session(body, OFFSETS_FRAMES, seed=5, n_frames=args.frames)
    synchronous = offset_session(body, np.zeros_like(OFFSETS_FRAMES), seed=5, n_frames=args.frames)
    rows = []
    for label, session, on in (("synchronous, offsets off", synchronous, False),
                               ("shifted, offsets off", shifted, False),
                               ("shifted, offsets fitted", shifted, True)):
        trials = [TrialObservations("walk01", session.fps, session.keypoints, session.confidence)]
        start = time.perf_counter()
        fit = fit_session(body, session.cameras, trials, params.replace(fit_time_offsets=on), seed=0)
        wall = time.perf_counter() - start
        recovered = "–"
        if fit.time_offset_s is not None:
            estimate = fit.time_offset_s * session.fps
            error = np.abs(estimate - (OFFSETS_FRAMES - OFFSETS_FRAMES.mean())).max()
            recovered = f"{np.array2string(estimate, precision=2)} (worst error {error:.3f} frames)"
        rows.append((label, fit.gc5, wall / fit.iterations * 1000.0, recovered))
    check = check_sync(shifted.cameras, shifted.keypoints, shifted.confidence)
    print(f"Truth (frames, mean removed): {np.array2string(OFFSETS_FRAMES - OFFSETS_FRAMES.mean(), precision=2)}")
    print(f"Pre-check lags against camera {check.reference}: {np.array2string(check.lags_frames, precision=2)} "
          f"(truth {np.array2string(OFFSETS_FRAMES - OFFSETS_FRAMES[check.reference], precision=2)})\n")
    print("| fit | GC_5 | ms per step (incl. compile) | offsets (frames) |")
    print("|---|---|---|---|")
    for label, gc5, ms, recovered in rows:
        print(f"| {label} | {gc5:.4f} | {ms:.1f} | {recovered} |")


if __name__ == "__main__":
    main()
