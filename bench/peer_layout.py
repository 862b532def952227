"""A synthetic walking trial written twice over the same files: as a Pose2Sim project and as an mmc session.

Layout of one project folder (Pose2Sim's single-trial layout; the mmc manifest points into the same files)::

    Config.toml                        Pose2Sim configuration (a template with the overrides below)
    calibration/Calib_synthetic.toml   Pose2Sim/anipose TOML: [camNN] size, matrix, distortions, Rodrigues
                                       world->camera rotation, translation (m), fisheye = false
    pose/camNN_json/camNN_NNNNNN.json  OpenPose-style JSON per camera and frame, one person, HALPE_26 order;
                                       a missing keypoint is (0, 0, 0)
    manifest.toml                      mmc session manifest (openpose folder ``pose``, keypoint set HALPE26)
    truth.npz                          times (T,) s, markers (T,J,3) m world Z-up, qpos (T,Q) rad/m,
                                       marker_names (J,), joint_names (Q,), height_m, mass_kg

No Pose2Sim import here: the writer only produces files, so it runs (and is tested) in the project's venv.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from compute.synthetic import SyntheticSession, SyntheticSessionConfig, SyntheticTrialSpec, generate_session

__all__ = ["PeerSessionSpec", "generate_peer_session", "write_pose2sim_calibration", "write_openpose_camera",
           "pose2sim_overrides", "merge_config", "write_pose2sim_config", "write_peer_project", "project_paths", "PeerProject", "CALIBRATION_FILE"]

# Pose2Sim's name of our HALPE26 keypoint set (RTMPose body_with_feet, its default pose model).
POSE2SIM_POSE_MODEL = {"HALPE26": "HALPE_26", "BODY25B": "BODY_25B", "BODY25": "BODY_25", "COCO17": "COCO_17"}
CALIBRATION_FILE = "calibration/Calib_synthetic.toml"
TRIAL_NAME = "walk01"


@dataclass(frozen=True)
class PeerSessionSpec:
    """One benchmark session: ``n_cameras`` cameras, ``n_frames`` frames at ``fps`` Hz of one walking control
    subject, keypoints of ``keypoint_set``; every other observation setting is the synthetic default
    (1.5 px noise, 10 % dropped, 3 % outliers from a second person)."""

    n_cameras: int = 4
    n_frames: int = 100
    fps: float = 30.0
    seed: int = 3
    keypoint_set: str = "HALPE26"

    @property
    def name(self) -> str:
        return f"c{self.n_cameras}_f{self.n_frames}"

    def session_config(self) -> SyntheticSessionConfig:
        return SyntheticSessionConfig(seed=self.seed, subject_id=f"PEER{self.n_cameras:02d}", n_cameras=self.n_cameras,
                                      fps=self.fps, marker_set=self.keypoint_set,
                                      trials=(SyntheticTrialSpec(TRIAL_NAME, "walk", None),))


def generate_peer_session(spec: PeerSessionSpec, body=None) -> tuple[SyntheticSession, slice]:
    """The synthetic session of ``spec`` (one whole walk along the walkway) and the window of ``spec.n_frames``
    frames centred where the subject crosses the middle of the capture volume (x = 0), so that every camera
    sees the subject in most frames. A walk shorter than the window is regenerated with a fixed duration."""
    config = spec.session_config()
    session = generate_session(config, body)
    T_all = len(session.trials[0].times)
    if T_all < spec.n_frames:
        longer = SyntheticTrialSpec(TRIAL_NAME, "walk", spec.n_frames / spec.fps + 1.0)
        session = generate_session(replace(config, trials=(longer,)), body)
        T_all = len(session.trials[0].times)
    names = list(session.marker_names)
    hips = [names.index(n) for n in ("LHip", "RHip") if n in names] or [0]
    x = np.asarray(session.trials[0].markers)[:, hips, 0].mean(axis=1)
    centre = int(np.argmin(np.abs(x)))
    start = int(np.clip(centre - spec.n_frames // 2, 0, T_all - spec.n_frames))
    return session, slice(start, start + spec.n_frames)


def _floats(a) -> list:
    return np.asarray(a, np.float64).tolist()


def write_pose2sim_calibration(cameras, names: tuple[str, ...], path: Path) -> Path:
    """Pose2Sim calibration TOML of the rig ``cameras`` (C,): one ``[name]`` section per camera in ``names``
    order (Pose2Sim pairs calibration sections and pose folders by sorted name)."""
    doc: dict[str, Any] = {}
    for i, name in enumerate(names):
        doc[name] = dict(name=name, size=[float(v) for v in np.asarray(cameras.size[i])],
                         matrix=_floats(cameras.K[i]), distortions=_floats(np.asarray(cameras.dist[i])[:4]),
                         rotation=_floats(cameras.rvec[i]), translation=_floats(cameras.tvec[i]), fisheye=False)
    doc["metadata"] = dict(adjusted=False, error=0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(doc))
    return path


def openpose_frame(keypoints: np.ndarray, confidence: np.ndarray) -> dict:
    """One OpenPose JSON document of one person: ``keypoints`` (J, 2) px (NaN = missing), ``confidence`` (J,).
    A missing keypoint is written (0, 0, 0), as OpenPose and Pose2Sim do."""
    xyc = np.concatenate([keypoints, confidence[:, None]], axis=1).astype(np.float64)
    missing = ~np.isfinite(xyc).all(axis=1) | (confidence <= 0)
    xyc[missing] = 0.0
    person = {"person_id": [-1], "pose_keypoints_2d": [round(float(v), 3) for v in xyc.ravel()],
              "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
              "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
              "hand_right_keypoints_3d": []}
    return {"version": 1.3, "people": [person]}


def write_openpose_camera(keypoints: np.ndarray, confidence: np.ndarray, folder: Path, camera: str) -> list[Path]:
    """Write ``camera``'s frames (``keypoints`` (T, J, 2) px, ``confidence`` (T, J)) as
    ``folder/<camera>_<frame:06d>.json``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in range(keypoints.shape[0]):
        path = folder / f"{camera}_{t:06d}.json"
        path.write_text(json.dumps(openpose_frame(keypoints[t], confidence[t])))
        paths.append(path)
    return paths


