"""Report numbers: the paper's Table I and Table II, σ_IQR, the primary condition, the spatiotemporal table by
population, and comparisons that respect the design (trials nested in subjects).

Pure functions over pandas DataFrames, tested on constructed frames with known answers. Input frames (column
names; extra columns are ignored):

``steps`` — one row per walkway-matched step:
    ``population, subject_id, trial`` (any hashable trial identifier), ``step_width_error_m``,
    ``stride_length_error_m``, ``step_length_error_m`` (model minus walkway, metres), and for Table II
    optionally ``base_model, bundle_adjustment``.
``trials`` — one row per fitted trial:
    ``population, subject_id, trial, base_model, bundle_adjustment`` (bool), ``gc5`` (fraction in [0, 1]).
``spatiotemporal`` — one row per fitted walking trial and side (``schemas.gait.SpatiotemporalParameters``):
    ``population, subject_id, trial`` (or session_id/trial_name), ``side`` and the parameter columns named with
    their units (``walking_speed_m_s``, ``cadence_steps_per_min``, ...).

Table I and Table II keep the paper's definitions (Cotton 2024, "Differentiable Biomechanics Unlocks
Opportunities for Markerless Motion Capture"): ``σ_IQR = 0.7413 · IQR`` over steps (the normal-consistent
spread, robust to the occasional mismatched step), in millimetres; GC_5 mean/SD/median over trials. These are
descriptive. *Tests* never treat trials as independent replicates: a subject contributes several trials, so
population comparisons use :func:`compute.population_stats.compare_populations` (linear mixed model with a
subject random intercept, or a one-way ANOVA on subject means; effective n = subjects), and conditions (the
same trials fitted by several methods, a within-subject factor) are compared by a repeated-measures ANOVA on
subject means. A *condition* is base model × bundle adjustment (``"body40 + BA"``).

Tables written as CSV use machine-friendly snake_case headers with units (``step_width_sigma_iqr_mm``,
``gc5_mean``, ``n_subjects``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from compute.metrics import sigma_iqr as _sigma_iqr
from compute.params import FitParams
from compute.population_stats import NOT_TESTABLE, PopulationComparison, compare_populations

STEP_ERROR_COLUMNS = {
    "step_width_error_m": "Step width",
    "stride_length_error_m": "Stride length",
    "step_length_error_m": "Step length",
}
"""Step-error column of ``steps`` -> its label in figures."""
STEP_ERROR_NAMES = {
    "step_width_error_m": "step_width",
    "stride_length_error_m": "stride_length",
    "step_length_error_m": "step_length",
}
"""Step-error column of ``steps`` -> the parameter's name in Table I/II headers (``<name>_sigma_iqr_mm``)."""


def sigma_iqr(values: Any) -> float:
    """``0.7413 · IQR`` of ``values`` ignoring NaN; NaN when there are no finite values."""
    return _sigma_iqr(np.asarray(values, dtype=float))


def trial_ids(frame: pd.DataFrame) -> pd.Series:
    """A hashable identifier of the recorded trial (``trial`` column, or subject/session/trial_name)."""
    if "trial" in frame:
        return frame["trial"].astype(str)
    parts = [c for c in ("subject_id", "session_id", "trial_name") if c in frame]
    if not parts:
        raise ValueError("steps/trials frame: expected a 'trial' column or subject_id/session_id/trial_name")
    return frame[parts].astype(str).agg("/".join, axis=1)


def best_condition(trials: pd.DataFrame) -> str | None:
    """The condition (base model × bundle adjustment) with the highest mean GC_5; None without those columns."""
    if not {"base_model", "bundle_adjustment", "gc5"} <= set(trials.columns) or not len(trials):
        return None
    labels = condition_labels(trials)
    return str(pd.Series(trials["gc5"].astype(float).to_numpy(), index=labels).groupby(level=0).mean().idxmax())


def condition_label(base_model: Any, bundle_adjustment: Any) -> str:
    """``"<model> + BA"`` / ``"<model> no BA"`` (the Table II row names)."""
    return f"{base_model} + BA" if bool(bundle_adjustment) else f"{base_model} no BA"


def condition_labels(frame: pd.DataFrame) -> list[str]:
    """:func:`condition_label` of every row of a frame with ``base_model`` and ``bundle_adjustment`` columns."""
    return [condition_label(m, b) for m, b in zip(frame["base_model"], frame["bundle_adjustment"])]


def primary_condition(trials: pd.DataFrame, steps: pd.DataFrame | None) -> str | None:
    """The condition Table I and the population comparisons describe: the best mean GC_5 among the conditions
    that have walkway-matched steps (the best overall when no step carries a condition); None without trials."""
    if trials is None or not len(trials):
        return None
    primary = best_condition(trials)
    if steps is None or not len(steps) or primary is None or not {"base_model", "bundle_adjustment"} <= set(steps.columns):
        return primary
    labels = condition_labels(steps)
    if primary in labels:
        return primary
    with_steps = trials[[label in set(labels) for label in condition_labels(trials)]]
    return best_condition(with_steps) if len(with_steps) else labels[0]


