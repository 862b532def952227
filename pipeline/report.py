"""Population statistics: the paper's Table I and Table II, and ANOVA / Tukey HSD of ``GC_5``.

Built in two layers, like the rest of ``pipeline/``:

* pure functions over pandas DataFrames (``table_one``, ``table_two``, ``gc5_anova``, ``write_report``),
  tested on constructed frames with known answers;
* ``fetch_report_frames`` / ``build_report`` / ``report_command`` that read the computed tables
  (``BilevelFit``, ``BilevelFit.Trial``, ``GaitMetrics`` steps) for a restriction and call the former.

Input frames (column names; extra columns are ignored):

``steps`` — one row per walkway-matched step:
    ``population, subject_id, trial`` (any hashable trial identifier), ``step_width_error_m``,
    ``stride_length_error_m``, ``step_length_error_m`` (model minus walkway, metres), and for Table II
    optionally ``base_model, bundle_adjustment``.
``trials`` — one row per fitted trial:
    ``population, subject_id, trial, base_model, bundle_adjustment`` (bool), ``gc5`` (fraction in [0, 1]).

``σ_IQR = 0.7413 · IQR`` (the normal-consistent spread, robust to the occasional mismatched step);
reported in millimetres.
"""
from __future__ import annotations

import argparse
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

STEP_ERROR_COLUMNS = {
    "step_width_error_m": "Step width",
    "stride_length_error_m": "Stride length",
    "step_length_error_m": "Step length",
}
IQR_TO_SIGMA = 0.7413


def sigma_iqr(values: Any) -> float:
    """``0.7413 · IQR`` of ``values`` ignoring NaN; NaN when there are no finite values."""
    try:  # the project's definition when available (H2), identical by contract
        from compute.metrics import sigma_iqr as _compute_sigma_iqr

        return float(_compute_sigma_iqr(np.asarray(values, dtype=float)))
    except ImportError:
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        if x.size == 0:
            return float("nan")
        q75, q25 = np.percentile(x, [75, 25])
        return float(IQR_TO_SIGMA * (q75 - q25))


def _trial_ids(frame: pd.DataFrame) -> pd.Series:
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
    labels = [condition_label(m, b) for m, b in zip(trials["base_model"], trials["bundle_adjustment"])]
    return str(pd.Series(trials["gc5"].astype(float).to_numpy(), index=labels).groupby(level=0).mean().idxmax())


def condition_label(base_model: Any, bundle_adjustment: Any) -> str:
    """``"<model> + BA"`` / ``"<model> no BA"`` (the Table II row names)."""
    return f"{base_model} + BA" if bool(bundle_adjustment) else f"{base_model} no BA"


# --------------------------------------------------------------------------------------------------
# Table I, Table II
# --------------------------------------------------------------------------------------------------


def _spread_row(group: pd.DataFrame) -> dict[str, Any]:
    row: dict[str, Any] = {
        "subjects": int(group["subject_id"].nunique()) if "subject_id" in group else np.nan,
        "trials": int(_trial_ids(group).nunique()),
        "steps": int(len(group)),
    }
    for column, label in STEP_ERROR_COLUMNS.items():
        row[f"{label} σ_IQR (mm)"] = 1000.0 * sigma_iqr(group[column]) if column in group else np.nan
    return row


def table_one(steps: pd.DataFrame, by: str = "population", include_all: bool = True) -> pd.DataFrame:
    """Table I: ``σ_IQR`` (mm) of step width / stride length / step length errors by ``by``.

    steps: one row per matched step (see module docstring). Returns one row per group (sorted) with
    ``subjects``, ``trials``, ``steps`` counts and the three spreads; plus an ``All`` row when
    ``include_all`` and there is more than one group.
    """
    if by not in steps:
        raise ValueError(f"steps: expected a {by!r} column, got {list(steps.columns)}")
    rows = []
    for value, group in steps.groupby(by, sort=True):
        rows.append({by: value, **_spread_row(group)})
    if include_all and len(rows) > 1:
        rows.append({by: "All", **_spread_row(steps)})
    columns = [by, "subjects", "trials", "steps", *(f"{l} σ_IQR (mm)" for l in STEP_ERROR_COLUMNS.values())]
    return pd.DataFrame(rows, columns=columns)


