"""Population comparisons with trials nested in subjects (compute.population_stats).

Simulated designs: outcome = population effect + subject random intercept (SD 1) + trial noise (SD 0.25).
With few subjects and many trials each, a trial-level ANOVA counts trials as independent and is
anti-conservative; the subject is the unit of replication and the tests below check that the p-values and
effective n respect it.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from compute.metrics import sigma_iqr
from compute.population_stats import (ANOVA_SUBJECT_MEANS, MIXED_MODEL, NOT_TESTABLE, compare_populations,
                                      subject_means)

POPULATIONS = ("control", "hemiparetic", "prosthesis")


def _design(rng, *, subjects_per_population=4, trials=(6, 6), effects=(0.0, 0.0, 0.0), subject_sd=1.0,
            trial_sd=0.25):
    """(outcome (N,), population (N,), subject (N,)); each subject gets U{trials[0]..trials[1]} trials."""
    y, population, subject = [], [], []
    for label, effect in zip(POPULATIONS, effects):
        for k in range(subjects_per_population):
            n = int(rng.integers(trials[0], trials[1] + 1))
            y.append(effect + rng.normal(0.0, subject_sd) + rng.normal(0.0, trial_sd, n))
            population += [label] * n
            subject += [f"{label}_{k}"] * n
    return np.concatenate(y), np.asarray(population), np.asarray(subject)


def _trial_level_anova_p(y, population) -> float:
    """What pseudo-replication would report: one-way ANOVA treating every trial as independent."""
    return float(stats.f_oneway(*[y[population == p] for p in POPULATIONS]).pvalue)


def test_balanced_mixed_model_equals_anova_on_subject_means():
    """Balanced design: the mixed model's Wald F (subject-level denominator df) is the subject-means ANOVA."""
    y, population, subject = _design(np.random.default_rng(1))
    result = compare_populations(y, population, subject)
    assert result.method == MIXED_MODEL
    assert (result.n_subjects, result.n_trials) == (12, 72)
    assert (result.df_numerator, result.df_denominator) == (2, 9)
    means = subject_means(y, population, subject)
    reference = stats.f_oneway(*[means.loc[means.population == p, "outcome"] for p in POPULATIONS])
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-3)
    assert result.p_value == pytest.approx(reference.pvalue, abs=1e-3)
    for p in POPULATIONS:
        assert result.estimates[p] == pytest.approx(means.loc[means.population == p, "outcome"].mean(), abs=1e-3)
        assert result.subject_sigma_iqr[p] == pytest.approx(sigma_iqr(means.loc[means.population == p, "outcome"]))
    assert result.between_subject_sd > 2 * result.within_subject_sd


def test_no_significance_from_pseudo_replication_under_the_null():
    """20 null datasets (no population effect), 4 subjects per population, 2-12 trials each.

    Trial-level ANOVA rejects at α = 0.05 in most of them (measured 13/20); the mixed model at its nominal
    rate (expected 1/20; ≤ 3 allowed, P(Binomial(20, 0.05) > 3) = 1.6 %; measured 1/20).
    """
    rng = np.random.default_rng(7)
    mixed, trial_level = 0, 0
    for _ in range(20):
        y, population, subject = _design(rng, trials=(2, 12))
        result = compare_populations(y, population, subject)
        assert result.method == MIXED_MODEL and result.n_subjects == 12 and result.df_denominator == 9
        mixed += result.p_value < 0.05
        trial_level += _trial_level_anova_p(y, population) < 0.05
    assert mixed <= 3, mixed
    assert trial_level >= 10, trial_level


def test_one_subject_per_population_gives_no_p_value():
    """One subject per population, 10 trials each: the trial-level ANOVA is 'highly significant', but
    there is no between-subject replication, so no test: method says so, effective n = 3, p-value NaN."""
    y, population, subject = _design(np.random.default_rng(3), subjects_per_population=1, trials=(10, 10))
    assert _trial_level_anova_p(y, population) < 1e-6
    result = compare_populations(y, population, subject)
    assert result.method == NOT_TESTABLE
    assert (result.n_subjects, result.n_trials, result.df_denominator) == (3, 30, 0)
    assert np.isnan(result.p_value) and np.isnan(result.statistic)
    assert "no p-value" in result.reason
    assert set(result.estimates) == set(POPULATIONS)


def test_too_few_repeated_subjects_falls_back_to_anova_on_subject_means():
    """Only one subject with >= 2 trials (rule: the mixed model needs >= 2): ANOVA on subject means."""
    y, population, subject = _design(np.random.default_rng(4), trials=(1, 1))
    y, population, subject = (np.append(y, [y[0] + 0.1, y[0] - 0.1]), np.append(population, [population[0]] * 2),
                              np.append(subject, [subject[0]] * 2))
    result = compare_populations(y, population, subject)
    assert result.method == ANOVA_SUBJECT_MEANS
    assert "only 1 subjects have >= 2 trials" in result.reason
    assert (result.n_subjects, result.n_trials) == (12, 14)
    means = subject_means(y, population, subject)
    reference = stats.f_oneway(*[means.loc[means.population == p, "outcome"] for p in POPULATIONS])
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert np.isnan(result.between_subject_sd)


def test_a_real_population_effect_is_found_with_its_size():
    """Populations differ by 0, −1.5, −3 (subject SD 0.5): p < 0.01 and the estimates recover the differences
    within 3 standard errors."""
    effects = (0.0, -1.5, -3.0)
    y, population, subject = _design(np.random.default_rng(5), subjects_per_population=5, trials=(2, 8),
                                     effects=effects, subject_sd=0.5)
    result = compare_populations(y, population, subject)
    assert result.method == MIXED_MODEL and result.p_value < 0.01
    for label, effect in zip(POPULATIONS[1:], effects[1:]):
        difference = result.estimates[label] - result.estimates["control"]
        error = np.hypot(result.standard_errors[label], result.standard_errors["control"])
        assert abs(difference - effect) <= 3 * error, (label, difference, error)


def test_missing_outcomes_are_dropped_and_crossed_subjects_rejected():
    y, population, subject = _design(np.random.default_rng(6))
    y[:3] = np.nan
    result = compare_populations(y, population, subject)
    assert result.n_trials == y.size - 3
    crossed = population.copy()
    crossed[0] = "prosthesis"             # control_0's first trial now claims another population
    with pytest.raises(ValueError, match="nested"):
        compare_populations(np.nan_to_num(y), crossed, subject)
