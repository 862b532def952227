"""``mmc warmup``: compile the fit once per installation, before the first session needs it.

A fit compiles its step for the session's shape bucket (``compute.fit.observations.ShapeBuckets``: cameras
4/8/12/16, trials 1/2/4/6/8/12/16, frames 512/1024/...), keypoint set (marker count) and parameter set; compiling
takes minutes on a small CPU.  ``mmc warmup`` runs a two-step fit of a small made-up session for every
combination asked for, which writes every executable a real fit of that bucket needs (the step, the per-frame
evaluation, the kinematics of initialisation and observability) into the persistent compilation cache
(``MMC_JAX_CACHE``, default ``~/.cache/mmc/jax``) that every worker of the machine reads, with the traced step and
kinematics as ``jax.export`` files beside it (``compute.program_cache``).  Afterwards a fresh ``mmc populate`` of
a session in a warmed bucket loads them: it neither traces nor compiles the step.

    mmc warmup                               # keypoint sets of the database's trials (else MOVI87), each with
                                             # the parameter set populate gives it (cpu_sparse / cpu_default),
                                             # cameras 4 8, trials 1 2, frames 512
    mmc warmup --keypoint-set BODY25B --params cpu_sparse --cameras 4 8 12 --trials 1 2 4

Shapes that share an executable: all sessions with the same keypoint set, parameter set and bucket, e.g. 1-4
cameras x 1 trial x up to 512 frames, or 5-8 cameras x 3-4 trials x 513-1024 frames.  Each bucket is compiled in
its own process, as many at a time as the machine has cores; buckets not started within ``--max-minutes`` are
skipped and listed.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass

DEFAULT_CAMERAS = (4, 8)
DEFAULT_TRIALS = (1, 2)
DEFAULT_FRAMES = (512,)


@dataclass(frozen=True)
class WarmupJob:
    """One executable set to compile: keypoint set, parameter set name, padded cameras, trials and frames."""

    keypoint_set: str
    params_name: str
    n_cameras: int
    n_trials: int
    n_frames: int

    def label(self) -> str:
        return (f"{self.keypoint_set} {self.params_name} C={self.n_cameras} N={self.n_trials} "
                f"T_max={self.n_frames}")


def made_up_session(keypoint_set: str, n_cameras: int, n_trials: int, n_frames: int):
    """(body, cameras Camera(C,), trials) of a subject standing still in the middle of a ring of ``n_cameras``
    cameras 4 m away, ``n_trials`` trials of ``n_frames`` frames at 30 fps: only the shapes matter here."""
    import jax.numpy as jnp
    import numpy as np

    from compute import kinematics as kin
    from compute.cameras import make_camera, matrix_to_rodrigues, project_to_rig, stack_cameras
    from compute.fit.evaluation import compiled_markers_over_time
    from compute.fit.types import TrialObservations

    body = kin.load_body_model(keypoint_set)
    cameras = []
    for angle in np.linspace(0.0, 2 * np.pi, n_cameras, endpoint=False):
        centre = np.array([4.0 * np.cos(angle), 4.0 * np.sin(angle), 1.5])
        forward = (np.array([0.0, 0.0, 0.9]) - centre) / np.linalg.norm(np.array([0.0, 0.0, 0.9]) - centre)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        rotation = np.stack([right, np.cross(forward, right), forward])
        K = np.array([[800.0, 0.0, 640.0], [0.0, 800.0, 360.0], [0.0, 0.0, 1.0]])
        cameras.append(make_camera(K, np.zeros(5), np.asarray(matrix_to_rodrigues(rotation)).ravel(),
                                   -rotation @ centre, np.array([1280.0, 720.0])))
    rig = stack_cameras(cameras)
    qpos = np.tile(np.asarray(kin.neutral_qpos(body)), (n_frames, 1))
    qpos[:, 0] = np.linspace(-0.5, 0.5, n_frames)
    markers = compiled_markers_over_time(body, jnp.asarray(qpos, jnp.float32),
                                         jnp.zeros(len(body.scale_group_names), jnp.float32),
                                         jnp.zeros((len(body.marker_names), 3), jnp.float32))
    keypoints = np.asarray(project_to_rig(rig, markers), np.float32)
    confidence = np.full(keypoints.shape[:3], 0.9, np.float32)
    trials = [TrialObservations(f"warmup{i}", 30.0, keypoints, confidence) for i in range(n_trials)]
    return body, rig, trials


def warm_up(job: WarmupJob) -> float:
    """Compile everything a fit of ``job``'s bucket needs (in this process and the persistent cache) by a
    two-step fit of a made-up session; returns the seconds it took."""
    from pipeline.jax_setup import configure_jax

    configure_jax()
    import jax

    from compute.fit.bilevel import correct_left_right_swaps, run_optimisation, summarise_fit
    from compute.fit.initialisation import initialise
    from compute.fit.observations import DEFAULT_BUCKETS, prepare_session_data
    from compute.params import PARAMETER_SETS

    start = time.perf_counter()
    params = PARAMETER_SETS[job.params_name]
    # the smallest real session of the bucket: the step sees only padded shapes
    n_frames = job.n_frames // 2 + 1 if job.n_frames > DEFAULT_BUCKETS.frames_min else 30
    n_cameras = max(2, job.n_cameras - 1) if job.n_cameras > 2 else job.n_cameras
    body, rig, trials = made_up_session(job.keypoint_set, n_cameras, job.n_trials, n_frames)
    if params.initialisation.correct_left_right_swaps:
        trials = correct_left_right_swaps(body, rig, trials)
    key_init, key_fit = jax.random.split(jax.random.PRNGKey(0))
    networks, beta, _ = initialise(body, rig, trials, params, key_init)
    data = prepare_session_data(rig, trials, DEFAULT_BUCKETS)
    shape = (int(data.rig.rvec.shape[0]), int(data.n_frames.shape[0]), int(data.keypoints.shape[1]))
    if shape != (job.n_cameras, job.n_trials, job.n_frames):
        raise ValueError(f"mmc warmup: {job.label()} is not a shape bucket (it pads to C, N, T_max = {shape})")
    variables, history, iterations, _ = run_optimisation(body, data, networks, beta, params, key_fit, n_steps=2)
    summarise_fit(body, rig, trials, params, variables, data, history, iterations, start, 0)
    return time.perf_counter() - start


def database_keypoint_sets(prefix: str) -> list[str]:
    """Keypoint sets of the trials stored under ``prefix`` (empty when no database answers or none is stored)."""
    try:
        from pipeline.db import open_existing_database

        db = open_existing_database(prefix)
        if db is None:
            return []
        return sorted(set(db.schemas["acquisition"].Trial.to_arrays("keypoint_set")))
    except Exception as error:  # noqa: BLE001 - a warm-up without a database still warms the default set
        print(f"warmup: could not read the keypoint sets of {prefix!r} ({error}); using MOVI87", file=sys.stderr)
        return []


def jobs_from_args(args: argparse.Namespace) -> list[WarmupJob]:
    """Every (keypoint set, params, cameras, trials, frames) combination asked for, largest buckets first (they
    take longest: started first, they finish with the others)."""
    from compute.markersets import MARKER_SET_NAMES, is_sparse
    from compute.params import PARAMETER_SETS, default_params_name

    keypoint_sets = args.keypoint_set or database_keypoint_sets(args.prefix) or ["MOVI87"]
    for name in keypoint_sets:
        if name not in MARKER_SET_NAMES:
            raise ValueError(f"mmc warmup --keypoint-set: {name!r} is not one of {', '.join(MARKER_SET_NAMES)}")
    for name in args.params or ():
        if name not in PARAMETER_SETS:
            raise ValueError(f"mmc warmup --params: {name!r} is not one of {', '.join(PARAMETER_SETS)}")
    jobs = [WarmupJob(k, p, c, n, t) for k in keypoint_sets
            for p in (args.params or [default_params_name(is_sparse(k))])
            for c in args.cameras for n in args.trials for t in args.frames]
    return sorted(jobs, key=lambda j: -(j.n_cameras * j.n_trials))


def run_warmup(args: argparse.Namespace) -> int:
    """Handler of ``mmc warmup``: one progress line per bucket, then a summary."""
    from pipeline.importers.errors import IngestError

    try:
        jobs = jobs_from_args(args)
    except ValueError as error:
        raise IngestError("command line", "mmc warmup", str(error)) from None
    workers = max(1, min(args.jobs or os.cpu_count() or 1, len(jobs)))
    print(f"warmup: {len(jobs)} bucket(s), {workers} at a time, at most {args.max_minutes:g} min", flush=True)
    deadline = time.monotonic() + 60.0 * args.max_minutes
    start, done, skipped = time.monotonic(), 0, []
    context = multiprocessing.get_context("spawn")  # a fresh JAX per process (fork and XLA threads do not mix)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending = {}
        queue = list(jobs)
        while queue or pending:
            while queue and len(pending) < workers:
                job = queue.pop(0)
                if time.monotonic() > deadline:
                    skipped.append(job)
                    continue
                pending[pool.submit(warm_up, job)] = job
            if not pending:
                break
            finished, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                done += 1
                error = future.exception()
                status = f"failed: {error}" if error else f"{future.result():.0f} s"
                print(f"[{done}/{len(jobs)}] {job.label()}: {status} ({time.monotonic() - start:.0f} s elapsed)",
                      flush=True)
    for job in skipped:
        print(f"skipped (time budget): {job.label()}", flush=True)
    return 0


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``warmup``."""
    parser = subparsers.add_parser("warmup", help="compile the fit for the common shape buckets (once per machine)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--keypoint-set", action="append", metavar="NAME",
                        help="keypoint set to warm up (repeatable; default: those of the database's trials, "
                             "else MOVI87)")
    parser.add_argument("--params", nargs="+", default=None, metavar="NAME",
                        help="parameter sets (default: the one mmc populate gives each keypoint set, cpu_sparse "
                             "for sparse sets, else cpu_default)")
    parser.add_argument("--cameras", nargs="+", type=int, default=list(DEFAULT_CAMERAS), metavar="C",
                        help=f"camera buckets (default {' '.join(map(str, DEFAULT_CAMERAS))})")
    parser.add_argument("--trials", nargs="+", type=int, default=list(DEFAULT_TRIALS), metavar="N",
                        help=f"trial buckets (default {' '.join(map(str, DEFAULT_TRIALS))})")
    parser.add_argument("--frames", nargs="+", type=int, default=list(DEFAULT_FRAMES), metavar="T",
                        help=f"frame buckets (default {' '.join(map(str, DEFAULT_FRAMES))})")
    parser.add_argument("--jobs", type=int, default=None, help="buckets compiled at a time (default: cores)")
    parser.add_argument("--max-minutes", type=float, default=5.0,
                        help="start no bucket after this many minutes (default 5)")
    parser.set_defaults(handler=run_warmup)
