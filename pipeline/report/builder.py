"""The report: reads the fitted trials and matched steps, computes the tables and tests, writes and prints them.

``fetch_report_frames`` turns ``schemas.reads`` rows into the two frames :mod:`pipeline.report.stats` works on;
``make_report`` computes; ``write_report`` writes Markdown and CSV; ``build_report`` does all three and adds the
figures of :mod:`pipeline.report.figures`. This module calls ``stats`` and ``figures``; neither calls back.
"""
from __future__ import annotations

import argparse
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markdown import Markdown

from pipeline.db import Database, open_database
from pipeline.importers.errors import IngestError
from pipeline.restrictions import add_restriction_arguments, restrictions_for
from pipeline.report.stats import (NOT_TESTABLE, SPATIOTEMPORAL_COLUMNS, STEP_ERROR_COLUMNS, ConditionComparison,
                                   best_condition, bundle_adjustment_enabled, compare_conditions, comparison_estimates,
                                   comparison_table, condition_labels, population_comparisons, primary_condition,
                                   spatiotemporal_table, table_one, table_two, trial_ids)
from schemas.reads import results

def _format_cell(value: Any, decimals: int) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "–"
        if 0 < abs(value) < 0.5 * 10.0 ** -decimals:
            return f"{value:.2e}"  # e.g. small p-values stay informative
        return f"{value:.{decimals}f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, decimals: Mapping[str, int] | int = 2, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency). ``decimals`` per column or global."""
    frame = frame.reset_index() if index else frame
    columns = [str(c) for c in frame.columns]

    def places(col: str) -> int:
        return decimals.get(col, 2) if isinstance(decimals, Mapping) else int(decimals)

    lines = ["| " + " | ".join(columns) + " |",
             "| " + " | ".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else ":---"
                               for c in frame.columns) + " |"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_format_cell(row[c], places(str(c))) for c in frame.columns) + " |")
    return "\n".join(lines)


@dataclass
class Report:
    """Everything one ``mmc report`` produces. ``paths`` maps names to written files.

    table_one, table_two: the paper's Tables I and II (:mod:`pipeline.report.stats`); conditions: GC_5 across
    conditions, repeated measures on subject means; spatiotemporal: parameters by population (subject means);
    comparisons, estimates: population comparisons of GC_5 and every spatiotemporal parameter (method, effective
    n, n trials, F, p; per-population estimates), all within the primary condition.
    """

    table_one: pd.DataFrame
    table_two: pd.DataFrame
    conditions: ConditionComparison | None
    spatiotemporal: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    estimates: pd.DataFrame = field(default_factory=pd.DataFrame)
    restriction: dict[str, Any] = field(default_factory=dict)
    primary_condition: str | None = None  # the method Table I and the population comparisons describe
    gait_condition: str | None = None  # the method of the spatiotemporal table (primary unless it has no gait rows)
    paths: dict[str, Path] = field(default_factory=dict)
    cross_validation: pd.DataFrame = field(default_factory=pd.DataFrame)  # cross_validation_table(), per camera
    cross_validation_notes: list[str] = field(default_factory=list)        # "subject/session/params: remark"
    time_offsets: pd.DataFrame = field(default_factory=pd.DataFrame)  # fitted camera time offsets (s), when any

    def markdown(self) -> str:
        title = "# Markerless gait report"
        scope = ", ".join(f"{k} = {v}" for k, v in self.restriction.items() if v not in (None, "", [])) or "all data"
        parts = [title, "", f"Restriction: {scope}.  Generated {_dt.datetime.now():%Y-%m-%d %H:%M}.", ""]
        method = f", {self.primary_condition}" if self.primary_condition else ""
        parts += [f"## Table I — step parameter error spread (σ_IQR = 0.7413·IQR, mm) by population{method}", ""]
        parts += [markdown_table(self.table_one, decimals=1) if len(self.table_one) else "_no walkway-matched steps_", ""]
        parts += ["## Table II — geometric consistency GC_5 by base model and bundle adjustment", ""]
        decimals = {c: (1 if str(c).endswith("_mm") else 3) for c in self.table_two.columns}
        parts += [markdown_table(self.table_two, decimals=decimals) if len(self.table_two) else "_no fits_", ""]
        parts += ["## GC_5 across conditions (base model × bundle adjustment)", ""]
        parts += [self.conditions.summary() if self.conditions is not None else "_no fitted trials_", ""]
        if self.conditions is not None and self.conditions.method != NOT_TESTABLE:
            parts += ["Subjects are the unit: each subject's trials are averaged per condition (no Tukey HSD: "
                      "conditions are paired within subjects).", ""]
        gait = self.gait_condition or self.primary_condition
        gait_method = f", {gait}" if gait else ""
        parts += [f"## Spatiotemporal parameters by population{gait_method} (mean ± SD of subject means)", ""]
        parts += [_spatiotemporal_markdown(self.spatiotemporal), ""]
        if gait != self.primary_condition and len(self.spatiotemporal):
            method = f" (GC_5: {self.primary_condition}; spatiotemporal parameters: {gait})"
        parts += [f"## Population comparisons{method}", ""]
        if len(self.comparisons):
            parts += ["Trials are nested in subjects: linear mixed model with a subject random intercept when "
                      "subjects have repeated trials, else one-way ANOVA on subject means; effective n = subjects.",
                      ""]
            shown = self.comparisons.drop(columns=["reason"])
            parts += [markdown_table(shown, decimals={"f_statistic": 3, "p_value": 4, "df_numerator": 0,
                                                      "df_denominator": 0, "between_subject_sd": 4,
                                                      "within_subject_sd": 4}), ""]
            parts += ["Per population (estimate ± standard error, outcome units):", "",
                      markdown_table(self.estimates, decimals=4), ""]
        else:
            parts += ["_nothing to compare_", ""]
        parts += ["## Held-out validation per session and camera", ""]
        if len(self.cross_validation):
            parts += ["Each camera left out of a refit and predicted through its input calibration (fit vs a robust "
                      "triangulation from the other cameras, medians px on the keypoints both predict, GC_5 with "
                      "a missing prediction as a failure), and bundle adjustment judged on held-out frames "
                      "(median px through the refined vs the input calibration). `flagged`: moved beyond the "
                      "limit without held-out improvement.", ""]
            parts += [markdown_table(self.cross_validation, decimals=CROSS_VALIDATION_DECIMALS), ""]
            if self.cross_validation_notes:
                parts += [f"- {note}" for note in self.cross_validation_notes] + [""]
        else:
            parts += ["_no cross-validation (request it with `mmc populate CrossValidation`)_", ""]
        if len(self.time_offsets):  # only fits with BundleAdjustmentConfig.fit_time_offsets have them
            parts += ["## Fitted camera time offsets", "",
                      "Camera c's frame i shows the body at i / fps + offset (mean 0 over each fit's cameras).", "",
                      markdown_table(self.time_offsets, decimals={"time_offset_ms": 1}), ""]
        return "\n".join(parts)


