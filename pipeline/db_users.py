"""``mmc db user add NAME [--read-only]``: one database account per person, with rights on this project only.

Every account gets rights on the schemas ``<prefix>_…`` (the pattern ``<prefix>\\_%``, underscores escaped so
they match literally) and nothing else: a read-write account may create, fill and delete the project's tables
and use the jobs tables, so it can run ``mmc worker``; a ``--read-only`` account may only query them (reports,
notebooks). The password is generated, printed once, and never stored by ``mmc``: hand it to the person, who puts
it in ``DJ_PASS`` or ``datajoint.json``. The command itself must be run by an account allowed to create users
and grant those rights (``root`` on the private server, a database administrator on a lab server).
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from pipeline.config import load_config
from pipeline.credentials import generate_password
from pipeline.db import DatabaseError, connect, ensure_server

READ_WRITE_PRIVILEGES: tuple[str, ...] = (
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX", "ALTER", "REFERENCES",
    "CREATE TEMPORARY TABLES", "LOCK TABLES", "CREATE VIEW", "SHOW VIEW")
READ_ONLY_PRIVILEGES: tuple[str, ...] = ("SELECT", "SHOW VIEW")
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")  # MySQL 8 allows 32 characters
_PREFIX = re.compile(r"[A-Za-z0-9_]+")
_ACCOUNT_HOST = re.compile(r"[A-Za-z0-9_.%:-]+")


class UserError(DatabaseError):
    """A user name, host or prefix that cannot be used, or an account that already exists."""


@dataclass(frozen=True)
class Account:
    """A created account: ``name@host`` with ``password``, rights on the schemas matching ``schema_pattern``."""

    name: str
    host: str
    password: str
    read_only: bool
    schema_pattern: str


def schema_pattern(prefix: str) -> str:
    """The grant pattern for the project's schemas: ``mmc`` → ``mmc\\_%`` (``_`` is a wildcard in grants)."""
    if not _PREFIX.fullmatch(prefix):
        raise UserError(f"schema prefix {prefix!r}: expected letters, digits and underscores")
    return prefix.replace("_", "\\_") + "\\_%"


def grant_statement(prefix: str, read_only: bool) -> str:
    """``GRANT … ON `<prefix>\\_%%`.* TO %s@%s``: user and host are bound as query arguments, so the
    pattern's ``%`` is doubled for the driver's parameter substitution."""
    privileges = READ_ONLY_PRIVILEGES if read_only else READ_WRITE_PRIVILEGES
    pattern = schema_pattern(prefix).replace("%", "%%")
    return f"GRANT {', '.join(privileges)} ON `{pattern}`.* TO %s@%s"


def add_user(connection, name: str, prefix: str, *, read_only: bool = False, host: str = "%") -> Account:
    """Create ``name@host`` with a generated password and rights on ``<prefix>_…`` only; returns the account.

    connection: a DataJoint connection of an account allowed to create users and grant these rights.
    Raises UserError for a malformed name/host/prefix or an account that already exists.
    """
    if not _USER_NAME.fullmatch(name):
        raise UserError(f"user name {name!r}: expected up to 32 letters, digits, '_', '.', '-'")
    if not _ACCOUNT_HOST.fullmatch(host):
        raise UserError(f"host {host!r}: expected a host name, an IP address or a pattern such as '%'")
    grant = grant_statement(prefix, read_only)
    exists = connection.query("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = %s",
                              args=(name, host)).fetchone()[0]
    if exists:
        raise UserError(f"account '{name}'@'{host}' already exists")
    password = generate_password()
    connection.query("CREATE USER %s@%s IDENTIFIED BY %s", args=(name, host, password))
    connection.query(grant, args=(name, host))
    return Account(name=name, host=host, password=password, read_only=read_only,
                   schema_pattern=schema_pattern(prefix))


def describe_account(account: Account, server: str, prefix: str) -> str:
    """What ``mmc db user add`` prints: the rights, the password (shown this once) and how to connect."""
    rights = "read-only" if account.read_only else "read-write"
    return (f"created '{account.name}'@'{account.host}' with {rights} rights on schemas "
            f"{account.schema_pattern} only\n"
            f"password (shown once, not stored): {account.password}\n"
            f"connect with: DJ_HOST={server} DJ_USER={account.name} DJ_PASS='{account.password}' "
            f"MMC_SCHEMA_PREFIX={prefix}")


def user_add_command(args: argparse.Namespace) -> int:
    """``mmc db user add NAME [--read-only] [--host PATTERN]``: create the account, print its password once."""
    config = ensure_server(load_config(), verbose=False)
    account = add_user(connect(config), args.name, args.prefix, read_only=args.read_only, host=args.host)
    print(describe_account(account, f"{config.host}:{config.port}", args.prefix))
    return 0


def register_commands(db_subparsers: argparse._SubParsersAction) -> None:
    """Add ``user add`` to the ``mmc db`` sub-commands (handler in ``set_defaults(handler=…)``)."""
    user = db_subparsers.add_parser("user", help="database accounts with rights on this project's schemas")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="create an account; prints its generated password once")
    add.add_argument("name", help="account name (up to 32 letters, digits, '_', '.', '-')")
    add.add_argument("--read-only", action="store_true", help="SELECT only (reports, notebooks)")
    add.add_argument("--host", default="%", help="hosts it may connect from (default '%%': anywhere)")
    add.set_defaults(handler=user_add_command)
