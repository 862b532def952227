"""``mmc populate``, ``mmc worker``, ``mmc status`` and ``mmc jobs``: running the computed tables.

Computed tables, in dependency order: ``BilevelFit`` (key source ``FitTask``), ``GaitMetrics`` (one per fitted
walking trial), ``GaitCycle`` and ``SpatiotemporalParameters`` (from its events), ``TrilevelFit`` (key source
``TrilevelTask``), ``CrossValidation`` (key source ``CrossValidationTask``: a fit refitted without each camera and
without every k-th frame, see :mod:`schemas.validation`; naming it, ``mmc populate CrossValidation``, requests it
for every fit in the restriction, since it costs C + 2 refits per fit).

``mmc populate [TABLE ...] [--restrict ATTR=VALUE ...] [--where SQL ...]`` fills them in this process with a
progress bar; before the fits, trials recorded as videos without keypoints get them (people detected in each
video file not yet detected, the subject chosen across cameras: :func:`pipeline.videos.video_step`)
(restrictions: :mod:`pipeline.restrictions`; a misspelt attribute or SQL is an error). Unless
``--no-auto-task`` is given, every session without a ``FitTask`` first gets one with the default base model and
the default parameters: ``cpu_sparse`` when the session's keypoint set sees the pelvis as two hips (COCO17,
HALPE26, BODY25B, BLAZEPOSE33: posture priors hold what the images leave free), else ``cpu_default``
(``--base-model NAME`` / ``--params NAME`` choose others). Errors are reported and
the run continues with the next key (``--stop-on-error`` to stop instead).

``mmc worker`` loops over the tables, so any number of processes on any number of machines sharing the MySQL
server split the work: each key is reserved atomically in the table's jobs table (``~~bilevel_fit`` …) before it
is computed, so every fit is computed exactly once. A failed key keeps its error message and traceback in the
jobs table (``mmc jobs``) and is not retried until cleared (``mmc jobs --clear``). Workers keep a heartbeat
(:mod:`pipeline.jobs`): reservations of dead workers are stale, shown by ``mmc status`` and released by every
worker before each round (or ``mmc jobs --release-stale``); SIGTERM and SIGINT put the running job back in the
queue and end the worker with exit code 143 or 130.
The persistent JAX compilation cache (``MMC_JAX_CACHE``, default ``~/.cache/mmc/jax``) is shared by all workers
of a machine, so only the first compiles; sessions are padded to shape buckets (``compute.fit.observations``), so
one compiled step serves every session of a bucket, and ``mmc warmup`` compiles the common buckets beforehand.

A SLURM array on a cluster whose nodes reach the database::

    #!/bin/bash
    #SBATCH --array=0-31 --cpus-per-task=4 --time=12:00:00
    export DJ_HOST=db.lab.org DJ_USER=$USER DJ_PASS=... MMC_SCHEMA_PREFIX=mmc
    export MMC_JAX_CACHE=/shared/scratch/$USER/jax-cache
    mmc worker --exit-when-idle

(run ``mmc populate --tasks-only`` once beforehand to create the tasks, or let each worker do it.)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.commands.params import outdated_lines
from pipeline.db import Database, open_database
from pipeline.importers.errors import IngestError
from pipeline.jax_setup import configure_jax
from pipeline.jobs import (HEARTBEAT_INTERVAL_S, WorkerGuard, WorkerInterrupted, populate_reserved, release_stale,
                           stale_reservations)
from pipeline.progress import format_running_fits, running_fits
from pipeline.restrictions import (add_restriction_arguments, parse_assignments, require_attributes,
                                   restrictions_for, unknown_attributes)

TABLE_NAMES: tuple[str, ...] = ("BilevelFit", "GaitMetrics", "GaitCycle", "SpatiotemporalParameters", "TrilevelFit",
                                 "CrossValidation")


# ---------------------------------------------------------------------------------------------------- set-up
def open_for_computing(prefix: str) -> Database:
    """:func:`pipeline.db.open_database` plus the default parameter sets every task may name."""
    database = open_database(prefix)
    database.schemas["fitting"].FitParams.ensure_defaults()
    return database


def computed_tables(modules: dict[str, ModuleType]) -> dict[str, Any]:
    """{table name: table class} of the computed tables, in dependency order (``TABLE_NAMES``)."""
    fitting, gait = modules["fitting"], modules["gait"]
    return {"BilevelFit": fitting.BilevelFit, "GaitMetrics": gait.GaitMetrics, "GaitCycle": gait.GaitCycle,
            "SpatiotemporalParameters": gait.SpatiotemporalParameters, "TrilevelFit": fitting.TrilevelFit,
            "CrossValidation": modules["validation"].CrossValidation}


def _select(tables: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    if not names or names == ["all"]:
        return tables
    lookup = {n.lower(): n for n in tables}
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        raise SystemExit(f"mmc: unknown table(s) {unknown}; expected one of {list(tables)} or 'all'")
    return {lookup[n.lower()]: tables[lookup[n.lower()]] for n in names}


def table_restrictions(tables: dict[str, Any], args: argparse.Namespace) -> dict[str, tuple | None]:
    """{table name: restrictions of its key source (AND), or None when the table is skipped}.

    ``--restrict ATTR=VALUE`` applies to the tables whose key source has every ATTR given; the other tables are
    skipped (a trial restriction says nothing about per-session fits). An ATTR that no selected table's key
    source has, a value of the wrong type, or a ``--where`` condition the server rejects is an
    :class:`IngestError` naming it (exit code 2), never a silent "nothing to do".
    """
    assignments = parse_assignments(args.restrict)
    headings = {name: set(table.key_source.heading.names) for name, table in tables.items()}
    unknown_everywhere = [a for a in assignments if not any(a.attribute in names for names in headings.values())]
    require_attributes(unknown_everywhere, set().union(*headings.values()),
                       f"the key source of {', '.join(tables)}")
    return {name: None if unknown_attributes(assignments, headings[name]) else
            restrictions_for(table.key_source, args.restrict, args.where, f"{name}'s key source")
            for name, table in tables.items()}


def add_tasks(modules: dict[str, ModuleType], args: argparse.Namespace) -> int:
    """Create missing FitTasks unless ``--no-auto-task``; returns how many were added.

    The command-line restrictions choose the sessions when they are all about ``Session`` (subject, session);
    restrictions on other attributes (a parameter set, a trial) add no task.
    """
    if args.no_auto_task:
        return 0
    session = modules["acquisition"].Session
    restriction = None
    if args.restrict or args.where:
        assignments = parse_assignments(args.restrict)
        foreign = unknown_attributes(assignments, session.heading.names)
        try:
            terms = () if foreign else restrictions_for(session, args.restrict, args.where, "acquisition.Session")
        except IngestError as error:  # a --where about fits or trials: not a session selection
            foreign = [str(error)]
        if foreign:
            print(f"mmc: no tasks added (the restriction is not about sessions: {foreign[0]})", file=sys.stderr)
            return 0
        import datajoint as dj

        restriction = dj.AndList(terms)
    return modules["fitting"].add_missing_fit_tasks(
        base_model=args.base_model, params_name=args.params, restriction=restriction)


# ------------------------------------------------------------------------------------------------- commands
def populate_command(args: argparse.Namespace) -> int:
    """``mmc populate``: fill the selected tables in this process; exit code 1 when any key failed."""
    database = open_for_computing(args.prefix)
    modules = database.schemas
    tables = _select(computed_tables(modules), args.tables)
    restrictions_by_table = table_restrictions(tables, args)  # validated before anything is written
    video_failures = 0
    if "BilevelFit" in tables and not args.tasks_only:  # keypoints from videos first: fits need them
        from pipeline.videos import video_step

        video_failures = video_step(args.restrict, args.where, database.connection)
    added = add_tasks(modules, args)
    if added:
        print(f"added {added} FitTask(s) ({args.params or 'cpu_sparse for sparse keypoint sets, else cpu_default'})")
        for line in outdated_lines(modules["fitting"].FitParams.outdated_packaged_sets()):
            print(line, file=sys.stderr)  # the new tasks use this database's stored sets, not the updated ones
    if "crossvalidation" in [n.lower() for n in args.tables or []] and \
            restrictions_by_table.get("CrossValidation") is not None:  # named: cross-validation is requested
        import datajoint as dj

        requested = modules["validation"].add_cross_validation_tasks(
            dj.AndList(restrictions_by_table["CrossValidation"]))
        if requested:
            print(f"added {requested} CrossValidationTask(s)")
    if args.tasks_only:
        return 0
    configure_jax()
    failures = video_failures
    if args.reserve_jobs:  # like a worker: heartbeat, and an interruption re-queues the job
        guard = WorkerGuard(tables, modules["jobs"].WorkerHeartbeat, database.connection, announce=_to_stderr)
    else:
        guard = contextlib.nullcontext()
    with guard:
        for name, table in tables.items():
            restrictions = restrictions_by_table[name]
            if restrictions is None:
                missing = unknown_attributes(parse_assignments(args.restrict), table.key_source.heading.names)
                print(f"{name}: skipped (its key source has no attribute {', '.join(missing)})")
                continue
            started = time.time()
            if args.reserve_jobs:
                result = populate_reserved(table, *restrictions, table_name=name, max_calls=args.max_calls)
            else:
                result = table.populate(*restrictions, display_progress=not args.quiet,
                                        suppress_errors=not args.stop_on_error, max_calls=args.max_calls)
            errors = result["error_list"]
            failures += len(errors)
            print(f"{name}: {result['success_count']} made, {len(errors)} failed ({time.time() - started:.1f} s)")
            for key, message in errors:
                print(f"  {name} {dict(key)}: {str(message).splitlines()[0][:300]}", file=sys.stderr)
    return 1 if failures else 0


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def worker_command(args: argparse.Namespace) -> int:
    """``mmc worker``: reserve, compute and complete jobs until idle (``--exit-when-idle``) or forever.

    Before each round, stale reservations (their workers are gone) go back to the queue. SIGTERM/SIGINT end the
    worker with 143/130 and put its running job back in the queue (:class:`pipeline.jobs.WorkerGuard`).
    """
    database = open_for_computing(args.prefix)
    modules = database.schemas
    configure_jax()
    tables = _select(computed_tables(modules), args.tables)
    restrictions_by_table = table_restrictions(tables, args)
    heartbeat_table = modules["jobs"].WorkerHeartbeat
    max_calls = args.max_calls
    tag = f"[worker {os.getpid()}]"

    def report_failure(name: str):
        return lambda key, message: _to_stderr(f"{tag} {name} {dict(key)} failed: {message.splitlines()[0][:300]}")

    total = 0
    try:
        with WorkerGuard(tables, heartbeat_table, database.connection, args.heartbeat, announce=_to_stderr):
            while True:
                for reservation, reason in release_stale(computed_tables(modules), heartbeat_table):
                    print(f"{tag} released stale {reservation.table} {reservation.key}: {reason}", flush=True)
                add_tasks(modules, args)
                made = 0
                for name, table in tables.items():
                    restrictions = restrictions_by_table[name]
                    if restrictions is None:
                        continue
                    result = populate_reserved(table, *restrictions, table_name=name, max_calls=max_calls,
                                               on_error=report_failure(name))
                    made += result["success_count"]
                    if result["success_count"]:
                        print(f"{tag} {name}: {result['success_count']} made", flush=True)
                total += made
                release_compiled_programs()
                if made:
                    continue  # downstream tables may have new keys: go round again at once
                if args.exit_when_idle or (max_calls is not None and total >= max_calls):
                    return 0
                time.sleep(args.poll)
    except WorkerInterrupted as interrupted:  # only when the guard's watcher could not end the process first
        _to_stderr(f"{tag} {interrupted}")
        return interrupted.exit_code


MAP_COUNT_RELEASE_FRACTION = 0.5
"""A worker drops its compiled programs once its memory maps pass this fraction of ``vm.max_map_count``."""


def memory_map_fraction() -> float | None:
    """This process's memory maps over the kernel's ``vm.max_map_count``; None where ``/proc`` does not say."""
    try:
        limit = int(Path("/proc/sys/vm/max_map_count").read_text())
        with open("/proc/self/maps", "rb") as maps:
            count = sum(1 for _ in maps)
    except (OSError, ValueError):
        return None
    return count / limit if limit > 0 else None


def release_compiled_programs(threshold: float = MAP_COUNT_RELEASE_FRACTION) -> bool:
    """Drop in-memory compiled XLA programs between worker rounds once they crowd the process; True if dropped.

    XLA:CPU keeps every loaded program memory-mapped; a worker that lives for days and meets sessions of many
    shapes would otherwise creep towards the kernel's vm.max_map_count.  Released only past ``threshold`` of it
    (always where the count cannot be read): a worker that keeps its programs fits the next session of the same
    shape bucket without loading the step again (about 2 s on a 2-core machine).  The persistent compilation
    cache and the exported traced programs (``compute.program_cache``) make a later load cheap.
    """
    fraction = memory_map_fraction()
    if fraction is not None and fraction < threshold:
        return False
    import jax

    jax.clear_caches()
    return True


def table_status(table) -> dict[str, int]:
    """done / to do / reserved / errors of one computed table."""
    remaining, total_keys = table.progress()
    jobs = table.jobs.progress()
    return dict(done=len(table()), to_do=int(remaining), reserved=jobs["reserved"], errors=jobs["error"],
                ignored=jobs["ignore"])


def status_command(args: argparse.Namespace) -> int:
    """``mmc status``: per computed table, rows done, keys to do, reserved and failed jobs; then the fits running
    on any machine (step, loss, speed, host) from ``schemas.jobs.FitProgress``."""
    modules = open_for_computing(args.prefix).schemas
    tables = computed_tables(modules)
    stale = stale_reservations(tables, modules["jobs"].WorkerHeartbeat)
    print(f"{'table':<14}{'done':>8}{'to do':>8}{'running':>9}{'stale':>7}{'errors':>8}")
    for name, table in tables.items():
        s = table_status(table)
        n_stale = sum(reservation.table == name for reservation, _ in stale)
        print(f"{name:<14}{s['done']:>8}{s['to_do']:>8}{s['reserved'] - n_stale:>9}{n_stale:>7}{s['errors']:>8}")
    fits = running_fits()
    if fits:
        print(f"fits running ({len(fits)}):")
        print("\n".join(format_running_fits(fits)))
    for reservation, reason in stale:
        print(f"stale: {reservation.table} {reservation.key}: {reason}")
    if stale:
        print("(`mmc jobs --release-stale` gives them back to the queue; running workers also do)")
    untasked = len(modules["acquisition"].Session.proj() - modules["fitting"].FitTask.proj())
    if untasked:
        print(f"({untasked} session(s) without a FitTask: `mmc populate` adds them)")
    for line in flagged_camera_lines(modules["validation"]):
        print(line)
    return 0


def flagged_camera_lines(validation: ModuleType) -> list[str]:
    """One line per camera that ``CrossValidation`` flagged (refined beyond a limit without held-out improvement)."""
    rows = (validation.CrossValidation.HeldOutCamera & "calibration_flagged").to_dicts(
        order_by="subject_id, session_id, params_name, camera_name")
    return [f"calibration flag: {r['subject_id']}/{r['session_id']} {r['params_name']} camera {r['camera_name']} "
            f"moved {r['rotation_change_deg']:.2f} deg / {r['centre_change_mm']:.0f} mm without held-out "
            f"improvement ({r['frames_refined_median_px']:.2f} px refined vs {r['frames_input_median_px']:.2f} px "
            "input)" for r in rows]


def jobs_command(args: argparse.Namespace) -> int:
    """``mmc jobs``: list failed (and running) jobs with their messages; ``--clear`` deletes the failed ones."""
    modules = open_for_computing(args.prefix).schemas
    tables = _select(computed_tables(modules), args.tables)
    if args.release_stale:
        released = release_stale(tables, modules["jobs"].WorkerHeartbeat)
        for reservation, reason in released:
            print(f"released {reservation.table} {reservation.key}: {reason}")
        print(f"{len(released)} stale reservation(s) back in the queue")
        return 0
    shown = 0
    for name, table in tables.items():
        jobs = table.jobs
        for row in (jobs & "status in ('error', 'reserved')").to_dicts(order_by="status, created_time"):
            key = {k: row[k] for k in jobs.primary_key}
            print(f"{name} {row['status']:<8} {key} host={row['host']} pid={row['pid']} "
                  f"at={row['completed_time'] or row['reserved_time']}")
            if row["error_message"]:
                print(f"    {row['error_message']}")
            if args.stack and row["error_stack"]:
                print("    " + str(row["error_stack"]).replace("\n", "\n    "))
            shown += 1
        if args.clear:
            states = "('error', 'reserved', 'ignore')" if args.all else "('error')"
            cleared = (jobs & f"status in {states}").delete_quick(get_count=True)
            print(f"{name}: cleared {cleared} job(s)")
    if not shown:
        print("no failed or running jobs")
    return 0


# ------------------------------------------------------------------------------------------------ argparse
def _add_common(parser: argparse.ArgumentParser, tables: bool = True) -> None:
    if tables:
        parser.add_argument("tables", nargs="*", metavar="TABLE",
                            help=f"computed table(s) among {', '.join(TABLE_NAMES)} (default: all)")
    add_restriction_arguments(parser, "the key source of each table")


def _add_task_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", metavar="NAME", help="FitParams for auto-created tasks (default: cpu_sparse for sessions with a sparse "
                        "keypoint set such as COCO17/HALPE26/BODY25B/BLAZEPOSE33, else cpu_default)")
    parser.add_argument("--base-model", metavar="NAME", help="BaseModel for auto-created tasks (default body40)")
    parser.add_argument("--no-auto-task", action="store_true",
                        help="do not add a FitTask for sessions that have none")


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``populate``, ``worker``, ``status`` and ``jobs`` to an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser("populate", help="compute the fit/gait tables in this process")
    _add_common(p)
    _add_task_options(p)
    p.add_argument("--tasks-only", action="store_true", help="only add the missing FitTasks")
    p.add_argument("--reserve-jobs", action="store_true", help="coordinate with running workers via jobs tables")
    p.add_argument("--max-calls", type=int, help="at most this many make() calls per table")
    p.add_argument("--stop-on-error", action="store_true", help="stop at the first failing key")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=populate_command)

    p = subparsers.add_parser("worker", help="loop populate(reserve_jobs=True): run one per core / machine")
    _add_common(p)
    _add_task_options(p)
    p.add_argument("--poll", type=float, default=30.0, help="seconds to wait when there is nothing to do")
    p.add_argument("--exit-when-idle", action="store_true", help="stop when no work is left")
    p.add_argument("--max-calls", type=int, help="stop after this many make() calls")
    p.add_argument("--heartbeat", type=float, default=HEARTBEAT_INTERVAL_S, metavar="SECONDS",
                   help="seconds between heartbeats; other machines presume this worker gone after 3 missed")
    p.set_defaults(handler=worker_command)

    p = subparsers.add_parser("status", help="done / to do / errors per computed table")
    p.set_defaults(handler=status_command)

    p = subparsers.add_parser("jobs", help="list failed and running jobs; --clear deletes failed ones")
    p.add_argument("tables", nargs="*", metavar="TABLE")
    p.add_argument("--clear", action="store_true", help="delete the error jobs so they are retried")
    p.add_argument("--all", action="store_true", help="with --clear: also reserved and ignored jobs")
    p.add_argument("--stack", action="store_true", help="print tracebacks")
    p.add_argument("--release-stale", action="store_true",
                   help="give reservations of dead workers (see `mmc status`) back to the queue")
    p.set_defaults(handler=jobs_command)
