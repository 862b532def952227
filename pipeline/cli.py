"""``mmc``: the command line.

One ``argparse`` tree. The top parser holds the global options (``--prefix``, ``-v/--verbose``); every module in
:data:`COMMAND_MODULES` adds its own sub-commands through ``register_commands(subparsers) -> None``, giving each
leaf parser ``set_defaults(handler=function)`` with ``function(args) -> int``. The schema prefix is resolved once
(``--prefix``, else the configured ``MMC_SCHEMA_PREFIX``, else ``mmc``) into ``args.prefix``; handlers pass it to
:func:`pipeline.db.open_database`. The database is not touched before a command asks for it.

Errors in input files print one line ``error: <file>: <field>: <expected>`` and exit with code 2; the database is
unchanged. A server configured explicitly (``DJ_HOST``, ``datajoint.json``) that does not answer is a setting
to fix: one line, exit code 2. A database that cannot be reached or started otherwise prints one line and exits
with code 1. ``--verbose`` adds the traceback below the line.
"""
from __future__ import annotations

import argparse
import re
import sys
import traceback
from types import ModuleType

from pipeline import demo, exporters, populate, report, synth
from pipeline.commands import database, ingest, params, render, warmup
from pipeline.config import load_config
from pipeline.credentials import CredentialsError
from pipeline.db import ConfiguredServerUnreachable, DatabaseError
from pipeline.importers.errors import IngestError
from pipeline.jax_setup import cache_max_bytes, configure_xla_flags

EXIT_BAD_INPUT = 2
EXIT_DATABASE = 1
EXIT_INTERRUPTED = 130

# A schema prefix becomes part of database names (`<prefix>_acquisition`): MySQL identifiers are at most 64
# characters, and quoting rules differ between servers, so only lower-case letters, digits and underscores.
PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")

# in the order `mmc --help` lists them
COMMAND_MODULES: tuple[ModuleType, ...] = (database, ingest, populate, warmup, params, report, exporters, render, synth,
                                           demo)


def build_parser() -> argparse.ArgumentParser:
    """The whole ``mmc`` command tree."""
    parser = argparse.ArgumentParser(prog="mmc", description="Markerless motion capture biomechanics pipeline.")
    parser.add_argument("--prefix", help="schema prefix (default: MMC_SCHEMA_PREFIX or 'mmc')")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register_commands(subparsers)
    return parser


def resolve_prefix(given: str | None) -> str:
    """``--prefix`` when given, else the configured prefix (``MMC_SCHEMA_PREFIX``, default ``mmc``).

    Raises IngestError (one line, exit 2) for a prefix that could not name a database safely.
    """
    prefix = given if given is not None else load_config(probe=False).schema_prefix
    if not PREFIX_PATTERN.fullmatch(prefix):
        source = "--prefix" if given is not None else "MMC_SCHEMA_PREFIX"
        raise IngestError("command line" if given is not None else "environment", source,
                          f"{prefix!r}: expected a lower-case letter then up to 39 lower-case letters, digits or "
                          "underscores")
    return prefix


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process arguments), run the chosen command, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.command is None:
        parser.print_help()
        return 0
    # before any command can start JAX's backend (the demo generates its sessions with JAX before fitting)
    configure_xla_flags()
    try:
        args.prefix = resolve_prefix(args.prefix)
        cache_max_bytes()  # a bad MMC_JAX_CACHE_MAX_MB stops every command before it touches the database
        return int(args.handler(args))
    except CredentialsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (IngestError, DatabaseError) as error:
        print(f"error: {error}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_BAD_INPUT if isinstance(error, (IngestError, ConfiguredServerUnreachable)) else EXIT_DATABASE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