def table_two(trials: pd.DataFrame, steps: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table II: by base model and bundle adjustment, ``GC_5`` (mean, SD, median over trials) and, when
    ``steps`` carry ``base_model``/``bundle_adjustment``, the step-error spreads of that condition.
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
            "subjects": int(group["subject_id"].nunique()) if "subject_id" in group else np.nan,
            "trials": int(_trial_ids(group).nunique()),
            "GC_5 mean": float(gc5.mean()),
            "GC_5 SD": float(gc5.std(ddof=1)) if len(gc5) > 1 else np.nan,
            "GC_5 median": float(gc5.median()),
        }
        if steps is not None and {"base_model", "bundle_adjustment"} <= set(steps.columns):
            sel = steps[(steps["base_model"] == model) & (steps["bundle_adjustment"].astype(bool) == bool(ba))]
            for column, label in STEP_ERROR_COLUMNS.items():
                row[f"{label} σ_IQR (mm)"] = 1000.0 * sigma_iqr(sel[column]) if column in sel and len(sel) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# ANOVA + Tukey HSD
# --------------------------------------------------------------------------------------------------


@dataclass
class AnovaResult:
    """One-way ANOVA of a value across conditions with Tukey HSD post hoc comparisons."""

    factor: str
    anova: pd.DataFrame | None  # statsmodels anova_lm table (sum_sq, df, F, PR(>F)); None when not testable
    tukey: pd.DataFrame | None  # group1, group2, meandiff, p-adj, lower, upper, reject
    f_statistic: float = float("nan")
    p_value: float = float("nan")
    n_groups: int = 0
    n_observations: int = 0
    note: str = ""

    def summary(self) -> str:
        if self.anova is None:
            return f"ANOVA of GC_5 across {self.factor}: not computed ({self.note})"
        df_between = int(self.anova["df"].iloc[0])
        df_within = int(self.anova["df"].iloc[1])
        return (f"One-way ANOVA of GC_5 across {self.factor} ({self.n_groups} groups, n = {self.n_observations}): "
                f"F({df_between}, {df_within}) = {self.f_statistic:.3f}, p = {self.p_value:.3g}")


def gc5_anova(trials: pd.DataFrame, factor: str = "condition", value: str = "gc5", alpha: float = 0.05) -> AnovaResult:
    """One-way ANOVA (statsmodels ``ols`` + ``anova_lm``) and Tukey HSD (``pairwise_tukeyhsd``) of
    ``value`` across the levels of ``factor``. With ``factor="condition"`` and no such column, the
    condition is built from ``base_model`` and ``bundle_adjustment``.
    """
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm
    from statsmodels.stats.multicomp import pairwise_tukeyhsd

    frame = trials.copy()
    if factor not in frame and factor == "condition" and {"base_model", "bundle_adjustment"} <= set(frame.columns):
        frame["condition"] = [condition_label(m, b) for m, b in zip(frame["base_model"], frame["bundle_adjustment"])]
    if factor not in frame or value not in frame:
        raise ValueError(f"trials: expected columns {factor!r} and {value!r}, got {list(trials.columns)}")
    frame = frame[np.isfinite(frame[value].astype(float))]
    data = pd.DataFrame({"y": frame[value].astype(float).to_numpy(), "group": frame[factor].astype(str).to_numpy()})
    counts = data["group"].value_counts()
    result = AnovaResult(factor=factor, anova=None, tukey=None, n_groups=int(counts.size),
                         n_observations=int(len(data)))
    if counts.size < 2:
        result.note = f"needs at least 2 {factor} levels, found {counts.size}"
        return result
    if len(data) - counts.size < 1:
        result.note = "no residual degrees of freedom (one observation per group)"
        return result
    model = smf.ols("y ~ C(group)", data=data).fit()
    table = anova_lm(model, typ=2)
    table.index = [factor, "Residual"]
    result.anova = table
    result.f_statistic = float(table["F"].iloc[0])
    result.p_value = float(table["PR(>F)"].iloc[0])
    tukey = pairwise_tukeyhsd(data["y"].to_numpy(), data["group"].to_numpy(), alpha=alpha)
    rows = tukey._results_table.data  # header row then one row per pair
    result.tukey = pd.DataFrame(rows[1:], columns=rows[0])
    return result


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------


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
    """Everything one ``mmc report`` produces. ``paths`` maps names to written files."""

    table_one: pd.DataFrame
    table_two: pd.DataFrame
    anova: AnovaResult
    anova_population: AnovaResult | None = None
    restriction: dict[str, Any] = field(default_factory=dict)
    primary_condition: str | None = None  # the method Table I and the population comparison describe
    paths: dict[str, Path] = field(default_factory=dict)

    def markdown(self) -> str:
        title = "# Markerless gait report"
        scope = ", ".join(f"{k} = {v}" for k, v in self.restriction.items() if v not in (None, "", [])) or "all data"
        parts = [title, "", f"Restriction: {scope}.  Generated {_dt.datetime.now():%Y-%m-%d %H:%M}.", ""]
        method = f", {self.primary_condition}" if self.primary_condition else ""
        parts += [f"## Table I — step parameter error spread (σ_IQR = 0.7413·IQR, mm) by population{method}", ""]
        parts += [markdown_table(self.table_one, decimals=1) if len(self.table_one) else "_no walkway-matched steps_", ""]
        parts += ["## Table II — geometric consistency GC_5 by base model and bundle adjustment", ""]
        decimals = {c: (1 if "(mm)" in str(c) else 3) for c in self.table_two.columns}
        parts += [markdown_table(self.table_two, decimals=decimals) if len(self.table_two) else "_no fits_", ""]
        parts += ["## GC_5 across conditions (base model × bundle adjustment)", ""]
        parts += _anova_markdown(self.anova)
        if self.anova_population is not None:
            parts += [f"## GC_5 across populations, within {self.anova_population.factor.split('(')[-1].rstrip(')')}", ""]
            parts += _anova_markdown(self.anova_population)
        return "\n".join(parts)


