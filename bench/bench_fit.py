"""Benchmark of the end-to-end fit: iterations/s, time-to-accuracy, trilevel memory, 10-trial target.

Usage:  .venv/bin/python bench/bench_fit.py [--quick] [--skip-paper] [--skip-target] [--target-only]
        [--target-params cpu_default cpu_full_budget] [--target-warm]
Writes a markdown summary to stdout.

* Session: synthetic control subject, 8 cameras, 3 walks of 10 s (1.5 px noise, 10 % dropped, 3 % outliers).
* Time-to-accuracy (TTA): the cpu_full_budget fit (cpu_default without the plateau stop, so each budget runs
  whole) is run with several step budgets (each a complete fit with its own schedule); "converged" GC_5 is that of the largest budget; TTA is the wall time of the cheapest budget
  whose GC_5 is within 0.01 of it.  Wall times include initialisation and evaluation; the first budget's compile
  is excluded by a warm-up fit, every other budget's step is a program of its own (the budget is compiled into
  the learning-rate schedules), loaded from the persistent cache when it holds it.
* paper set: run for a capped wall time; its it/s is measured and its time for 40 000 steps is EXTRAPOLATED
  (steps / it/s), said as such in the table.
* two-stage baseline: triangulation + per-frame IK, wall time and GC_5.
* trilevel peak memory (8 vs 32 subjects, 4 per batch): each in a subprocess, ru_maxrss (XLA buffers included,
  tracemalloc would not see them).
* target: 10 walks x 10 s, 8 cameras, wall time and GC_5 (goal <= 150 s on 2 cores, GC_5 unchanged), with
  cpu_default and with any other parameter sets given by ``--target-params`` (e.g. cpu_full_budget), each in turn
  in the same process after one identical warm-up fit when ``--target-warm`` is given.  ``--target-only``
  runs just this part.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from pipeline.jax_setup import configure_jax  # noqa: E402  (before JAX starts: XLA options, cache)

configure_jax()
import jax  # noqa: E402


import numpy as np  # noqa: E402

from compute import synthetic  # noqa: E402
from compute.fit import (TrialObservations, evaluate_all_frames, fit_session, fit_two_stage,  # noqa: E402
                         initialise, prepare_session_data, reprojection_errors_px, run_optimisation, session_gc)
from compute.kinematics import load_body_model  # noqa: E402
from compute.params import PARAMETER_SETS  # noqa: E402
from compute.fit.bilevel import STEPS_PER_CALL  # noqa: E402


def make_session(body, n_walks: int, duration_s: float, seed: int = 5):
    config = synthetic.SyntheticSessionConfig(
        seed=seed, n_cameras=8, trials=synthetic.default_trials(n_walks=n_walks, static=False, tug=False,
                                                                duration_s=duration_s))
    session = synthetic.generate_session(config, body)
    trials = [TrialObservations(t.name, t.fps, np.asarray(t.keypoints, np.float32),
                                np.asarray(t.confidence, np.float32)) for t in session.trials]
    return session, trials


def capped_fit(body, cameras, trials, params, cap_s: float, check_every: int = STEPS_PER_CALL):
    """Run ``params`` for at most cap_s seconds of optimisation; returns (steps, seconds, GC_5 at the cap).
    ``check_every`` is a whole call of the compiled step: a call always runs STEPS_PER_CALL steps (the ones
    beyond ``n_steps`` masked), so fewer per call would count only part of the work done."""
    networks, beta, _ = initialise(body, cameras, trials, params, jax.random.PRNGKey(1))
    data = prepare_session_data(cameras, trials)
    # compile outside the timed loop, with the loop's own step count (another count is another program)
    run_optimisation(body, data, networks, beta, params, jax.random.PRNGKey(2), n_steps=check_every)
    steps, start = 0, time.perf_counter()
    variables = None
    while time.perf_counter() - start < cap_s:
        variables, _, _, _ = run_optimisation(body, data, networks if variables is None else variables.networks,
                                           beta if variables is None else variables.body, params,
                                           jax.random.PRNGKey(3 + steps), n_steps=check_every)
        steps += check_every
    seconds = time.perf_counter() - start
    _, markers = evaluate_all_frames(variables.networks, [t.n_frames for t in trials], body, variables.body)
    errors = [reprojection_errors_px(cameras, m, t.keypoints) for m, t in zip(markers, trials)]
    gc = session_gc(errors, [np.nan_to_num(t.confidence) for t in trials])
    return steps, seconds, float(gc[4])


def trilevel_peak_memory_mb(n_subjects: int) -> float:
    code = f"""
import resource, numpy as np
from compute import synthetic
from compute.fit import TrialObservations, fit_trilevel
from compute.kinematics import load_body_model
from compute.params import PARAMETER_SETS
body = load_body_model('MOVI87')
subjects = []
for k in range({n_subjects}):
    s = synthetic.generate_session(synthetic.SyntheticSessionConfig(seed=200 + k, rig_seed=3, trials=
        synthetic.default_trials(n_walks=1, static=False, tug=False, duration_s=2.0)), body)
    subjects.append((s.cameras_given, [TrialObservations(t.name, t.fps, t.keypoints, t.confidence) for t in s.trials]))
fit_trilevel(body, subjects, PARAMETER_SETS['cpu_default'].replace(steps=20, time_points_per_trial=32),
             subjects_per_batch=4, steps=40)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ))
    return float(out.stdout.strip().splitlines()[-1])


