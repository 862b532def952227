"""Hyper-parameters of the end-to-end fit (DESIGN.md §4-6) as frozen, hashable, JSON-serialisable data.

A parameter set is data, not code: every weight, schedule and stage boundary of the fit lives in one
``FitParams``.  ``PARAMETER_SETS['paper']`` holds the paper's values; ``'cpu_default'`` is tuned to reach the
same synthetic accuracy on a 2-core CPU in a few hundred to a few thousand steps.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

__all__ = ["FitParams", "PARAMETER_SETS"]


@dataclass(frozen=True)
class FitParams:
    """All hyper-parameters of bilevel/trilevel fitting.  Units: pixels, metres, radians, steps.

    Network (one implicit trajectory per trial, DESIGN §4):
      hidden_widths: widths of the MLP hidden layers.
      encoding_frequencies: number of sinusoid frequencies; encoding dim = 1 + 2 * encoding_frequencies
        (14 -> 29, the paper's size).  Frequencies are geometric from 1 to
        2 * duration_s * encoding_max_frequency_hz in scaled time (t in [0, pi]), i.e. up to that many Hz.
      encoding_layers: the encoding is concatenated to the input of this many first layers.
      root_residual_scale_m: metres per unit network output for the root-translation residual.
    Optimisation (networks: AdamW with linear warm-up then exponential decay to ``learning_rate_final``):
      learning_rate, learning_rate_final, warmup_steps, adam_b1, adam_b2, weight_decay, grad_clip_norm,
      steps, time_points_per_trial (frames sampled per trial per step, stratified).
      body_learning_rate: Adam lr of log-scales and marker offsets.
      offset_start_fraction: marker offsets receive updates from this fraction of the steps on (0 = always).
      max_offset_m: each marker offset is projected onto a ball of this radius after every update (metres).
        A marker offset is where a detector puts a landmark relative to the model site: millimetres to a few
        centimetres. Unbounded, offsets of 30-50 cm absorbed badly seen legs on the real Caliscope recording.
      init_outlier_threshold_px: reprojection threshold of the robust triangulation that initialises the fit;
        looser than a 3D reconstruction would use because real detectors disagree across views by 10-20 px.
    Loss (DESIGN §5): huber_delta_px, offset_weight (lambda_beta on mean(delta^2), delta in metres; with our
      pixel-unit loss the paper's 1e2 leaves offsets free to absorb pose errors - e.g. forearm pronation was
      8 deg off with 1e2, 4.7 deg with 3e3 - so cpu_default uses 3e3; 1e4 and 3e4 gave 6.3 and 7.0 deg),
      smoothness_weight (mean squared 2nd time derivative of qpos, rad/s^2; 0 = off), equality_weight.
    Bundle adjustment: camera_start_fraction (cameras train from this fraction of steps on; >= 1 = never),
      camera_learning_rate (Adam on camera rotation [rad] and centre [m] deltas).
    Trilevel: site_learning_rate, site_weight (L2 on site change from the base model, m^-2),
      freeze_heel_sites, site_start_fraction (shared sites stay fixed for this fraction of the trilevel steps
      while each subject's trajectories and scales settle - a warm start; then their own Adam starts fresh
      with a warm-up), site_offset_start_fraction (per-subject marker offsets stay at 0 until this fraction of
      each subject's steps, so the displacement common to all subjects goes to the shared sites first).
    Two-stage baseline (per-frame IK to triangulated points): ik_steps, ik_learning_rate (Adam on latent
      angles and root, exponentially decayed 100x), ik_huber_delta_m.
    Checks: divergence_check_every (steps between NaN/inf checks of the loss), history_every.
    """

    hidden_widths: tuple[int, ...] = (128, 256, 256)
    encoding_frequencies: int = 10
    encoding_max_frequency_hz: float = 8.0
    encoding_layers: int = 2
    root_residual_scale_m: float = 0.1
    activation: str = "silu"

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
    init_outlier_threshold_px: float = 40.0

    huber_delta_px: float = 10.0
    offset_weight: float = 3e3
    smoothness_weight: float = 0.0
    equality_weight: float = 0.01

    camera_start_fraction: float = 0.2
    camera_learning_rate: float = 1e-3

    site_learning_rate: float = 1e-3
    site_weight: float = 0.0
    freeze_heel_sites: bool = True
    site_start_fraction: float = 0.3
    site_offset_start_fraction: float = 0.75

    ik_steps: int = 300
    ik_learning_rate: float = 2e-2
    ik_huber_delta_m: float = 0.03

    divergence_check_every: int = 100
    history_every: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_widths", tuple(int(w) for w in self.hidden_widths))
        if len(self.hidden_widths) == 0:
            raise ValueError("FitParams.hidden_widths: expected at least one hidden layer")
        if self.steps <= 0 or self.time_points_per_trial <= 0:
            raise ValueError("FitParams.steps / time_points_per_trial: expected positive integers")
        if not 0 < self.encoding_layers <= len(self.hidden_widths) + 1:
            raise ValueError("FitParams.encoding_layers: expected 1..len(hidden_widths)+1")

    @property
    def encoding_dim(self) -> int:
        """Length of the sinusoidal time encoding: t plus a sin/cos pair per frequency."""
        return 1 + 2 * self.encoding_frequencies

    @property
    def camera_start_step(self) -> int:
        """First step at which camera parameters receive updates."""
        return int(round(self.camera_start_fraction * self.steps))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden_widths"] = list(self.hidden_widths)
        return d

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace) - the hash is taken over this string."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> "FitParams":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"FitParams: unknown field(s) {sorted(unknown)}")
        d = dict(d)
        if "hidden_widths" in d:
            d["hidden_widths"] = tuple(d["hidden_widths"])
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> "FitParams":
        return cls.from_dict(json.loads(s))

    @property
    def hash(self) -> str:
        """sha1 of the canonical JSON: identical parameters <=> identical hash."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()

    def replace(self, **changes) -> "FitParams":
        return dataclasses.replace(self, **changes)


PARAMETER_SETS: dict[str, FitParams] = {
    # The paper's hyper-parameters (Cotton 2024): layers 128...4096, AdamW beta1 0.8, wd 1e-5,
    # lr 1e-4 -> 1e-7 exponential, 40k steps, bundle adjustment from 30k with Adam 1e-5, 300 time points,
    # 29-dim time encoding, Huber ~50 px, offset weight 1e2, equality weight 0.01, clip 0.1.
    "paper": FitParams(
        hidden_widths=(128, 256, 512, 1024, 2048, 4096),
        encoding_frequencies=14,
        encoding_max_frequency_hz=400.0,  # 2**13 in scaled time for a 10 s trial
        encoding_layers=3,
        root_residual_scale_m=1.0,
        activation="relu",
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
        offset_start_fraction=0.0,
        huber_delta_px=50.0,
        offset_weight=100.0,
        smoothness_weight=0.0,
        equality_weight=0.01,
        camera_start_fraction=0.75,
        camera_learning_rate=1e-5,
        divergence_check_every=500,
        history_every=50,
    ),
    # Tuned on synthetic sessions (control subject, 8 cameras, 1.5 px noise, 10 % dropped, 3 % outliers)
    # for a 2-core CPU.  See bench/bench_fit.py for the measured time-to-accuracy.
    "cpu_default": FitParams(),
}
