"""Benchmark of compile time: how long the first fit of a fresh process takes, cold and warm, against a fit whose
step is already compiled in the process.

Usage:  .venv/bin/python bench/bench_compile.py [--quick] [--steps N] [--keypoint-set BODY25B] [--no-baseline]
Writes a markdown summary to stdout (ratios against the in-process fit of the same run, and the load average).

* Sessions (made up: a subject gliding through a ring of cameras, 1 px noise, confidence 0.9): A = 4 cameras,
  1 trial of 100 frames at 60 fps; B = 3 cameras, 1 trial of 150 frames at 30 fps.  A and B differ in shape but
  fall into one shape bucket (C=4, N=1, T_max=512), so they share one compiled step.
* Each row is a fresh ``python`` process (``--child``) timing ``compute.fit.fit_session`` with its own
  persistent compilation cache directory (a temporary folder): "cold" starts from an empty cache, "warm" from the
  cache the cold process left; "in-process" is a second fit in the cold process (the step is compiled).
* Baseline ("buckets off"): the same processes with shape buckets disabled (sessions padded only to their own
  longest trial), where B after A pays a full compile again even with a warm cache.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. '3.1 2.8 2.0'."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def write_session(path: Path, keypoint_set: str, n_cameras: int, n_frames: int, fps: float, seed: int) -> None:
    """Save a made-up one-trial session to ``path`` (npz: K, dist, rvec, tvec, size, keypoints, confidence, fps)."""
    import numpy as np

    from pipeline.commands.warmup import made_up_session

    _, rig, trials = made_up_session(keypoint_set, n_cameras, 1, n_frames)
    rng = np.random.default_rng(seed)
    keypoints = trials[0].keypoints + rng.normal(0.0, 1.0, trials[0].keypoints.shape).astype(np.float32)
    np.savez(path, K=rig.K, dist=rig.dist, rvec=rig.rvec, tvec=rig.tvec, size=rig.size, keypoints=keypoints,
             confidence=trials[0].confidence, fps=fps)


def child(args: argparse.Namespace) -> None:
    """In a fresh process: fit each session file in turn, print one JSON line of timings."""
    start = time.perf_counter()
    from pipeline.jax_setup import configure_xla_flags

    configure_xla_flags()
    import jax

    jax.config.update("jax_compilation_cache_dir", args.cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", args.min_compile_s)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    import numpy as np

    import compute.fit.bilevel as bilevel
    from compute.cameras import Camera
    from compute.fit import TrialObservations, fit_session
    from compute.kinematics import load_body_model
    from compute.params import PARAMETER_SETS

    if args.no_buckets:
        bilevel.DEFAULT_BUCKETS = None  # the baseline: pad only to the session's own shape
    imported = time.perf_counter()
    body = load_body_model(args.keypoint_set)
    loaded = time.perf_counter()
    params = PARAMETER_SETS[args.params].replace(steps=args.steps)
    fits = []
    for path in args.sessions:
        z = np.load(path)
        rig = Camera(z["K"], z["dist"], z["rvec"], z["tvec"], z["size"])
        trial = TrialObservations("walk01", float(z["fps"]), z["keypoints"], z["confidence"])
        t0 = time.perf_counter()
        fit = fit_session(body, rig, [trial], params, seed=0)
        fits.append(dict(session=Path(path).stem, fit_s=time.perf_counter() - t0, gc5=fit.gc5))
    print(json.dumps(dict(import_s=imported - start, body_s=loaded - imported, fits=fits)), flush=True)


def run_child(cache: Path, sessions: list[Path], args: argparse.Namespace, no_buckets: bool) -> dict:
    command = [sys.executable, __file__, "--child", "--cache", str(cache), "--steps", str(args.steps),
               "--keypoint-set", args.keypoint_set, "--params", args.params, "--min-compile-s",
               str(args.min_compile_s), *(["--no-buckets"] if no_buckets else []), *map(str, sessions)]
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bench_compile child failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    result["load"] = load_average()
    return result


def scenario(label: str, args: argparse.Namespace, a: Path, b: Path, no_buckets: bool, tmp: Path) -> list[tuple]:
    """Rows (label, seconds, gc5, load) of: cold A (+ in-process A again + in-process B), warm A, warm B."""
    cache = tmp / f"cache_{'off' if no_buckets else 'on'}"
    cache.mkdir()
    cold = run_child(cache, [a, a, b], args, no_buckets)
    warm_a = run_child(cache, [a], args, no_buckets)
    warm_b = run_child(cache, [b], args, no_buckets)
    f = cold["fits"]
    return [
        (label, "fresh process, empty cache: first fit of A", f[0]["fit_s"], f[0]["gc5"], cold["load"]),
        (label, "same process: A again (step compiled)", f[1]["fit_s"], f[1]["gc5"], cold["load"]),
        (label, "same process: B (other shape, same bucket)", f[2]["fit_s"], f[2]["gc5"], cold["load"]),
        (label, "fresh process, warm cache: A", warm_a["fits"][0]["fit_s"], warm_a["fits"][0]["gc5"], warm_a["load"]),
        (label, "fresh process, warm cache: B", warm_b["fits"][0]["fit_s"], warm_b["fits"][0]["gc5"], warm_b["load"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--no-buckets", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("sessions", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="200 steps instead of 2000; no baseline")
    parser.add_argument("--steps", type=int, default=None, help="fit steps (default 2000, --quick 200)")
    parser.add_argument("--keypoint-set", default="BODY25B")
    parser.add_argument("--params", default="cpu_default")
    parser.add_argument("--min-compile-s", type=float, default=1.0,
                        help="jax_persistent_cache_min_compile_time_secs of every process (as pipeline.populate)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the buckets-off baseline")
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 200 if args.quick else 2000
    if args.child:
        child(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_compile_") as tmp_name:
        tmp = Path(tmp_name)
        a, b = tmp / "A_4cam_100f_60fps.npz", tmp / "B_3cam_150f_30fps.npz"
        write_session(a, args.keypoint_set, 4, 100, 60.0, seed=1)
        write_session(b, args.keypoint_set, 3, 150, 30.0, seed=2)
        print(f"load average at start: {load_average()} (2 cores)\n", flush=True)
        rows = scenario("buckets on", args, a, b, False, tmp)
        if not (args.quick or args.no_baseline):
            rows += scenario("buckets off", args, a, b, True, tmp)
    print(f"{args.keypoint_set}, {args.params}, {args.steps} steps\n")
    print("| shape buckets | fit | wall s | / in-process | GC_5 | load 1/5/15 min |")
    print("|---|---|---:|---:|---:|---|")
    for label in dict.fromkeys(r[0] for r in rows):
        group = [r for r in rows if r[0] == label]
        reference = group[1][2]
        for _, what, seconds, gc5, load in group:
            print(f"| {label} | {what} | {seconds:.1f} | {seconds / reference:.2f} | {gc5:.3f} | {load} |")
    print(f"\nload average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
