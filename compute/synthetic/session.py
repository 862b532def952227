"""Generate a complete synthetic session: subject, rig, trials, observations and footfalls.

Pure numpy/JAX, no file I/O (the writer is ``pipeline/synth.py``). Everything is seeded through
``np.random.default_rng(config.seed)``; the same config gives bit-identical sessions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compute.cameras import Camera, perturb_camera
from compute.kinematics import BodyModel, load_body_model
from compute.synthetic.config import SyntheticSessionConfig
from compute.synthetic.conventions import joint_conventions
from compute.synthetic.feet import foot_model
from compute.synthetic.forward import forward_markers
from compute.synthetic.motion import motion_for_trial, tune_gait
from compute.synthetic.observation import observe, second_person
from compute.synthetic.rig import sample_rig
from compute.synthetic.subject import (Subject, cadence_steps_per_min, sample_gait_style, sample_log_scale,
                                       standing_heights)
from compute.synthetic.walkway import WalkwayTransform, walkway_footfalls


@dataclass
class SyntheticTrial:
    """One generated trial. C cameras, T frames, J keypoints, Q joints.

    keypoints (C,T,J,2) float32 px, NaN where confidence is 0; confidence (C,T,J) float32;
    keypoints_noise_free (C,T,J,2) float64: exact projections of ``markers`` through the TRUE cameras;
    visible (C,T,J): in front of the camera and inside the image; dropped (C,T,J): randomly dropped;
    is_outlier (C,T,J): replaced by the second person's keypoint; spread_mm (C,T,J): sampled 3D spread.
    footfalls: dicts with foot 'L'/'R', contact_time, toe_off_time (s, trial clock), heel_world,
    toe_world (3,) (markers at foot-flat, 25 % into stance), heel_walkway, toe_walkway (2,), on_walkway.
    """

    name: str
    activity: str
    fps: float
    times: np.ndarray
    qpos: np.ndarray
    markers: np.ndarray
    keypoints: np.ndarray
    confidence: np.ndarray
    is_outlier: np.ndarray
    footfalls: list[dict]
    keypoints_noise_free: np.ndarray
    visible: np.ndarray
    dropped: np.ndarray
    spread_mm: np.ndarray
    speed_m_s: float = 0.0
    cadence_steps_per_min: float = 0.0
    heel_markers: np.ndarray | None = None     # (T, 2, 3) world heel markers [L, R] of the foot model
    toe_markers: np.ndarray | None = None      # (T, 2, 3) world toe markers [L, R]


@dataclass
class SyntheticSession:
    """A generated session: one subject, one rig, its trials and every true quantity."""

    subject_id: str
    session_id: str
    population: str
    log_scale: np.ndarray            # (G,)
    offsets: np.ndarray              # (J, 3) metres, body frame
    marker_sites: np.ndarray         # (J, 3) base-model sites used (unscaled, body frame)
    marker_names: tuple[str, ...]
    marker_set: str
    joint_names: tuple[str, ...]
    height_m: float
    mass_kg: float
    sex: str
    affected_side: str | None        # 'L'/'R' for hemiparetic and prosthesis subjects
    cameras_true: Camera             # rig (C,)
    cameras_given: Camera            # rig (C,), perturbed calibration handed to the fitter
    camera_names: tuple[str, ...]
    walkway_transform: WalkwayTransform
    trials: list[SyntheticTrial]
    config: SyntheticSessionConfig


def generate_session(config: SyntheticSessionConfig, body: BodyModel | None = None) -> SyntheticSession:
    """Generate a complete synthetic session (subject, rig, trials, observations, footfalls).

    body: model whose marker set equals ``config.marker_set`` (its ``marker_sites`` are the true sites);
    default ``load_body_model(config.marker_set)``. Gait geometry (contacts) uses the MOVI87 feet: the body
    itself when it is MOVI87, else a MOVI87 model with the same scales.
    """
    if body is None:
        body = load_body_model(config.marker_set)
    if body.marker_set != config.marker_set:
        raise ValueError(f"generate_session: body.marker_set is {body.marker_set!r}, config.marker_set is "
                         f"{config.marker_set!r}; they must match")
    geometry = body if body.marker_set == "MOVI87" else load_body_model("MOVI87")
    rng = np.random.default_rng(config.seed)
    rig_rng = np.random.default_rng(config.rig_seed) if config.rig_seed is not None else rng
    conv = joint_conventions(geometry)
    feet = foot_model(geometry)
    G = len(body.scale_group_names)
    J = len(body.marker_names)

    log_scale = sample_log_scale(rng, G, config)
    offsets = rng.normal(0.0, config.marker_offset_std_m, (J, 3))
    offsets = np.clip(offsets, -3 * config.marker_offset_std_m, 3 * config.marker_offset_std_m)
    geometry_offsets = offsets if geometry is body else np.zeros((len(geometry.marker_names), 3))
    style, affected = sample_gait_style(rng, config.population, math.exp(log_scale[0]))
    cadence = cadence_steps_per_min(style.speed_m_s, math.exp(log_scale[0]), config.population)
    standing, pelvis_height = standing_heights(geometry, conv, log_scale, geometry_offsets, feet)
    subject = Subject(log_scale, offsets, geometry_offsets, style, affected, cadence, standing, pelvis_height)
    height_m = float(1.75 * math.exp(log_scale[0]))
    mass_kg = float(rng.uniform(19.0, 27.0) * height_m ** 2)
    sex = str(rng.choice(["F", "M"]))

    cameras_true, names = sample_rig(rig_rng, config.n_cameras, config.image_size, config.rig)
    if config.calibration_rotation_error_deg > 0 or config.calibration_translation_error_m > 0:
        cameras_given = perturb_camera(cameras_true, config.calibration_rotation_error_deg,
                                       config.calibration_translation_error_m, rng)
    else:
        cameras_given = cameras_true
    walkway = WalkwayTransform(math.radians(config.walkway_angle_deg), tuple(config.walkway_translation_m),
                               config.walkway_time_offset_s)

    needs_walk = any(s.activity in ("walk", "tug") for s in config.trials)
    amplitude, abduction = (tune_gait(geometry, conv, feet, subject, config.fps, config.supersample,
                                      style.speed_m_s) if needs_walk else (1.0, 0.0))
    trials = []
    ss = config.supersample
    for spec in config.trials:
        motion = motion_for_trial(geometry, conv, feet, subject, spec, config, rng, amplitude, abduction)
        frames = slice(0, None, ss)
        qpos = motion.qpos[frames]
        times = motion.times[frames]
        markers = forward_markers(body, qpos, log_scale, offsets)
        other_q, other_scale = second_person(rng, qpos, conv, G, config)
        other = forward_markers(body, other_q, other_scale, np.zeros((J, 3)))
        obs = observe(rng, config, cameras_true, markers, other)
        footfalls = (walkway_footfalls(motion, walkway, config.walkway_length_m)
                     if spec.activity in ("walk", "tug") else [])
        trials.append(SyntheticTrial(
            name=spec.name, activity=spec.activity, fps=config.fps, times=times, qpos=qpos.astype(np.float32),
            markers=markers.astype(np.float32), footfalls=footfalls, speed_m_s=motion.speed_m_s,
            cadence_steps_per_min=motion.cadence, heel_markers=motion.heel[frames], toe_markers=motion.toe[frames],
            **obs))
    return SyntheticSession(
        subject_id=config.subject_id or f"SYN{config.seed:04d}", session_id=config.session_id,
        population=config.population, log_scale=log_scale.astype(np.float32), offsets=offsets.astype(np.float32),
        marker_sites=np.asarray(body.marker_sites, np.float32), marker_names=tuple(body.marker_names),
        marker_set=body.marker_set, joint_names=tuple(body.joint_names), height_m=round(height_m, 3),
        mass_kg=round(mass_kg, 1), sex=sex, affected_side=affected, cameras_true=cameras_true,
        cameras_given=cameras_given, camera_names=names, walkway_transform=walkway, trials=trials, config=config)
