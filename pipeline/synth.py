"""Write synthetic sessions (``compute.synthetic``) in the lab file formats + ``truth.npz``; ``mmc synth``.

Layout of one session folder (paths in the manifest are relative to it)::

    manifest.toml                 session manifest (subject, session, trials; what ``mmc ingest session`` reads)
    calibration.toml              anipose TOML of the GIVEN (possibly perturbed) cameras, translation in m
    <trial>/keypoints/<cam>.npz   keypoints (T,J,2) float32 px, confidence (T,J), joint_names, frame_index
    <trial>/walkway.csv           walking trials only: on-walkway footfalls, walkway frame and clock
    truth.npz                     every true quantity (see write_truth)
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tomli_w

from pipeline.importers.errors import IngestError

if TYPE_CHECKING:
    from compute.synthetic import SyntheticSession

__all__ = ["write_session", "write_calibration", "write_truth", "read_truth", "synth_command",
           "add_synth_arguments", "register_commands"]

WALKWAY_HEADER = ("foot", "contact_time_s", "toe_off_time_s", "heel_x_m", "heel_y_m", "toe_x_m", "toe_y_m")



# The synthetic gait patterns stand for these clinical populations (Population lookup rows):
# a hemiparetic gait is a neurologic subject, a one-sided stiff knee/ankle a lower-limb prosthesis user.
CLINICAL_POPULATION = {"control": "control", "hemiparetic": "neurologic", "prosthesis": "llpu"}

def _floats(a) -> list:
    return np.asarray(a, np.float64).tolist()


def write_calibration(rig, names, path: Path) -> Path:
    """Anipose TOML: ``[cam_i]`` name, size, matrix, distortions (5), rotation (Rodrigues), translation (m)."""
    doc = {}
    for i, name in enumerate(names):
        doc[f"cam_{i}"] = dict(name=name, size=[int(v) for v in np.asarray(rig.size[i])],
                               matrix=_floats(rig.K[i]), distortions=_floats(rig.dist[i]),
                               rotation=_floats(rig.rvec[i]), translation=_floats(rig.tvec[i]))
    doc["metadata"] = dict(adjusted=False, error=0.0, source="mmc synth (compute/synthetic.py)")
    path.write_text(tomli_w.dumps(doc))
    return path


def _rig_arrays(prefix: str, rig) -> dict:
    return {f"{prefix}_{k}": np.asarray(getattr(rig, k), np.float64) for k in ("K", "dist", "rvec", "tvec", "size")}


def write_truth(session: SyntheticSession, path: Path) -> Path:
    """``truth.npz``: subject (log_scale, offsets, marker_sites, names), both rigs, walkway transform and, per
    trial ``<trial>__<field>``: times, qpos, markers, keypoints_noise_free, is_outlier, visible, dropped,
    footfall arrays (foot 0=L/1=R, contact/toe-off times, heel/toe world and walkway positions, on_walkway)."""
    w = session.walkway_transform
    arrays = dict(
        subject_id=np.array(session.subject_id), population=np.array(session.population),
        log_scale=session.log_scale, offsets=session.offsets, marker_sites=session.marker_sites,
        marker_names=np.array(session.marker_names), marker_set=np.array(session.marker_set),
        joint_names=np.array(session.joint_names), camera_names=np.array(session.camera_names),
        height_m=np.array(session.height_m), affected_side=np.array(session.affected_side or ""),
        walkway_angle_rad=np.array(w.angle_rad), walkway_translation_m=np.asarray(w.translation_m),
        walkway_time_offset_s=np.array(w.time_offset_s), trial_names=np.array([t.name for t in session.trials]),
        seed=np.array(session.config.seed),
        **_rig_arrays("cameras_true", session.cameras_true), **_rig_arrays("cameras_given", session.cameras_given))
    for trial in session.trials:
        p = f"{trial.name}__"
        ff = trial.footfalls
        arrays.update({
            p + "activity": np.array(trial.activity), p + "times": trial.times, p + "qpos": trial.qpos,
            p + "markers": trial.markers, p + "keypoints_noise_free": trial.keypoints_noise_free,
            p + "is_outlier": trial.is_outlier, p + "visible": trial.visible, p + "dropped": trial.dropped,
            p + "speed_m_s": np.array(trial.speed_m_s), p + "cadence_steps_per_min": np.array(trial.cadence_steps_per_min),
            p + "footfall_foot": np.array([0 if f["foot"] == "L" else 1 for f in ff], np.int8),
            p + "footfall_contact_time": np.array([f["contact_time"] for f in ff], float),
            p + "footfall_toe_off_time": np.array([f["toe_off_time"] for f in ff], float),
            p + "footfall_heel_world": np.array([f["heel_world"] for f in ff], float).reshape(-1, 3),
            p + "footfall_toe_world": np.array([f["toe_world"] for f in ff], float).reshape(-1, 3),
            p + "footfall_heel_walkway": np.array([f["heel_walkway"] for f in ff], float).reshape(-1, 2),
            p + "footfall_toe_walkway": np.array([f["toe_walkway"] for f in ff], float).reshape(-1, 2),
            p + "footfall_on_walkway": np.array([f["on_walkway"] for f in ff], bool),
        })
    np.savez_compressed(path, **arrays)
    return path


def read_truth(path: str | Path) -> dict:
    """Load ``truth.npz`` into a dict of numpy arrays (0-d arrays unwrapped to Python scalars/strings)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files}


