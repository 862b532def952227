"""``mmc populate``, ``mmc worker``, ``mmc status`` and ``mmc jobs``: running the computed tables.

Computed tables, in dependency order: ``BilevelFit`` (key source ``FitTask``), ``GaitMetrics`` (one per fitted
walking trial), ``TrilevelFit`` (key source ``TrilevelTask``).

``mmc populate [TABLE ...] [--restrict SQL ...]`` fills them in this process with a progress bar. Unless
``--no-auto-task`` is given, every session without a ``FitTask`` first gets one with the default base model and
the ``cpu_default`` parameters (``--base-model NAME`` / ``--params NAME`` choose others). Errors are reported and
the run continues with the next key (``--stop-on-error`` to stop instead).

``mmc worker`` loops ``populate(reserve_jobs=True)`` over the tables, so any number of processes on any number
of machines sharing the MySQL server split the work: each key is reserved atomically in the table's jobs table
(``~~bilevel_fit`` …) before it is computed, so every fit is computed exactly once. A failed key keeps its error
message and traceback in the jobs table (``mmc jobs``) and is not retried until cleared (``mmc jobs --clear``).
The persistent JAX compilation cache (``MMC_JAX_CACHE``, default ``~/.cache/mmc/jax``) is shared by all workers
of a machine, so only the first compiles.

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
import os
import sys
import time
from pathlib import Path
from typing import Any

TABLE_NAMES: tuple[str, ...] = ("BilevelFit", "GaitMetrics", "TrilevelFit")


# ---------------------------------------------------------------------------------------------------- set-up
def configure_jax_cache() -> Path:
    """Enable JAX's persistent compilation cache (same directory and thresholds as tests/conftest.py)."""
    cache_dir = Path(os.environ.get("MMC_JAX_CACHE", Path.home() / ".cache" / "mmc" / "jax")).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return cache_dir


def activate(prefix: str | None = None) -> dict:
    """Activate all schema modules (``schemas.activate``) and make sure the default parameter sets exist."""
    import schemas

    modules = schemas.activate(prefix)
    if "fitting" in modules:
        modules["fitting"].FitParams.ensure_defaults()
    return modules


def computed_tables(modules: dict) -> dict[str, Any]:
    """{table name: table class} of the computed tables whose schema module is available, in dependency order."""
    found = {}
    for name in TABLE_NAMES:
        for module in modules.values():
            table = getattr(module, name, None)
            if table is not None:
                found[name] = table
                break
    return found