# --------------------------------------------------------------------------------------------------
# Table I, Table II
# --------------------------------------------------------------------------------------------------


def _spread_row(group: pd.DataFrame) -> dict[str, Any]:
    row: dict[str, Any] = {
        "n_subjects": int(group["subject_id"].nunique()) if "subject_id" in group else np.nan,
        "n_trials": int(trial_ids(group).nunique()),
        "n_steps": int(len(group)),
    }
    for column, name in STEP_ERROR_NAMES.items():
        row[f"{name}_sigma_iqr_mm"] = 1000.0 * sigma_iqr(group[column]) if column in group else np.nan
    return row


def table_one(steps: pd.DataFrame, by: str = "population", include_all: bool = True) -> pd.DataFrame:
    """Table I: ``σ_IQR`` (mm) of step width / stride length / step length errors by ``by``.

    steps: one row per matched step (see module docstring). Returns one row per group (sorted) with
    ``n_subjects``, ``n_trials``, ``n_steps`` and ``<parameter>_sigma_iqr_mm`` for step width, stride length and
    step length; plus an ``All`` row when ``include_all`` and there is more than one group.
    """
    if by not in steps:
        raise ValueError(f"steps: expected a {by!r} column, got {list(steps.columns)}")
    rows = []
    for value, group in steps.groupby(by, sort=True):
        rows.append({by: value, **_spread_row(group)})
    if include_all and len(rows) > 1:
        rows.append({by: "All", **_spread_row(steps)})
    columns = [by, "n_subjects", "n_trials", "n_steps", *(f"{n}_sigma_iqr_mm" for n in STEP_ERROR_NAMES.values())]
    return pd.DataFrame(rows, columns=columns)


