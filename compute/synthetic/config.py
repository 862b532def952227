"""What defines a synthetic session: populations, activities, trials, camera rig and observation model.

Frozen dataclasses only; ``compute.synthetic.session.generate_session`` turns a ``SyntheticSessionConfig``
into a ``SyntheticSession``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

POPULATIONS = ("control", "hemiparetic", "prosthesis")
ACTIVITIES = ("walk", "static", "tug", "sit_to_stand")


@dataclass(frozen=True)
class SyntheticTrialSpec:
    """One trial to generate.

    name: trial name (also the folder name when written). activity: 'walk' | 'static' | 'tug' | 'sit_to_stand'.
    duration_s: trial length; None = automatic (walk: until the subject has stopped past the walkway end
    plus 0.5 s; static and sit_to_stand: 3 s; tug: until back at the start plus 0.5 s). A fixed duration
    truncates the motion or pads it with quiet standing. speed_m_s: steady walking speed; None = sampled per population.
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
    observations are 2-4x larger); ``confidence = sigmoid((30 - std) / 10)`` (Cotton 2024); pixels get i.i.d.
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