def _anova_markdown(result: AnovaResult) -> list[str]:
    parts = [result.summary(), ""]
    if result.anova is not None:
        anova = result.anova.rename(columns={"PR(>F)": "p"}).reset_index(names="source")
        anova["df"] = anova["df"].astype(int)
        parts += [markdown_table(anova, decimals={"sum_sq": 5, "df": 0, "F": 3, "p": 4}), ""]
    if result.tukey is not None:
        parts += ["Tukey HSD (family-wise α = 0.05):", "", markdown_table(result.tukey, decimals=4), ""]
    return parts


def make_report(steps: pd.DataFrame, trials: pd.DataFrame, restriction: Mapping[str, Any] | None = None,
                factor: str = "condition") -> Report:
    """Tables I and II and the GC_5 ANOVA from the two input frames (see module docstring)."""
    empty_steps = steps is None or len(steps) == 0
    primary = best_condition(trials) if trials is not None and len(trials) else None
    steps_one = steps
    if not empty_steps and primary is not None and {"base_model", "bundle_adjustment"} <= set(steps.columns):
        labels = [condition_label(m, b) for m, b in zip(steps["base_model"], steps["bundle_adjustment"])]
        if primary not in labels:  # the best method has no walkway steps: the best of those that have
            trial_labels = [condition_label(m, b) for m, b in zip(trials["base_model"], trials["bundle_adjustment"])]
            with_steps = trials[[label in set(labels) for label in trial_labels]]
            primary = best_condition(with_steps) if len(with_steps) else labels[0]
        steps_one = steps[[label == primary for label in labels]]  # Table I describes one method
    t1 = table_one(steps_one) if not empty_steps and len(steps_one) else pd.DataFrame()
    t2 = table_two(trials, None if empty_steps else steps) if trials is not None and len(trials) else pd.DataFrame()
    if trials is not None and len(trials):
        anova = gc5_anova(trials, factor=factor)
        by_population = None
        if "population" in trials and primary is None:
            by_population = gc5_anova(trials, factor="population")
        elif "population" in trials:
            # populations are compared within one method: the condition with the best mean GC_5
            conditions = [condition_label(m, b) for m, b in zip(trials["base_model"], trials["bundle_adjustment"])]
            by_population = gc5_anova(trials[[c == primary for c in conditions]], factor="population")
            by_population.factor = f"population ({primary})"
    else:
        anova = AnovaResult(factor=factor, anova=None, tukey=None, note="no fitted trials")
        by_population = None
    return Report(table_one=t1, table_two=t2, anova=anova, anova_population=by_population,
                  restriction=dict(restriction or {}), primary_condition=primary)


