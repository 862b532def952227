"""A synthetic subject: body scales, gait style of its population, cadence and standing geometry.

Populations: ``control`` (symmetric), ``hemiparetic`` (one side with reduced hip/knee/ankle excursion,
circumduction, hip hiking, little arm swing, slower and wider gait) and ``prosthesis`` (one stiff knee and
ankle, hip hiking and circumduction to clear the foot). Speeds are in m/s and scale with sqrt(leg length).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compute.kinematics import BodyModel
from compute.synthetic.config import SyntheticSessionConfig
from compute.synthetic.conventions import JointConventions
from compute.synthetic.feet import FootModel
from compute.synthetic.forward import forward_markers

FLOOR_BELOW_LOWEST_MARKER_M = 0.02   # floor sits this far below the lowest foot marker when standing


@dataclass(frozen=True)
class LegStyle:
    """How one leg walks: gains on the normative hip/knee/ankle excursions and deviations (degrees)."""

    hip_gain: float = 1.0
    knee_gain: float = 1.0
    ankle_gain: float = 1.0
    ankle_offset_deg: float = 0.0
    swing_abduction_deg: float = 0.0     # circumduction
    hip_hike_deg: float = 0.0            # pelvis raised on this side during its swing
    arm_swing_deg: float = 15.0
    elbow_flex_deg: float = 20.0


@dataclass(frozen=True)
class GaitStyle:
    """How a subject walks: steady speed (m/s), step width (m) and the style of each leg."""

    speed_m_s: float
    step_width_m: float
    left: LegStyle
    right: LegStyle


def sample_log_scale(rng: np.random.Generator, n_groups: int, config: SyntheticSessionConfig) -> np.ndarray:
    """(G,) log scale factors: overall (group 0) uniform in ``config.log_scale_overall_range``, the other
    groups normal with sd ``log_scale_group_max / 2``, clipped to ``±config.log_scale_group_max``."""
    log_scale = np.zeros(n_groups)
    log_scale[0] = rng.uniform(*config.log_scale_overall_range)
    log_scale[1:] = np.clip(rng.normal(0.0, config.log_scale_group_max / 2, n_groups - 1),
                            -config.log_scale_group_max, config.log_scale_group_max)
    return log_scale


def sample_gait_style(rng: np.random.Generator, population: str, overall_scale: float) -> tuple[GaitStyle, str | None]:
    """Speeds (m/s) and per-leg gains of each population; speed scales with sqrt(leg length)."""
    size = math.sqrt(overall_scale)
    normal = LegStyle()
    if population == "control":
        speed = rng.uniform(1.05, 1.55) * size
        return GaitStyle(float(np.clip(speed, 0.6, 1.6)), rng.uniform(0.08, 0.12), normal, normal), None
    side = "L" if rng.random() < 0.5 else "R"
    if population == "hemiparetic":
        affected = LegStyle(hip_gain=0.75, knee_gain=0.55, ankle_gain=0.5, ankle_offset_deg=-4.0,
                            swing_abduction_deg=6.0, hip_hike_deg=3.0, arm_swing_deg=3.0, elbow_flex_deg=60.0)
        speed = rng.uniform(0.6, 0.95) * size
        width = rng.uniform(0.15, 0.20)
    else:  # prosthesis: stiff knee and ankle on one side, hip hiking and circumduction to clear the foot
        affected = LegStyle(hip_gain=1.05, knee_gain=0.3, ankle_gain=0.15, swing_abduction_deg=6.0,
                            hip_hike_deg=4.0)
        speed = rng.uniform(0.8, 1.2) * size
        width = rng.uniform(0.13, 0.17)
    left, right = (affected, normal) if side == "L" else (normal, affected)
    return GaitStyle(float(np.clip(speed, 0.6, 1.6)), width, left, right), side


def cadence_steps_per_min(speed: float, overall_scale: float, population: str) -> float:
    """Plausible cadence: ~112 steps/min at 1.3 m/s for an adult, ∝ sqrt(speed), ∝ 1/sqrt(leg length)."""
    cadence = 112.0 * math.sqrt(speed / 1.3) / math.sqrt(overall_scale)
    if population == "hemiparetic":
        cadence *= 0.95
    return cadence


@dataclass(frozen=True)
class Subject:
    """One generated subject. log_scale (G,); offsets (J, 3) m of the observed marker set; geometry_offsets
    (J_geometry, 3) m of the MOVI87 model that provides the feet; affected_side 'L'/'R' or None; cadence
    steps/min."""

    log_scale: np.ndarray
    offsets: np.ndarray
    geometry_offsets: np.ndarray
    style: GaitStyle
    affected_side: str | None
    cadence: float
    standing: np.ndarray          # (J_geometry,) contact marker standing heights above the floor
    pelvis_height: float          # standing pelvis origin height above the floor


def standing_heights(geometry: BodyModel, conv: JointConventions, log_scale: np.ndarray, offsets: np.ndarray,
                     feet: FootModel) -> tuple[np.ndarray, float]:
    """Standing in the neutral pose with the floor FLOOR_BELOW_LOWEST_MARKER_M below the lowest contact
    marker: (J_geometry,) marker heights above the floor (m) and the pelvis origin height (m)."""
    q = conv.neutral.copy()
    q[[conv.index["pelvis_tx"], conv.index["pelvis_ty"], conv.index["pelvis_tz"]]] = 0.0
    pts = forward_markers(geometry, q[None], log_scale, offsets)[0]
    idx = list(feet.contact[0] + feet.contact[1])
    floor = pts[idx, 2].min() - FLOOR_BELOW_LOWEST_MARKER_M
    return pts[:, 2] - floor, float(-floor)
