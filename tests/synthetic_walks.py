"""Seeded synthetic walks for the gait-cycle and spatiotemporal tests, generated once per test process.

One session per population (control, hemiparetic, prosthesis), one straight walk each, two cameras (the
observations are not used: events come from the TRUE heel and toe markers). The walk starts from standing
0.6 m before the 6 m walkway and stops after it; the acceleration and deceleration strides lie outside the
central region used for steady-state comparisons (|x| <= STEADY_HALF_LENGTH_M), as a walkway placed in the
middle of a longer walk would see.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from compute import gait, synthetic
from compute.gait_cycle import Strides
from compute.kinematics import BodyModel, load_body_model

POPULATIONS = ("control", "hemiparetic", "prosthesis")
SEEDS = {"control": 21, "hemiparetic": 22, "prosthesis": 23}
FOOT_MARKERS = ("lhee", "ltoe", "rhee", "rtoe")
#: Half-length (m) of the central part of the 6 m walkway where every synthetic gait is at steady speed.
STEADY_HALF_LENGTH_M = 2.5


@dataclass(frozen=True)
class Walk:
    """One synthetic walk: what the tests need from it."""

    population: str
    affected_side: str | None
    fps: float
    qpos: np.ndarray                 # (T, Q) rad (translations m), true joint angles
    joint_names: tuple[str, ...]
    detected: gait.Footfalls         # from compute.gait on the true heel/toe markers
    truth: gait.Footfalls            # the generator's own contact / toe-off record
    nominal_speed_m_s: float
    nominal_cadence_steps_per_min: float


def _walk(population: str, body: BodyModel) -> Walk:
    config = synthetic.SyntheticSessionConfig(seed=SEEDS[population], population=population, n_cameras=2,
                                              trials=synthetic.default_trials(1, static=False, tug=False))
    session = synthetic.generate_session(config, body)
    trial = session.trials[0]
    index = [list(session.marker_names).index(n) for n in FOOT_MARKERS]
    feet = np.asarray(trial.markers, np.float64)[:, index]
    detected = gait.footfalls_from_markers(feet[:, 0], feet[:, 1], feet[:, 2], feet[:, 3], trial.fps)
    rows = trial.footfalls
    truth = gait.make_footfalls([f["foot"] for f in rows], [f["contact_time"] for f in rows],
                                [f["heel_world"][:2] for f in rows], [f["toe_world"][:2] for f in rows],
                                [f["toe_off_time"] for f in rows])
    return Walk(population, session.affected_side, trial.fps, np.asarray(trial.qpos, np.float64),
                tuple(session.joint_names), detected, truth, trial.speed_m_s, trial.cadence_steps_per_min)


@functools.lru_cache(maxsize=None)
def walks() -> dict[str, Walk]:
    """{population: Walk}, generated on first use (~5-20 s per population on a shared 2-core machine)."""
    body = load_body_model("MOVI87")
    return {population: _walk(population, body) for population in POPULATIONS}


def steady(strides: Strides) -> Strides:
    """The strides whose two contacts both lie in the steady-state central region of the walkway."""
    inside = (np.abs(strides.start_heel_xy[:, 0]) <= STEADY_HALF_LENGTH_M) & \
        (np.abs(strides.end_heel_xy[:, 0]) <= STEADY_HALF_LENGTH_M)
    return strides.take(np.flatnonzero(inside))


#: Coordinates of :func:`periodic_gait`, OpenSim names.
PERIODIC_COORDINATES = ("hip_flexion_l", "hip_flexion_r", "knee_angle_l", "knee_angle_r",
                        "ankle_angle_l", "ankle_angle_r")
_WAVEFORMS = {"hip_flexion": "hip_flexion", "knee_angle": "knee_flexion", "ankle_angle": "ankle_dorsiflexion"}


def periodic_gait(*, fps: float = 30.0, stride_s: float = 1.2, duration_s: float = 8.0, stance: float = 0.62,
                  left_phase: float = 0.5, speed_m_s: float = 1.1, step_width_m: float = 0.1,
                  first_right_contact_s: float = 0.37) -> tuple[gait.Footfalls, np.ndarray]:
    """A perfectly periodic gait whose every event and angle is known in closed form.

    Right contacts at ``first_right_contact_s + k · stride_s``, left contacts ``left_phase`` of a stride
    later; toe-off ``stance`` of a stride after each contact; heel at contact = (speed · t, ∓width/2)
    (right foot at −width/2). Angles (T, 6) rad, columns ``PERIODIC_COORDINATES``: the generator's
    normative waveforms (``synthetic.gait_waveform``) at each leg's stride phase (0 = its contact).
    The trial starts and ends mid-stride (incomplete cycles at both ends).
    """
    times = np.arange(int(round(duration_s * fps))) / fps
    feet, contacts, heels, toe_offs = [], [], [], []
    for foot, offset, y in (("R", 0.0, -step_width_m / 2), ("L", left_phase, step_width_m / 2)):
        t = first_right_contact_s + (np.arange(-2, int(duration_s / stride_s) + 2) + offset) * stride_s
        t = t[(t > 2 / fps) & (t < times[-1] - 2 / fps)]
        feet += [foot] * t.size
        contacts.append(t)
        heels.append(np.stack([speed_m_s * t, np.full(t.size, y)], axis=1))
        toe_off = t + stance * stride_s
        toe_offs.append(np.where(toe_off < times[-1] - 2 / fps, toe_off, np.nan))
    footfalls = gait.make_footfalls(feet, np.concatenate(contacts), np.concatenate(heels), None,
                                    np.concatenate(toe_offs))
    columns = []
    for name in PERIODIC_COORDINATES:
        stem, side = name[:-2], name[-1]
        phase = (times - first_right_contact_s) / stride_s - (left_phase if side == "l" else 0.0)
        columns.append(np.deg2rad(synthetic.gait_waveform(_WAVEFORMS[stem], phase)))
    return footfalls, np.stack(columns, axis=1)