def _select(tables: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    if not names or names == ["all"]:
        return tables
    lookup = {n.lower(): n for n in tables}
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        raise SystemExit(f"mmc: unknown table(s) {unknown}; expected one of {list(tables)} or 'all'")
    return {lookup[n.lower()]: tables[lookup[n.lower()]] for n in names}


def _restrictions(table, restrict: list[str] | None) -> list | None:
    """The restrictions that apply to ``table``'s key source; None when one names an attribute it lacks."""
    if not restrict:
        return []
    try:
        len(table.key_source & dj_and(restrict))
    except Exception:  # unknown column: this restriction is about other tables
        return None
    return [dj_and(restrict)]


def dj_and(restrict: list[str]):
    import datajoint as dj

    return dj.AndList(restrict)


def add_tasks(modules: dict, args) -> int:
    """Create missing FitTasks unless ``--no-auto-task``; returns how many were added."""
    if getattr(args, "no_auto_task", False) or "fitting" not in modules:
        return 0
    restriction = dj_and(args.restrict) if getattr(args, "restrict", None) else None
    try:
        return modules["fitting"].add_missing_fit_tasks(
            base_model=getattr(args, "base_model", None), params_name=getattr(args, "params", None) or "cpu_default",
            restriction=restriction)
    except Exception as error:  # e.g. a restriction on attributes Session does not have
        if restriction is None:
            raise
        print(f"mmc: no tasks added ({error.__class__.__name__}: {error})", file=sys.stderr)
        return 0


# ------------------------------------------------------------------------------------------------- commands
def populate_command(args) -> int:
    """``mmc populate``: fill the selected tables in this process; exit code 1 when any key failed."""
    modules = activate(getattr(args, "prefix", None))
    added = add_tasks(modules, args)
    if added:
        print(f"added {added} FitTask(s) ({getattr(args, 'params', None) or 'cpu_default'})")
    if getattr(args, "tasks_only", False):
        return 0
    configure_jax_cache()
    failures = 0
    for name, table in _select(computed_tables(modules), getattr(args, "tables", None)).items():
        restrictions = _restrictions(table, getattr(args, "restrict", None))
        if restrictions is None:
            print(f"{name}: restriction does not apply, skipped")
            continue
        started = time.time()
        result = table.populate(*restrictions, display_progress=not getattr(args, "quiet", False),
                                suppress_errors=not getattr(args, "stop_on_error", False),
                                reserve_jobs=getattr(args, "reserve_jobs", False),
                                max_calls=getattr(args, "max_calls", None))
        errors = result["error_list"]
        failures += len(errors)
        print(f"{name}: {result['success_count']} made, {len(errors)} failed ({time.time() - started:.1f} s)")
        for key, message in errors:
            print(f"  {name} {dict(key)}: {str(message).splitlines()[0][:300]}", file=sys.stderr)
    return 1 if failures else 0


def worker_command(args) -> int:
    """``mmc worker``: loop ``populate(reserve_jobs=True)`` until idle (``--exit-when-idle``) or forever."""
    modules = activate(getattr(args, "prefix", None))
    configure_jax_cache()
    tables = _select(computed_tables(modules), getattr(args, "tables", None))
    poll_s = float(getattr(args, "poll", 30.0))
    exit_when_idle = bool(getattr(args, "exit_when_idle", False))
    max_calls = getattr(args, "max_calls", None)
    total = 0
    while True:
        add_tasks(modules, args)
        made = 0
        for name, table in tables.items():
            restrictions = _restrictions(table, getattr(args, "restrict", None))
            if restrictions is None:
                continue
            result = table.populate(*restrictions, reserve_jobs=True, suppress_errors=True,
                                    display_progress=False, max_calls=max_calls)
            made += result["success_count"]
            for key, message in result["error_list"]:
                print(f"[worker {os.getpid()}] {name} {dict(key)} failed: {str(message).splitlines()[0][:300]}",
                      file=sys.stderr, flush=True)
            if result["success_count"]:
                print(f"[worker {os.getpid()}] {name}: {result['success_count']} made", flush=True)
        total += made
        release_compiled_programs()
        if made:
            continue  # downstream tables may have new keys: go round again at once
        if exit_when_idle or (max_calls is not None and total >= max_calls):
            return 0
        time.sleep(poll_s)


def release_compiled_programs() -> None:
    """Drop in-memory compiled XLA programs between worker rounds.

    XLA:CPU keeps every loaded program memory-mapped; a worker that lives for days and meets sessions of many
    shapes would otherwise creep towards the kernel's vm.max_map_count. The persistent compilation cache makes
    the next load cheap.
    """
    import jax

    jax.clear_caches()


def table_status(table) -> dict[str, int]:
    """done / to do / reserved / errors of one computed table."""
    remaining, total_keys = table.progress()
    jobs = table.jobs.progress()
    return dict(done=len(table()), to_do=int(remaining), reserved=jobs["reserved"], errors=jobs["error"],
                ignored=jobs["ignore"])


def status_command(args) -> int:
    """``mmc status``: per computed table, rows done, keys to do, reserved and failed jobs."""
    modules = activate(getattr(args, "prefix", None))
    print(f"{'table':<14}{'done':>8}{'to do':>8}{'running':>9}{'errors':>8}")
    for name, table in computed_tables(modules).items():
        s = table_status(table)
        print(f"{name:<14}{s['done']:>8}{s['to_do']:>8}{s['reserved']:>9}{s['errors']:>8}")
    if "fitting" in modules:
        fitting = modules["fitting"]
        untasked = len(modules["acquisition"].Session.proj() - fitting.FitTask.proj())
        if untasked:
            print(f"({untasked} session(s) without a FitTask: `mmc populate` adds them)")
    return 0


def jobs_command(args) -> int:
    """``mmc jobs``: list failed (and running) jobs with their messages; ``--clear`` deletes the failed ones."""
    modules = activate(getattr(args, "prefix", None))
    tables = _select(computed_tables(modules), getattr(args, "tables", None))
    shown = 0
    for name, table in tables.items():
        jobs = table.jobs
        for row in (jobs & "status in ('error', 'reserved')").to_dicts(order_by="status, created_time"):
            key = {k: row[k] for k in jobs.primary_key}
            print(f"{name} {row['status']:<8} {key} host={row['host']} pid={row['pid']} "
                  f"at={row['completed_time'] or row['reserved_time']}")
            if row["error_message"]:
                print(f"    {row['error_message']}")
            if getattr(args, "stack", False) and row.get("error_stack"):
                print("    " + str(row["error_stack"]).replace("\n", "\n    "))
            shown += 1
        if getattr(args, "clear", False):
            states = "('error', 'reserved', 'ignore')" if getattr(args, "all", False) else "('error')"
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
    parser.add_argument("--restrict", action="append", metavar="SQL",
                        help="restriction on the key source, e.g. \"subject_id='S01'\" (repeatable: AND)")


def _add_task_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", metavar="NAME", help="FitParams for auto-created tasks (default cpu_default)")
    parser.add_argument("--base-model", metavar="NAME", help="BaseModel for auto-created tasks (default body40)")
    parser.add_argument("--no-auto-task", action="store_true",
                        help="do not add a FitTask for sessions that have none")


def register(subparsers) -> None:
    """Add ``populate``, ``worker``, ``status`` and ``jobs`` to an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser("populate", help="compute the fit/gait tables in this process")
    _add_common(p)
    _add_task_options(p)
    p.add_argument("--tasks-only", action="store_true", help="only add the missing FitTasks")
    p.add_argument("--reserve-jobs", action="store_true", help="coordinate with running workers via jobs tables")
    p.add_argument("--max-calls", type=int, help="at most this many make() calls per table")
    p.add_argument("--stop-on-error", action="store_true", help="stop at the first failing key")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=populate_command)

    p = subparsers.add_parser("worker", help="loop populate(reserve_jobs=True): run one per core / machine")
    _add_common(p)
    _add_task_options(p)
    p.add_argument("--poll", type=float, default=30.0, help="seconds to wait when there is nothing to do")
    p.add_argument("--exit-when-idle", action="store_true", help="stop when no work is left")
    p.add_argument("--max-calls", type=int, help="stop after this many make() calls")
    p.set_defaults(func=worker_command)

    p = subparsers.add_parser("status", help="done / to do / errors per computed table")
    p.set_defaults(func=status_command)

    p = subparsers.add_parser("jobs", help="list failed and running jobs; --clear deletes failed ones")
    p.add_argument("tables", nargs="*", metavar="TABLE")
    p.add_argument("--clear", action="store_true", help="delete the error jobs so they are retried")
    p.add_argument("--all", action="store_true", help="with --clear: also reserved and ignored jobs")
    p.add_argument("--stack", action="store_true", help="print tracebacks")
    p.set_defaults(func=jobs_command)


def _parser() -> tuple[argparse.ArgumentParser, Any]:
    parser = argparse.ArgumentParser(prog="mmc")
    parser.add_argument("--prefix", help="schema prefix (default MMC_SCHEMA_PREFIX or mmc)")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.populate {populate,worker,status,jobs} …`` (the same as ``mmc …``)."""
    args = _parser().parse_args(argv)
    return int(args.func(args) or 0)


def _run(command: str, argv: list[str]) -> int:
    """Entry for ``mmc <command> ARGS`` (pipeline.cli hands over the remaining arguments)."""
    return main([command, *argv])


def populate_main(argv: list[str]) -> int:
    return _run("populate", argv)


def worker_main(argv: list[str]) -> int:
    return _run("worker", argv)


def status_main(argv: list[str]) -> int:
    return _run("status", argv)


def jobs_main(argv: list[str]) -> int:
    return _run("jobs", argv)


if __name__ == "__main__":
    sys.exit(main())
