"""``mmc demo``: the whole pipeline on a small synthetic lab, end to end, with progress throughout.

1. **Generate** (or reuse) a synthetic lab with ``pipeline.synth``: ``--subjects`` subjects cycling through the
   synthetic gait patterns control → hemiparetic → prosthesis (stored as the clinical populations control,
   neurologic and llpu), ``--trials`` walking trials each, 8 cameras. Files are the
   same formats a lab ingests (anipose TOML, keypoint NPZ, walkway CSV, one manifest per session) under
   ``<out>/data``; a second run with the same settings reuses them.
2. **Ingest** every manifest with ``pipeline.manifest.ingest_session`` (sessions already in the database are
   skipped, so the demo can be re-run and resumed).
3. **Populate** every computed table: a ``FitTask`` per session (default model, ``--params``, default
   ``cpu_default``), then ``BilevelFit`` and ``GaitMetrics`` (and any other computed table present), one key at a
   time with a progress bar and per-fit timing. ``--compare-bundle-adjustment`` also fits every session with the
   cameras frozen (a derived ``<params>_noba`` set), so Table II and the GC_5 test compare bundle adjustment on/off.
4. **Report**: Table I / Table II / GC_5 and spatiotemporal comparisons with subjects as the unit of replication
   (``pipeline.report``), GC_d curves, step-error
   histograms, joint angles over the gait cycle and spatiotemporal parameters by population, per-trial
   quality-control pages, joint-angle waveforms and reprojection overlays (``pipeline.report.figures``, PNG and
   PDF), and OpenSim ``.mot``/``.trc`` + CSV exports of every fitted trial (``pipeline.exporters``). Prints where
   everything is.

The demo writes into the configured schema prefix (``MMC_SCHEMA_PREFIX`` / ``mmc --prefix``), so ``mmc report``,
``mmc status``, ``notebooks/demo_analysis.ipynb`` and ``notebooks/population_queries.ipynb`` see the same data
afterwards.
"""
from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from pipeline.db import Database, open_database
from pipeline.progress import FitProgressReporter

DEMO_POPULATIONS = ("control", "hemiparetic", "prosthesis")
SPEC_FILE = "demo_spec.json"
CALIBRATION_ERROR = (0.25, 0.005)  # deg, m per camera: what bundle adjustment has to correct


@dataclass(frozen=True)
class DemoConfig:
    """What the demo builds. ``data_dir`` defaults to ``<out_dir>/data``."""

    subjects: int = 3
    trials: int = 2
    out_dir: Path = Path("demo_output")
    data_dir: Path | None = None
    params_name: str = "cpu_default"
    seed: int = 0
    n_cameras: int = 8
    trial_duration_s: float | None = None  # None: the generator's default walkway pass
    max_figure_trials: int = 6
    steps: int | None = None  # override the parameter set's optimisation steps (a derived set is registered)
    compare_bundle_adjustment: bool = False  # also fit every session with cameras frozen (Table II, ANOVA)
    subject_prefix: str = "DEMO"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir is not None else Path(self.out_dir) / "data"

    def subject_plan(self) -> list[dict[str, Any]]:
        """One entry per subject: id, population, seed."""
        return [dict(subject_id=f"{self.subject_prefix}{i + 1:02d}", population=DEMO_POPULATIONS[i % len(DEMO_POPULATIONS)],
                     session_id=f"2024-03-{i % 28 + 1:02d}", seed=self.seed * 1000 + i)
                for i in range(self.subjects)]


@dataclass
class DemoResult:
    manifests: list[Path] = field(default_factory=list)
    subject_ids: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    populate: dict[str, dict[str, int]] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# progress display
# --------------------------------------------------------------------------------------------------