CROSS_VALIDATION_DECIMALS = {"held_out_px": 2, "in_sample_px": 2, "triangulation_px": 2, "held_out_gc5": 3,
                             "triangulation_gc5": 3, "rotation_change_deg": 2, "centre_change_mm": 1,
                             "frames_refined_px": 2, "frames_input_px": 2}


def cross_validation_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``schemas.reads.results.cross_validation_cameras`` rows -> one row per session, parameter set and camera:
    held-out median (on the keypoints triangulation also predicts) and GC_5 of the fit and of triangulation,
    the fit's in-sample median, the camera's refinement and its held-out-frame verdict and flag."""
    columns = ["subject_id", "session_id", "params_name", "camera_name", "held_out_px", "triangulation_px",
               "held_out_gc5", "triangulation_gc5", "in_sample_px", "rotation_change_deg", "centre_change_mm",
               "frames_refined_px", "frames_input_px", "verdict", "flagged"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    return pd.DataFrame({
        "subject_id": frame["subject_id"], "session_id": frame["session_id"], "params_name": frame["params_name"],
        "camera_name": frame["camera_name"], "held_out_px": frame["fit_median_common_px"].astype(float),
        "triangulation_px": frame["triangulation_median_px"].astype(float),
        "held_out_gc5": frame["fit_gc5"].astype(float), "triangulation_gc5": frame["triangulation_gc5"].astype(float),
        "in_sample_px": frame["in_sample_median_px"].astype(float),
        "rotation_change_deg": frame["rotation_change_deg"].astype(float),
        "centre_change_mm": frame["centre_change_mm"].astype(float),
        "frames_refined_px": frame["frames_refined_median_px"].astype(float),
        "frames_input_px": frame["frames_input_median_px"].astype(float),
        "verdict": frame["calibration_verdict"], "flagged": frame["calibration_flagged"].astype(bool)})[columns]


def _spatiotemporal_markdown(table: pd.DataFrame) -> str:
    """Parameters as rows, populations as columns, ``mean ± sd (n subjects)``."""
    if not len(table):
        return "_no spatiotemporal parameters (GaitCycle/SpatiotemporalParameters not populated)_"
    cells = table.assign(cell=[f"{m:.3f} ± {sd:.3f} (n={n})" if np.isfinite(sd) else f"{m:.3f} (n={n})"
                               for m, sd, n in zip(table["mean"], table["sd"], table["n_subjects"])])
    wide = cells.pivot(index="parameter", columns="population", values="cell")
    order = [p for p in SPATIOTEMPORAL_COLUMNS if p in wide.index]
    return markdown_table(wide.loc[order].fillna("–"), index=True)


def make_report(steps: pd.DataFrame, trials: pd.DataFrame, restriction: Mapping[str, Any] | None = None,
                spatiotemporal: pd.DataFrame | None = None, gait_condition: str | None = None) -> Report:
    """Tables I and II, the GC_5 condition comparison, the spatiotemporal table and the population comparisons
    from the input frames (see :mod:`pipeline.report.stats`).

    Table I, the spatiotemporal table and the population comparisons describe one method,
    :func:`~pipeline.report.stats.primary_condition`; ``spatiotemporal`` should already be of one method
    (:func:`fetch_gait_frames`), ``gait_condition`` when that is not the primary one (it has no gait rows).
    """
    empty_steps = steps is None or len(steps) == 0
    has_trials = trials is not None and len(trials) > 0
    primary = primary_condition(trials, steps)
    steps_one = steps
    if not empty_steps and primary is not None and {"base_model", "bundle_adjustment"} <= set(steps.columns):
        steps_one = steps[[label == primary for label in condition_labels(steps)]]  # Table I describes one method
    t1 = table_one(steps_one) if not empty_steps and len(steps_one) else pd.DataFrame()
    t2 = table_two(trials, None if empty_steps else steps) if has_trials else pd.DataFrame()
    conditions = compare_conditions(trials) if has_trials else None
    trials_one = trials
    if has_trials and primary is not None:
        trials_one = trials[[c == primary for c in condition_labels(trials)]]  # one method: a trial counts once
    comparisons = population_comparisons(trials_one if has_trials else None, spatiotemporal)
    return Report(table_one=t1, table_two=t2, conditions=conditions,
                  spatiotemporal=spatiotemporal_table(spatiotemporal), comparisons=comparison_table(comparisons),
                  estimates=comparison_estimates(comparisons), restriction=dict(restriction or {}),
                  primary_condition=primary, gait_condition=gait_condition or primary)


def write_report(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md`` and the CSVs (snake_case headers with units): ``table1.csv``, ``table2.csv``,
    ``gc5_conditions.csv`` (the test) and ``gc5_condition_subject_means.csv``, ``spatiotemporal_by_population.csv``,
    ``population_comparisons.csv``, ``population_estimates.csv`` and ``cross_validation.csv`` (when there is something
    to write)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "report.md"}
    paths["markdown"].write_text(report.markdown())
    paths["table1"] = out_dir / "table1.csv"
    report.table_one.to_csv(paths["table1"], index=False)
    paths["table2"] = out_dir / "table2.csv"
    report.table_two.to_csv(paths["table2"], index=False)
    if report.conditions is not None:
        paths["conditions"] = out_dir / "gc5_conditions.csv"
        report.conditions.as_frame().to_csv(paths["conditions"], index=False)
        paths["condition_subject_means"] = out_dir / "gc5_condition_subject_means.csv"
        report.conditions.subject_means.to_csv(paths["condition_subject_means"], index=False)
    for name, frame, file_name in (("cross_validation", report.cross_validation, "cross_validation.csv"),
                                   ("spatiotemporal", report.spatiotemporal, "spatiotemporal_by_population.csv"),
                                   ("comparisons", report.comparisons, "population_comparisons.csv"),
                                   ("estimates", report.estimates, "population_estimates.csv")):
        if len(frame):
            paths[name] = out_dir / file_name
            frame.to_csv(paths[name], index=False)
    report.paths.update(paths)
    return paths


def print_report(report: Report) -> None:
    """Print the Markdown report (rich-rendered when a terminal is attached)."""
    console = Console()
    if console.is_terminal:
        console.print(Markdown(report.markdown()))
    else:
        print(report.markdown())


# --------------------------------------------------------------------------------------------------
# database layer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRestriction:
    """What a report covers. ``None`` means no restriction on that attribute."""

    population: Sequence[str] | None = None
    date_from: _dt.date | None = None
    date_to: _dt.date | None = None
    base_model: Sequence[str] | None = None
    param_set: Sequence[str] | None = None
    subjects: Sequence[str] | None = None
    restrict: Sequence[str] = ()  # ``ATTR=VALUE`` on the key of BilevelFit.Trial (pipeline.restrictions)
    where: Sequence[str] = ()  # raw SQL conditions on the key of BilevelFit.Trial

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.population:
            out["population"] = ", ".join(self.population)
        if self.date_from or self.date_to:
            out["session dates"] = f"{self.date_from or '…'} to {self.date_to or '…'}"
        if self.base_model:
            out["base model"] = ", ".join(self.base_model)
        if self.param_set:
            out["parameter set"] = ", ".join(self.param_set)
        if self.subjects:
            out["subjects"] = ", ".join(self.subjects)
        if self.restrict or self.where:
            out["restrictions"] = " and ".join([*self.restrict, *self.where])
        return out


def _restrictions(r: ReportRestriction) -> list:
    """DataJoint restrictions (ANDed) of a report restriction. Session dates: ``session_id`` holds the ISO date
    (``2024-02-28``), so ``--from/--to`` compare it as text."""
    out: list = []
    if r.population:
        out.append([{"population": p} for p in r.population])
    if r.date_from:
        out.append(f"session_id >= '{r.date_from:%Y-%m-%d}'")
    if r.date_to:
        out.append(f"session_id <= '{r.date_to:%Y-%m-%d}'")
    if r.base_model:
        out.append([{"base_model": m} for m in r.base_model])
    if r.param_set:
        out.append([{"params_name": p} for p in r.param_set])
    if r.subjects:
        out.append([{"subject_id": s} for s in r.subjects])
    return out


def fetch_report_frames(database: Database, restriction: ReportRestriction = ReportRestriction()
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``(steps, trials)`` frames for the report from the opened ``database``.

    trials: every fitted trial (``schemas.reads.results.fitted_trials``: gc5, gc_curve, population, activity, fps);
    base model and parameter set come from the fit's key, bundle adjustment from the parameter set.
    steps: the walkway-matched steps of those fits, errors renamed ``<metric>_error_m`` (metres).
    """
    results.require_prefix(database.prefix)
    fit_keys = database.schemas["fitting"].BilevelFit.Trial.proj()
    restrictions = _restrictions(restriction) + list(
        restrictions_for(fit_keys, restriction.restrict, restriction.where, "the key of BilevelFit.Trial"))
    trials = pd.DataFrame(results.fitted_trials(*restrictions))
    steps = pd.DataFrame()
    if len(trials):
        rows = results.walkway_matched_steps(*restrictions)
        if rows:
            steps = pd.DataFrame(rows).rename(columns={f"{name[:-2]}": name for name in STEP_ERROR_COLUMNS})
            for column in STEP_ERROR_COLUMNS:
                steps[column] = steps[column].astype(float)
        enabled = {name: bundle_adjustment_enabled(params) for name, params in results.parameter_sets().items()}
        for frame in (trials, steps):
            if len(frame):
                frame["bundle_adjustment"] = frame["params_name"].map(enabled).astype(bool)
                frame["param_set"] = frame["params_name"]
                frame["trial"] = trial_ids(frame)
    return steps, trials


