"""Motion of one trial: joint angles over time from the gait waveforms, then feet planted by solving the
pelvis translation (``compute.synthetic.feet``).

Walks and timed-up-and-go (TUG) trials are planned as a smooth gait envelope (0 standing, 1 steady gait) and
a heading over time; static trials are quiet standing with a little sway. Motion is computed on
``supersample`` samples per camera frame so foot planting and event times are finer than a frame.
World frame: metres, Z up, walking direction +X, walkway centred on the origin, floor at z = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compute.kinematics import BodyModel
from compute.synthetic.config import SyntheticSessionConfig, SyntheticTrialSpec
from compute.synthetic.conventions import JointConventions, pelvis_angles_with_heading
from compute.synthetic.feet import FootModel, detect_footfalls, level_stance_feet, plant_feet, stance_allowed
from compute.synthetic.forward import forward_markers
from compute.synthetic.subject import GaitStyle, Subject
from compute.synthetic.waveforms import foot_pitch_deg, gait_waveform, smoothstep, stance_weight, swing_window

PELVIS_ANTERIOR_TILT_DEG = 10.0   # mean pelvis anterior tilt while walking (trunk re-erected by the lumbar joint)
SWING_MIN_PITCH_DEG = -25.0        # steepest toe-down foot pitch during swing


def joint_angles(conv: JointConventions, style: GaitStyle, phase_r: np.ndarray, envelope: np.ndarray,
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
        w = stance_weight(phase) * leg.ankle_gain
        ankle_rocker = foot_pitch_deg(phase) - (hip - tilt - knee)
        # swing: the toe may point down at most SWING_MIN_PITCH_DEG (toe clearance)
        ankle_swing = np.maximum(ankle, SWING_MIN_PITCH_DEG - (hip - tilt - knee))
        ankle_swing = leg.ankle_gain * ankle_swing + (1.0 - leg.ankle_gain) * ankle
        ankle = w * ankle_rocker + (1.0 - w) * ankle_swing
        add = gait_waveform("hip_adduction", phase) - leg.swing_abduction_deg * swing_window(phase)
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
        hike = leg.hip_hike_deg * swing_window(phase)
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
    q[:, pel] = pelvis_angles_with_heading(conv, q[:, pel], heading)
    return q


def sit_to_stand_angles(conv: JointConventions, times: np.ndarray, rise_start_s: float, rise_duration_s: float,
                        seat_hip_deg: float = 90.0) -> np.ndarray:
    """Joint angles (N, Q) of rising from a chair, pelvis at (0, 0, 0): seated until ``rise_start_s``, standing
    after ``rise_start_s + rise_duration_s`` (s).

    Seated: trunk upright, pelvis level, hips ``seat_hip_deg`` and knees 90 deg flexed, shanks vertical.  The
    rise (Schenkman et al. 1990 phases): the trunk flexes forward first, mostly by anterior pelvic tilt (peak
    ~25 deg) with some lumbar flexion (peak ~10 deg) and the shanks leaning ~12 deg forward, the seat is left
    near the peak of the lean, then hips, knees and trunk extend to the neutral standing pose.  Thigh and shank
    inclinations are written in the world and the joint angles follow, so the feet stay flat on the floor.
    """
    u = np.clip((times - rise_start_s) / rise_duration_s, 0.0, 1.0)
    lean = np.sin(np.pi * np.clip(u / 0.8, 0.0, 1.0)) ** 2               # 0 seated, 1 at seat-off, 0 standing
    extend = smoothstep(np.clip((u - 0.3) / 0.7, 0.0, 1.0))               # 0 seated .. 1 standing
    tilt = 25.0 * lean                                                    # anterior pelvic tilt, deg
    lumbar_flexion = 10.0 * lean
    thigh = seat_hip_deg * (1.0 - extend)                                 # thigh inclination from vertical
    shank = 12.0 * lean * (1.0 - extend)                                  # shank forward inclination
    q = np.repeat(conv.neutral[None], len(times), axis=0)
    deg = np.pi / 180.0

    def setj(name, anatomical_rad):
        if name in conv.index and name in conv.sign:
            q[:, conv.index[name]] = conv.neutral[conv.index[name]] + conv.sign[name] * anatomical_rad

    for s in ("l", "r"):
        setj(f"hip_flexion_{s}", (thigh + tilt) * deg)
        setj(f"knee_angle_{s}", (thigh + shank) * deg)                  # knees forward of the ankles
        setj(f"ankle_angle_{s}", shank * deg)
        setj(f"arm_flex_{s}", 20.0 * lean * deg)
        setj(f"elbow_flex_{s}", (15.0 + 10.0 * lean) * deg)
    setj("pelvis_tilt", tilt * deg)
    setj("lumbar_extension", -lumbar_flexion * deg)
    return q


@dataclass(frozen=True)
class Motion:
    """A trial's motion on the supersampled clock: joint coordinates, foot heights above standing (m), world
    heel/toe markers [L, R] (m), steady speed (m/s; 0 while tuning and for static trials), cadence (steps/min)
    and the stance-phase mask of the feet allowed to bear weight."""

    times: np.ndarray            # (N,) supersampled
    qpos: np.ndarray             # (N, Q)
    foot_heights: np.ndarray     # (N, 2)
    heel: np.ndarray             # (N, 2, 3) world
    toe: np.ndarray              # (N, 2, 3) world
    speed_m_s: float
    cadence: float
    allowed: np.ndarray | None = None   # (N, 2) stance-phase mask


def simulate(geometry: BodyModel, conv: JointConventions, feet: FootModel, log_scale: np.ndarray,
             offsets: np.ndarray, standing: np.ndarray, style: GaitStyle, cadence: float, times: np.ndarray,
             envelope: np.ndarray, heading: np.ndarray, start_xy, amplitude: float, abduction_rad: float,
             phase0: float) -> Motion:
    """Walk on the given clock: joint angles from the waveforms, stance feet levelled, pelvis translation
    solved so the feet stay planted.

    times (N,) s; envelope (N,) 0..1 gait intensity; heading (N,) rad world yaw; start_xy (2,) m pelvis start;
    amplitude: gain on the hip excursion; abduction_rad: extra hip abduction (step width); phase0: right-leg
    stride phase at t = 0, cycles. standing: (J,) marker heights above the floor when standing (m).
    """
    phase_r = phase0 + np.concatenate([[0.0], np.cumsum(np.diff(times))]) * cadence / 120.0
    q = joint_angles(conv, style, phase_r, envelope, heading, amplitude, abduction_rad)
    q = level_stance_feet(geometry, conv, feet, log_scale, offsets, q, phase_r, heading)
    rel = forward_markers(geometry, q, log_scale, offsets)
    allowed = stance_allowed(phase_r, envelope)
    translation, foot_h = plant_feet(rel, feet, standing, np.asarray(start_xy, float), allowed)
    q[:, [conv.index["pelvis_tx"], conv.index["pelvis_ty"], conv.index["pelvis_tz"]]] = translation
    world = rel + translation[:, None, :]
    heel = world[:, list(feet.heel)]
    toe = world[:, list(feet.toe)]
    return Motion(times, q, foot_h, heel, toe, 0.0, cadence, allowed)


def _steady_state(motion: Motion, feet_events: list[dict]) -> tuple[float, float]:
    """(speed m/s, step width m) from consecutive footfalls of a steady-state simulation."""
    if len(feet_events) < 3:
        return float("nan"), float("nan")
    heel_xy = np.array([motion.heel[ev["start"], "LR".index(ev["foot"]), :2] for ev in feet_events])
    t = np.array([ev["contact_time"] for ev in feet_events])
    speed = (heel_xy[-1, 0] - heel_xy[0, 0]) / (t[-1] - t[0])
    width = float(np.median(np.abs(np.diff(heel_xy[:, 1]))))
    return float(speed), width


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
    frac = smoothstep((t - key_t[i]) / (key_t[i + 1] - key_t[i]))
    return key_v[i] + (key_v[i + 1] - key_v[i]) * frac


def tune_gait(geometry: BodyModel, conv: JointConventions, feet: FootModel, subject: Subject, fps: float, ss: int,
              speed: float) -> tuple[float, float]:
    """Hip amplitude gain and extra hip abduction (rad) that give the target speed (m/s) and the subject's
    step width: two short steady-state runs of 3.2 strides at ``ss`` samples per frame of ``fps``."""
    stride_s = 120.0 / subject.cadence
    times = np.arange(int(3.2 * stride_s * fps * ss)) / (fps * ss)
    env = np.ones_like(times)
    head = np.zeros_like(times)
    amplitude, abduction = 1.0, 0.0
    leg_length = 0.9 * math.exp(subject.log_scale[0])
    for _ in range(2):
        motion = simulate(geometry, conv, feet, subject.log_scale, subject.geometry_offsets, subject.standing,
                          subject.style, subject.cadence, times, env, head, (0.0, 0.0), amplitude, abduction, 0.0)
        heel_xy = motion.heel[..., :2]
        events = detect_footfalls(times, motion.foot_heights, heel_xy, motion.allowed)
        v, w = _steady_state(motion, events)
        if not np.isfinite(v) or v <= 0:
            break
        amplitude = float(np.clip(amplitude * speed / v, 0.5, 1.6))
        abduction = float(abduction + (subject.style.step_width_m - w) / 2 / leg_length)
    return amplitude, abduction


def motion_for_trial(geometry: BodyModel, conv: JointConventions, feet: FootModel, subject: Subject,
                     spec: SyntheticTrialSpec, config: SyntheticSessionConfig, rng: np.random.Generator,
                     amplitude: float, abduction: float) -> Motion:
    """The motion of one trial, supersampled ``config.supersample`` times per frame.

    static: neutral standing with ~4 mm pelvis sway and slight arm motion; sit_to_stand: seated, rise, stand
    (``sit_to_stand_angles``, feet planted, default 3 s); walk: start, steady gait across
    the walkway, stop; tug: walk 3 m, turn 180° at reduced intensity, walk back. amplitude and abduction come
    from ``tune_gait``; rng draws the start offset and stride phase (walks) or sway phases (static).
    """
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
        world = forward_markers(geometry, q, subject.log_scale, subject.geometry_offsets)
        heel, toe = world[:, list(feet.heel)], world[:, list(feet.toe)]
        h = np.zeros((len(times), 2))
        return Motion(times, q, h, heel, toe, 0.0, 0.0)
    if spec.activity == "sit_to_stand":
        duration = spec.duration_s or 3.0
        times = np.arange(int(round(duration * fps)) * ss) / (fps * ss)
        q = sit_to_stand_angles(conv, times, rise_start_s=0.25 * duration, rise_duration_s=0.5 * duration)
        rel = forward_markers(geometry, q, subject.log_scale, subject.geometry_offsets)
        start = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.1, 0.1)])
        translation, foot_h = plant_feet(rel, feet, subject.standing, start)
        q[:, [conv.index["pelvis_tx"], conv.index["pelvis_ty"], conv.index["pelvis_tz"]]] = translation
        world = rel + translation[:, None, :]
        return Motion(times, q, foot_h, world[:, list(feet.heel)], world[:, list(feet.toe)], 0.0, 0.0)
    speed = spec.speed_m_s or subject.style.speed_m_s
    key_t, key_env, key_head, start_x, auto = _plan_walk(spec.duration_s, fps, speed, subject.cadence,
                                                         config.walkway_length_m, spec.activity == "tug")
    duration = spec.duration_s or auto
    times = np.arange(int(round(duration * fps)) * ss) / (fps * ss)
    env = _interp_smooth(times, key_t, key_env)
    head = _interp_smooth(times, key_t, key_head)
    start = (start_x, rng.uniform(-0.1, 0.1))
    motion = simulate(geometry, conv, feet, subject.log_scale, subject.geometry_offsets, subject.standing,
                      subject.style, subject.cadence, times, env, head, start, amplitude, abduction,
                      rng.uniform(0, 1))
    return Motion(motion.times, motion.qpos, motion.foot_heights, motion.heel, motion.toe, speed, subject.cadence,
                  motion.allowed)