class Progress:
    """A thin wrapper over rich so every stage reports the same way (rules, lines, progress bars)."""

    def __init__(self) -> None:
        self.console = Console()

    def rule(self, text: str) -> None:
        self.console.rule(f"[bold]{text}")

    def print(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[..., None]]:
        """Yields ``advance(label)``: call once per finished item (``advance(current=label)`` names the item
        in progress without counting it)."""
        columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[item]}"))
        with RichProgress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total, item="")

            def advance(label: str = "", current: str | None = None) -> None:
                if current is not None:
                    progress.update(task, item=current)
                    return
                progress.update(task, advance=1, item=label)

            yield advance


@contextmanager
def _stage(result: DemoResult, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        result.stage_seconds[name] = time.perf_counter() - started


# --------------------------------------------------------------------------------------------------
# 1. synthetic lab
# --------------------------------------------------------------------------------------------------


def generate_lab(config: DemoConfig, progress: Progress) -> list[Path]:
    """Write (or reuse) one synthetic session per planned subject; returns the manifest paths.

    Reuse: when ``<data>/demo_spec.json`` equals the current plan and every manifest exists.
    """
    data = config.data_path
    data.mkdir(parents=True, exist_ok=True)
    spec = dict(plan=config.subject_plan(), trials=config.trials, n_cameras=config.n_cameras,
                trial_duration_s=config.trial_duration_s, calibration_error=CALIBRATION_ERROR)
    spec_path = data / SPEC_FILE
    if spec_path.exists():
        previous = json.loads(spec_path.read_text())
        manifests = [Path(p) for p in previous.get("manifests", [])]
        if previous.get("spec") == spec and manifests and all(p.exists() for p in manifests):
            progress.print(f"reusing {len(manifests)} synthetic session(s) in {data}")
            return manifests
    manifests = []
    from compute.kinematics import load_body_model

    body = load_body_model("MOVI87")  # built once, shared by every subject
    with progress.bar("generating sessions", len(spec["plan"])) as advance:
        for subject in spec["plan"]:
            advance(current=f"{subject['subject_id']} ({subject['population']})")
            manifests.append(write_synthetic_subject(subject, config, data, body))
            advance(f"{subject['subject_id']} ({subject['population']})")
    spec_path.write_text(json.dumps(dict(spec=spec, manifests=[str(p) for p in manifests]), indent=2))
    return manifests


def write_synthetic_subject(subject: dict[str, Any], config: DemoConfig, data_dir: Path, body: Any = None) -> Path:
    """One synthetic session of ``config.trials`` walking trials for ``subject``; returns its manifest.

    Uses ``compute.synthetic.generate_session`` and ``pipeline.synth.write_session`` (anipose TOML, NPZ keypoints,
    walkway CSV, manifest, truth.npz). The calibration handed to the fitter is perturbed by ``CALIBRATION_ERROR``
    (0.25 deg, 5 mm per camera) so bundle adjustment has something to correct.
    """
    from compute.synthetic import SyntheticSessionConfig, default_trials, generate_session
    from pipeline.synth import write_session

    session_config = SyntheticSessionConfig(
        seed=int(subject["seed"]), subject_id=subject["subject_id"], session_id=subject["session_id"],
        population=subject["population"], n_cameras=config.n_cameras,
        trials=default_trials(config.trials, static=False, tug=False, duration_s=config.trial_duration_s),
        calibration_rotation_error_deg=CALIBRATION_ERROR[0], calibration_translation_error_m=CALIBRATION_ERROR[1])
    session = generate_session(session_config, body) if body is not None else generate_session(session_config)
    return Path(write_session(session, data_dir / subject["subject_id"]))


# --------------------------------------------------------------------------------------------------
# 2. database + ingest
# --------------------------------------------------------------------------------------------------


def open_demo_database(prefix: str, progress: Progress) -> Database:
    """Open the database under ``prefix`` (a private server when nothing is configured) with the default
    parameter sets present."""
    # each fit's steps show inside the demo's own bars (same console), or as plain lines when not a terminal
    reporter = FitProgressReporter(console=progress.console, interactive=progress.console.is_terminal)
    database = open_database(prefix, progress=reporter)
    database.schemas["fitting"].FitParams.ensure_defaults()
    progress.print(f"database {database.config.describe()}; schemas: {', '.join(database.schemas)}")
    return database


def ingest_manifests(manifests: Sequence[Path], database: Database, progress: Progress) -> list[str]:
    """Ingest each manifest unless its session is present; returns the subject ids."""
    from pipeline.manifest import Lookups, insert_plan, plan_session

    acquisition = database.schemas["acquisition"]
    lookups = Lookups.from_database()
    subject_ids = []
    with progress.bar("ingesting sessions", len(manifests)) as advance:
        for path in manifests:
            plan = plan_session(path, lookups)
            key = _session_key(plan)
            subject_ids.append(key["subject_id"])
            if acquisition.Session & key:
                advance(f"{key['subject_id']}/{key['session_id']} already present")
                continue
            advance(current=f"{key['subject_id']}/{key['session_id']}")
            insert_plan(plan, database.connection)
            advance(f"{key['subject_id']}/{key['session_id']} ingested")
    return subject_ids


def _session_key(plan: Any) -> dict[str, str]:
    """``{subject_id, session_id}`` of a ``pipeline.manifest.SessionPlan``."""
    return {"subject_id": plan.session["subject_id"], "session_id": plan.session["session_id"]}


# --------------------------------------------------------------------------------------------------
# 3. populate
# --------------------------------------------------------------------------------------------------


def populate_all(modules: dict[str, ModuleType], subject_ids: Sequence[str], param_sets: Sequence[str],
                 progress: Progress, result: DemoResult) -> None:
    """A FitTask (default model) per demo session and parameter set, then every computed table one key at a
    time (resumable: what is already computed is skipped)."""
    from pipeline.jax_setup import configure_jax
    from pipeline.populate import computed_tables

    fitting, model = modules["fitting"], modules["model"]
    base_model = model.ensure_default_model()
    sessions = (modules["acquisition"].Session & [{"subject_id": s} for s in subject_ids]).keys()
    before = len(fitting.FitTask())
    fitting.FitTask.insert([dict(key, base_model=base_model, params_name=p) for key in sessions for p in param_sets],
                           skip_duplicates=True)
    restriction = dj_and_or(subject_ids, param_sets)
    progress.print(f"fit tasks: {len(fitting.FitTask()) - before} added; {len(fitting.FitTask & restriction)} for the "
                   f"demo sessions ({base_model} × {', '.join(param_sets)})")
    configure_jax()
    for name, table in computed_tables(modules).items():
        if name == "TrilevelFit":
            continue  # needs a SubjectGroup + TrilevelTask: not part of the demo
        todo = (table.key_source & restriction) - table.proj()
        keys = todo.keys()
        counts = dict(made=0, failed=0, already=len(table & restriction))
        result.populate[name] = counts
        if not keys:
            progress.print(f"{name}: nothing to do ({counts['already']} present)")
            continue
        with progress.bar(f"{name}", len(keys)) as advance:
            for key in keys:
                label = "/".join(str(key[k]) for k in ("subject_id", "trial_name") if k in key) or str(key)
                advance(current=f"{label} …")
                started = time.perf_counter()
                outcome = table.populate(key, suppress_errors=True, display_progress=False)
                seconds = time.perf_counter() - started
                errors = outcome["error_list"]
                if errors:
                    counts["failed"] += 1
                    message = str(errors[0][1]).splitlines()[0][:200]
                    result.errors.append(f"{name} {label}: {message}")
                    advance(f"{label}: FAILED ({message[:60]})")
                else:
                    counts["made"] += 1
                    advance(f"{label}: {seconds:.0f} s")
        if name == "BilevelFit":
            rows = (table & restriction).proj("gc5", "wall_time_s", "iterations", "stop_reason").to_dicts()
            for row in rows:
                progress.print(f"  {row['subject_id']} {row['params_name']}: GC_5 = {row['gc5']:.3f}, "
                               f"{row['iterations']} iterations ({row['stop_reason']}), {row['wall_time_s']:.0f} s")


def dj_and_or(subject_ids: Sequence[str], param_sets: Sequence[str]) -> Any:
    """Restriction: any of the subjects AND any of the parameter sets."""
    import datajoint as dj

    return dj.AndList([[{"subject_id": s} for s in subject_ids], [{"params_name": p} for p in param_sets]])


# --------------------------------------------------------------------------------------------------
# 4. report, figures, exports
# --------------------------------------------------------------------------------------------------


def report_and_figures(config: DemoConfig, database: Database, subject_ids: Sequence[str],
                       param_sets: Sequence[str], progress: Progress, result: DemoResult) -> None:
    """Tables, report figures, per-trial figures (up to ``max_figure_trials``) and exports of the demo fits."""
    from pipeline import exporters, report
    from pipeline.report import figures
    from schemas.reads import results

    out = Path(config.out_dir)
    restriction = report.ReportRestriction(subjects=tuple(subject_ids), param_set=tuple(param_sets))
    rep = report.build_report(database, restriction, out / "report")
    result.paths.update({f"report/{k}": v for k, v in rep.paths.items()})
    report.print_report(rep)

    demo_fits = dj_and_or(subject_ids, param_sets)
    # figures of the primary parameter set's fits (the comparison set only enters the tables)
    walking = results.fitted_trials(demo_fits, {"params_name": param_sets[0]}, {"activity": "walk"})
    keys = [{k: row[k] for k in results.FIT_KEY} for row in walking]
    # one trial per subject first, then the rest, up to max_figure_trials
    firsts = {k["subject_id"]: k for k in reversed(keys)}
    ordered = list(firsts.values()) + [k for k in keys if k not in firsts.values()]
    ordered = ordered[: config.max_figure_trials]
    with progress.bar("trial figures", len(ordered)) as advance:
        for key in ordered:
            label = f"{key['subject_id']}/{key['trial_name']}"
            advance(current=label)
            try:
                paths = figures.trial_figures(key, out / "figures")
                result.paths.update({f"figures/{label}/{k}": v for k, v in paths.items()})
            except Exception as error:  # a figure must not stop the demo; say what failed
                result.errors.append(f"figures {label}: {error.__class__.__name__}: {error}")
            advance(label)
    exported = exporters.export_fits(database, demo_fits, out / "exports")
    result.paths["exports"] = out / "exports"
    progress.print(f"exported {len(exported)} fitted trial(s) as .mot/.trc/.csv to {out / 'exports'}")


# --------------------------------------------------------------------------------------------------
# command
# --------------------------------------------------------------------------------------------------


def _derived_params(fitting: Any, base_name: str, suffix: str, changes: dict[str, Any], what: str,
                    progress: Progress) -> str:
    """Register ``<base>_<suffix>`` = the stored set ``base_name`` with ``changes``; returns the name in use
    (an existing set with identical parameters is reused under its own name)."""
    derived = fitting.FitParams.load(base_name).replace(**changes)
    existing = (fitting.FitParams & {"params_hash": derived.hash}).keys()
    name = existing[0]["params_name"] if existing else fitting.FitParams.insert_params(
        f"{base_name}_{suffix}"[:32], derived, f"{base_name} with {what} (mmc demo)")
    progress.print(f"parameter set {name}: {base_name} with {what}")
    return name


def _with_step_override(config: DemoConfig, fitting: Any, progress: Progress) -> DemoConfig:
    """Use ``<params>_<N>steps`` (the chosen set with ``steps=N``)."""
    import dataclasses

    name = _derived_params(fitting, config.params_name, f"{config.steps}steps", dict(steps=int(config.steps)),
                           f"steps = {config.steps}", progress)
    return dataclasses.replace(config, params_name=name)


def run_demo(config: DemoConfig, prefix: str, progress: Progress | None = None) -> DemoResult:
    """All four stages into the schemas ``<prefix>_*``; returns what was made and where (see module docstring)."""
    progress = progress or Progress()
    result = DemoResult()
    started = time.perf_counter()
    progress.rule(f"1/4 synthetic lab: {config.subjects} subject(s) × {config.trials} walking trial(s)")
    with _stage(result, "generate"):
        result.manifests = generate_lab(config, progress)
    progress.rule("2/4 database and ingest")
    with _stage(result, "ingest"):
        database = open_demo_database(prefix, progress)
        result.subject_ids = ingest_manifests(result.manifests, database, progress)
    modules = database.schemas
    if config.steps is not None:
        config = _with_step_override(config, modules["fitting"], progress)
    param_sets = [config.params_name]
    if config.compare_bundle_adjustment:
        param_sets.append(_derived_params(modules["fitting"], config.params_name, "noba",
                                          dict(camera_start_fraction=1.0), "cameras frozen", progress))
    progress.rule(f"3/4 populate (parameter set {', '.join(param_sets)})")
    with _stage(result, "populate"):
        populate_all(modules, result.subject_ids, param_sets, progress, result)
    progress.rule("4/4 report, figures, exports")
    with _stage(result, "report"):
        report_and_figures(config, database, result.subject_ids, param_sets, progress, result)
    result.stage_seconds["total"] = time.perf_counter() - started
    _print_summary(result, progress)
    return result


def _print_summary(result: DemoResult, progress: Progress) -> None:
    progress.rule("done")
    timing = ", ".join(f"{k} {v / 60:.1f} min" if v >= 90 else f"{k} {v:.0f} s" for k, v in result.stage_seconds.items())
    progress.print(f"time: {timing}")
    for name, counts in result.populate.items():
        progress.print(f"{name}: {counts['made']} computed, {counts['failed']} failed, {counts['already']} already present")
    progress.print("outputs:")
    for name, path in result.paths.items():
        progress.print(f"  {name:<42} {path}")
    for error in result.errors:
        progress.print(f"[red]error:[/red] {error}")


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subjects", type=int, default=3, help="synthetic subjects (populations cycle "
                        "control, hemiparetic, prosthesis; default 3)")
    parser.add_argument("--trials", type=int, default=2, help="walking trials per subject (default 2)")
    parser.add_argument("--out", default="demo_output", help="output folder (default ./demo_output)")
    parser.add_argument("--data", default=None, help="where the synthetic sessions go (default OUT/data)")
    parser.add_argument("--params", default="cpu_default", help="FitParams set for the fits (default cpu_default)")
    parser.add_argument("--cameras", type=int, default=8, help="cameras per synthetic rig (default 8)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per walking trial (default: "
                        "the generator's walkway pass)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic lab")
    parser.add_argument("--compare-bundle-adjustment", action="store_true",
                        help="also fit every session with the cameras frozen, so Table II and the GC_5 ANOVA compare "
                             "bundle adjustment on/off (doubles the fitting time)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps per fit (registers a derived "
                        "parameter set; default: the set's own)")


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    if args.subjects < 1 or args.trials < 1:
        raise SystemExit("mmc demo: --subjects and --trials must be at least 1")
    return DemoConfig(subjects=args.subjects, trials=args.trials, out_dir=Path(args.out),
                      data_dir=Path(args.data) if args.data else None, params_name=args.params, seed=args.seed,
                      n_cameras=args.cameras, trial_duration_s=args.duration, steps=args.steps,
                      compare_bundle_adjustment=args.compare_bundle_adjustment)


def demo_command(args: argparse.Namespace) -> int:
    """``mmc demo [--subjects N] [--trials M] [--out DIR] ...``: exit code 1 when any computation failed."""
    result = run_demo(config_from_args(args), args.prefix)
    return 1 if result.errors else 0


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo``."""
    parser = subparsers.add_parser("demo", help="run the whole pipeline on a small synthetic lab",
                                   description=__doc__.split("\n\n")[0])
    add_demo_arguments(parser)
    parser.set_defaults(handler=demo_command)
