"""``mmc ingest session|calibration|keypoints|walkway``: load lab files into the database (see
:mod:`pipeline.manifest`).

A whole session is inserted in one transaction or not at all. Bad input raises ``IngestError``, which ``mmc``
prints as one line (file, field, expectation) with exit code 2; the database is then unchanged.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

from pipeline.db import open_database, open_existing_database


def _manifest() -> ModuleType:
    """``pipeline.manifest``, imported only when a command ingests: its importers start JAX (~2 s), which the
    other ``mmc`` commands, all registered by importing this module, do not need."""
    from pipeline import manifest

    return manifest


def ingest_session(args: argparse.Namespace) -> int:
    """A session from its manifest TOML; ``--dry-run`` validates against the database when its schemas already
    exist (built-in lookups otherwise) and inserts nothing."""
    if args.dry_run:
        database = open_existing_database(args.prefix)
        connection = database.connection if database is not None else None
        plans = _manifest().ingest_sessions(args.manifest, connection=connection, dry_run=True)
        print("\n".join(plan.summary() for plan in plans))
        print("dry run: nothing inserted")
        return 0
    database = open_database(args.prefix)
    plans = _manifest().ingest_sessions(args.manifest, connection=database.connection)
    for plan in plans:
        print(plan.summary())
        print(f"inserted session {plan.session['subject_id']}/{plan.session['session_id']}")
    return 0


def ingest_calibration(args: argparse.Namespace) -> int:
    """The cameras of an existing session from an anipose or Caliscope calibration file."""
    database = open_database(args.prefix)
    rows = _manifest().ingest_calibration(args.subject, args.session, args.file, args.format, args.unit,
                                          database.connection, dry_run=args.dry_run)
    verb = "would insert" if args.dry_run else "inserted"
    print(f"{verb} {len(rows)} cameras: {', '.join(r['camera_name'] for r in rows)}")
    return 0


def ingest_keypoints(args: argparse.Namespace) -> int:
    """One trial's keypoints (and optionally its walkway CSV) for an existing session."""
    database = open_database(args.prefix)
    trial = dict(name=args.trial, activity=args.activity, fps=args.fps, keypoints=str(Path(args.path).resolve()),
                 keypoints_format=args.format, keypoint_set=args.keypoint_set,
                 assistive_device=args.assistive_device)
    if args.walkway:
        trial["walkway"] = str(Path(args.walkway).resolve())
    if args.detector:
        trial["detector"] = args.detector
    plan = _manifest().ingest_trial(args.subject, args.session, trial, Path.cwd(), database.connection,
                                    dry_run=args.dry_run, source=args.path)
    print(plan.summary())
    print("dry run: nothing inserted" if args.dry_run else "inserted")
    return 0


def ingest_walkway(args: argparse.Namespace) -> int:
    """The walkway footfalls of an existing trial."""
    database = open_database(args.prefix)
    rows = _manifest().ingest_walkway(args.subject, args.session, args.trial, args.file, database.connection,
                                      dry_run=args.dry_run)
    print(f"{'would insert' if args.dry_run else 'inserted'} {len(rows)} footfalls")
    return 0


def _add_session_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subject", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--dry-run", action="store_true")


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ingest`` with its ``session``, ``calibration``, ``keypoints`` and ``walkway`` sub-commands."""
    ingest = subparsers.add_parser("ingest", help="load files into the database")
    commands = ingest.add_subparsers(dest="ingest_command", required=True)

    session = commands.add_parser("session", help="a whole session from a manifest TOML")
    session.add_argument("manifest")
    session.add_argument("--dry-run", action="store_true", help="validate and print, insert nothing")
    session.set_defaults(handler=ingest_session)

    calibration = commands.add_parser("calibration", help="cameras of an existing session")
    _add_session_key(calibration)
    calibration.add_argument("file")
    calibration.add_argument("--format", choices=("anipose", "caliscope"), default="anipose")
    calibration.add_argument("--unit", choices=("m", "mm"), help="translation unit (default: inferred)")
    calibration.set_defaults(handler=ingest_calibration)

    keypoints = commands.add_parser("keypoints", help="a trial's keypoints for an existing session")
    _add_session_key(keypoints)
    keypoints.add_argument("path", help="openpose folder, caliscope CSV or folder of <camera>.npz")
    keypoints.add_argument("--trial", required=True)
    keypoints.add_argument("--activity", required=True)
    keypoints.add_argument("--fps", type=float, required=True)
    keypoints.add_argument("--format", choices=("openpose", "caliscope", "npz"), required=True)
    keypoints.add_argument("--keypoint-set", required=True)
    keypoints.add_argument("--assistive-device", default="none")
    keypoints.add_argument("--detector", default="")
    keypoints.add_argument("--walkway", help="walkway CSV for this trial")
    keypoints.set_defaults(handler=ingest_keypoints)

    walkway = commands.add_parser("walkway", help="walkway footfalls of an existing trial")
    _add_session_key(walkway)
    walkway.add_argument("--trial", required=True)
    walkway.add_argument("file")
    walkway.set_defaults(handler=ingest_walkway)
