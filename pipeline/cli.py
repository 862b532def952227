"""``mmc``: the command line.

Built-in: ``mmc db up|status|stop``, ``mmc ingest session MANIFEST [--dry-run]``,
``mmc ingest calibration|keypoints|walkway …`` (add to an existing session).

Other modules plug in through :data:`COMMANDS` (or :func:`register_command`): ``name -> (module, function, help)``.
The module is imported only when the command runs, and ``function(argv: list[str]) -> int | None`` receives the
remaining arguments (it builds its own argparse parser). The database is not touched before the command asks for it.

Errors in input files print one line ``error: <file>: <field>: <expected>`` and exit with code 2; the database is
unchanged.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from pipeline.importers.errors import IngestError

EXIT_BAD_INPUT = 2

# name -> (module, function, help); function(argv) -> int | None
COMMANDS: dict[str, tuple[str, str, str]] = {
    "populate": ("pipeline.populate", "populate_main", "run pending computations (fits, gait metrics)"),
    "worker": ("pipeline.populate", "worker_main", "long-running worker that reserves and runs jobs"),
    "status": ("pipeline.populate", "status_main", "progress of every computed table"),
    "jobs": ("pipeline.populate", "jobs_main", "list / clear job errors and reservations"),
    "report": ("pipeline.report", "main", "figures and tables for a session or population"),
    "export": ("pipeline.exporters", "main", "export fits (.trc, .mot, OpenSim model, CSV)"),
    "demo": ("pipeline.demo", "main", "run the whole pipeline on bundled / synthetic data"),
    "synth": ("pipeline.synth", "main", "write a synthetic session (files + manifest + truth.npz)"),
}


def register_command(name: str, module: str, function: str, help: str = "") -> None:
    """Add (or replace) an ``mmc <name>`` command implemented by ``module.function(argv)``."""
    COMMANDS[name] = (module, function, help)


# --------------------------------------------------------------------------------------------- helpers
def _database(args):
    """(config, connection) with schemas activated under the chosen prefix."""
    import dataclasses

    import schemas
    from pipeline import db
    from pipeline.config import load_config

    config = load_config()
    if getattr(args, "prefix", None):
        config = dataclasses.replace(config, schema_prefix=args.prefix)
    config = db.ensure_server(config)
    connection = db.connect(config)
    schemas.activate(config.schema_prefix, connection)
    return config, connection


def _existing_database(args):
    """Connection with schemas activated if the prefix's acquisition schema already exists, else None.

    A dry run never creates schemas or starts a server; without a database it validates against built-in lookups.
    """
    import dataclasses

    import schemas
    from pipeline import db
    from pipeline.config import is_reachable, load_config

    config = load_config()
    if getattr(args, "prefix", None):
        config = dataclasses.replace(config, schema_prefix=args.prefix)
    if not is_reachable(config.host, config.port):
        return None
    try:
        connection = db.connect(config)
    except db.DatabaseError:
        return None
    if schemas.schema_name(config.schema_prefix, "acquisition") not in schemas.existing_schemas(
            config.schema_prefix, connection):
        return None
    schemas.activate(config.schema_prefix, connection)
    return connection


# --------------------------------------------------------------------------------------------- db
def cmd_db(args) -> int:
    from pipeline import db
    from pipeline.config import load_config

    config = load_config()
    if args.db_command == "up":
        config = db.ensure_server(config)
        print(f"database reachable: {config.describe()}")
        if config.source == "private":
            print(f"  export DJ_HOST={config.host}:{config.port} DJ_USER=root DJ_PASS=")
        return 0
    if args.db_command == "status":
        if getattr(args, "prefix", None):
            import dataclasses

            config = dataclasses.replace(config, schema_prefix=args.prefix)
        from pipeline.config import is_reachable

        if not is_reachable(config.host, config.port):
            print(f"no server reachable at {config.host}:{config.port} (run `mmc db up`)", file=sys.stderr)
            return 1
        print(db.format_status(db.server_status(config)))
        return 0
    if args.db_command == "stop":
        stopped = db.stop_server(config)
        print("private server stopped" if stopped else "no private server recorded; nothing stopped")
        return 0
    raise AssertionError(args.db_command)


# --------------------------------------------------------------------------------------------- ingest
def cmd_ingest(args) -> int:
    from pipeline import manifest

    if args.ingest_command == "session":
        if args.dry_run:
            connection = _existing_database(args)
            plan = manifest.ingest_session(args.manifest, connection=connection, dry_run=True)
            print(plan.summary())
            print("dry run: nothing inserted")
            return 0
        _, connection = _database(args)
        plan = manifest.ingest_session(args.manifest, connection=connection)
        print(plan.summary())
        print(f"inserted session {plan.session['subject_id']}/{plan.session['session_id']}")
        return 0

    _, connection = _database(args)
    if args.ingest_command == "calibration":
        rows = manifest.ingest_calibration(args.subject, args.session, args.file, args.format, args.unit, connection,
                                           dry_run=args.dry_run)
        verb = "would insert" if args.dry_run else "inserted"
        print(f"{verb} {len(rows)} cameras: {', '.join(r['camera_name'] for r in rows)}")
        return 0
    if args.ingest_command == "keypoints":
        trial = dict(name=args.trial, activity=args.activity, fps=args.fps, keypoints=str(Path(args.path).resolve()),
                     keypoints_format=args.format, keypoint_set=args.keypoint_set,
                     assistive_device=args.assistive_device)
        if args.walkway:
            trial["walkway"] = str(Path(args.walkway).resolve())
        if args.detector:
            trial["detector"] = args.detector
        plan = manifest.ingest_trial(args.subject, args.session, trial, Path.cwd(), connection,
                                     dry_run=args.dry_run, source=args.path)
        print(plan.summary())
        print("dry run: nothing inserted" if args.dry_run else "inserted")
        return 0
    if args.ingest_command == "walkway":
        rows = manifest.ingest_walkway(args.subject, args.session, args.trial, args.file, connection,
                                       dry_run=args.dry_run)
        print(f"{'would insert' if args.dry_run else 'inserted'} {len(rows)} footfalls")
        return 0
    raise AssertionError(args.ingest_command)


# --------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmc", description="Markerless motion capture biomechanics pipeline.")
    parser.add_argument("--prefix", help="schema prefix (default: MMC_SCHEMA_PREFIX or 'mmc')")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    db_parser = sub.add_parser("db", help="database server: up | status | stop")
    db_sub = db_parser.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("up", help="make sure a server is reachable (start a private one if needed)")
    db_sub.add_parser("status", help="server version, schemas and row counts")
    db_sub.add_parser("stop", help="stop the private server started by `mmc db up`")

    ingest = sub.add_parser("ingest", help="load files into the database")
    ingest_sub = ingest.add_subparsers(dest="ingest_command", required=True)
    session = ingest_sub.add_parser("session", help="a whole session from a manifest TOML")
    session.add_argument("manifest")
    session.add_argument("--dry-run", action="store_true", help="validate and print, insert nothing")

    def session_key(p):
        p.add_argument("--subject", required=True)
        p.add_argument("--session", required=True)
        p.add_argument("--dry-run", action="store_true")

    calibration = ingest_sub.add_parser("calibration", help="cameras of an existing session")
    session_key(calibration)
    calibration.add_argument("file")
    calibration.add_argument("--format", choices=("anipose", "caliscope"), default="anipose")
    calibration.add_argument("--unit", choices=("m", "mm"), help="translation unit (default: inferred)")

    keypoints = ingest_sub.add_parser("keypoints", help="a trial's keypoints for an existing session")
    session_key(keypoints)
    keypoints.add_argument("path", help="openpose folder, caliscope CSV or folder of <camera>.npz")
    keypoints.add_argument("--trial", required=True)
    keypoints.add_argument("--activity", required=True)
    keypoints.add_argument("--fps", type=float, required=True)
    keypoints.add_argument("--format", choices=("openpose", "caliscope", "npz"), required=True)
    keypoints.add_argument("--keypoint-set", required=True)
    keypoints.add_argument("--assistive-device", default="none")
    keypoints.add_argument("--detector", default="")
    keypoints.add_argument("--walkway", help="walkway CSV for this trial")

    walkway = ingest_sub.add_parser("walkway", help="walkway footfalls of an existing trial")
    session_key(walkway)
    walkway.add_argument("--trial", required=True)
    walkway.add_argument("file")

    for name, (module, function, help_text) in COMMANDS.items():
        external = sub.add_parser(name, help=help_text, add_help=False)
        external.add_argument("argv", nargs=argparse.REMAINDER)
    return parser


def run_external(name: str, argv: list[str]) -> int:
    module_name, function_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            print(f"error: `mmc {name}` is not available yet ({module_name} is not installed)", file=sys.stderr)
            return 1
        raise
    function = getattr(module, function_name, None)
    if function is None:
        print(f"error: `mmc {name}` is not available yet ({module_name}.{function_name} missing)", file=sys.stderr)
        return 1
    result = function(list(argv))
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # external commands get their arguments untouched (argparse REMAINDER would swallow a leading --option)
    position = 2 if argv[:1] == ["--prefix"] else 1 if argv[:1] and argv[0].startswith("--prefix=") else 0
    if len(argv) > position and argv[position] in COMMANDS:
        args, _ = parser.parse_known_args(argv[:position + 1])
        args.argv = argv[position + 1:]
    else:
        args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    import os

    saved_prefix = os.environ.get("MMC_SCHEMA_PREFIX")
    if args.prefix:
        os.environ["MMC_SCHEMA_PREFIX"] = args.prefix  # external commands read the configuration too
    try:
        if args.command == "db":
            return cmd_db(args)
        if args.command == "ingest":
            return cmd_ingest(args)
        return run_external(args.command, args.argv)
    except IngestError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # database and other failures: one line, no traceback
        from pipeline.db import DatabaseError

        if isinstance(error, DatabaseError):
            print(f"error: {error}", file=sys.stderr)
            return 1
        raise
    finally:
        if args.prefix:
            if saved_prefix is None:
                os.environ.pop("MMC_SCHEMA_PREFIX", None)
            else:
                os.environ["MMC_SCHEMA_PREFIX"] = saved_prefix


if __name__ == "__main__":
    sys.exit(main())