def write_report(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``table1.csv``, ``table2.csv``, ``anova_gc5.csv``, ``tukey_gc5.csv`` (and the
    ``*_population.csv`` pair when GC_5 could be compared across populations)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "report.md"}
    paths["markdown"].write_text(report.markdown())
    paths["table1"] = out_dir / "table1.csv"
    report.table_one.to_csv(paths["table1"], index=False)
    paths["table2"] = out_dir / "table2.csv"
    report.table_two.to_csv(paths["table2"], index=False)
    if report.anova.anova is not None:
        paths["anova"] = out_dir / "anova_gc5.csv"
        report.anova.anova.to_csv(paths["anova"])
    if report.anova.tukey is not None:
        paths["tukey"] = out_dir / "tukey_gc5.csv"
        report.anova.tukey.to_csv(paths["tukey"], index=False)
    by_population = report.anova_population
    if by_population is not None and by_population.anova is not None:
        paths["anova_population"] = out_dir / "anova_gc5_population.csv"
        by_population.anova.to_csv(paths["anova_population"])
        paths["tukey_population"] = out_dir / "tukey_gc5_population.csv"
        by_population.tukey.to_csv(paths["tukey_population"], index=False)
    report.paths.update(paths)
    return paths


def print_report(report: Report) -> None:
    """Print the Markdown report (rich-rendered when a terminal is attached)."""
    text = report.markdown()
    try:
        from rich.console import Console
        from rich.markdown import Markdown

        console = Console()
        if console.is_terminal:
            console.print(Markdown(text))
            return
    except ImportError:
        pass
    print(text)


# --------------------------------------------------------------------------------------------------
# database layer
# --------------------------------------------------------------------------------------------------


def activate_from_config(prefix: str | None = None) -> Any:
    """Connect using ``pipeline.config`` (starting the private server when needed) and activate all
    schema modules under ``prefix`` (default: the configured schema prefix). Returns the connection."""
    import schemas
    from pipeline import config as config_module
    from pipeline import db

    cfg = db.ensure_server(config_module.load_config())
    connection = db.connect(cfg)
    modules = schemas.activate(prefix or cfg.schema_prefix, connection)
    if "fitting" in modules:
        modules["fitting"].FitParams.ensure_defaults()
    return connection


@dataclass(frozen=True)
class ReportRestriction:
    """What a report covers. ``None`` means no restriction on that attribute."""

    population: Sequence[str] | None = None
    date_from: _dt.date | None = None
    date_to: _dt.date | None = None
    base_model: Sequence[str] | None = None
    param_set: Sequence[str] | None = None
    subjects: Sequence[str] | None = None

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
        return out


def bundle_adjustment_enabled(params: Any) -> bool:
    """Whether a FitParams JSON/dict turns bundle adjustment on.

    ``compute.params.FitParams``: cameras train from ``camera_start_fraction`` of the steps on (``>= 1`` means
    never) with ``camera_learning_rate`` (``0`` means frozen).
    """
    import json

    if params is None:
        return False
    if isinstance(params, (str, bytes)):
        params = json.loads(params)
    if not isinstance(params, Mapping):
        params = getattr(params, "__dict__", {})
    if "bundle_adjustment" in params:
        return bool(params["bundle_adjustment"])
    start = params.get("camera_start_fraction")
    rate = params.get("camera_learning_rate")
    if start is None and rate is None:
        return False
    return (start is None or float(start) < 1.0) and (rate is None or float(rate) > 0.0)


