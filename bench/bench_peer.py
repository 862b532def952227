"""Peer benchmark: Pose2Sim (triangulation -> filtering -> OpenSim scaling + IK) against ``mmc populate`` on the
same synthetic keypoints, timed in fresh processes and scored against the synthetic truth.

Usage:  .venv/bin/python bench/bench_peer.py [--quick] [--cameras 4 8] [--frames 100] [--reps 2]
Writes a markdown table to stdout (and the raw numbers to ``<work>/results.json``).

Per configuration (cameras x frames) one synthetic walking trial (HALPE26 keypoints, 1.5 px noise, 10 % dropped,
3 % outliers from a second person) is written once as a Pose2Sim project (``bench/peer_layout.py``): calibration
TOML, ``pose/camNN_json`` OpenPose JSON per frame, Config.toml; and an mmc manifest over the same files. Then
``--reps`` rounds, each alternating: Pose2Sim, ours cold, Pose2Sim, ours warm, ours in a running worker. Every
run is a fresh process; the running worker's time is the second of two fits inside one process.

* Pose2Sim: ``bench/peer_run_pose2sim.py`` in a separate venv ``.venv-peer`` (created on first use with the
  ``bench`` extra of pyproject.toml, ``pose2sim==0.10.49`` and ``opensim==4.6``; Pose2Sim pulls opencv-python and opencv-contrib-python, which
  overwrite the ``cv2`` package of the project's opencv-python-headless, and PySide6/openvino/onnxruntime we do
  not need), on a fresh copy of the project folder. Time = the whole process (interpreter start to IK written).
* Ours: ``mmc --prefix h_peer_... ingest session`` (timed apart), then ``mmc populate BilevelFit`` with
  ``MMC_JAX_CACHE`` on an empty folder (cold) or on the folder the round's cold run filled (warm); the fitted
  virtual markers and joint angles are read back and the prefix is dropped.  Running worker (with
  ``--tables BilevelFit``, the default): one process fits the session, deletes the fit, does what ``mmc worker``
  does between rounds (``pipeline.populate.release_compiled_programs``) and fits it again; timed: the second fit.

Scores: 3D keypoint error (Pose2Sim's filtered ``.trc``; ours: fitted virtual markers) against the true
keypoints, mm; joint-angle RMSE (Pose2Sim's IK ``.mot``; ours: fitted joint angles) against the true angles for
the OpenSim coordinate names both models share, deg. Medians over rounds; ratios are ours / Pose2Sim.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from compute.params import default_params_name  # noqa: E402
from peer_layout import (PeerSessionSpec, generate_peer_session, project_paths, write_peer_project,  # noqa: E402
                         write_pose2sim_config)
from peer_score import angle_rmse, keypoint_error, qpos_degrees, read_pose2sim_mot, read_pose2sim_trc  # noqa: E402

PEER_VENV = ROOT / ".venv-peer"
MMC = ROOT / ".venv" / "bin" / "mmc"
PYTHON = ROOT / ".venv" / "bin" / "python"
TEMPLATE_CONFIG = "Demo_SinglePerson/Config.toml"   # inside the installed Pose2Sim package


# ------------------------------------------------------------------------------------------- environment
def peer_requirements() -> list[str]:
    """The ``bench`` extra of pyproject.toml (Pose2Sim and OpenSim, pinned)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["bench"])