def build_report(database: Database, restriction: ReportRestriction = ReportRestriction(),
                 out_dir: str | Path = "report", with_figures: bool = True) -> Report:
    """Fetch, compute, write (Markdown + CSV, and figures when ``with_figures``) and return the report."""
    steps, trials = fetch_report_frames(database, restriction)
    strides, spatiotemporal = fetch_gait_frames(database, restriction)
    gait_condition = condition_with_gait_rows(trials, primary_condition(trials, steps), strides, spatiotemporal)
    strides, spatiotemporal = (of_condition(frame, gait_condition) for frame in (strides, spatiotemporal))
    report = make_report(steps, trials, restriction.as_dict(), spatiotemporal=spatiotemporal,
                         gait_condition=gait_condition)
    report.cross_validation = cross_validation_table(results.cross_validation_cameras(*_restrictions(restriction)))
    report.cross_validation_notes = [f"{row['subject_id']}/{row['session_id']}/{row['params_name']}: {note}"
                                     for row in results.cross_validation_notes(*_restrictions(restriction))
                                     for note in row["notes"]]
    offsets = pd.DataFrame(results.camera_time_offsets(*_restrictions(restriction)))
    if len(offsets):
        report.time_offsets = offsets.assign(time_offset_ms=1000.0 * offsets.pop("time_offset_s").astype(float))
    write_report(report, out_dir)
    if with_figures:
        # imported here: matplotlib takes ~1 s to import, and every ``mmc`` command imports the report's parser
        from pipeline.report import figures

        report.paths.update(figures.report_figures(steps, trials, Path(out_dir)))
        report.paths.update(figures.gait_figures(strides, spatiotemporal, Path(out_dir), condition=gait_condition))
    return report