def fetch_report_frames(restriction: ReportRestriction = ReportRestriction()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``(steps, trials)`` frames for the report from the activated schemas.

    trials: ``BilevelFit.Trial`` (gc5, gc_curve) joined with the subject's population and the trial's
    activity; base model and parameter set come from the fit's key, bundle adjustment from the parameter set.
    steps: the walkway-matched steps of ``GaitMetrics`` (``schemas.gait``) for the same fits.
    Session dates: ``session_id`` holds the ISO date (``2024-02-28``), so ``--from/--to`` compare it as text.
    """
    from schemas import acquisition, fitting

    fits = (fitting.BilevelFit.Trial.proj("gc5", "gc_curve")
            * acquisition.Subject.proj("population")
            * acquisition.Trial.proj("activity", "fps"))
    fits = _restrict_query(fits, restriction)
    trials = pd.DataFrame(fits.to_dicts()) if len(fits) else pd.DataFrame()
    steps = pd.DataFrame()
    step_table = _find_step_table(_optional_module("schemas.gait"))
    if step_table is not None and len(trials):
        step_query = step_table * acquisition.Subject.proj("population") & fits.proj()
        if len(step_query):
            steps = _normalise_step_columns(pd.DataFrame(step_query.to_dicts()))
    params = {r["params_name"]: bundle_adjustment_enabled(r["params"])
              for r in fitting.FitParams.proj("params").to_dicts()}
    for frame in (trials, steps):
        if len(frame):
            frame["bundle_adjustment"] = frame["params_name"].map(params).fillna(False).astype(bool)
            frame["param_set"] = frame["params_name"]
            frame["trial"] = _trial_ids(frame)
    return steps, trials


def _optional_module(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _restrict_query(query: Any, r: ReportRestriction) -> Any:
    if r.population:
        query = query & [{"population": p} for p in r.population]
    if r.date_from:
        query = query & f"session_id >= '{r.date_from:%Y-%m-%d}'"
    if r.date_to:
        query = query & f"session_id <= '{r.date_to:%Y-%m-%d}'"
    if r.base_model:
        query = query & [{"base_model": m} for m in r.base_model]
    if r.param_set:
        query = query & [{"params_name": p} for p in r.param_set]
    if r.subjects:
        query = query & [{"subject_id": s} for s in r.subjects]
    return query


def _pick(columns: Sequence[str], *candidates: str) -> str | None:
    for c in candidates:
        if c in columns:
            return c
    return None


def _find_step_table(gait: Any) -> Any:
    for name in ("Step", "Steps", "WalkwayStep", "StepError"):
        metrics = getattr(gait, "GaitMetrics", None)
        if metrics is not None and hasattr(metrics, name):
            return getattr(metrics, name)
    for name in ("GaitStep", "WalkwayComparison", "StepErrors"):
        if hasattr(gait, name):
            return getattr(gait, name)
    return None


def _normalise_step_columns(steps: pd.DataFrame) -> pd.DataFrame:
    """Map the gait schema's column names to ``<metric>_error_m``; keep only rows with an error."""
    aliases = {
        "step_width_error_m": ("step_width_error_m", "step_width_error", "width_error_m", "step_width_err_m"),
        "stride_length_error_m": ("stride_length_error_m", "stride_length_error", "stride_error_m"),
        "step_length_error_m": ("step_length_error_m", "step_length_error", "length_error_m"),
    }
    out = steps.copy()
    for target, names in aliases.items():
        col = _pick(list(out.columns), *names)
        out[target] = out[col].astype(float) if col else np.nan
    has_error = out[list(aliases)].notna().any(axis=1)
    return out[has_error].reset_index(drop=True)


def build_report(restriction: ReportRestriction = ReportRestriction(), out_dir: str | Path = "report",
                 figures: bool = True) -> Report:
    """Fetch, compute, write (Markdown + CSV, and figures when ``figures``) and return the report."""
    steps, trials = fetch_report_frames(restriction)
    report = make_report(steps, trials, restriction.as_dict())
    write_report(report, out_dir)
    if figures:
        from pipeline import figures as figures_module

        report.paths.update(figures_module.report_figures(steps, trials, Path(out_dir), restriction))
    return report


def _parse_date(text: str | None) -> _dt.date | None:
    return _dt.date.fromisoformat(text) if text else None


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mmc report``."""
    parser.add_argument("--population", action="append", default=None,
                        help="restrict to a clinical population (repeatable)")
    parser.add_argument("--from", dest="date_from", default=None, help="first session date (YYYY-MM-DD)")
    parser.add_argument("--to", dest="date_to", default=None, help="last session date (YYYY-MM-DD)")
    parser.add_argument("--base-model", action="append", default=None, help="restrict to a base model (repeatable)")
    parser.add_argument("--param-set", action="append", default=None, help="restrict to a parameter set (repeatable)")
    parser.add_argument("--out", default="report", help="output folder (default: ./report)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")


def restriction_from_args(args: argparse.Namespace) -> ReportRestriction:
    return ReportRestriction(
        population=getattr(args, "population", None),
        date_from=_parse_date(getattr(args, "date_from", None)),
        date_to=_parse_date(getattr(args, "date_to", None)),
        base_model=getattr(args, "base_model", None),
        param_set=getattr(args, "param_set", None),
    )


def report_command(args: argparse.Namespace) -> int:
    """``mmc report [--population P ...] [--from DATE] [--to DATE] [--base-model M] [--param-set S] [--out DIR]``."""
    activate_from_config()
    report = build_report(restriction_from_args(args), getattr(args, "out", "report"),
                          figures=not getattr(args, "no_figures", False))
    print_report(report)
    for name, path in report.paths.items():
        print(f"{name:>14}: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mmc report`` (``pipeline.cli`` passes the remaining arguments)."""
    parser = argparse.ArgumentParser(prog="mmc report", description="Tables I/II, GC_5 ANOVA + Tukey HSD, figures")
    add_report_arguments(parser)
    return report_command(parser.parse_args(list(argv) if argv is not None else None))