def _write_walkway(trial, walkway, path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(WALKWAY_HEADER)
        for f in trial.footfalls:
            if not f["on_walkway"]:
                continue
            toe_off = "" if not np.isfinite(f["toe_off_time"]) else f"{f['toe_off_time'] + walkway.time_offset_s:.4f}"
            writer.writerow([f["foot"], f"{f['contact_time'] + walkway.time_offset_s:.4f}", toe_off,
                             f"{f['heel_walkway'][0]:.4f}", f"{f['heel_walkway'][1]:.4f}",
                             f"{f['toe_walkway'][0]:.4f}", f"{f['toe_walkway'][1]:.4f}"])
    return path


def write_session(session: SyntheticSession, out_dir: str | Path) -> Path:
    """Write a session folder (see module docstring); returns the manifest path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_calibration(session.cameras_given, session.camera_names, out / "calibration.toml")
    trials = []
    for trial in session.trials:
        kp_dir = out / trial.name / "keypoints"
        kp_dir.mkdir(parents=True, exist_ok=True)
        for c, name in enumerate(session.camera_names):
            np.savez_compressed(kp_dir / f"{name}.npz", keypoints=trial.keypoints[c].astype(np.float32),
                                confidence=trial.confidence[c].astype(np.float32),
                                joint_names=np.array(session.marker_names),
                                frame_index=np.arange(len(trial.times)), detector=np.array("synthetic 1.0"))
        entry = dict(name=trial.name, activity=trial.activity, fps=float(trial.fps),
                     keypoints=f"{trial.name}/keypoints", keypoints_format="npz",
                     keypoint_set=session.marker_set, detector="synthetic 1.0",
                     assistive_device="prosthesis" if session.population == "prosthesis" else "none")
        if trial.activity == "walk":
            _write_walkway(trial, session.walkway_transform, out / trial.name / "walkway.csv")
            entry["walkway"] = f"{trial.name}/walkway.csv"
        trials.append(entry)
    cfg = session.config
    manifest = dict(
        subject=dict(id=session.subject_id, population=CLINICAL_POPULATION[session.population],
                     height_m=session.height_m, mass_kg=session.mass_kg, sex=session.sex,
                     notes=(f"synthetic {session.population} gait, seed={cfg.seed}, "
                            f"affected_side={session.affected_side or '-'}")),
        session=dict(id=session.session_id, calibration="calibration.toml", calibration_format="anipose",
                     calibration_unit="m", location="synthetic rig",
                     notes=(f"calibration perturbed {cfg.calibration_rotation_error_deg} deg / "
                            f"{cfg.calibration_translation_error_m} m per camera; truth in truth.npz")),
        trials=trials)
    path = out / "manifest.toml"
    path.write_text(tomli_w.dumps(manifest))
    write_truth(session, out / "truth.npz")
    return path


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mmc synth OUT_DIR``."""
    parser.add_argument("out_dir", help="folder that receives one sub-folder per subject/session")
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--trials", type=int, default=2, help="walking trials per session")
    parser.add_argument("--seed", type=int, default=0)
    # checked by synth_command, not by choices=: compute.synthetic starts JAX (~2 s), which every mmc command
    # would pay for when its parser is built
    parser.add_argument("--population", default="mixed",
                        help="a population of compute.synthetic.POPULATIONS (e.g. control, hemiparetic), or "
                             "'mixed' to cycle through them (default)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per trial (default: automatic)")
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--marker-set", default="MOVI87")
    parser.add_argument("--no-static", action="store_true", help="skip the static trial")
    parser.add_argument("--no-tug", action="store_true", help="skip the timed-up-and-go trial")
    parser.add_argument("--rotation-error-deg", type=float, default=0.0)
    parser.add_argument("--translation-error-m", type=float, default=0.0)


def synth_command(args: argparse.Namespace) -> int:
    """``mmc synth``: write ``--subjects`` sessions under OUT_DIR (one shared rig); prints the manifests."""
    from compute.kinematics import load_body_model
    from compute.synthetic import POPULATIONS, SyntheticSessionConfig, default_trials, generate_session

    if args.population not in POPULATIONS + ("mixed",):
        raise IngestError("command line", "--population",
                          f"{args.population!r}: expected one of {', '.join(POPULATIONS)} or mixed")
    body = load_body_model(args.marker_set)
    out = Path(args.out_dir)
    for k in range(args.subjects):
        population = POPULATIONS[k % len(POPULATIONS)] if args.population == "mixed" else args.population
        seed = args.seed * 1000 + k
        config = SyntheticSessionConfig(
            seed=seed, subject_id=f"SYN{seed:04d}", population=population, n_cameras=args.cameras, fps=args.fps,
            trials=default_trials(args.trials, not args.no_static, not args.no_tug, args.duration),
            marker_set=args.marker_set, rig_seed=args.seed,
            calibration_rotation_error_deg=args.rotation_error_deg,
            calibration_translation_error_m=args.translation_error_m)
        session = generate_session(config, body)
        manifest = write_session(session, out / f"{session.subject_id}_{session.session_id}")
        print(f"{manifest}  ({population}, {len(session.trials)} trials)")
    return 0


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``synth``."""
    parser = subparsers.add_parser("synth", help="write synthetic sessions (files + manifest + truth.npz)",
                                   description=__doc__.splitlines()[0])
    add_synth_arguments(parser)
    parser.set_defaults(handler=synth_command)
