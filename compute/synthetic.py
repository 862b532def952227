"""Synthetic ground truth: multi-camera walking sessions whose every quantity is known (DESIGN.md §8).

Pure numpy/JAX, no file I/O (the writer is ``pipeline/synth.py``). Everything is seeded through
``np.random.default_rng(config.seed)``; the same config gives bit-identical sessions.

Conventions
-----------
* World frame: metres, Z up, walking direction +X. The walkway (capture volume) is centred on the
  world origin and spans ``x ∈ [-walkway_length/2, +walkway_length/2]``; the floor is ``z = 0``.
* Gait waveforms are written in anatomical degrees (flexion, adduction, dorsiflexion positive; pelvis
  anterior tilt, left-side-up obliquity and left-side-forward rotation positive) and mapped onto the
  model's joint signs by probing its forward kinematics once (``JointConventions``).
* Feet are planted by construction: joint angles are prescribed, the stance foot is levelled (hip
  rotation, subtalar and ankle angles corrected so it has no roll and no yaw relative to the heading,
  its designed pitch kept: ``_level_stance_feet``), then the pelvis translation is solved per sample so
  that the lowest foot contact marker (relative to its height when standing) rests on the floor and does
  not move horizontally while it is the lowest ("rolling pivot"). A levelled stance foot is rigid and
  still from heel strike to heel rise (heel slide ~0 m/s in straight walking; it pivots in turns).
  Vertical pelvis oscillation, step length and step width follow from the leg geometry.
* Contact events come from the same foot kinematics: a foot is in contact while its lowest contact
  marker is within ``CONTACT_HEIGHT_M`` of its standing height; a footfall is the start of such an
  interval after a swing that lifted the foot and moved it forward. ``contact_time`` is the first
  supersample at which the foot is planted, i.e. the instant the heel stops moving, which is what
  ``compute.gait.detect_foot_events`` measures from heel/toe markers (it reads the contact from the heel's
  horizontal speed; at 30 fps it lands on average ~0.2-0.6 frame later, the heel arriving at ~1.4 m/s and
  stopping within a frame). Heel/toe positions of a footfall are taken at foot-flat (25 % of stance),
  where they equal the positions at contact because the planted heel does not move.
* Walkway frame: ``walkway_xy = R(angle) @ world_xy + translation``; the walkway clock reads
  ``trial time + time_offset_s``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from compute.cameras import Camera, make_camera, perturb_camera, project_to_rig, stack_cameras
from compute.kinematics import BodyModel, load_body_model, markers_over_time, neutral_qpos

__all__ = [
    "POPULATIONS",
    "ACTIVITIES",
    "SyntheticTrialSpec",
    "SyntheticRigConfig",
    "SyntheticSessionConfig",
    "WalkwayTransform",
    "SyntheticTrial",
    "SyntheticSession",
    "JointConventions",
    "default_trials",
    "generate_session",
    "sample_rig",
    "detect_footfalls",
    "gait_waveform",
]

POPULATIONS = ("control", "hemiparetic", "prosthesis")
ACTIVITIES = ("walk", "static", "tug")

CONTACT_HEIGHT_M = 0.003        # foot in contact while its lowest contact marker is this close to standing height
SWING_CLEARANCE_M = 0.01        # a swing must lift the foot at least this much ...
SWING_ADVANCE_M = 0.10          # ... and move it this far horizontally, else it is not a new footfall
FLOOR_BELOW_LOWEST_MARKER_M = 0.02   # floor sits this far below the lowest foot marker when standing
PELVIS_ANTERIOR_TILT_DEG = 10.0   # mean pelvis anterior tilt while walking (trunk re-erected by the lumbar joint)
SWING_MIN_PITCH_DEG = -25.0        # steepest toe-down foot pitch during swing
STANCE_END = 0.62                  # stance phase of each leg: [0, STANCE_END) of its stride
FK_CHUNK = 256                  # FK runs on fixed-size chunks: one compilation for every trial length


# ----------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticTrialSpec:
    """One trial to generate.

    name: trial name (also the folder name when written). activity: 'walk' | 'static' | 'tug'.
    duration_s: trial length; None = automatic (walk: until the subject has stopped past the walkway end
    plus 0.5 s; static: 3 s; tug: until back at the start plus 0.5 s). A fixed duration truncates the
    motion or pads it with quiet standing. speed_m_s: steady walking speed; None = sampled per population.
    """

    name: str
    activity: str = "walk"
    duration_s: float | None = None
    speed_m_s: float | None = None


def default_trials(n_walks: int = 2, static: bool = True, tug: bool = True,
                   duration_s: float | None = None) -> tuple[SyntheticTrialSpec, ...]:
    """``walk01..walkNN`` (+ ``static01``, ``tug01``), all with the given duration (None = automatic)."""
    specs = [SyntheticTrialSpec(f"walk{i + 1:02d}", "walk", duration_s) for i in range(n_walks)]
    if static:
        specs.append(SyntheticTrialSpec("static01", "static", duration_s))
    if tug:
        specs.append(SyntheticTrialSpec("tug01", "tug", duration_s))
    return tuple(specs)


@dataclass(frozen=True)
class SyntheticRigConfig:
    """Camera rig geometry: cameras on a jittered ellipse around the walkway, all aimed at its centre.

    Focal lengths are sampled in ``focal_px_range`` and reduced (not below the range's lower end) so the
    walkway volume fits in the image. Distortion: k1 ~ U(±k1_max), k2 ~ U(±k2_max), p1, p2 ~ U(±p_max).
    """

    focal_px_range: tuple[float, float] = (1400.0, 2200.0)
    height_m_range: tuple[float, float] = (2.0, 3.5)
    ellipse_semi_axes_m: tuple[float, float] = (6.0, 4.2)
    radius_jitter_m: float = 0.4
    look_at_m: tuple[float, float, float] = (0.0, 0.0, 0.9)
    look_at_jitter_m: float = 0.25
    k1_max: float = 0.1
    k2_max: float = 0.02
    p_max: float = 5e-4
    principal_point_jitter_px: float = 12.0
    roll_max_deg: float = 2.0
    fit_margin_px: float = 40.0
    volume_half_extent_m: tuple[float, float] = (3.6, 0.7)   # x, y half-size of the region to fit in view
    volume_height_m: float = 1.95


@dataclass(frozen=True)
class SyntheticSessionConfig:
    """Everything that defines a synthetic session (one subject, one rig, several trials).

    Observation model (per camera c, frame t, keypoint j): a 3D spread ``std`` in mm is drawn log-normally
    around ``spread_median_mm`` (a per-keypoint median times per-observation noise; ``hard_fraction`` of
    observations are 2-4x larger); ``confidence = sigmoid((30 - std) / 10)`` (paper); pixels get i.i.d.
    Gaussian noise ``pixel_noise_px`` per axis. ``drop_fraction`` of all keypoints are dropped in runs of
    mean length ``drop_mean_run_frames`` (NaN, confidence 0), as are points out of frame or behind a camera.
    ``outlier_fraction`` of the remaining valid keypoints are replaced by a second person's keypoints
    (``outlier_block_fraction`` of them as whole camera-frames, the rest singly), confidence drawn as usual.
    """

    seed: int = 0
    subject_id: str | None = None          # default f"SYN{seed:04d}"
    session_id: str = "2024-01-01"
    population: str = "control"
    n_cameras: int = 8
    image_size: tuple[int, int] = (2048, 1536)
    fps: float = 30.0
    trials: tuple[SyntheticTrialSpec, ...] = field(default_factory=default_trials)
    pixel_noise_px: float = 1.5
    drop_fraction: float = 0.10
    drop_mean_run_frames: float = 3.0
    outlier_fraction: float = 0.03
    outlier_block_fraction: float = 0.5
    spread_median_mm: float = 15.0
    spread_log_sd: float = 0.35
    spread_keypoint_log_sd: float = 0.25
    hard_fraction: float = 0.05
    marker_set: str = "MOVI87"
    marker_offset_std_m: float = 0.003
    log_scale_overall_range: tuple[float, float] = (math.log(0.75), math.log(1.10))
    log_scale_group_max: float = 0.04
    calibration_rotation_error_deg: float = 0.0
    calibration_translation_error_m: float = 0.0
    walkway_length_m: float = 6.0
    walkway_angle_deg: float = 3.0
    walkway_translation_m: tuple[float, float] = (3.2, 0.45)
    walkway_time_offset_s: float = 0.37
    rig: SyntheticRigConfig = SyntheticRigConfig()
    rig_seed: int | None = None            # None: the rig is drawn from `seed`; set it to share a rig across subjects
    supersample: int = 4                   # kinematic samples per frame for foot planting and event timing

    def __post_init__(self):
        if self.population not in POPULATIONS:
            raise ValueError(f"SyntheticSessionConfig.population: expected one of {POPULATIONS}, got {self.population!r}")
        for spec in self.trials:
            if spec.activity not in ACTIVITIES:
                raise ValueError(f"SyntheticSessionConfig.trials[{spec.name}].activity: expected one of "
                                 f"{ACTIVITIES}, got {spec.activity!r}")
        if len({spec.name for spec in self.trials}) != len(self.trials):
            raise ValueError("SyntheticSessionConfig.trials: trial names must be unique")
        for name in ("drop_fraction", "outlier_fraction", "outlier_block_fraction", "hard_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"SyntheticSessionConfig.{name}: expected a value in [0, 1), got {value}")
        if self.n_cameras < 2:
            raise ValueError(f"SyntheticSessionConfig.n_cameras: expected >= 2, got {self.n_cameras}")


@dataclass(frozen=True)
class WalkwayTransform:
    """World -> walkway: ``walkway_xy = R(angle_rad) @ world_xy + translation_m``; clock offset in seconds."""

    angle_rad: float
    translation_m: tuple[float, float]
    time_offset_s: float = 0.0

    def apply(self, world_xy: np.ndarray) -> np.ndarray:
        """(..., 2) or (..., 3) world points -> (..., 2) walkway coordinates, metres."""
        xy = np.asarray(world_xy, dtype=np.float64)[..., :2]
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)
        rot = np.array([[c, -s], [s, c]])
        return xy @ rot.T + np.asarray(self.translation_m)


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


# ----------------------------------------------------------------------------------------------------
# Normative gait waveforms (sagittal: Winter 2009 / Perry 2010 adult means, read every 5 % of the stride
# starting at heel strike; coronal hip from the same sources). Fitted once with a 6-harmonic Fourier series.
# ----------------------------------------------------------------------------------------------------
_NORMATIVE_DEG = {
    "hip_flexion": [30, 30, 28, 25, 20, 15, 10, 5, 0, -5, -10, -8, -2, 5, 13, 20, 26, 30, 32, 31],
    "knee_flexion": [5, 12, 17, 19, 17, 13, 9, 6, 5, 7, 12, 22, 36, 50, 60, 60, 52, 38, 20, 8],
    "ankle_dorsiflexion": [0, -4, -6, -2, 2, 5, 7, 9, 10, 10, 6, -2, -12, -17, -12, -5, -1, 1, 1, 0],
    "hip_adduction": [2, 5, 7, 7, 6, 5, 4, 3, 2, 1, 0, -2, -4, -5, -5, -4, -2, -1, 0, 1],
}
_N_HARMONICS = 6


def _fit_fourier(values_deg: list[float], n_harmonics: int = _N_HARMONICS) -> np.ndarray:
    """Least-squares Fourier coefficients (2H+1,) [a0, a1, b1, ...] of a periodic curve sampled evenly."""
    phase = np.arange(len(values_deg)) / len(values_deg)
    return np.linalg.lstsq(_fourier_basis(phase, n_harmonics), np.asarray(values_deg, float), rcond=None)[0]


def _fourier_basis(phase: np.ndarray, n_harmonics: int = _N_HARMONICS) -> np.ndarray:
    """(N,) stride phase in cycles -> (N, 2H+1) basis [1, cos 2πkφ, sin 2πkφ]."""
    cols = [np.ones_like(phase)]
    for k in range(1, n_harmonics + 1):
        cols += [np.cos(2 * np.pi * k * phase), np.sin(2 * np.pi * k * phase)]
    return np.stack(cols, axis=-1)


_FOURIER = {name: _fit_fourier(values) for name, values in _NORMATIVE_DEG.items()}


def gait_waveform(name: str, phase: np.ndarray) -> np.ndarray:
    """Normative joint angle (degrees) at stride phase (cycles, 0 = heel strike of that leg).

    name: 'hip_flexion' | 'knee_flexion' | 'ankle_dorsiflexion' | 'hip_adduction'. phase: (N,) -> (N,).
    """
    return _fourier_basis(np.mod(np.asarray(phase, float), 1.0)) @ _FOURIER[name]


def _swing_window(phase: np.ndarray, start: float = 0.6) -> np.ndarray:
    """Smooth bump (0..1) over the swing part ``[start, 1)`` of the stride, 0 in stance."""
    p = np.mod(phase, 1.0)
    inside = p >= start
    return np.where(inside, np.sin(np.pi * (p - start) / (1.0 - start)) ** 2, 0.0)


_PITCH_PHASE = np.array([0.0, 0.04, 0.08, 0.35, 0.45, 0.55, 0.62])
_PITCH_DEG = np.array([12.0, 6.0, 0.0, 0.0, -12.0, -35.0, -55.0])


def _foot_pitch_deg(phase: np.ndarray) -> np.ndarray:
    """Foot pitch in stance (toe up positive, degrees): heel rocker, foot flat 8-35 %, heel rise to toe-off."""
    p = np.mod(phase, 1.0)
    return np.where(p > 0.8, _PITCH_DEG[0], np.interp(p, _PITCH_PHASE, _PITCH_DEG))


def _stance_weight(phase: np.ndarray) -> np.ndarray:
    """1 in stance [0, 0.6], smooth 0 in mid swing [0.68, 0.94]."""
    p = np.mod(phase, 1.0)
    down = 1.0 - _smoothstep((p - 0.6) / 0.08)
    up = _smoothstep((p - 0.94) / 0.06)
    return np.where(p < 0.8, down, up)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


# ----------------------------------------------------------------------------------------------------
# Model conventions, found by probing forward kinematics (no assumption about the model's sign choices)
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JointConventions:
    """Joint indices and anatomical signs of a body model (q_model = neutral + sign * anatomical angle).

    index: joint name -> qpos index; sign: joint name -> ±1 so that positive means the anatomical direction
    named in the module docstring; pelvis_axes (3, 3): local axes of pelvis_tilt, pelvis_list,
    pelvis_rotation (rows); pelvis_frame (3, 3): the pelvis body's rest orientation.
    """

    index: dict
    sign: dict
    neutral: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    pelvis_axes: np.ndarray
    pelvis_frame: np.ndarray


# (joint, probing marker, world direction that means "positive" anatomically); l/r expanded below.
_PROBES = [
    ("hip_flexion_{s}", "{s}kne", (1, 0, 0)),
    ("knee_angle_{s}", "{s}ank", (-1, 0, 0)),
    ("ankle_angle_{s}", "{s}toe", (0, 0, 1)),
    ("hip_adduction_{s}", "{s}kne", "medial"),
    ("hip_rotation_{s}", "{s}toe", "medial"),
    ("arm_flex_{s}", "{s}elb", (1, 0, 0)),
    ("elbow_flex_{s}", "{s}wri", (1, 0, 0)),
    ("pelvis_tilt", "thor", (1, 0, 0)),
    ("pelvis_list", "lasis", (0, 0, 1)),
    ("pelvis_rotation", "lasis", (1, 0, 0)),
    ("lumbar_rotation", "lsho", (1, 0, 0)),
    ("lumbar_extension", "thor", (-1, 0, 0)),
]
_PROBE_ANGLE = 0.3


def _expand_probes(joint_names, marker_names):
    probes = []
    for joint, marker, direction in _PROBES:
        for side in (("l", "r") if "{s}" in joint else ("",)):
            j, m = joint.format(s=side), marker.format(s=side)
            if j not in joint_names or m not in marker_names:
                continue
            d = direction
            if d == "medial":
                d = (0, -1, 0) if side == "l" else (0, 1, 0)
            probes.append((j, m, np.asarray(d, float)))
    return probes


def joint_conventions(body: BodyModel) -> JointConventions:
    """Probe the model once (one batched FK call) for the signs of the joints the gait generator drives."""
    names = tuple(body.joint_names)
    markers = tuple(body.marker_names)
    required = ("pelvis_tx", "pelvis_ty", "pelvis_tz", "pelvis_tilt", "pelvis_list", "pelvis_rotation",
                "hip_flexion_l", "hip_flexion_r", "knee_angle_l", "knee_angle_r", "ankle_angle_l", "ankle_angle_r")
    for name in required:
        if name not in names:
            raise ValueError(f"compute/synthetic.py: body.joint_names must contain {name!r}")
    neutral = np.asarray(neutral_qpos(body, root_xyz=(0.0, 0.0, 1.0), heading=0.0), dtype=np.float64)
    lower = np.asarray(body.joint_lower, np.float64)
    upper = np.asarray(body.joint_upper, np.float64)
    probes = _expand_probes(names, markers)
    qs, deltas = [neutral], []
    for joint, _, _ in probes:
        i = names.index(joint)
        delta = _PROBE_ANGLE if neutral[i] + _PROBE_ANGLE <= upper[i] else -_PROBE_ANGLE
        q = neutral.copy()
        q[i] += delta
        qs.append(q)
        deltas.append(delta)
    G = len(body.scale_group_names)
    pts = _fk(body, np.stack(qs), np.zeros(G), np.zeros((len(markers), 3)))
    sign = {}
    for k, (joint, marker, direction) in enumerate(probes):
        j = markers.index(marker)
        moved = float((pts[k + 1, j] - pts[0, j]) @ direction)
        if abs(moved) < 1e-4:
            raise ValueError(f"compute/synthetic.py: probing {joint} did not move marker {marker}")
        sign[joint] = float(np.sign(moved) * np.sign(deltas[k]))
    model = body.mjx_model
    jnt_axis = np.asarray(model.jnt_axis, np.float64)
    jnt_body = np.asarray(model.jnt_bodyid)
    jnt_names = list(names)   # qpos order = MuJoCo joint order (one hinge/slide per coordinate)
    pelvis_axes = np.stack([jnt_axis[jnt_names.index(n)] for n in ("pelvis_tilt", "pelvis_list", "pelvis_rotation")])
    pelvis_body = int(jnt_body[jnt_names.index("pelvis_tilt")])
    quat = np.asarray(model.body_quat, np.float64)[pelvis_body]
    pelvis_frame = Rotation.from_quat([quat[1], quat[2], quat[3], quat[0]]).as_matrix()
    return JointConventions({n: i for i, n in enumerate(names)}, sign, neutral, lower, upper, pelvis_axes,
                            pelvis_frame)


def _pelvis_angles_with_heading(conv: JointConventions, angles: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Model pelvis hinge angles (T, 3) for heading-relative hinge angles (T, 3) and a world yaw (T,) rad.

    The pelvis orientation is ``F Rot(a1,q1) Rot(a2,q2) Rot(a3,q3)`` (F = body rest frame, a_i local axes);
    the desired one is ``Rz(heading) F Rot(a1,g1) Rot(a2,g2) Rot(a3,g3)``: solve for q by an Euler
    decomposition in the axes' own basis.
    """
    if not np.any(heading):
        return angles
    axes = conv.pelvis_axes
    P = axes.T.copy()
    flip = np.linalg.det(P) < 0
    if flip:
        P[:, 2] *= -1
    g = angles.copy()
    if flip:
        g[:, 2] *= -1
    local = Rotation.from_euler("XYZ", g)  # in the axes' basis
    M_local = P @ local.as_matrix() @ P.T                     # Rot(a1,g1) Rot(a2,g2) Rot(a3,g3)
    F = conv.pelvis_frame
    yaw = Rotation.from_euler("z", np.asarray(heading)[:, None]).as_matrix()
    M = F.T @ yaw @ F @ M_local
    q = Rotation.from_matrix(P.T @ M @ P).as_euler("XYZ")
    if flip:
        q[:, 2] *= -1
    q = np.unwrap(q, axis=0)
    return q


# ----------------------------------------------------------------------------------------------------
# Forward kinematics on fixed-size chunks (one compilation for every trial length)
# ----------------------------------------------------------------------------------------------------
_markers_jit = eqx.filter_jit(markers_over_time)


def _fk(body: BodyModel, qpos: np.ndarray, log_scale: np.ndarray, offsets: np.ndarray,
        marker_sites: np.ndarray | None = None) -> np.ndarray:
    """(T, Q) -> (T, J, 3) float64 markers, computed in chunks of FK_CHUNK frames (last one padded)."""
    qpos = np.asarray(qpos, np.float32)
    T = qpos.shape[0]
    n_chunks = max(1, -(-T // FK_CHUNK))
    padded = np.concatenate([qpos, np.repeat(qpos[-1:], n_chunks * FK_CHUNK - T, axis=0)])
    ls = jnp.asarray(log_scale, jnp.float32)
    off = jnp.asarray(offsets, jnp.float32)
    sites = None if marker_sites is None else jnp.asarray(marker_sites, jnp.float32)
    out = [np.asarray(_markers_jit(body, jnp.asarray(padded[k * FK_CHUNK:(k + 1) * FK_CHUNK]), ls, off, sites))
           for k in range(n_chunks)]
    return np.concatenate(out)[:T].astype(np.float64)


# ----------------------------------------------------------------------------------------------------
# Subjects
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _LegStyle:
    hip_gain: float = 1.0
    knee_gain: float = 1.0
    ankle_gain: float = 1.0
    ankle_offset_deg: float = 0.0
    swing_abduction_deg: float = 0.0     # circumduction
    hip_hike_deg: float = 0.0            # pelvis raised on this side during its swing
    arm_swing_deg: float = 15.0
    elbow_flex_deg: float = 20.0


@dataclass(frozen=True)
class _GaitStyle:
    speed_m_s: float
    step_width_m: float
    left: _LegStyle
    right: _LegStyle


def _sample_log_scale(rng: np.random.Generator, n_groups: int, config: SyntheticSessionConfig) -> np.ndarray:
    log_scale = np.zeros(n_groups)
    log_scale[0] = rng.uniform(*config.log_scale_overall_range)
    log_scale[1:] = np.clip(rng.normal(0.0, config.log_scale_group_max / 2, n_groups - 1),
                            -config.log_scale_group_max, config.log_scale_group_max)
    return log_scale


def _sample_gait_style(rng: np.random.Generator, population: str, overall_scale: float) -> tuple[_GaitStyle, str | None]:
    """Speeds (m/s) and per-leg gains of each population; speed scales with sqrt(leg length)."""
    size = math.sqrt(overall_scale)
    normal = _LegStyle()
    if population == "control":
        speed = rng.uniform(1.05, 1.55) * size
        return _GaitStyle(float(np.clip(speed, 0.6, 1.6)), rng.uniform(0.08, 0.12), normal, normal), None
    side = "L" if rng.random() < 0.5 else "R"
    if population == "hemiparetic":
        affected = _LegStyle(hip_gain=0.75, knee_gain=0.55, ankle_gain=0.5, ankle_offset_deg=-4.0,
                             swing_abduction_deg=6.0, hip_hike_deg=3.0, arm_swing_deg=3.0, elbow_flex_deg=60.0)
        speed = rng.uniform(0.6, 0.95) * size
        width = rng.uniform(0.15, 0.20)
    else:  # prosthesis: stiff knee and ankle on one side, hip hiking and circumduction to clear the foot
        affected = _LegStyle(hip_gain=1.05, knee_gain=0.3, ankle_gain=0.15, swing_abduction_deg=6.0,
                             hip_hike_deg=4.0)
        speed = rng.uniform(0.8, 1.2) * size
        width = rng.uniform(0.13, 0.17)
    left, right = (affected, normal) if side == "L" else (normal, affected)
    return _GaitStyle(float(np.clip(speed, 0.6, 1.6)), width, left, right), side


def _cadence_steps_per_min(speed: float, overall_scale: float, population: str) -> float:
    """Plausible cadence: ~112 steps/min at 1.3 m/s for an adult, ∝ sqrt(speed), ∝ 1/sqrt(leg length)."""
    cadence = 112.0 * math.sqrt(speed / 1.3) / math.sqrt(overall_scale)
    if population == "hemiparetic":
        cadence *= 0.95
    return cadence


# ----------------------------------------------------------------------------------------------------
# Motion: joint angles, then feet planted by solving the pelvis translation
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _FootModel:
    """Contact markers of the foot model (geometry body): indices per foot, heel and toe indices."""

    contact: tuple[tuple[int, ...], tuple[int, ...]]   # (left, right)
    heel: tuple[int, int]
    toe: tuple[int, int]
    rigid: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())   # >= 3 markers on each calcaneus (orientation)


_CONTACT_MARKERS = ("{s}hee", "{s}toe", "{s}fifthmetatarsal", "{s}firstmetatarsal", "{s}fourthtoe")
_RIGID_FOOT_MARKERS = ("{s}hee", "{s}fifthmetatarsal", "{s}firstmetatarsal")   # all on the calcaneus body


def _foot_model(body: BodyModel) -> _FootModel:
    names = tuple(body.marker_names)
    contact = tuple(tuple(names.index(m.format(s=s)) for m in _CONTACT_MARKERS if m.format(s=s) in names)
                    for s in ("l", "r"))
    for s in ("l", "r"):
        for m in (f"{s}hee", f"{s}toe"):
            if m not in names:
                raise ValueError(f"compute/synthetic.py: the foot model (marker set {body.marker_set}) needs marker {m!r}")
    rigid = tuple(tuple(names.index(m.format(s=s)) for m in _RIGID_FOOT_MARKERS if m.format(s=s) in names)
                  for s in ("l", "r"))
    if min(len(r) for r in rigid) < 3:
        rigid = ((), ())       # foot orientation cannot be measured: stance feet are not levelled
    return _FootModel(contact, (names.index("lhee"), names.index("rhee")), (names.index("ltoe"), names.index("rtoe")),
                      rigid)


def _joint_angles(conv: JointConventions, style: _GaitStyle, phase_r: np.ndarray, envelope: np.ndarray,
                  heading: np.ndarray, amplitude: float, abduction_offset_rad: float) -> np.ndarray:
    """(N,) right-leg stride phase, gait envelope 0..1, heading (rad) -> qpos (N, Q) with pelvis at (0,0,0)."""
    N = phase_r.shape[0]
    q = np.repeat(conv.neutral[None], N, axis=0)
    q[:, conv.index["pelvis_tx"]] = 0.0
    q[:, conv.index["pelvis_ty"]] = 0.0
    q[:, conv.index["pelvis_tz"]] = 0.0
    deg = np.pi / 180.0

    def setj(name, anatomical_rad):
        if name in conv.index and name in conv.sign:
            q[:, conv.index[name]] = conv.neutral[conv.index[name]] + conv.sign[name] * anatomical_rad

    sides = {"l": (np.mod(phase_r + 0.5, 1.0), style.left), "r": (np.mod(phase_r, 1.0), style.right)}
    pelvis_list_left_up = -4.0 * np.sin(2 * np.pi * phase_r)
    pelvis_rot_left_fwd = -4.0 * np.cos(2 * np.pi * phase_r) * amplitude
    # walking pelvis sits ~10 deg anteriorly tilted (hip angles are pelvis-relative), trunk kept upright
    tilt = PELVIS_ANTERIOR_TILT_DEG + 2.0 * np.sin(4 * np.pi * phase_r)
    for s, (phase, leg) in sides.items():
        hip = gait_waveform("hip_flexion", phase)
        hip = 10.0 + (hip - 10.0) * amplitude * leg.hip_gain
        knee = gait_waveform("knee_flexion", phase) * leg.knee_gain * amplitude ** 0.25
        ankle = gait_waveform("ankle_dorsiflexion", phase) * leg.ankle_gain + leg.ankle_offset_deg
        # stance: the ankle follows the foot rockers (heel strike toe-up, foot flat, heel rise) so the
        # stance foot rolls over the floor instead of pitching with the shank
        w = _stance_weight(phase) * leg.ankle_gain
        ankle_rocker = _foot_pitch_deg(phase) - (hip - tilt - knee)
        # swing: the toe may point down at most SWING_MIN_PITCH_DEG (toe clearance)
        ankle_swing = np.maximum(ankle, SWING_MIN_PITCH_DEG - (hip - tilt - knee))
        ankle_swing = leg.ankle_gain * ankle_swing + (1.0 - leg.ankle_gain) * ankle
        ankle = w * ankle_rocker + (1.0 - w) * ankle_swing
        add = gait_waveform("hip_adduction", phase) - leg.swing_abduction_deg * _swing_window(phase)
        arm = leg.arm_swing_deg * -np.cos(2 * np.pi * phase) * amplitude
        elbow = leg.elbow_flex_deg + 0.5 * leg.arm_swing_deg * -np.cos(2 * np.pi * phase) * amplitude
        setj(f"hip_flexion_{s}", envelope * hip * deg)
        setj(f"knee_angle_{s}", envelope * knee * deg)
        setj(f"ankle_angle_{s}", envelope * ankle * deg)
        setj(f"hip_adduction_{s}", envelope * (add * deg - abduction_offset_rad))
        # internal/external hip rotation cancels the pelvis rotation so the stance foot does not yaw
        setj(f"hip_rotation_{s}", envelope * (pelvis_rot_left_fwd if s == "r" else -pelvis_rot_left_fwd) * deg)
        setj(f"arm_flex_{s}", envelope * arm * deg)
        setj(f"elbow_flex_{s}", (10.0 + envelope * (elbow - 10.0)) * deg)
        hike = leg.hip_hike_deg * _swing_window(phase)
        pelvis_list_left_up = pelvis_list_left_up + (hike if s == "l" else -hike)
    setj("pelvis_tilt", envelope * tilt * deg)
    setj("pelvis_list", envelope * pelvis_list_left_up * deg)
    setj("pelvis_rotation", envelope * pelvis_rot_left_fwd * deg)
    setj("lumbar_rotation", envelope * -1.5 * pelvis_rot_left_fwd * deg)
    setj("lumbar_extension", envelope * (PELVIS_ANTERIOR_TILT_DEG + 1.0 * np.sin(4 * np.pi * phase_r)) * deg)
    # keep every angle strictly inside the model's range (a fitter's outputs are bounded by it)
    margin = np.deg2rad(1.0)
    hinge = np.ones(q.shape[1], bool)
    hinge[[conv.index[n] for n in ("pelvis_tx", "pelvis_ty", "pelvis_tz", "pelvis_rotation")]] = False
    q[:, hinge] = np.clip(q[:, hinge], conv.lower[hinge] + margin, conv.upper[hinge] - margin)
    pel = [conv.index[n] for n in ("pelvis_tilt", "pelvis_list", "pelvis_rotation")]
    q[:, pel] = _pelvis_angles_with_heading(conv, q[:, pel], heading)
    return q


def _plant_feet(rel: np.ndarray, feet: _FootModel, standing_heights: np.ndarray, start_xy: np.ndarray,
                allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pelvis translation (N, 3) that keeps the lowest contact marker on the floor and horizontally fixed.

    rel: (N, J, 3) markers computed with the pelvis origin at (0, 0, 0); standing_heights: (J,) contact
    marker heights above the floor when standing. Returns (translation (N, 3), foot heights (N, 2)), the
    latter = per foot, lowest contact marker height above its standing height once planted.
    allowed: optional (N, 2) bool [L, R]: which feet may bear weight (the stance phase by design).
    """
    idx = np.array(feet.contact[0] + feet.contact[1])
    n_left = len(feet.contact[0])
    rel_h = rel[:, idx, 2] - standing_heights[idx]           # (N, K)
    if allowed is not None:
        mask = np.concatenate([np.repeat(allowed[:, :1], n_left, 1),
                               np.repeat(allowed[:, 1:], len(idx) - n_left, 1)], axis=1)
        lowest = np.argmin(np.where(mask, rel_h, np.inf), axis=1)
    else:
        lowest = np.argmin(rel_h, axis=1)                   # pivot marker per sample
    z = -rel_h[np.arange(len(rel_h)), lowest]
    pivot_xy = rel[:, idx, :2]                              # (N, K, 2)
    N = rel.shape[0]
    xy = np.zeros((N, 2))
    xy[0] = start_xy
    k = lowest[1:]
    step = pivot_xy[np.arange(1, N), k] - pivot_xy[np.arange(N - 1), k]
    xy[1:] = start_xy - np.cumsum(step, axis=0)
    heights = rel_h + z[:, None]
    foot_h = np.stack([heights[:, :n_left].min(axis=1), heights[:, n_left:].min(axis=1)], axis=1)
    return np.concatenate([xy, z[:, None]], axis=1), foot_h


def detect_footfalls(times: np.ndarray, foot_heights: np.ndarray, foot_xy: np.ndarray,
                     allowed: np.ndarray | None = None) -> list[dict]:
    """Contact intervals from foot kinematics.

    times (N,) s; foot_heights (N, 2) [L, R] lowest contact marker above standing height (m);
    foot_xy (N, 2, 2) horizontal position of each heel. A footfall starts where the height falls below
    CONTACT_HEIGHT_M after a swing that rose above SWING_CLEARANCE_M and moved the heel by SWING_ADVANCE_M;
    its contact time is that first planted sample (the foot is stationary from there on). It ends
    (toe-off) where the height rises above CONTACT_HEIGHT_M again, time linearly interpolated between samples. Returns dicts(foot, contact_time, toe_off_time (NaN if still in contact), start, end)
    sorted by contact time (start/end are sample indices). allowed: optional (N, 2) stance-phase mask;
    a foot outside it is never in contact.
    """
    events = []
    for f, foot in enumerate("LR"):
        h = foot_heights[:, f]
        contact = h < CONTACT_HEIGHT_M
        if allowed is not None:
            contact &= allowed[:, f]
            h = np.where(allowed[:, f], h, np.maximum(h, 2 * CONTACT_HEIGHT_M))
        edges = np.flatnonzero(np.diff(contact.astype(int)))
        starts = [i + 1 for i in edges if contact[i + 1]]
        ends = [i + 1 for i in edges if not contact[i + 1]]
        prev_end, prev_xy = None, foot_xy[0, f]
        if contact[0]:
            first_end = next((e for e in ends if e > 0), None)
            prev_end = first_end
        for s in starts:
            swing = slice(prev_end if prev_end is not None else 0, s)
            lifted = prev_end is not None and np.max(h[swing]) > SWING_CLEARANCE_M
            moved = np.linalg.norm(foot_xy[s, f] - prev_xy) > SWING_ADVANCE_M
            e = next((e for e in ends if e > s), None)
            if lifted and moved:
                t_on = float(times[s])       # first planted sample: the heel stops here (module docstring)
                t_off = _crossing_time(times, h, e) if e is not None else float("nan")
                events.append(dict(foot=foot, contact_time=t_on, toe_off_time=t_off, start=s,
                                   end=e if e is not None else len(h)))
                prev_xy = foot_xy[s, f]
            if e is None:
                break
            prev_end = e
    return sorted(events, key=lambda ev: ev["contact_time"])


def _crossing_time(times: np.ndarray, h: np.ndarray, i: int) -> float:
    """Time where h crosses CONTACT_HEIGHT_M between samples i-1 and i (linear)."""
    h0, h1 = h[i - 1], h[i]
    frac = (CONTACT_HEIGHT_M - h0) / (h1 - h0) if h1 != h0 else 0.0
    return float(times[i - 1] + np.clip(frac, 0.0, 1.0) * (times[i] - times[i - 1]))


@dataclass(frozen=True)
class _Motion:
    times: np.ndarray            # (N,) supersampled
    qpos: np.ndarray             # (N, Q)
    foot_heights: np.ndarray     # (N, 2)
    heel: np.ndarray             # (N, 2, 3) world
    toe: np.ndarray              # (N, 2, 3) world
    speed_m_s: float
    cadence: float
    allowed: np.ndarray | None = None   # (N, 2) stance-phase mask


def _simulate(geometry: BodyModel, conv: JointConventions, feet: _FootModel, log_scale: np.ndarray,
              offsets: np.ndarray, standing: np.ndarray, style: _GaitStyle, cadence: float, times: np.ndarray,
              envelope: np.ndarray, heading: np.ndarray, start_xy, amplitude: float, abduction_rad: float,
              phase0: float) -> _Motion:
    phase_r = phase0 + np.concatenate([[0.0], np.cumsum(np.diff(times))]) * cadence / 120.0
    q = _joint_angles(conv, style, phase_r, envelope, heading, amplitude, abduction_rad)
    q = _level_stance_feet(geometry, conv, feet, log_scale, offsets, q, phase_r, heading)
    rel = _fk(geometry, q, log_scale, offsets)
    allowed = _stance_allowed(phase_r, envelope)
    translation, foot_h = _plant_feet(rel, feet, standing, np.asarray(start_xy, float), allowed)
    q[:, [conv.index["pelvis_tx"], conv.index["pelvis_ty"], conv.index["pelvis_tz"]]] = translation
    world = rel + translation[:, None, :]
    heel = world[:, list(feet.heel)]
    toe = world[:, list(feet.toe)]
    return _Motion(times, q, foot_h, heel, toe, 0.0, cadence, allowed)


def _kabsch(reference: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rotations (N, 3, 3) taking the centred reference (K, 3) onto the centred points (N, K, 3)."""
    x = reference - reference.mean(axis=0)
    y = points - points.mean(axis=1, keepdims=True)
    h = np.einsum("ki,nkj->nij", x, y)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nji,nkj->nik", vt, u)))
    fix = np.ones((points.shape[0], 3))
    fix[:, 2] = d
    return np.einsum("nji,nj,nkj->nik", vt, fix, u)


FOOT_LEVEL_ITERATIONS = 3
_FOOT_LEVEL_JOINTS = ("hip_rotation_{s}", "subtalar_angle_{s}", "ankle_angle_{s}")
_FOOT_LEVEL_PROBE_RAD = 1e-2


def _level_stance_feet(geometry: BodyModel, conv: JointConventions, feet: _FootModel, log_scale: np.ndarray,
                       offsets: np.ndarray, q: np.ndarray, phase_r: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Correct hip rotation, subtalar and ankle angles so each stance foot is level (no roll) and faces the
    heading (no yaw relative to it), keeping its pitch (heel rocker, foot flat, heel rise) unchanged.

    Without this, pelvis obliquity/rotation and hip adduction roll and yaw the stance foot about whichever
    contact marker is the pivot, and the heel slides (~0.08 m/s). The foot orientation is measured from its
    calcaneus markers relative to standing (Kabsch); the correction is a damped Gauss-Newton step on the
    (roll, pitch, yaw) rotation vector using finite-difference joint axes, blended in with the stance weight
    so the swing is untouched. q (N, Q) with pelvis translation 0 -> corrected copy (N, Q).
    """
    if not feet.rigid[0] or any(j.format(s=s) not in conv.index for j in _FOOT_LEVEL_JOINTS for s in "lr"):
        return q
    q = q.copy()
    standing = conv.neutral.copy()
    standing[[conv.index[n] for n in ("pelvis_tx", "pelvis_ty", "pelvis_tz")]] = 0.0
    reference = _fk(geometry, standing[None], log_scale, offsets)[0]
    weight = np.stack([_stance_weight(phase_r + 0.5), _stance_weight(phase_r)], axis=1)       # (N, 2) [L, R]
    columns = [[conv.index[j.format(s=s)] for j in _FOOT_LEVEL_JOINTS] for s in "lr"]
    cos_h, sin_h = np.cos(heading), np.sin(heading)
    to_heading = np.zeros((len(heading), 3, 3))            # world -> heading frame (Rz(-heading))
    to_heading[:, 0, 0], to_heading[:, 0, 1], to_heading[:, 1, 0], to_heading[:, 1, 1] = cos_h, sin_h, -sin_h, cos_h
    to_heading[:, 2, 2] = 1.0
    margin = np.deg2rad(1.0)
    for _ in range(FOOT_LEVEL_ITERATIONS):
        base = _fk(geometry, q, log_scale, offsets)
        probes = []
        for k in range(len(_FOOT_LEVEL_JOINTS)):
            qp = q.copy()
            qp[:, [columns[0][k], columns[1][k]]] += _FOOT_LEVEL_PROBE_RAD
            probes.append(_fk(geometry, qp, log_scale, offsets))
        for f in range(2):
            idx = list(feet.rigid[f])
            rot = _kabsch(reference[idx], base[:, idx])                       # (N, 3, 3) world, from standing
            local = Rotation.from_matrix(to_heading @ rot)                   # in the heading frame
            _, pitch, _ = local.as_euler("ZYX").T
            target = to_heading.transpose(0, 2, 1) @ Rotation.from_euler("y", pitch[:, None]).as_matrix()
            error = Rotation.from_matrix(target @ rot.transpose(0, 2, 1)).as_rotvec()   # (N, 3) world
            axes = np.stack([Rotation.from_matrix(_kabsch(reference[idx], p[:, idx]) @ rot.transpose(0, 2, 1)
                                                  ).as_rotvec() / _FOOT_LEVEL_PROBE_RAD for p in probes], axis=2)
            gram = np.einsum("nki,nkj->nij", axes, axes) + 1e-3 * np.eye(3)
            delta = np.linalg.solve(gram, np.einsum("nki,nk->ni", axes, error)[..., None])[..., 0]
            q[:, columns[f]] += weight[:, f:f + 1] * delta
        q[:, columns[0] + columns[1]] = np.clip(q[:, columns[0] + columns[1]],
                                                conv.lower[columns[0] + columns[1]] + margin,
                                                conv.upper[columns[0] + columns[1]] - margin)
    return q


def _stance_allowed(phase_r: np.ndarray, envelope: np.ndarray) -> np.ndarray:
    """(N, 2) [L, R]: feet that may bear weight: stance phase [0, STANCE_END) by design, both when the
    gait envelope is small (standing, starting, stopping)."""
    phases = np.stack([np.mod(phase_r + 0.5, 1.0), np.mod(phase_r, 1.0)], axis=1)
    return (phases < STANCE_END) | (envelope[:, None] < 0.3)


def _steady_state(motion: _Motion, feet_events: list[dict]) -> tuple[float, float]:
    """(speed m/s, step width m) from consecutive footfalls of a steady-state simulation."""
    if len(feet_events) < 3:
        return float("nan"), float("nan")
    heel_xy = np.array([motion.heel[ev["start"], "LR".index(ev["foot"]), :2] for ev in feet_events])
    t = np.array([ev["contact_time"] for ev in feet_events])
    speed = (heel_xy[-1, 0] - heel_xy[0, 0]) / (t[-1] - t[0])
    width = float(np.median(np.abs(np.diff(heel_xy[:, 1]))))
    return float(speed), width


# ----------------------------------------------------------------------------------------------------
# Rig
# ----------------------------------------------------------------------------------------------------
def _look_at_rotation(center: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """World->camera rotation (rows x right, y down, z forward) for a camera at center aimed at target."""
    z = target - center
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    c, s = math.cos(roll), math.sin(roll)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ R


def sample_rig(rng: np.random.Generator, n_cameras: int, image_size: tuple[int, int],
               rig: SyntheticRigConfig = SyntheticRigConfig()) -> tuple[Camera, tuple[str, ...]]:
    """A rig of n_cameras around the walkway, every parameter exactly representable in float32.

    Returns (Camera with leaves (C, ...), names 'cam_01'...).
    """
    w, h = image_size
    base = rng.uniform(0, 2 * np.pi)
    hx, hy = rig.volume_half_extent_m
    corners = np.array([[sx * hx, sy * hy, z] for sx in (-1, 1) for sy in (-1, 1) for z in (0.0, rig.volume_height_m)])
    Ks, dists, rvecs, tvecs = [], [], [], []
    for c in range(n_cameras):
        angle = base + 2 * np.pi * c / n_cameras + rng.uniform(-0.25, 0.25) * np.pi / n_cameras
        a, b = rig.ellipse_semi_axes_m
        radius_scale = 1.0 + rng.uniform(-1, 1) * rig.radius_jitter_m / max(a, b)
        center = np.array([a * math.cos(angle) * radius_scale, b * math.sin(angle) * radius_scale,
                           rng.uniform(*rig.height_m_range)])
        target = np.asarray(rig.look_at_m, float) + rng.uniform(-1, 1, 3) * rig.look_at_jitter_m * np.array([1, 1, 0.4])
        R = _look_at_rotation(center, target, np.deg2rad(rng.uniform(-1, 1) * rig.roll_max_deg))
        cam_pts = (corners - center) @ R.T
        xn = np.abs(cam_pts[:, :2] / cam_pts[:, 2:3])
        f = rng.uniform(*rig.focal_px_range)
        f_fit = min((w / 2 - rig.fit_margin_px) / xn[:, 0].max(), (h / 2 - rig.fit_margin_px) / xn[:, 1].max())
        f = max(min(f, f_fit), rig.focal_px_range[0])
        cx = w / 2 - 0.5 + rng.normal(0, rig.principal_point_jitter_px)
        cy = h / 2 - 0.5 + rng.normal(0, rig.principal_point_jitter_px)
        K = np.array([[f, 0, cx], [0, f * (1 + rng.normal(0, 0.002)), cy], [0, 0, 1]])
        dist = np.array([rng.uniform(-1, 1) * rig.k1_max, rng.uniform(-1, 1) * rig.k2_max,
                         rng.uniform(-1, 1) * rig.p_max, rng.uniform(-1, 1) * rig.p_max, 0.0])
        Ks.append(K)
        dists.append(dist)
        rvecs.append(Rotation.from_matrix(R).as_rotvec())
        tvecs.append(-R @ center)
    f32 = lambda x: np.asarray(x, np.float32).astype(np.float64)  # noqa: E731  (exact in float32)
    cams = make_camera(f32(Ks), f32(dists), f32(rvecs), f32(tvecs), f32(np.tile([w, h], (n_cameras, 1))))
    return cams, tuple(f"cam_{c + 1:02d}" for c in range(n_cameras))


def _rig64(rig: Camera) -> Camera:
    """The same rig with float64 leaves (call inside ``jax.enable_x64(True)``)."""
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(np.asarray(leaf, np.float64)), rig)


def _project64(rig: Camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 projection (C, ..., 2) px and camera-frame depth (C, ...) through project_to_rig."""
    with jax.enable_x64(True):
        rig64 = _rig64(rig)
        pix = np.asarray(project_to_rig(rig64, jnp.asarray(points, jnp.float64)))
    R = Rotation.from_rotvec(np.asarray(rig.rvec, np.float64)).as_matrix()     # (C, 3, 3)
    depth = np.einsum("ck,...k->c...", R[:, 2, :], points) + np.asarray(rig.tvec, np.float64)[:, 2].reshape(
        (-1,) + (1,) * (points.ndim - 1))
    return pix, depth


def _in_image(rig: Camera, pix: np.ndarray, depth: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(C, ...) mask: in front (z > 5 cm), inside the image, and inside the undistorted field of view
    (guards against distortion polynomials folding far-off points back into the image)."""
    size = np.asarray(rig.size, np.float64)
    K = np.asarray(rig.K, np.float64)
    shape = (-1,) + (1,) * (pix.ndim - 2)
    w, h = size[:, 0].reshape(shape), size[:, 1].reshape(shape)
    inside = (pix[..., 0] >= 0) & (pix[..., 0] <= w - 1) & (pix[..., 1] >= 0) & (pix[..., 1] <= h - 1)
    R = Rotation.from_rotvec(np.asarray(rig.rvec, np.float64)).as_matrix()
    cam = np.einsum("cik,...k->c...i", R, points) + np.asarray(rig.tvec, np.float64).reshape(shape + (3,))
    with np.errstate(divide="ignore", invalid="ignore"):
        r_norm = np.hypot(cam[..., 0], cam[..., 1]) / np.where(depth > 0, depth, np.nan)
    fov = 1.2 * np.hypot(size[:, 0] / 2, size[:, 1] / 2) / K[:, 0, 0]
    return (depth > 0.05) & inside & (r_norm < fov.reshape(shape))


# ----------------------------------------------------------------------------------------------------
# Observations
# ----------------------------------------------------------------------------------------------------
def _markov_drops(rng: np.random.Generator, shape: tuple[int, int, int], fraction: float, mean_run: float) -> np.ndarray:
    """(C, T, J) bool runs of dropped keypoints: stationary fraction `fraction`, mean run `mean_run` frames."""
    C, T, J = shape
    if fraction <= 0:
        return np.zeros(shape, bool)
    p_end = 1.0 / max(mean_run, 1.0)
    p_start = min(1.0, fraction / (1 - fraction) * p_end)
    u = rng.random(shape)
    out = np.zeros(shape, bool)
    state = rng.random((C, J)) < fraction
    for t in range(T):
        state = np.where(state, u[:, t] >= p_end, u[:, t] < p_start)
        out[:, t] = state
    return out


def _observe(rng: np.random.Generator, config: SyntheticSessionConfig, rig: Camera, markers: np.ndarray,
             other: np.ndarray) -> dict:
    """Noisy keypoints/confidences for true markers (T, J, 3) and a second person's markers (T, J, 3)."""
    clean, depth = _project64(rig, markers)                     # (C, T, J, 2), (C, T, J)
    other_pix, other_depth = _project64(rig, other)
    visible = _in_image(rig, clean, depth, markers)
    other_visible = _in_image(rig, other_pix, other_depth, other)
    C, T, J = visible.shape
    dropped = _markov_drops(rng, (C, T, J), config.drop_fraction, config.drop_mean_run_frames)
    valid = visible & ~dropped
    # outliers: whole camera-frames of the second person, then single keypoints, among valid entries
    outlier = np.zeros_like(valid)
    budget = int(round(config.outlier_fraction * valid.sum()))
    swappable = valid & other_visible
    block_budget = int(round(budget * config.outlier_block_fraction))
    if block_budget > 0:
        per_block = swappable.sum(axis=2)                       # (C, T)
        order = rng.permutation(C * T)
        chosen = np.cumsum(per_block.reshape(-1)[order]) <= block_budget
        blocks = np.zeros(C * T, bool)
        blocks[order[chosen]] = True
        outlier |= blocks.reshape(C, T)[:, :, None] & swappable
    remaining = budget - int(outlier.sum())
    candidates = np.flatnonzero(swappable & ~outlier)
    if remaining > 0 and candidates.size:
        pick = rng.choice(candidates, size=min(remaining, candidates.size), replace=False)
        outlier.reshape(-1)[pick] = True
    # confidence from a sampled 3D spread (mm): per-keypoint median x per-observation log-normal noise
    kp_median = config.spread_median_mm * np.exp(rng.normal(0, config.spread_keypoint_log_sd, J))
    spread = kp_median * np.exp(rng.normal(0, config.spread_log_sd, (C, T, J)))
    hard = rng.random((C, T, J)) < config.hard_fraction
    spread = np.where(hard, spread * rng.uniform(2.0, 4.0, (C, T, J)), spread)
    confidence = 1.0 / (1.0 + np.exp(-(30.0 - spread) / 10.0))
    noise = rng.normal(0.0, config.pixel_noise_px, (C, T, J, 2))
    observed = np.where(outlier[..., None], other_pix, clean) + noise
    observed = np.where(valid[..., None], observed, np.nan)
    confidence = np.where(valid, confidence, 0.0)
    return dict(keypoints=observed.astype(np.float32), confidence=confidence.astype(np.float32),
                is_outlier=outlier, keypoints_noise_free=clean, visible=visible, dropped=dropped,
                spread_mm=spread.astype(np.float32))


# ----------------------------------------------------------------------------------------------------
# Trials
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Subject:
    log_scale: np.ndarray
    offsets: np.ndarray
    geometry_offsets: np.ndarray
    style: _GaitStyle
    affected_side: str | None
    cadence: float
    standing: np.ndarray          # (J_geometry,) contact marker standing heights above the floor
    pelvis_height: float          # standing pelvis origin height above the floor


def _standing(geometry: BodyModel, conv: JointConventions, log_scale: np.ndarray, offsets: np.ndarray,
              feet: _FootModel) -> tuple[np.ndarray, float]:
    q = conv.neutral.copy()
    q[[conv.index["pelvis_tx"], conv.index["pelvis_ty"], conv.index["pelvis_tz"]]] = 0.0
    pts = _fk(geometry, q[None], log_scale, offsets)[0]
    idx = list(feet.contact[0] + feet.contact[1])
    floor = pts[idx, 2].min() - FLOOR_BELOW_LOWEST_MARKER_M
    return pts[:, 2] - floor, float(-floor)


def _plan_walk(duration: float | None, fps: float, speed: float, cadence: float, length: float,
               tug: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Supersample-free plan: (key times, envelope values, heading values, start x, auto duration)."""
    stride_s = 120.0 / cadence
    ramp = stride_s
    if not tug:
        start_x = -length / 2 - 0.6
        walk_s = (length + 1.0) / speed
        t_stop = 0.5 + walk_s + ramp * 0.5
        auto = t_stop + ramp + 0.5
        key_t = np.array([0.0, 0.5, 0.5 + ramp, t_stop, t_stop + ramp, 1e9])
        key_env = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
        key_head = np.zeros_like(key_t)
    else:
        start_x = -1.5
        leg_s = 3.0 / speed
        turn_s = 1.8
        t1 = 0.5 + leg_s
        t2 = t1 + turn_s
        t3 = t2 + leg_s
        auto = t3 + ramp + 0.5
        key_t = np.array([0.0, 0.5, 0.5 + ramp, t1 - 0.3 * ramp, t1, t2, t2 + 0.5 * ramp, t3, t3 + ramp, 1e9])
        key_env = np.array([0.0, 0.0, 1.0, 1.0, 0.45, 0.45, 1.0, 1.0, 0.0, 0.0])
        key_head = np.array([0.0, 0.0, 0.0, 0.0, 0.0, np.pi, np.pi, np.pi, np.pi, np.pi])
    return key_t, key_env, key_head, start_x, auto


def _interp_smooth(t: np.ndarray, key_t: np.ndarray, key_v: np.ndarray) -> np.ndarray:
    """Piecewise smoothstep between key values."""
    i = np.clip(np.searchsorted(key_t, t, side="right") - 1, 0, len(key_t) - 2)
    frac = _smoothstep((t - key_t[i]) / (key_t[i + 1] - key_t[i]))
    return key_v[i] + (key_v[i + 1] - key_v[i]) * frac


def _tune_gait(geometry, conv, feet, subject: _Subject, fps: float, ss: int, speed: float
               ) -> tuple[float, float]:
    """Hip amplitude and extra abduction (rad) that give the target speed and step width (2 short runs)."""
    stride_s = 120.0 / subject.cadence
    times = np.arange(int(3.2 * stride_s * fps * ss)) / (fps * ss)
    env = np.ones_like(times)
    head = np.zeros_like(times)
    amplitude, abduction = 1.0, 0.0
    leg_length = 0.9 * math.exp(subject.log_scale[0])
    for _ in range(2):
        motion = _simulate(geometry, conv, feet, subject.log_scale, subject.geometry_offsets, subject.standing,
                           subject.style, subject.cadence, times, env, head, (0.0, 0.0), amplitude, abduction, 0.0)
        heel_xy = motion.heel[..., :2]
        events = detect_footfalls(times, motion.foot_heights, heel_xy, motion.allowed)
        v, w = _steady_state(motion, events)
        if not np.isfinite(v) or v <= 0:
            break
        amplitude = float(np.clip(amplitude * speed / v, 0.5, 1.6))
        abduction = float(abduction + (subject.style.step_width_m - w) / 2 / leg_length)
    return amplitude, abduction


def _motion_for_trial(geometry, conv, feet, subject: _Subject, spec: SyntheticTrialSpec, config, rng,
                      amplitude: float, abduction: float) -> _Motion:
    fps, ss = config.fps, config.supersample
    if spec.activity == "static":
        duration = spec.duration_s or 3.0
        times = np.arange(int(round(duration * fps)) * ss) / (fps * ss)
        q = np.repeat(conv.neutral[None], len(times), axis=0)
        idx = [conv.index[n] for n in ("pelvis_tx", "pelvis_ty", "pelvis_tz")]
        sway = 0.004 * np.stack([np.sin(2 * np.pi * 0.23 * times + rng.uniform(0, 6)),
                                 np.sin(2 * np.pi * 0.17 * times + rng.uniform(0, 6))], axis=1)
        q[:, idx[0]] = sway[:, 0]
        q[:, idx[1]] = sway[:, 1]
        q[:, idx[2]] = subject.pelvis_height
        for name in ("arm_flex_l", "arm_flex_r", "elbow_flex_l", "elbow_flex_r"):
            if name in conv.sign:
                q[:, conv.index[name]] += conv.sign[name] * np.deg2rad(5.0) * np.sin(2 * np.pi * 0.1 * times)
        world = _fk(geometry, q, subject.log_scale, subject.geometry_offsets)
        heel, toe = world[:, list(feet.heel)], world[:, list(feet.toe)]
        h = np.zeros((len(times), 2))
        return _Motion(times, q, h, heel, toe, 0.0, 0.0)
    speed = spec.speed_m_s or subject.style.speed_m_s
    key_t, key_env, key_head, start_x, auto = _plan_walk(spec.duration_s, fps, speed, subject.cadence,
                                                         config.walkway_length_m, spec.activity == "tug")
    duration = spec.duration_s or auto
    times = np.arange(int(round(duration * fps)) * ss) / (fps * ss)
    env = _interp_smooth(times, key_t, key_env)
    head = _interp_smooth(times, key_t, key_head)
    start = (start_x, rng.uniform(-0.1, 0.1))
    motion = _simulate(geometry, conv, feet, subject.log_scale, subject.geometry_offsets, subject.standing,
                       subject.style, subject.cadence, times, env, head, start, amplitude, abduction,
                       rng.uniform(0, 1))
    return _Motion(motion.times, motion.qpos, motion.foot_heights, motion.heel, motion.toe, speed, subject.cadence,
                   motion.allowed)


def _second_person(rng: np.random.Generator, qpos: np.ndarray, conv: JointConventions, n_groups: int,
                   config: SyntheticSessionConfig) -> tuple[np.ndarray, np.ndarray]:
    """A nearby person: same motion shifted in time, ~1 m to the side, different body scale."""
    T = qpos.shape[0]
    lag = int(rng.integers(-T // 4, T // 4 + 1))
    q = qpos[np.clip(np.arange(T) + lag, 0, T - 1)].copy()
    q[:, conv.index["pelvis_ty"]] += rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.2)
    q[:, conv.index["pelvis_tx"]] += rng.uniform(-0.5, 0.5)
    return q, _sample_log_scale(rng, n_groups, config)


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
    feet = _foot_model(geometry)
    G = len(body.scale_group_names)
    J = len(body.marker_names)

    log_scale = _sample_log_scale(rng, G, config)
    offsets = rng.normal(0.0, config.marker_offset_std_m, (J, 3))
    offsets = np.clip(offsets, -3 * config.marker_offset_std_m, 3 * config.marker_offset_std_m)
    geometry_offsets = offsets if geometry is body else np.zeros((len(geometry.marker_names), 3))
    style, affected = _sample_gait_style(rng, config.population, math.exp(log_scale[0]))
    cadence = _cadence_steps_per_min(style.speed_m_s, math.exp(log_scale[0]), config.population)
    standing, pelvis_height = _standing(geometry, conv, log_scale, geometry_offsets, feet)
    subject = _Subject(log_scale, offsets, geometry_offsets, style, affected, cadence, standing, pelvis_height)
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
    amplitude, abduction = (_tune_gait(geometry, conv, feet, subject, config.fps, config.supersample,
                                       style.speed_m_s) if needs_walk else (1.0, 0.0))
    trials = []
    ss = config.supersample
    for spec in config.trials:
        motion = _motion_for_trial(geometry, conv, feet, subject, spec, config, rng, amplitude, abduction)
        frames = slice(0, None, ss)
        qpos = motion.qpos[frames]
        times = motion.times[frames]
        markers = _fk(body, qpos, log_scale, offsets)
        other_q, other_scale = _second_person(rng, qpos, conv, G, config)
        other = _fk(body, other_q, other_scale, np.zeros((J, 3)))
        obs = _observe(rng, config, cameras_true, markers, other)
        footfalls = _footfalls(motion, walkway, config.walkway_length_m) if spec.activity != "static" else []
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


def _footfalls(motion: _Motion, walkway: WalkwayTransform, walkway_length: float) -> list[dict]:
    """Footfall dicts (contract fields) from a planted-foot motion; positions at foot-flat (25 % of stance)."""
    events = detect_footfalls(motion.times, motion.foot_heights, motion.heel[..., :2], motion.allowed)
    out = []
    for ev in events:
        f = "LR".index(ev["foot"])
        flat = ev["start"] + int(0.25 * (ev["end"] - ev["start"]))
        heel, toe = motion.heel[flat, f], motion.toe[flat, f]
        heel_w, toe_w = walkway.apply(heel), walkway.apply(toe)
        out.append(dict(foot=ev["foot"], contact_time=ev["contact_time"], toe_off_time=ev["toe_off_time"],
                        heel_world=heel.copy(), toe_world=toe.copy(), heel_walkway=heel_w, toe_walkway=toe_w,
                        on_walkway=bool(abs(heel[0]) <= walkway_length / 2)))
    return out
