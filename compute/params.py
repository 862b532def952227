"""Hyper-parameters of the end-to-end fit as frozen, hashable, JSON-serialisable data.

A parameter set is data, not code: every weight, schedule and stage boundary of the fit lives in one
``FitParams``, grouped into frozen sub-configurations by the part of the method that reads them (the trajectory
network, the optimiser, the loss, bundle adjustment, the trilevel site fit, the two-stage baseline, the run-time
checks).  A compiled step receives only the sub-configurations it reads, so changing, say, a trilevel field does
not recompile the bilevel step.  ``PARAMETER_SETS['paper']`` holds the values of Cotton 2024, "Differentiable
Biomechanics Unlocks Opportunities for Markerless Motion Capture"; ``'cpu_default'`` is tuned to reach the same
synthetic accuracy on a 2-core CPU in a few hundred to a few thousand steps.

Storage: ``to_dict`` gives nested dicts (one per sub-configuration), ``to_json`` their canonical JSON (sorted
keys, no whitespace) and ``hash`` the SHA-1 of that string: identical parameters <=> identical hash.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

__all__ = [
    "NetworkConfig",
    "OptimiserConfig",
    "InitialisationConfig",
    "PriorConfig",
    "LossConfig",
    "BundleAdjustmentConfig",
    "TrilevelConfig",
    "BaselineConfig",
    "ChecksConfig",
    "ConvergenceConfig",
    "CrossValidationConfig",
    "FitParams",
    "PARAMETER_SETS",
    "DEFAULT_PARAMS_NAME",
    "SPARSE_PARAMS_NAME",
    "default_params_name",
]


@dataclass(frozen=True)
class NetworkConfig:
    """The implicit trajectory network (one MLP of time per trial).

    hidden_widths: widths of the MLP hidden layers.
    encoding_frequencies: number of sinusoid frequencies; encoding dim = 1 + 2 * encoding_frequencies (14 -> 29,
      the paper's size).  Frequencies are geometric from 1 to 2 * duration_s * encoding_max_frequency_hz in scaled
      time (t in [0, pi]), i.e. up to that many Hz.
    encoding_layers: the encoding is concatenated to the input of this many first layers.
    root_residual_scale_m: metres per unit network output for the root-translation residual.
    activation: name of the hidden-layer non-linearity (silu, relu, gelu, tanh, softplus).
    """

    hidden_widths: tuple[int, ...] = (128, 256, 256)
    encoding_frequencies: int = 10
    encoding_max_frequency_hz: float = 8.0
    encoding_layers: int = 2
    root_residual_scale_m: float = 0.1
    activation: str = "silu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_widths", tuple(int(w) for w in self.hidden_widths))
        if len(self.hidden_widths) == 0:
            raise ValueError("NetworkConfig.hidden_widths: expected at least one hidden layer")
        if not 0 < self.encoding_layers <= len(self.hidden_widths) + 1:
            raise ValueError("NetworkConfig.encoding_layers: expected 1..len(hidden_widths)+1")

    @property
    def encoding_dim(self) -> int:
        """Length of the sinusoidal time encoding: t plus a sin/cos pair per frequency."""
        return 1 + 2 * self.encoding_frequencies


@dataclass(frozen=True)
class OptimiserConfig:
    """Optimisation of the bilevel fit.

    Networks: AdamW (adam_b1, adam_b2, weight_decay) after global-norm clipping (grad_clip_norm), with a linear
    warm-up over warmup_steps to learning_rate, then exponential decay to learning_rate_final at ``steps``.
    time_points_per_trial: frames sampled per trial per step (stratified).
    body_learning_rate: Adam rate of the log-scales and marker offsets (same schedule shape).
    offset_start_fraction: marker offsets receive updates from this fraction of the steps on (0 = always).
    max_offset_m: each marker offset is projected onto a ball of this radius after every update (metres).  A
      marker offset is where a detector puts a landmark relative to the model site: millimetres to a few
      centimetres.  Unbounded, offsets of 30-50 cm absorbed badly seen legs on a real 4-webcam recording.
    """

    learning_rate: float = 3e-3
    learning_rate_final: float = 3e-5
    warmup_steps: int = 100
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    weight_decay: float = 1e-5
    grad_clip_norm: float = 1.0
    steps: int = 2000
    time_points_per_trial: int = 64
    body_learning_rate: float = 3e-3
    offset_start_fraction: float = 0.3
    max_offset_m: float = 0.05

    def __post_init__(self) -> None:
        if self.steps <= 0 or self.time_points_per_trial <= 0:
            raise ValueError("OptimiserConfig.steps / time_points_per_trial: expected positive integers")


@dataclass(frozen=True)
class InitialisationConfig:
    """Initialisation by robust triangulation.

    outlier_threshold_px: reprojection threshold of the robust triangulation that initialises the fit; looser
      than a 3D reconstruction would use because real detectors disagree across views by 10-20 px.
    correct_left_right_swaps: before the fit, frames of a camera whose left/right labels disagree with the other
      views are relabelled (``compute.swaps.detect_swaps``); the observations of every stage use the result.
    """

    outlier_threshold_px: float = 40.0
    correct_left_right_swaps: bool = False


@dataclass(frozen=True)
class PriorConfig:
    """Priors on joint angles where the images are silent (terms of ``compute.fit.priors``; every weight 0 = off).

    Sparse keypoint sets (COCO17, HALPE26, BODY25B, BLAZEPOSE33) put two points on the pelvis (the hips) and two
    on the trunk (the shoulders): pelvis tilt, lumbar extension and hip flexion then trade off with almost no
    change of the reprojection error.  Each term is a mean over the sampled frames of a sum of squared
    standardised residuals ``1/2 ((q - neutral) / sd)^2`` (angles in degrees in this config, radians in the loss).
    The loss is a mean over observations of a Huber kernel (quadratic below ``huber_delta_px``), so a prior with
    standard deviation ``sd`` weighs as a Gaussian prior against detections of about ``p`` px noise when its
    weight is ``p^2 / (C J)`` (C cameras, J keypoints): 2 px, 8 cameras, 25 keypoints -> 0.02.

    posture_weight: weight of the posture prior pulling weakly observed coordinates toward neutral:
      lumbar_extension (sd lumbar_sd_deg, neutral lumbar_extension_neutral_deg: the lordosis of an upright trunk
      over an anteriorly tilted pelvis, pelvis_tilt = -neutral), lumbar_bending/rotation (sd lumbar_sd_deg,
      neutral 0), pro_sup_r/l (sd pro_sup_sd_deg, neutral
      pro_sup_neutral_deg: 90 = palm facing the thigh), subtalar_angle_r/l if the model has them (sd
      subtalar_sd_deg, neutral 0), wrist_flex/wrist_dev_r/l (sd wrist_sd_deg, neutral 0), arm_rot_r/l (sd
      arm_rotation_sd_deg, neutral 0: humeral rotation is seen only through the forearm, so not at all while the
      elbow is straight).
    joint_limit_weight: weight of the soft joint-limit penalty ``1/2 (violation / joint_limit_scale_deg)^2``
      summed over every coordinate outside its model range (root translations and heading excluded).
    lumbopelvic_weight: weight of the lumbopelvic-rhythm coupling: the lumbar spine contributes the fraction
      lumbopelvic_ratio of the trunk's sagittal (pelvis_tilt + lumbar_extension) and frontal (pelvis_list +
      lumbar_bending) inclination, the pelvis the rest; residual ``lumbar - ratio * (pelvis + lumbar)`` with
      sd lumbopelvic_sd_deg (the lumbar term measured from lumbar_extension_neutral_deg).  This pins the pelvis
      tilt relative to the trunk, which the hips alone cannot.
    """

    posture_weight: float = 0.0
    lumbar_sd_deg: float = 10.0
    lumbar_extension_neutral_deg: float = 0.0
    pro_sup_sd_deg: float = 30.0
    pro_sup_neutral_deg: float = 90.0
    subtalar_sd_deg: float = 10.0
    wrist_sd_deg: float = 15.0
    arm_rotation_sd_deg: float = 30.0
    joint_limit_weight: float = 0.0
    joint_limit_scale_deg: float = 1.0
    lumbopelvic_weight: float = 0.0
    lumbopelvic_ratio: float = 0.3
    lumbopelvic_sd_deg: float = 5.0

    def __post_init__(self) -> None:
        for name in ("lumbar_sd_deg", "pro_sup_sd_deg", "subtalar_sd_deg", "wrist_sd_deg", "arm_rotation_sd_deg",
                     "joint_limit_scale_deg", "lumbopelvic_sd_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PriorConfig.{name}: expected > 0, got {getattr(self, name)}")
        for name in ("posture_weight", "joint_limit_weight", "lumbopelvic_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"PriorConfig.{name}: expected >= 0, got {getattr(self, name)}")

    @property
    def enabled(self) -> bool:
        """True when any prior term has a positive weight (all 0: the loss is exactly the prior-free one)."""
        return self.posture_weight > 0 or self.joint_limit_weight > 0 or self.lumbopelvic_weight > 0


@dataclass(frozen=True)
class LossConfig:
    """Weights of ``L = L_reprojection + offset_weight L_offset + smoothness_weight L_smooth + equality_weight L_eq``
    ``+ L_prior`` (``priors``: see ``PriorConfig``).

    huber_delta_px: Huber kernel threshold of the reprojection term (pixels).
    offset_weight: weight of mean(delta^2) over marker offsets delta (metres).  With our pixel-unit loss the
      paper's 1e2 leaves offsets free to absorb pose errors - forearm pronation was 8 deg off with 1e2, 4.7 deg
      with 3e3 - so cpu_default uses 3e3; 1e4 and 3e4 gave 6.3 and 7.0 deg.
    smoothness_weight: weight of the mean squared second time derivative of qpos (rad/s^2); 0 = off.
    equality_weight: weight of the mean squared equality-constraint residuals of the body model.
    """

    huber_delta_px: float = 10.0
    offset_weight: float = 3e3
    smoothness_weight: float = 0.0
    equality_weight: float = 0.01
    priors: PriorConfig = field(default_factory=PriorConfig)


@dataclass(frozen=True)
class BundleAdjustmentConfig:
    """Refinement of the camera extrinsics during the bilevel fit.

    camera_start_fraction: cameras train from this fraction of the steps on (>= 1 = never).
    camera_learning_rate: Adam rate of the camera rotation (rad) and centre (m) deltas, decayed 10x over the run.
    fit_time_offsets: also fit a per-camera time offset delta_c (s; camera c's frame i shows the body at
      ``i / fps + delta_c``), mean zero over the observed cameras (``compute.fit.gauge.effective_time_offsets``),
      trained from the first step.  False: the fit is exactly the one without.
    max_time_offset_s: bound on |delta_c| (s; 0.2 s = 6 frames at 30 fps, 12 at 60 fps).
    time_offset_learning_rate_s: Adam rate of the offsets (s per step), decayed 10x over the run.
    hold_time_offsets_from_camera_start: train the offsets only before bundle adjustment starts and hold them
      from then on.  Both free together, the camera centres take up
      part of a time shift as a displacement along the walking direction, which only the limbs' swing tells
      apart: measured on an 8-camera synthetic walk with -3..+3 frame offsets, the worst offset ended 0.43 frames
      off with both free, 0.14 with the cameras fixed.  Without bundle adjustment it changes nothing.
    time_offsets_from_epipolar: start the offsets at the lags of the epipolar pre-check (``compute.sync``, median
      over the session's trials; undetermined lags start at 0) instead of at 0: the fit then refines an offset
      that is already within a fraction of a frame rather than searching several frames away while the
      trajectory is still being learnt.
    """

    camera_start_fraction: float = 0.2
    camera_learning_rate: float = 1e-3
    fit_time_offsets: bool = False
    max_time_offset_s: float = 0.2
    time_offset_learning_rate_s: float = 2e-3
    hold_time_offsets_from_camera_start: bool = True
    time_offsets_from_epipolar: bool = True

    def start_step(self, steps: int) -> int:
        """First step (of ``steps``) at which camera parameters receive updates."""
        return int(round(self.camera_start_fraction * steps))


@dataclass(frozen=True)
class CrossValidationConfig:
    """Held-out validation of a finished bilevel fit (``compute.fit.crossval``); read only by that check, never by
    the fit itself.

    refit_steps_fraction: each refit (one per held-out camera, two for the calibration check) runs the last
      fraction of the fit's schedule (learning rates, bundle-adjustment gate) from the fitted trajectories and
      body (``warm_start``), or the whole schedule from a fresh initialisation when ``warm_start`` is False.
    warm_start: start the refits from the full fit.  Cheap, but the full fit has seen the held-out data, so the
      held-out errors are a little optimistic where the remaining views leave a pose undetermined.
    held_out_frame_every: the calibration check leaves out every k-th frame (k = this; frames k//2, k//2 + k, ...
      so neither end of a trial is extrapolated) in all cameras.
    min_relative_improvement: bundle adjustment "improves" a camera when its held-out-frame median error through
      the refined rig is below (1 - this) x the one of a refit that kept the input calibration.
    max_rotation_change_deg, max_centre_change_mm: a camera refined further than either limit without a held-out
      improvement is flagged.
    triangulation_outlier_px: outlier threshold of the robust triangulation the fit is compared with.
    """

    refit_steps_fraction: float = 0.5
    warm_start: bool = True
    held_out_frame_every: int = 5
    min_relative_improvement: float = 0.02
    max_rotation_change_deg: float = 1.0
    max_centre_change_mm: float = 20.0
    triangulation_outlier_px: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 < self.refit_steps_fraction <= 1.0:
            raise ValueError(f"CrossValidationConfig.refit_steps_fraction: expected in (0, 1], got "
                             f"{self.refit_steps_fraction}")
        if self.held_out_frame_every < 2:
            raise ValueError(f"CrossValidationConfig.held_out_frame_every: expected >= 2, got "
                             f"{self.held_out_frame_every}")


@dataclass(frozen=True)
class TrilevelConfig:
    """The trilevel fit of the base model's marker sites shared by many subjects.

    site_learning_rate: peak Adam rate of the site changes (metres).
    site_weight: L2 weight on the site change from the base model (m^-2).
    freeze_heel_sites: heel sites are held at the base model.
    site_start_fraction: shared sites stay fixed for this fraction of the trilevel steps while each subject's
      trajectories and scales settle (a warm start); then their own Adam starts fresh with a warm-up.
    site_offset_start_fraction: per-subject marker offsets stay at 0 until this fraction of each subject's steps,
      so the displacement common to all subjects goes to the shared sites first.
    """

    site_learning_rate: float = 1e-3
    site_weight: float = 0.0
    freeze_heel_sites: bool = True
    site_start_fraction: float = 0.3
    site_offset_start_fraction: float = 0.75


@dataclass(frozen=True)
class BaselineConfig:
    """The two-stage baseline: per-frame inverse kinematics to triangulated points.

    ik_steps: Adam steps; ik_learning_rate: Adam rate on latent angles and root, exponentially decayed 100x;
    ik_huber_delta_m: Huber threshold on the 3D marker distances (metres).
    """

    ik_steps: int = 300
    ik_learning_rate: float = 2e-2
    ik_huber_delta_m: float = 0.03


@dataclass(frozen=True)
class ChecksConfig:
    """Run-time bookkeeping of every fit loop.

    divergence_check_every: steps between NaN/inf checks of the loss (each check synchronises with the device).
    history_every: steps between loss-history rows.
    """

    divergence_check_every: int = 100
    history_every: int = 10


@dataclass(frozen=True)
class ConvergenceConfig:
    """When the bilevel fit may stop before its step budget (``optimiser.steps``).

    The criterion is evaluated at each divergence check (every ``checks.divergence_check_every`` steps, when the
    loss history is read back anyway) from step ``max(convergence_min_fraction * steps, s + 2 w)`` on, where s
    is the latest stage start (bundle adjustment, marker offsets) and w = convergence_window_steps: the
    smoothed loss is the median of the loss-history rows in a window of w steps; with L_now the median over the
    last w steps and L_before the median over the w steps before those, the fit stops when
    ``(L_before - L_now) / |L_before| < convergence_tolerance``.  Medians make a noisy plateau look flat and
    ignore single outlier steps; both windows lie after every stage start, so the drop a stage causes never
    reads as a plateau (a rise counts as a plateau too).  Once converged at step k, the fit skips to the last
    ``convergence_final_steps`` steps of the schedule and ends after running them: a plateau at step k says the
    loss no longer falls at step k's learning rates, and what the rest of the schedule would still give is the
    lower step noise of its decayed rates, which its last steps give (0 = stop at step k, the rates left at
    step k's values).

    With bundle adjustment, the loss flattens before the cameras have settled (they move along directions the
    loss barely feels); with ``convergence_camera_centre_mm`` > 0 the fit stops only once no camera's raw centre
    delta moved by that much, and no rotation delta by ``convergence_camera_rotation_deg``, over the last window.
    Measured on 2-walk sessions at step 1025: largest centre movement over 200 steps 3.6 mm with every camera
    1 deg / 2 cm off, 0.75 mm with exact cameras (rotation 0.048 vs 0.014 deg).

    A long trial needs more steps than a short one before its fit of every frame is done, and the loss cannot
    tell: each step samples ``optimiser.time_points_per_trial`` time points per trial, so the plateau of that
    noisy loss arrives after about as many steps whatever the trial's length.  With
    ``convergence_min_samples_per_frame`` > 0 the rule is also not evaluated before the longest trial's frames
    have been sampled that many times on average (``steps * time_points_per_trial / frames``).  Measured on
    synthetic HALPE26 walks (8 cameras, cpu_sparse): one 600-frame trial stopped at step 1190 (127 samples per
    frame) had 5.2 mm of 3D keypoint error against 4.7 mm after the whole budget (213 per frame); ten 300-frame
    trials stopped at step 1090 (233 per frame) lost nothing (GC_5 0.9619 vs 0.9623); 100-120-frame trials
    stopped at 1100-1300 (> 580 per frame) lost nothing.

    stop_when_converged: off = always run the full step budget.  Zero thresholds: not checked (0 is also what a
    set stored before these fields existed meant).
    """

    stop_when_converged: bool = False
    convergence_min_fraction: float = 0.5
    convergence_window_steps: int = 200
    convergence_tolerance: float = 2e-3
    convergence_final_steps: int = 0
    convergence_camera_centre_mm: float = 0.0
    convergence_camera_rotation_deg: float = 0.0
    convergence_min_samples_per_frame: float = 0.0

    def __post_init__(self) -> None:
        if (self.convergence_window_steps <= 0 or self.convergence_final_steps < 0
                or self.convergence_camera_centre_mm < 0 or self.convergence_camera_rotation_deg < 0
                or self.convergence_min_samples_per_frame < 0
                or not 0.0 <= self.convergence_min_fraction <= 1.0):
            raise ValueError("ConvergenceConfig: expected convergence_window_steps > 0, convergence_final_steps, "
                             "convergence_camera_centre_mm, convergence_camera_rotation_deg and "
                             "convergence_min_samples_per_frame >= 0, and convergence_min_fraction in [0, 1]")


_SECTIONS: dict[str, type] = {
    "network": NetworkConfig,
    "optimiser": OptimiserConfig,
    "initialisation": InitialisationConfig,
    "loss": LossConfig,
    "bundle_adjustment": BundleAdjustmentConfig,
    "trilevel": TrilevelConfig,
    "baseline": BaselineConfig,
    "checks": ChecksConfig,
    "convergence": ConvergenceConfig,
    "crossval": CrossValidationConfig,
}
# field name -> section: field names are unique across sections, so ``FitParams.replace(steps=...)`` is unambiguous
_FIELD_SECTION: dict[str, str] = {f.name: section for section, cls in _SECTIONS.items()
                                  for f in dataclasses.fields(cls)}
assert len(_FIELD_SECTION) == sum(len(dataclasses.fields(c)) for c in _SECTIONS.values()), "duplicate field names"


@dataclass(frozen=True)
class FitParams:
    """All hyper-parameters of bilevel/trilevel fitting and the two-stage baseline, one sub-configuration per part.

    Units: pixels, metres, radians, steps.  See each sub-configuration for its fields.
    """

    network: NetworkConfig = field(default_factory=NetworkConfig)
    optimiser: OptimiserConfig = field(default_factory=OptimiserConfig)
    initialisation: InitialisationConfig = field(default_factory=InitialisationConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    bundle_adjustment: BundleAdjustmentConfig = field(default_factory=BundleAdjustmentConfig)
    trilevel: TrilevelConfig = field(default_factory=TrilevelConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    convergence: ConvergenceConfig = field(default_factory=ConvergenceConfig)
    crossval: CrossValidationConfig = field(default_factory=CrossValidationConfig)

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"FitParams.{name}: expected {cls.__name__}, got {type(getattr(self, name)).__name__}")

    @property
    def camera_start_step(self) -> int:
        """First step at which camera parameters receive updates in a bilevel fit of ``optimiser.steps``."""
        return self.bundle_adjustment.start_step(self.optimiser.steps)

    def to_dict(self) -> dict:
        """Nested dicts ``{section: {field: value}}`` with lists for tuples (JSON-able)."""
        d = dataclasses.asdict(self)
        d["network"]["hidden_widths"] = list(self.network.hidden_widths)
        return d

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace) - the hash is taken over this string."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> "FitParams":
        """Inverse of ``to_dict``; a missing section or field takes its default, an unknown one is an error."""
        unknown = set(d) - set(_SECTIONS)
        if unknown:
            raise ValueError(f"FitParams: unknown section(s) {sorted(unknown)}; expected {sorted(_SECTIONS)}")
        sections = {}
        for name, section_cls in _SECTIONS.items():
            values = dict(d.get(name, {}))
            fields = {f.name for f in dataclasses.fields(section_cls)}
            unknown = set(values) - fields
            if unknown:
                raise ValueError(f"FitParams.{name}: unknown field(s) {sorted(unknown)}")
            if "hidden_widths" in values:
                values["hidden_widths"] = tuple(values["hidden_widths"])
            if "priors" in values:
                priors = dict(values["priors"])
                unknown = set(priors) - {f.name for f in dataclasses.fields(PriorConfig)}
                if unknown:
                    raise ValueError(f"FitParams.loss.priors: unknown field(s) {sorted(unknown)}")
                values["priors"] = PriorConfig(**priors)
            sections[name] = section_cls(**values)
        return cls(**sections)

    @classmethod
    def from_json(cls, s: str) -> "FitParams":
        return cls.from_dict(json.loads(s))

    @property
    def hash(self) -> str:
        """SHA-1 of the canonical JSON: identical parameters <=> identical hash."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()

    def replace(self, **changes) -> "FitParams":
        """A copy with ``changes``: a section name takes a whole sub-configuration (``optimiser=OptimiserConfig()``),
        a field name changes that field in its section (``steps=600`` -> ``optimiser.steps``)."""
        sections = {name: value for name, value in changes.items() if name in _SECTIONS}
        per_section: dict[str, dict] = {}
        for name, value in changes.items():
            if name in _SECTIONS:
                continue
            if name not in _FIELD_SECTION:
                raise ValueError(f"FitParams.replace: unknown field {name!r}")
            per_section.setdefault(_FIELD_SECTION[name], {})[name] = value
        for section, values in per_section.items():
            base = sections.get(section, getattr(self, section))
            sections[section] = dataclasses.replace(base, **values)
        return dataclasses.replace(self, **sections)


# The stop of cpu_default and cpu_sparse: at the loss plateau, and once the cameras have settled, skip to the
# schedule's last 200 steps (whose decayed learning rates lower the step noise) and end after them.  On 1-walk
# MOVI87 / HALPE26 sessions that is 1300-1500 steps instead of 2000 at the whole budget's GC_5 and joint-angle
# error (bench/bench_convergence.py).  The camera threshold because the loss alone does not see bundle
# adjustment still moving the cameras: with every camera 1 deg / 2 cm off, a stop on the loss alone left 0.95 cm
# of centre error against 0.74 cm after the whole budget; waiting until no centre delta moved 1 mm over the
# last window, 0.78 cm (tests/test_fit.py's bundle-adjustment test).  Not before every frame of the longest
# trial has been sampled 256 times on average: a 600-frame trial stopped at 127 lost 0.5 mm of 3D keypoint
# error, 300-frame trials at 233 nothing (ConvergenceConfig); with 64 time points per step a trial of 500 frames
# or more (17 s at 30 fps, 8 s at 60 fps) runs the whole budget.
_STOP_AT_PLATEAU = ConvergenceConfig(stop_when_converged=True, convergence_final_steps=200,
                                     convergence_camera_centre_mm=1.0, convergence_camera_rotation_deg=0.0,
                                     convergence_min_samples_per_frame=256.0)

PARAMETER_SETS: dict[str, FitParams] = {
    # The paper's hyper-parameters (Cotton 2024): layers 128...4096, AdamW beta1 0.8, wd 1e-5,
    # lr 1e-4 -> 1e-7 exponential, 40k steps, bundle adjustment from 30k with Adam 1e-5, 300 time points,
    # 29-dim time encoding, Huber ~50 px, offset weight 1e2, equality weight 0.01, clip 0.1.
    "paper": FitParams(
        network=NetworkConfig(
            hidden_widths=(128, 256, 512, 1024, 2048, 4096),
            encoding_frequencies=14,
            encoding_max_frequency_hz=400.0,  # 2**13 in scaled time for a 10 s trial
            encoding_layers=3,
            root_residual_scale_m=1.0,
            activation="relu"),
        optimiser=OptimiserConfig(
            learning_rate=1e-4,
            learning_rate_final=1e-7,
            warmup_steps=500,
            adam_b1=0.8,
            adam_b2=0.999,
            weight_decay=1e-5,
            grad_clip_norm=0.1,
            steps=40_000,
            time_points_per_trial=300,
            body_learning_rate=1e-4,
            offset_start_fraction=0.0),
        loss=LossConfig(
            huber_delta_px=50.0,
            offset_weight=100.0,
            smoothness_weight=0.0,
            equality_weight=0.01),
        bundle_adjustment=BundleAdjustmentConfig(
            camera_start_fraction=0.75,
            camera_learning_rate=1e-5),
        checks=ChecksConfig(
            divergence_check_every=500,
            history_every=50),
    ),
    # Tuned on synthetic sessions (control subject, 8 cameras, 1.5 px noise, 10 % dropped, 3 % outliers)
    # for a 2-core CPU.  See bench/bench_fit.py for the measured time-to-accuracy.  Stops at the plateau
    # (_STOP_AT_PLATEAU).
    "cpu_default": FitParams(convergence=_STOP_AT_PLATEAU),
    # cpu_default that always runs its whole step budget: what cpu_default was before it stopped at the plateau,
    # to reproduce such fits or to compare a stopped fit against the whole budget.
    "cpu_full_budget": FitParams(),
    # cpu_default plus the joint-angle priors of PriorConfig, for sparse keypoint sets (COCO17, HALPE26, BODY25B,
    # BLAZEPOSE33: two hip and two shoulder points), whose images leave pelvis tilt, lumbar extension and hip
    # flexion trading off.  Weights 0.02 ~ a Gaussian prior against 2 px detections in 8 cameras x 25 keypoints.
    # Dense marker sets (MOVI87) pin these angles and use cpu_default.  Neutral lumbar extension 8 deg (pelvis
    # -8): the mean of the synthetic walks (pelvis ~10 deg anterior tilt in steady gait, lordosis re-erecting the
    # trunk); the fit returns it along the invisible pelvis/lumbar/hip direction (bench/bench_sparse.py).
    # Single-view left/right swaps are common with these detectors: corrected before the fit.
    # Huber threshold 4 px, not 10: beyond it a residual pulls with constant force, and detections of another
    # person (3 % of a synthetic 4-camera HALPE26 walk) pulled the whole body and the cameras a few mm one way -
    # 3D keypoint error 8.4 / 5.6 / 5.1 / 4.7 / 4.4 mm at 10 / 6 / 5 / 4 / 3 px, GC_5 0.938 -> 0.962
    # (bench/bench_peer.py session); 4 px = 1.345 sigma (95 % Gaussian efficiency) for 3 px detection noise.
    "cpu_sparse": FitParams(
        loss=LossConfig(huber_delta_px=4.0,
                        priors=PriorConfig(posture_weight=0.02, joint_limit_weight=0.02, lumbopelvic_weight=0.02,
                                           lumbar_extension_neutral_deg=8.0)),
        initialisation=InitialisationConfig(correct_left_right_swaps=True),
        convergence=_STOP_AT_PLATEAU),
}

# The parameter set a fit task gets when the user names none: priors for sets that see the pelvis as two hips
DEFAULT_PARAMS_NAME = "cpu_default"
SPARSE_PARAMS_NAME = "cpu_sparse"


def default_params_name(sparse_keypoints: bool) -> str:
    """``cpu_sparse`` for a session with a sparse keypoint set (``compute.markersets.is_sparse``: the images do
    not determine pelvis tilt, lumbar extension and hip flexion, priors must), else ``cpu_default``."""
    return SPARSE_PARAMS_NAME if sparse_keypoints else DEFAULT_PARAMS_NAME
