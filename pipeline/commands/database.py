"""``mmc db up|status|stop``: the database server's lifecycle (see :mod:`pipeline.db`)."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from pipeline import db, db_users
from pipeline.credentials import credentials_path
from pipeline.config import is_reachable, load_config


def db_up(args: argparse.Namespace) -> int:
    """Make sure a server answers (starting the private one when nothing was configured); print how to reach it."""
    config = db.ensure_server(load_config())
    print(f"database reachable: {dataclasses.replace(config, schema_prefix=args.prefix).describe()}")
    if config.source == "private":
        print(f"  export DJ_HOST={config.host}:{config.port} DJ_USER=root "
              f"DJ_PASS=<the password in {credentials_path(config.data_dir)}>")
    return 0


def db_status(args: argparse.Namespace) -> int:
    """Server version, the prefix's schemas and their row counts; exit code 1 when no server answers."""
    config = dataclasses.replace(load_config(), schema_prefix=args.prefix)
    if not is_reachable(config.host, config.port):
        print(f"no server reachable at {config.host}:{config.port} (run `mmc db up`)", file=sys.stderr)
        return 1
    print(db.format_status(db.server_status(config)))
    return 0


def db_stop(args: argparse.Namespace) -> int:
    """Stop the private server recorded by ``mmc db up`` (never any other server)."""
    stopped = db.stop_server(load_config())
    print("private server stopped" if stopped else "no private server recorded; nothing stopped")
    return 0


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``db`` with its ``up``, ``status`` and ``stop`` sub-commands."""
    parser = subparsers.add_parser("db", help="database server: up | status | stop")
    commands = parser.add_subparsers(dest="db_command", required=True)
    commands.add_parser("up", help="make sure a server is reachable (start a private one if needed)"
                        ).set_defaults(handler=db_up)
    commands.add_parser("status", help="server version, schemas and row counts").set_defaults(handler=db_status)
    commands.add_parser("stop", help="stop the private server started by `mmc db up`").set_defaults(handler=db_stop)
    db_users.register_commands(commands)