def merge_config(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in, table by table (a deep copy; ``base`` is unchanged)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def pose2sim_overrides(spec: PeerSessionSpec, height_m: float, mass_kg: float) -> dict:
    """The Config.toml settings the benchmark fixes; everything else stays Pose2Sim's default.

    Known frame rate, one person, the pose model of ``spec.keypoint_set``, the subject's true height and mass
    (our manifest gives them too); lens distortion undistorted (the synthetic cameras have |k1| up to 0.1 and
    Pose2Sim's own advice is to undistort above 1e-2); no LSTM marker augmentation (an extra model on top of
    the keypoints, not part of the triangulation -> filtering -> kinematics chain compared here); no figures
    shown or saved (a headless batch run)."""
    return {
        "project": {"multi_person": False, "participant_height": float(height_m),
                    "participant_mass": float(mass_kg), "frame_rate": float(spec.fps)},
        "pose": {"pose_model": POSE2SIM_POSE_MODEL[spec.keypoint_set]},
        "triangulation": {"undistort_points": True},
        "filtering": {"display_figures": False, "save_filt_plots": False},
        "kinematics": {"use_augmentation": False},
    }


def write_pose2sim_config(root: Path, spec: PeerSessionSpec, height_m: float, mass_kg: float,
                          base_config: dict) -> Path:
    """``root/Config.toml``: Pose2Sim's template ``base_config`` with :func:`pose2sim_overrides` on top."""
    path = Path(root) / "Config.toml"
    path.write_text(tomli_w.dumps(merge_config(base_config, pose2sim_overrides(spec, height_m, mass_kg))))
    return path


def _manifest(session: SyntheticSession, spec: PeerSessionSpec, names: tuple[str, ...]) -> dict:
    return dict(
        subject=dict(id=session.subject_id, population="control", height_m=session.height_m,
                     mass_kg=session.mass_kg, sex=session.sex),
        session=dict(id=session.session_id, calibration=CALIBRATION_FILE, calibration_format="anipose",
                     calibration_unit="m", notes="peer benchmark (bench/bench_peer.py)"),
        trials=[dict(name=TRIAL_NAME, activity="walk", fps=float(spec.fps), keypoints="pose",
                     keypoints_format="openpose", keypoint_set=spec.keypoint_set, detector="synthetic 1.0",
                     camera_map={f"{name}_json": name for name in names})])


@dataclass(frozen=True)
class PeerProject:
    """Paths of a written project (see module docstring)."""

    root: Path
    config: Path
    calibration: Path
    manifest: Path
    truth: Path


def project_paths(root: Path) -> PeerProject:
    """The paths of a project written under ``root`` (they may not exist yet)."""
    return PeerProject(root, root / "Config.toml", root / CALIBRATION_FILE, root / "manifest.toml", root / "truth.npz")


def write_peer_project(session: SyntheticSession, window: slice, spec: PeerSessionSpec, out_dir: str | Path,
                       base_config: dict) -> PeerProject:
    """Write frames ``window`` of ``session``'s first trial in the layout above (frame 0 of the files is the
    window's first frame); ``base_config`` is Pose2Sim's template Config.toml as a dict (the overrides of
    :func:`pose2sim_overrides` go on top). Cameras are renamed ``cam01``.. (Pose2Sim pairs calibration
    sections and pose folders by sorted name, so zero-padded names keep the order)."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    trial = session.trials[0]
    names = tuple(f"cam{i + 1:02d}" for i in range(len(session.camera_names)))
    calibration = write_pose2sim_calibration(session.cameras_given, names, root / CALIBRATION_FILE)
    for c, name in enumerate(names):
        write_openpose_camera(np.asarray(trial.keypoints[c][window]), np.asarray(trial.confidence[c][window]),
                              root / "pose" / f"{name}_json", name)
    config_path = write_pose2sim_config(root, spec, session.height_m, session.mass_kg, base_config)
    manifest = root / "manifest.toml"
    manifest.write_text(tomli_w.dumps(_manifest(session, spec, names)))
    truth = root / "truth.npz"
    n = len(range(*window.indices(len(trial.times))))
    np.savez_compressed(truth, times=np.arange(n) / spec.fps, markers=np.asarray(trial.markers[window], np.float64),
                        qpos=np.asarray(trial.qpos[window], np.float64),
                        marker_names=np.array(session.marker_names), joint_names=np.array(session.joint_names),
                        height_m=np.array(session.height_m), mass_kg=np.array(session.mass_kg),
                        window_start=np.array(window.start))
    return PeerProject(root, config_path, calibration, manifest, truth)