def target_lines(body, params_names: list[str], warm: bool) -> list[str]:
    """The 10 walks x 10 s, 8-camera target, one fit per parameter set (markdown lines).  The wall time includes
    loading or compiling the step unless ``warm``: then the same fit runs first, as in a running worker (a shorter
    warm-up fit would not do: the step budget shapes the learning-rate schedules, which are compiled into the
    step)."""
    session10, trials10 = make_session(body, 10, 10.0, seed=6)
    lines = ["## target: 10 walks x 10 s, 8 cameras (goal <= 150 s on 2 cores, GC_5 unchanged)", "",
             "| parameter set | wall s | steps run | stopped because | GC_5 |", "|---|---|---|---|---|"]
    for name in params_names:
        params = PARAMETER_SETS[name]
        if warm:
            fit_session(body, session10.cameras_given, trials10, params, seed=0)
        start = time.perf_counter()
        fit = fit_session(body, session10.cameras_given, trials10, params, seed=0)
        wall = time.perf_counter() - start
        lines.append(f"| {name}{' (warm)' if warm else ''} | {wall:.0f} | {fit.iterations} | "
                     f"{fit.stop_reason} | {fit.gc5:.4f} |")
    return lines + [""]


_EMITTED = [0]


def emit(lines: list[str]) -> None:
    """Print the lines not printed yet and free compiled programs (XLA:CPU maps each one into memory; a long
    benchmark process would otherwise run into the kernel's vm.max_map_count)."""
    print("\n".join(lines[_EMITTED[0]:]), flush=True)
    _EMITTED[0] = len(lines)
    jax.clear_caches()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter trials and budgets (smoke test)")
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--skip-target", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--target-only", action="store_true", help="only the 10 walks x 10 s target")
    parser.add_argument("--target-params", nargs="+", default=["cpu_default"], choices=sorted(PARAMETER_SETS))
    parser.add_argument("--target-warm", action="store_true",
                        help="time the target after a warm-up fit of the same shapes (compile excluded)")
    args = parser.parse_args()
    body = load_body_model("MOVI87")
    if args.target_only:
        emit(target_lines(body, args.target_params, args.target_warm))
        return
    duration = 4.0 if args.quick else 10.0
    budgets = (250, 500) if args.quick else (250, 500, 1000, 1500, 2500)
    session, trials = make_session(body, 3, duration)
    cpu = PARAMETER_SETS["cpu_full_budget"]  # every budget runs whole: the curve of GC_5 against steps
    lines = [f"# bench_fit ({'quick' if args.quick else 'full'}): 3 walks x {duration:.0f} s, 8 cameras, "
             f"{os.cpu_count()} CPUs", ""]

    fit_session(body, session.cameras_given, trials, cpu.replace(steps=budgets[0]), seed=0)  # warm-up / compile
    rows = []
    for steps in budgets:
        fit = fit_session(body, session.cameras_given, trials, cpu.replace(steps=steps), seed=0)
        rows.append((steps, fit.wall_time_s, fit.gc5))
    converged = rows[-1][2]
    tta = next(w for s, w, g in rows if g >= converged - 0.01)
    rate = (rows[-1][0] - rows[0][0]) / max(rows[-1][1] - rows[0][1], 1e-9)
    lines += ["## cpu_full_budget step budgets", "", "| steps | wall s | GC_5 |", "|---|---|---|"]
    lines += [f"| {s} | {w:.1f} | {g:.4f} |" for s, w, g in rows]
    lines += ["", f"cpu_full_budget: {rate:.1f} it/s, converged GC_5 {converged:.4f}, time-to-accuracy {tta:.1f} s", ""]
    emit(lines)

    base = fit_two_stage(body, session.cameras_given, trials, cpu)
    base = fit_two_stage(body, session.cameras_given, trials, cpu)  # second call: compiled
    lines += [f"two-stage baseline: wall {base.wall_time_s:.1f} s, GC_5 {base.gc5:.4f} "
              f"(end-to-end GC_5 - baseline GC_5 = {converged - base.gc5:+.4f}; wall ratio TTA / "
              f"baseline = {tta / base.wall_time_s:.2f})", ""]
    emit(lines)

    if not args.skip_paper:
        paper = PARAMETER_SETS["paper"]
        cap = 60.0 if args.quick else 180.0
        steps, seconds, gc5 = capped_fit(body, session.cameras_given, trials, paper, cap)
        paper_rate = steps / seconds
        extrapolated = paper.optimiser.steps / paper_rate
        lines += [f"paper set: capped at {seconds:.0f} s: {steps} steps, {paper_rate:.2f} it/s, GC_5 at the cap "
                  f"{gc5:.4f}; EXTRAPOLATED time for its 40 000 steps: {extrapolated / 3600:.1f} h "
                  f"(ratio to the TTA: {extrapolated / tta:.0f}x; it/s ratio cpu_full_budget/paper "
                  f"{rate / paper_rate:.0f}x)", ""]
        emit(lines)

    if not args.skip_memory:
        m8, m32 = trilevel_peak_memory_mb(8), trilevel_peak_memory_mb(32)
        lines += [f"trilevel peak RSS (4 subjects per batch): 8 subjects {m8:.0f} MB, 32 subjects {m32:.0f} MB "
                  f"(ratio {m32 / m8:.2f})", ""]
        emit(lines)

    if not args.skip_target:
        lines += target_lines(body, args.target_params, args.target_warm)
    lines += ["cpu_full_budget = `" + json.dumps(cpu.to_dict()) + "`"]
    emit(lines)


if __name__ == "__main__":
    main()