def table_two(trials: pd.DataFrame, steps: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table II: by base model and bundle adjustment, ``gc5_mean``, ``gc5_sd``, ``gc5_median`` (GC_5 over
    trials, fraction) and, when ``steps`` carry ``base_model``/``bundle_adjustment``, the step-error spreads
    ``<parameter>_sigma_iqr_mm`` of that condition.
    """
    for column in ("base_model", "bundle_adjustment", "gc5"):
        if column not in trials:
            raise ValueError(f"trials: expected a {column!r} column, got {list(trials.columns)}")
    rows = []
    for (model, ba), group in trials.groupby(["base_model", "bundle_adjustment"], sort=True):
        gc5 = group["gc5"].astype(float)
        row: dict[str, Any] = {
            "base_model": model,
            "bundle_adjustment": "on" if bool(ba) else "off",
            "n_subjects": int(group["subject_id"].nunique()) if "subject_id" in group else np.nan,
            "n_trials": int(trial_ids(group).nunique()),
            "gc5_mean": float(gc5.mean()),
            "gc5_sd": float(gc5.std(ddof=1)) if len(gc5) > 1 else np.nan,
            "gc5_median": float(gc5.median()),
        }
        if steps is not None and {"base_model", "bundle_adjustment"} <= set(steps.columns):
            sel = steps[(steps["base_model"] == model) & (steps["bundle_adjustment"].astype(bool) == bool(ba))]
            for column, name in STEP_ERROR_NAMES.items():
                row[f"{name}_sigma_iqr_mm"] = 1000.0 * sigma_iqr(sel[column]) if column in sel and len(sel) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# conditions: a within-subject factor
# --------------------------------------------------------------------------------------------------
REPEATED_MEASURES = "repeated_measures_anova_subject_means"


@dataclass(frozen=True)
class ConditionComparison:
    """GC_5 across conditions (base model × bundle adjustment), subjects as the unit of replication.

    The same trials are fitted under every condition, so condition is a within-subject factor: each subject's
    trials are averaged per condition and the subject × condition means go into a repeated-measures ANOVA
    (statsmodels ``AnovaRM``; subjects lacking a condition are left out). method: ``REPEATED_MEASURES`` or
    ``compute.population_stats.NOT_TESTABLE``; reason: why, in words. n_subjects: effective n; n_trials:
    fitted trials used (all conditions). statistic: F with (df_numerator, df_denominator) =
    (k − 1, (k − 1)(n_subjects − 1)); p_value (NaN when not testable). subject_means: one row per subject and
    condition (``subject_id, condition, gc5_mean, n_trials``).
    """

    method: str
    reason: str
    conditions: tuple[str, ...]
    n_subjects: int
    n_trials: int
    statistic: float
    df_numerator: float
    df_denominator: float
    p_value: float
    subject_means: pd.DataFrame

    def summary(self) -> str:
        if self.method == NOT_TESTABLE:
            return f"GC_5 across conditions: not tested ({self.reason})"
        return (f"Repeated-measures ANOVA of GC_5 on subject means across {len(self.conditions)} conditions "
                f"(n = {self.n_subjects} subjects, {self.n_trials} trials): F({self.df_numerator:.0f}, "
                f"{self.df_denominator:.0f}) = {self.statistic:.3f}, p = {self.p_value:.3g}")

    def as_frame(self) -> pd.DataFrame:
        """One row: the test with its effective n (CSV-ready headers)."""
        return pd.DataFrame([dict(outcome="gc5", factor="condition", method=self.method,
                                  n_conditions=len(self.conditions), n_subjects=self.n_subjects,
                                  n_trials=self.n_trials, f_statistic=self.statistic,
                                  df_numerator=self.df_numerator, df_denominator=self.df_denominator,
                                  p_value=self.p_value, reason=self.reason)])


def compare_conditions(trials: pd.DataFrame, value: str = "gc5") -> ConditionComparison:
    """Repeated-measures ANOVA of ``value`` across conditions on subject means (:class:`ConditionComparison`).

    trials: one row per fitted trial with ``subject_id``, ``value`` and ``base_model``/``bundle_adjustment``
    (or a ``condition`` column).
    """
    from statsmodels.stats.anova import AnovaRM

    frame = trials.copy()
    if "condition" not in frame:
        frame["condition"] = condition_labels(frame)
    for column in ("subject_id", value):
        if column not in frame:
            raise ValueError(f"trials: expected a {column!r} column, got {list(trials.columns)}")
    frame = frame[np.isfinite(frame[value].astype(float))]
    means = (frame.assign(y=frame[value].astype(float)).groupby(["subject_id", "condition"], sort=True)["y"]
             .agg(gc5_mean="mean", n_trials="size").reset_index())
    conditions = tuple(sorted(means["condition"].unique()))
    complete = means.groupby("subject_id")["condition"].nunique() == len(conditions)
    balanced = means[means["subject_id"].isin(complete[complete].index)]
    n_subjects = int(balanced["subject_id"].nunique())
    n_trials = int(balanced["n_trials"].sum())
    dropped = int((~complete).sum())

    def result(method, reason, f=float("nan"), df1=float("nan"), df2=float("nan"), p=float("nan")):
        return ConditionComparison(method, reason, conditions, n_subjects, n_trials, f, df1, df2, p, means)

    if len(conditions) < 2:
        return result(NOT_TESTABLE, f"needs at least 2 conditions, found {len(conditions)}")
    if n_subjects < 2:
        return result(NOT_TESTABLE, f"{n_subjects} subject(s) fitted under every condition: a within-subject "
                                    "test needs at least 2 (trials are not independent replicates)")
    table = AnovaRM(balanced.rename(columns={"gc5_mean": "y"}), "y", "subject_id", within=["condition"]).fit()
    row = table.anova_table.iloc[0]
    reason = (f"condition is within-subject: subject means per condition, {n_subjects} subjects"
              + (f" ({dropped} lacking a condition left out)" if dropped else ""))
    return result(REPEATED_MEASURES, reason, float(row["F Value"]), float(row["Num DF"]), float(row["Den DF"]),
                  float(row["Pr > F"]))


# --------------------------------------------------------------------------------------------------
# populations: trials nested in subjects nested in populations
# --------------------------------------------------------------------------------------------------
SPATIOTEMPORAL_COLUMNS = (
    "walking_speed_m_s", "cadence_steps_per_min", "stride_time_s", "step_time_s", "stance_percent",
    "swing_percent", "double_support_percent", "stride_length_m", "step_length_m", "step_width_m",
    "hip_flexion_rom_rad", "knee_flexion_rom_rad", "ankle_flexion_rom_rad")
"""Parameter columns of ``schemas.gait.SpatiotemporalParameters`` (the unit is the name's suffix)."""


def trial_spatiotemporal(spatiotemporal: pd.DataFrame) -> pd.DataFrame:
    """One row per trial (``population, subject_id, trial`` and every parameter present): the mean of the
    trial's two sides (NaN sides left out)."""
    frame = spatiotemporal.copy()
    frame["trial"] = trial_ids(frame)
    columns = [c for c in SPATIOTEMPORAL_COLUMNS if c in frame]
    frame[columns] = frame[columns].astype(float)
    return frame.groupby(["population", "subject_id", "trial"], sort=True)[columns].mean().reset_index()


def spatiotemporal_table(spatiotemporal: pd.DataFrame) -> pd.DataFrame:
    """Spatiotemporal parameters by population, subjects as the unit: one row per population and parameter
    with ``n_subjects``, ``n_trials``, ``mean`` and ``sd`` of the subject means (each subject's mean over its
    trials, each trial the mean of its two sides), in the parameter's unit (the ``parameter`` name's suffix)."""
    columns = ["population", "parameter", "n_subjects", "n_trials", "mean", "sd"]
    if spatiotemporal is None or not len(spatiotemporal):
        return pd.DataFrame(columns=columns)
    trials = trial_spatiotemporal(spatiotemporal)
    rows = []
    for population, group in trials.groupby("population", sort=True):
        for parameter in (c for c in SPATIOTEMPORAL_COLUMNS if c in group):
            present = group[np.isfinite(group[parameter])]
            subject_means = present.groupby("subject_id")[parameter].mean()
            rows.append(dict(population=population, parameter=parameter, n_subjects=int(subject_means.size),
                             n_trials=int(len(present)),
                             mean=float(subject_means.mean()) if subject_means.size else np.nan,
                             sd=float(subject_means.std(ddof=1)) if subject_means.size > 1 else np.nan))
    return pd.DataFrame(rows, columns=columns)


def population_comparisons(trials: pd.DataFrame | None, spatiotemporal: pd.DataFrame | None = None
                           ) -> dict[str, PopulationComparison]:
    """{outcome: :func:`compute.population_stats.compare_populations` result} for ``gc5`` (one value per trial
    of ``trials``) and every spatiotemporal parameter (one value per trial: the mean of its sides).

    Pass the trials of one method (the primary condition): a trial fitted twice would count twice.
    """
    out: dict[str, PopulationComparison] = {}
    if trials is not None and len(trials) and {"population", "subject_id", "gc5"} <= set(trials.columns):
        out["gc5"] = compare_populations(trials["gc5"].astype(float), trials["population"], trials["subject_id"])
    if spatiotemporal is not None and len(spatiotemporal):
        per_trial = trial_spatiotemporal(spatiotemporal)
        for parameter in (c for c in SPATIOTEMPORAL_COLUMNS if c in per_trial):
            if np.isfinite(per_trial[parameter]).any():
                out[parameter] = compare_populations(per_trial[parameter], per_trial["population"],
                                                     per_trial["subject_id"])
    return out


COMPARISON_COLUMNS = ["outcome", "method", "n_populations", "n_subjects", "n_trials", "f_statistic",
                      "df_numerator", "df_denominator", "p_value", "between_subject_sd", "within_subject_sd",
                      "reason"]


def comparison_table(comparisons: Mapping[str, PopulationComparison]) -> pd.DataFrame:
    """One row per outcome: method, effective n (``n_subjects``), ``n_trials``, F, its degrees of freedom, p and
    the mixed model's between/within-subject SDs (outcome units; NaN for an ANOVA on subject means)."""
    rows = [dict(outcome=outcome, method=c.method, n_populations=len(c.populations), n_subjects=c.n_subjects,
                 n_trials=c.n_trials, f_statistic=c.statistic, df_numerator=c.df_numerator,
                 df_denominator=c.df_denominator, p_value=c.p_value, between_subject_sd=c.between_subject_sd,
                 within_subject_sd=c.within_subject_sd, reason=c.reason) for outcome, c in comparisons.items()]
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def comparison_estimates(comparisons: Mapping[str, PopulationComparison]) -> pd.DataFrame:
    """One row per outcome and population: ``n_subjects``, ``n_trials``, the model-based ``estimate`` (mixed model)
    or mean of subject means (ANOVA), its ``standard_error`` and ``subject_sigma_iqr`` (outcome units)."""
    rows = [dict(outcome=outcome, population=p, n_subjects=c.n_subjects_per_population[p],
                 n_trials=c.n_trials_per_population[p], estimate=c.estimates[p],
                 standard_error=c.standard_errors[p], subject_sigma_iqr=c.subject_sigma_iqr[p])
            for outcome, c in comparisons.items() for p in c.populations]
    return pd.DataFrame(rows, columns=["outcome", "population", "n_subjects", "n_trials", "estimate",
                                       "standard_error", "subject_sigma_iqr"])


def bundle_adjustment_enabled(params: Mapping[str, Any] | str) -> bool:
    """Whether a ``FitParams`` JSON (dict or text) refines the cameras: they train from
    ``bundle_adjustment.camera_start_fraction`` of the steps on (``>= 1`` means never) with
    ``bundle_adjustment.camera_learning_rate`` (``0`` means frozen)."""
    if isinstance(params, (str, bytes)):
        params = json.loads(params)
    adjustment = FitParams.from_dict(dict(params)).bundle_adjustment
    return adjustment.camera_start_fraction < 1.0 and adjustment.camera_learning_rate > 0.0