def peer_python() -> Path:
    """The Pose2Sim venv's interpreter, creating the venv with the ``bench`` extra when it is missing or
    incomplete (a separate venv: Pose2Sim's opencv-python/opencv-contrib-python would replace the cv2 package of
    the project's opencv-python-headless)."""
    python = PEER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import Pose2Sim, opensim"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    requirements = peer_requirements()
    print(f"creating {PEER_VENV} with {' '.join(requirements)} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    subprocess.run(probe, check=True)
    return python


def pose2sim_template(python: Path) -> dict:
    """Pose2Sim's own single-trial Config.toml as a dict (read from the installed package, not imported)."""
    where = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print(u.find_spec('Pose2Sim').submodule_search_locations[0])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return tomllib.loads((Path(where) / TEMPLATE_CONFIG).read_text())


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


# ------------------------------------------------------------------------------------------------- runs
def run_timed(command: list[str], env: dict | None = None, log: Path | None = None) -> float:
    """Run ``command`` to completion; returns its wall time (s). Output goes to ``log``; failure raises with
    the log's tail."""
    start = time.perf_counter()
    env = dict(env or os.environ, QT_QPA_PLATFORM="offscreen", MPLBACKEND="Agg")  # headless
    with open(log or os.devnull, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    elapsed = time.perf_counter() - start
    if code != 0:
        tail = log.read_text()[-3000:] if log else ""
        raise RuntimeError(f"{' '.join(command)} exited {code}\n{tail}")
    return elapsed


def run_pose2sim(python: Path, pristine: Path, work: Path, truth: dict, label: str) -> dict:
    """One Pose2Sim run on a fresh copy of ``pristine``; returns timings and scores."""
    project = work / f"p2s_{label}"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(pristine, project)
    log = work / f"p2s_{label}.log"
    wall = run_timed([str(python), str(ROOT / "bench" / "peer_run_pose2sim.py"), str(project)], log=log)
    steps = next(json.loads(line.split(" ", 1)[1]) for line in log.read_text().splitlines()
                 if line.startswith("PEER_TIMINGS "))
    trc = sorted((project / "pose-3d").glob("*filt*.trc")) or sorted((project / "pose-3d").glob("*.trc"))
    mot = sorted((project / "kinematics").glob("*.mot"))
    if not trc or not mot:
        raise RuntimeError(f"Pose2Sim wrote no .trc/.mot under {project} (log {log})")
    times, markers, names = read_pose2sim_trc(trc[0])
    frames = np.rint(times * truth["fps"]).astype(int)
    mot_times, angles = read_pose2sim_mot(mot[0])
    mot_frames = np.rint(mot_times * truth["fps"]).astype(int)
    return dict(wall_s=wall, steps=steps, trc=str(trc[0]), mot=str(mot[0]), load=load_average(),
                frames=frames.tolist(), coverage=len(frames) / truth["markers"].shape[0],
                keypoints=keypoint_error(markers, names, truth["markers"][frames], truth["marker_names"]),
                angles=angle_rmse(angles, {k: v[mot_frames] for k, v in truth["angles_deg"].items()}))


def run_ours(manifest: Path, cache_dir: Path, work: Path, truth: dict, label: str, tables: list[str],
             frames: list[int], worker: bool = False) -> dict:
    """Ingest + ``mmc populate`` into a scratch prefix (dropped afterwards); returns timings and scores, on the
    ``frames`` Pose2Sim reconstructed (its default trims the start and end) and on all frames.

    worker: instead of ``mmc populate``, one process fits the session, deletes the fit, does what ``mmc worker``
    does between rounds and fits it again; the time is the second fit's (fetch, fit, insert): the time-to-result
    of a running worker that has already fitted a session of this shape bucket."""
    prefix = f"h_peer_{label}_{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, MMC_JAX_CACHE=str(cache_dir), MMC_SCHEMA_PREFIX=prefix)
    try:
        ingest = run_timed([str(MMC), "--prefix", prefix, "ingest", "session", str(manifest)], env=env,
                           log=work / f"ours_{label}_ingest.log")
        load = load_average()
        if worker:
            times_file = work / f"ours_{label}_worker.json"
            run_timed([str(PYTHON), str(Path(__file__).resolve()), "--worker-rounds", prefix, str(times_file)],
                      env=env, log=work / f"ours_{label}_populate.log")
            populate = json.loads(times_file.read_text())["second_s"]
        else:
            populate = run_timed([str(MMC), "--prefix", prefix, "populate", *tables], env=env,
                                 log=work / f"ours_{label}_populate.log")
        result_file = work / f"ours_{label}.npz"
        run_timed([str(PYTHON), str(Path(__file__).resolve()), "--collect", prefix, str(result_file)], env=env,
                  log=work / f"ours_{label}_collect.log")
    finally:
        subprocess.run([str(PYTHON), str(Path(__file__).resolve()), "--drop", prefix], cwd=ROOT,
                       capture_output=True)
    fit = np.load(result_file, allow_pickle=False)
    marker_names = tuple(str(n) for n in fit["marker_names"])
    angles = qpos_degrees(fit["qpos"], [str(n) for n in fit["joint_names"]])
    return dict(wall_s=populate, ingest_s=ingest, load=load, iterations=int(fit["iterations"]),
                fit_s=float(fit["fit_s"]), gc5=float(fit["gc5"]),
                keypoints=keypoint_error(fit["markers"][frames], marker_names, truth["markers"][frames],
                                         truth["marker_names"]),
                keypoints_all=keypoint_error(fit["markers"], marker_names, truth["markers"], truth["marker_names"]),
                angles=angle_rmse({k: v[frames] for k, v in angles.items()},
                                  {k: v[frames] for k, v in truth["angles_deg"].items()}))


def collect(prefix: str, out: Path) -> None:
    """Write the first fitted trial of ``prefix`` (markers (T,J,3) m world, qpos (T,Q), names) to ``out``."""
    from pipeline.db import open_database
    from pipeline.exporters import fetch_trial_exports

    database = open_database(prefix)
    trials = fetch_trial_exports(database)
    if len(trials) != 1:
        raise SystemExit(f"--collect {prefix}: expected one fitted trial, found {len(trials)}")
    trial = trials[0]
    iterations, fit_s, gc5 = database.schemas["fitting"].BilevelFit.fetch("iterations", "wall_time_s", "gc5")
    np.savez(out, markers=trial.markers, qpos=trial.qpos, joint_names=np.array(trial.joint_names),
             marker_names=np.array(trial.marker_names), iterations=np.array(int(iterations[0])),
             fit_s=np.array(float(fit_s[0])), gc5=np.array(float(gc5[0])))


def worker_rounds(prefix: str, out: Path) -> None:
    """Fit ``prefix``'s session twice in this process, as a running ``mmc worker`` would meet two sessions of one
    shape bucket (between them: what the worker does between rounds); write both times (s) to ``out``."""
    from pipeline.jax_setup import configure_jax
    from pipeline.populate import open_for_computing, release_compiled_programs

    database = open_for_computing(prefix)
    configure_jax()
    fitting = database.schemas["fitting"]
    fitting.add_missing_fit_tasks()
    times = []
    for round_index in range(2):
        if round_index:
            fitting.BilevelFit.delete(prompt=False)
            release_compiled_programs()
        start = time.perf_counter()
        fitting.BilevelFit.populate(suppress_errors=False)
        times.append(time.perf_counter() - start)
    out.write_text(json.dumps(dict(first_s=times[0], second_s=times[1])))


def drop(prefix: str) -> None:
    """Drop every schema of the scratch ``prefix`` (only ``h_peer_`` prefixes)."""
    import schemas
    from pipeline.db import connect, ensure_server
    from pipeline.config import load_config

    if not prefix.startswith("h_peer_"):
        raise SystemExit(f"--drop: refusing prefix {prefix!r} (only h_peer_*)")
    schemas.drop_all(prefix, connect(ensure_server(load_config(), verbose=False)))


# ---------------------------------------------------------------------------------------------- summary
def load_truth(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data["joint_names"]]
        fps = 1.0 / float(np.median(np.diff(data["times"])))
        return dict(markers=data["markers"], marker_names=[str(n) for n in data["marker_names"]],
                    angles_deg=qpos_degrees(data["qpos"], names), fps=fps)


def median(values) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def summarise(spec: PeerSessionSpec, p2s: list[dict], cold: list[dict], warm: list[dict],
              worker: list[dict]) -> dict:
    ours = cold + warm + worker
    shared = sorted(set(p2s[0]["angles"].names) & set(ours[0]["angles"].names))

    def ang(runs, attr):
        return median([float(np.mean([r["angles"].per_coordinate[n][attr] for n in shared])) for r in runs])

    return dict(
        config=spec.name, cameras=spec.n_cameras, frames=spec.n_frames,
        p2s_s=median([r["wall_s"] for r in p2s]), cold_s=median([r["wall_s"] for r in cold]),
        warm_s=median([r["wall_s"] for r in warm]), worker_s=median([r["wall_s"] for r in worker]),
        ingest_s=median([r["ingest_s"] for r in ours]),
        p2s_steps={k: median([r["steps"][k] for r in p2s]) for k in p2s[0]["steps"]},
        p2s_mm=median([r["keypoints"].mean_mm for r in p2s]), ours_mm=median([r["keypoints"].mean_mm for r in ours]),
        p2s_median_mm=median([r["keypoints"].median_mm for r in p2s]),
        ours_median_mm=median([r["keypoints"].median_mm for r in ours]),
        p2s_deg=ang(p2s, 0), ours_deg=ang(ours, 0), p2s_shape_deg=ang(p2s, 1), ours_shape_deg=ang(ours, 1),
        shared_coordinates=shared, iterations=median([r["iterations"] for r in ours]),
        fit_s=median([r["fit_s"] for r in warm]), gc5=median([r["gc5"] for r in ours]),
        p2s_coverage=median([r["coverage"] for r in p2s]),
        ours_all_frames_mm=median([r["keypoints_all"].mean_mm for r in ours]),
        per_coordinate={n: dict(p2s=p2s[0]["angles"].per_coordinate[n], ours=ours[-1]["angles"].per_coordinate[n])
                        for n in shared},
        loads=dict(p2s=[r["load"] for r in p2s], cold=[r["load"] for r in cold], warm=[r["load"] for r in warm],
                   worker=[r["load"] for r in worker]),
        runs=dict(p2s=len(p2s), cold=len(cold), warm=len(warm), worker=len(worker)))


def markdown(rows: list[dict], tables: list[str]) -> str:
    lines = [f"Pose2Sim 0.10.49 (triangulation → Butterworth filter → OpenSim 4.6 scaling + IK) vs `mmc populate "
             f"{' '.join(tables)}` (the set populate gives HALPE26: {default_params_name('HALPE26')}), synthetic walk, "
             "HALPE26 keypoints; times are whole fresh processes (median), except the running worker's: the "
             "second fit (fetch, fit, insert) of a process that has fitted one session of the shape bucket; "
             "ratios ours/Pose2Sim.", "",
             "| cameras | frames | Pose2Sim s | ours warm s (ratio) | ours cold s (ratio) | ours running worker s "
             "(ratio) | ingest s | 3D error mm P2S / ours (ratio) | joint RMSE deg P2S / ours (ratio) | "
             "offset-free RMSE deg P2S / ours | load (1 min) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        loads = [float(v.split()[0]) for runs in r["loads"].values() for v in runs]
        worker_s = r.get("worker_s", float("nan"))  # results.json files written before the column existed
        lines.append(
            f"| {r['cameras']} | {r['frames']} | {r['p2s_s']:.1f} | {r['warm_s']:.1f} ({r['warm_s'] / r['p2s_s']:.1f}×) | "
            f"{r['cold_s']:.1f} ({r['cold_s'] / r['p2s_s']:.1f}×) | "
            f"{worker_s:.1f} ({worker_s / r['p2s_s']:.1f}×) | "
            f"{r['ingest_s']:.1f} | "
            f"{r['p2s_mm']:.1f} / {r['ours_mm']:.1f} ({r['ours_mm'] / r['p2s_mm']:.2f}) | "
            f"{r['p2s_deg']:.1f} / {r['ours_deg']:.1f} ({r['ours_deg'] / r['p2s_deg']:.2f}) | "
            f"{r['p2s_shape_deg']:.1f} / {r['ours_shape_deg']:.1f} | {min(loads):.1f}–{max(loads):.1f} |")
    lines += ["", "Ours: " + "; ".join(
        f"{r['config']}: {r['iterations']:.0f} steps, fit compute {r['fit_s']:.0f} s (warm), GC_5 {r['gc5']:.3f}, "
        f"3D error over all frames {r.get('ours_all_frames_mm', float('nan')):.1f} mm" for r in rows) +
        ". Pose2Sim frames kept (its default trims): " + ", ".join(
        f"{r['config']} {100 * r.get('p2s_coverage', float('nan')):.0f} %" for r in rows) +
        "; both are scored on those frames."]
    lines += ["", "Pose2Sim steps (median s): " + "; ".join(
        f"{r['config']}: " + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in r["p2s_steps"].items()) for r in rows)]
    for r in rows:
        lines += ["", f"Joint RMSE deg per coordinate, {r['config']} (Pose2Sim / ours; {len(r['shared_coordinates'])} "
                      "shared coordinates): " + ", ".join(
                          f"{n} {v['p2s'][0]:.1f}/{v['ours'][0]:.1f}" for n, v in r["per_coordinate"].items())]
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 cameras, 100 frames, one round")
    parser.add_argument("--cameras", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--frames", type=int, nargs="+", default=[100])
    parser.add_argument("--reps", type=int, default=2, help="rounds (each: P2S, ours cold, P2S, ours warm)")
    parser.add_argument("--tables", nargs="+", default=["BilevelFit"], help="what `mmc populate` computes")
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "peer_bench",
                        help="scratch folder; synthetic projects already written there are reused")
    parser.add_argument("--table", type=Path, metavar="RESULTS_JSON", help="reprint the table of a results.json")
    parser.add_argument("--collect", nargs=2, metavar=("PREFIX", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--drop", metavar="PREFIX", help=argparse.SUPPRESS)
    parser.add_argument("--worker-rounds", nargs=2, metavar=("PREFIX", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collect:
        collect(args.collect[0], Path(args.collect[1]))
        return 0
    if args.drop:
        drop(args.drop)
        return 0
    if args.worker_rounds:
        worker_rounds(args.worker_rounds[0], Path(args.worker_rounds[1]))
        return 0
    if args.table:
        print(markdown(json.loads(args.table.read_text()), args.tables))
        return 0
    if args.quick:
        args.cameras, args.frames, args.reps = [4], [100], 1
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    python = peer_python()
    template = pose2sim_template(python)
    from compute.kinematics import load_body_model

    body = load_body_model("HALPE26")
    rows = []
    for n_frames in args.frames:
        for n_cameras in args.cameras:
            spec = PeerSessionSpec(n_cameras=n_cameras, n_frames=n_frames)
            folder = work / spec.name
            pristine = project_paths(folder / "project")
            if not pristine.truth.exists():  # generating takes minutes on a busy machine: reuse a written one
                pristine = write_peer_project(*generate_peer_session(spec, body), spec, folder / "project", template)
            with np.load(pristine.truth) as data:  # the Pose2Sim settings may have changed since it was written
                write_pose2sim_config(pristine.root, spec, float(data["height_m"]), float(data["mass_kg"]), template)
            truth = load_truth(pristine.truth)
            p2s, cold, warm, worker = [], [], [], []
            for k in range(args.reps):
                cache = folder / f"jax_cache_{k}"
                shutil.rmtree(cache, ignore_errors=True)
                cache.mkdir()
                p2s.append(run_pose2sim(python, pristine.root, folder, truth, f"{k}a"))
                frames = p2s[-1]["frames"]
                cold.append(run_ours(pristine.manifest, cache, folder, truth, f"{spec.name}_{k}c", args.tables, frames))
                p2s.append(run_pose2sim(python, pristine.root, folder, truth, f"{k}b"))
                warm.append(run_ours(pristine.manifest, cache, folder, truth, f"{spec.name}_{k}w", args.tables, frames))
                if args.tables == ["BilevelFit"]:  # the worker rounds fit BilevelFit only
                    worker.append(run_ours(pristine.manifest, cache, folder, truth, f"{spec.name}_{k}r", args.tables,
                                           frames, worker=True))
                print(f"{spec.name} round {k}: P2S {p2s[-2]['wall_s']:.1f}/{p2s[-1]['wall_s']:.1f} s, ours cold "
                      f"{cold[-1]['wall_s']:.1f} s, warm {warm[-1]['wall_s']:.1f} s, running worker "
                      f"{worker[-1]['wall_s'] if worker else float('nan'):.1f} s (load {load_average()})",
                      file=sys.stderr, flush=True)
            rows.append(summarise(spec, p2s, cold, warm, worker))
            (work / "results.json").write_text(json.dumps(_plain(rows), indent=1))
    print(markdown(rows, args.tables))
    print(f"\n(work folder {work}; load at end {load_average()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