def fetch_gait_frames(database: Database, restriction: ReportRestriction = ReportRestriction(),
                      condition: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``(strides, spatiotemporal)`` frames for the gait figures from the opened ``database``.

    strides: one row per kept stride (``schemas.reads.results.gait_cycle_strides``: side, toe_off_percent,
    angles (101, Q) rad, coordinate_names, population); spatiotemporal: one row per walking trial and side
    (``schemas.reads.results.spatiotemporal_parameters``). condition: keep only the fits of this method
    (a :func:`~pipeline.report.stats.condition_labels` label), so a trial fitted with two parameter sets is
    counted once; None keeps every fit. Both frames are empty while the gait tables have no rows.
    """
    results.require_prefix(database.prefix)
    restrictions = _restrictions(restriction)
    enabled = {name: bundle_adjustment_enabled(params) for name, params in results.parameter_sets().items()}
    frames = []
    for rows in (results.gait_cycle_strides(*restrictions), results.spatiotemporal_parameters(*restrictions)):
        frame = pd.DataFrame(rows)
        if len(frame):
            frame["bundle_adjustment"] = frame["params_name"].map(enabled).astype(bool)
        frames.append(of_condition(frame, condition))
    return frames[0], frames[1]


def of_condition(frame: pd.DataFrame, condition: str | None) -> pd.DataFrame:
    """The rows of ``frame`` (with ``base_model`` and ``bundle_adjustment`` columns) fitted by ``condition``
    (a :func:`~pipeline.report.stats.condition_labels` label); every row when ``condition`` is None."""
    if condition is None or not len(frame):
        return frame
    return frame[[label == condition for label in condition_labels(frame)]].reset_index(drop=True)


def condition_with_gait_rows(trials: pd.DataFrame, primary: str | None, strides: pd.DataFrame,
                             spatiotemporal: pd.DataFrame) -> str | None:
    """The method the gait figures and the spatiotemporal table describe: the report's primary condition when
    it has gait rows (strides or spatiotemporal parameters); otherwise the best-GC_5 condition among those that
    do, so fits of another base model without walkway data still get their gait figures (the figure titles
    name the condition); None when no fit has gait rows."""
    with_rows = {label for frame in (strides, spatiotemporal) if len(frame) for label in condition_labels(frame)}
    if not with_rows:
        return primary
    if primary in with_rows:
        return primary
    candidates = trials[[label in with_rows for label in condition_labels(trials)]] if len(trials) else trials
    return best_condition(candidates) if len(candidates) else sorted(with_rows)[0]


def _parse_date(text: str | None, option: str) -> _dt.date | None:
    """``YYYY-MM-DD`` of ``option`` (``--from``/``--to``) as a date; anything else is a one-line error."""
    if not text:
        return None
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise IngestError("command line", option, f"a date YYYY-MM-DD, got {text!r}") from None


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mmc report``."""
    parser.add_argument("--population", action="append", default=None,
                        help="restrict to a clinical population (repeatable)")
    parser.add_argument("--from", dest="date_from", default=None, help="first session date (YYYY-MM-DD)")
    parser.add_argument("--to", dest="date_to", default=None, help="last session date (YYYY-MM-DD)")
    parser.add_argument("--base-model", action="append", default=None, help="restrict to a base model (repeatable)")
    parser.add_argument("--param-set", action="append", default=None, help="restrict to a parameter set (repeatable)")
    add_restriction_arguments(parser, "the key of BilevelFit.Trial")
    parser.add_argument("--out", default="report", help="output folder (default: ./report)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")


def restriction_from_args(args: argparse.Namespace) -> ReportRestriction:
    return ReportRestriction(population=args.population, date_from=_parse_date(args.date_from, "--from"),
                             date_to=_parse_date(args.date_to, "--to"), base_model=args.base_model,
                             param_set=args.param_set, restrict=tuple(args.restrict), where=tuple(args.where))


def report_command(args: argparse.Namespace) -> int:
    """``mmc report [--population P ...] [--from DATE] [--to DATE] [--base-model M] [--param-set S]
    [--restrict ATTR=VALUE ...] [--where SQL ...] [--out DIR]``."""
    restriction = restriction_from_args(args)  # bad dates fail before the database is opened
    report = build_report(open_database(args.prefix), restriction, args.out, with_figures=not args.no_figures)
    print_report(report)
    for name, path in report.paths.items():
        print(f"{name:>14}: {path}")
    return 0
