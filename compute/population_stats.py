"""Comparing an outcome across populations when trials are nested in subjects.

Pure numpy/scipy/statsmodels. Several trials of one subject are not independent: treating them as
independent observations (a trial-level ANOVA or t-test) inflates the sample size from the number of
subjects to the number of trials and gives p-values that are too small (pseudo-replication; Hurlbert 1984,
*Ecological Monographs* 54:187; Aarts et al. 2014, *Nature Neuroscience* 17:491). The unit of replication is
the subject, so the effective n is the number of subjects.

Method (:func:`compare_populations`), chosen by a stated rule:

* **Linear mixed model** (statsmodels ``MixedLM``, REML) ``outcome ~ C(population)`` with a random
  intercept per subject, when at least ``min_replicated_subjects`` (default 2) subjects have at least 2
  trials each, so the between-subject and within-subject variances can be told apart. The population
  effect is tested with a Wald F test of the G − 1 population coefficients, F = W / (G − 1) with
  denominator degrees of freedom n_subjects − G: population is a between-subject factor, so its error
  term is the subject, not the trial. For a balanced design (equal trials per subject) this F equals the
  one-way ANOVA on subject means exactly.
* **One-way ANOVA on subject means** otherwise (or when the mixed model cannot be fitted): each subject
  contributes one value, the mean of its trials; F with (G − 1, n_subjects − G) degrees of freedom.
* With n_subjects − G < 1 (e.g. one subject per population) no test exists: statistic and p-value are
  NaN and ``method`` says so. Trials never stand in for subjects.

Per-population estimates are model-based means (mixed model) or means of subject means (ANOVA) with
their standard errors; the robust spread of subject means per population is σ_IQR = 0.7413 · IQR
(:func:`compute.metrics.sigma_iqr`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from compute.metrics import sigma_iqr

__all__ = [
    "MIXED_MODEL",
    "ANOVA_SUBJECT_MEANS",
    "NOT_TESTABLE",
    "PopulationComparison",
    "subject_means",
    "compare_populations",
    "sigma_iqr",
]

MIXED_MODEL = "mixed_model"
ANOVA_SUBJECT_MEANS = "anova_subject_means"
NOT_TESTABLE = "not_testable"


@dataclass(frozen=True)
class PopulationComparison:
    """Result of :func:`compare_populations` (rules in the module docstring).

    method: 'mixed_model' | 'anova_subject_means' | 'not_testable'. reason: why that method, in words.
    populations: (G,) population labels, sorted. n_subjects: effective n (subjects with a finite outcome);
    n_trials: trials used; n_subjects_per_population, n_trials_per_population: label -> count.
    statistic: F value; df_numerator = G − 1, df_denominator = n_subjects − G; p_value (NaN when not testable).
    estimates, standard_errors: label -> population mean of the outcome and its standard error (outcome units).
    subject_sigma_iqr: label -> σ_IQR of that population's subject means (outcome units).
    between_subject_sd, within_subject_sd: random-intercept and residual SDs of the mixed model (NaN otherwise).
    """

    method: str
    reason: str
    populations: tuple[str, ...]
    n_subjects: int
    n_trials: int
    n_subjects_per_population: dict[str, int]
    n_trials_per_population: dict[str, int]
    statistic: float
    df_numerator: int
    df_denominator: int
    p_value: float
    estimates: dict[str, float]
    standard_errors: dict[str, float]
    subject_sigma_iqr: dict[str, float]
    between_subject_sd: float
    within_subject_sd: float


def _table(outcome, population, subject) -> pd.DataFrame:
    """Validated long table (outcome, population, subject) without rows whose outcome is NaN."""
    y = np.asarray(outcome, np.float64).reshape(-1)
    pop = np.asarray(population).astype(str).reshape(-1)
    subj = np.asarray(subject).astype(str).reshape(-1)
    if not (y.shape == pop.shape == subj.shape):
        raise ValueError(f"compute/population_stats.py: outcome {y.shape}, population {pop.shape} and subject "
                         f"{subj.shape} must all be (N,)")
    table = pd.DataFrame({"outcome": y, "population": pop, "subject": subj})
    table = table[np.isfinite(table["outcome"])].reset_index(drop=True)
    crossed = table.groupby("subject")["population"].nunique()
    if (crossed > 1).any():
        raise ValueError("compute/population_stats.py: subjects must be nested in populations; in several: "
                         f"{sorted(crossed[crossed > 1].index)}")
    return table


def subject_means(outcome, population, subject) -> pd.DataFrame:
    """One row per subject: subject, population, mean outcome of its trials, n_trials (NaN outcomes dropped)."""
    table = _table(outcome, population, subject)
    grouped = table.groupby(["subject", "population"], sort=True)["outcome"]
    return grouped.agg(outcome="mean", n_trials="size").reset_index()


def _anova_on_means(means: pd.DataFrame, populations: tuple[str, ...]) -> tuple[float, float, dict, dict]:
    """F, p, estimates, standard errors of a one-way ANOVA on subject means."""
    groups = [means.loc[means["population"] == p, "outcome"].to_numpy() for p in populations]
    estimates = {p: float(g.mean()) for p, g in zip(populations, groups)}
    errors = {p: float(g.std(ddof=1) / np.sqrt(g.size)) if g.size > 1 else float("nan")
              for p, g in zip(populations, groups)}
    if len(means) - len(populations) < 1 or len(populations) < 2:
        return float("nan"), float("nan"), estimates, errors
    f, p = stats.f_oneway(*groups)
    return float(f), float(p), estimates, errors


def _mixed_model(table: pd.DataFrame, populations: tuple[str, ...], n_subjects: int):
    """REML fit of outcome ~ C(population) + (1 | subject); Wald F on the population coefficients."""
    # imported here, not at module level: statsmodels takes ~0.8 s to import, and every ``mmc`` command (populate,
    # ingest) imports the report's command line, which imports this module
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # boundary (zero subject variance) and convergence notes
        fit = smf.mixedlm("outcome ~ C(population)", table, groups=table["subject"]).fit(reml=True)
    names = list(fit.fe_params.index)
    cov = np.asarray(fit.cov_params().loc[names, names], np.float64)
    beta = np.asarray(fit.fe_params, np.float64)
    G = len(populations)
    # population means: intercept (first level) + that level's coefficient
    L_means = np.zeros((G, len(names)))
    L_means[:, 0] = 1.0
    for g, label in enumerate(populations[1:], start=1):
        L_means[g, names.index(f"C(population)[T.{label}]")] = 1.0
    estimates = L_means @ beta
    errors = np.sqrt(np.diag(L_means @ cov @ L_means.T))
    contrast = L_means[1:] - L_means[:1]          # every population minus the first: G − 1 rows
    difference = contrast @ beta
    wald = float(difference @ np.linalg.solve(contrast @ cov @ contrast.T, difference))
    df_den = n_subjects - G
    f = wald / (G - 1)
    p = float(stats.f.sf(f, G - 1, df_den))
    between = float(np.sqrt(max(float(np.asarray(fit.cov_re)[0, 0]), 0.0)))
    within = float(np.sqrt(fit.scale))
    if not (np.all(np.isfinite(estimates)) and np.isfinite(f) and np.isfinite(p)):
        raise np.linalg.LinAlgError("mixed model gave non-finite estimates")
    return f, p, dict(zip(populations, map(float, estimates))), dict(zip(populations, map(float, errors))), \
        between, within


def compare_populations(
    outcome,
    population,
    subject,
    *,
    min_replicated_subjects: int = 2,
) -> PopulationComparison:
    """Compare one outcome across populations, subjects as the unit of replication (module docstring).

    Args:
        outcome: (N,) one value per trial (any unit; NaN rows are dropped).
        population: (N,) population label of each trial's subject.
        subject: (N,) subject identifier of each trial; every subject belongs to one population.
        min_replicated_subjects: the mixed model is used when at least this many subjects have >= 2 trials.
    Returns:
        :class:`PopulationComparison`.
    """
    table = _table(outcome, population, subject)
    means = subject_means(table["outcome"], table["population"], table["subject"])
    populations = tuple(sorted(table["population"].unique()))
    G = len(populations)
    n_subjects, n_trials = int(len(means)), int(len(table))
    per_pop_subjects = {p: int((means["population"] == p).sum()) for p in populations}
    per_pop_trials = {p: int((table["population"] == p).sum()) for p in populations}
    spread = {p: sigma_iqr(means.loc[means["population"] == p, "outcome"]) for p in populations}
    replicated = int((means["n_trials"] >= 2).sum())

    def result(method, reason, f, p, estimates, errors, between=float("nan"), within=float("nan")):
        return PopulationComparison(method, reason, populations, n_subjects, n_trials, per_pop_subjects,
                                    per_pop_trials, f, max(G - 1, 0), n_subjects - G, p, estimates, errors,
                                    spread, between, within)

    if G < 2 or n_subjects - G < 1:
        f, p, estimates, errors = _anova_on_means(means, populations)
        why = ("only one population: nothing to compare" if G < 2 else
               f"{n_subjects} subjects in {G} populations: no between-subject degrees of freedom left for a test "
               "(n_subjects − n_populations < 1); trials are not independent replicates")
        return result(NOT_TESTABLE, f"{why}, so no p-value is given", float("nan"), float("nan"), estimates,
                      errors)
    if replicated >= min_replicated_subjects:
        try:
            f, p, estimates, errors, between, within = _mixed_model(table, populations, n_subjects)
            return result(MIXED_MODEL, f"{replicated} subjects have >= 2 trials (rule: >= "
                          f"{min_replicated_subjects}): linear mixed model, subject random intercept, Wald F "
                          f"with {n_subjects} − {G} denominator df", f, p, estimates, errors, between, within)
        except (np.linalg.LinAlgError, ValueError) as error:
            fallback = f"mixed model could not be fitted ({error}); one-way ANOVA on {n_subjects} subject means"
    else:
        fallback = (f"only {replicated} subjects have >= 2 trials (rule: mixed model needs >= "
                    f"{min_replicated_subjects}); one-way ANOVA on {n_subjects} subject means")
    f, p, estimates, errors = _anova_on_means(means, populations)
    return result(ANOVA_SUBJECT_MEANS, fallback, f, p, estimates, errors)
