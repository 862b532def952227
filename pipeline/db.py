"""Database lifecycle: connect, start/stop a private MySQL-compatible server, report status.

A private server is only started when nothing was configured (no ``DJ_HOST``, no ``datajoint.json``) and
nothing answers at the default address; a configured server that does not answer is an error. The private server
runs from the user's own ``mariadbd``/``mysqld`` binary with its data directory under ``<data_dir>/mysql/data``,
its own port (3307 or the next free one, bound to 127.0.0.1 only) and socket; at initialisation root gets a
generated password, kept in ``<data_dir>/mysql/credentials.json`` readable by its owner only
(:mod:`pipeline.credentials`). It never touches a server the user already runs. Its pid, port and paths are
recorded in ``<data_dir>/mysql/server.json``.

Every command reaches the database through :func:`open_database` (or :func:`open_existing_database` for a dry
run, which never starts a server or creates a schema): resolve the configuration, make sure the server answers,
connect, and bind the schema modules to ``<prefix>_acquisition`` … with the provenance recorder that fit rows use.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import schemas
from pipeline.config import DEFAULT_HOST, Config, is_reachable, load_config, read_server_json
from pipeline.credentials import CredentialsError, credentials_path, load_private_password, secure_private_server
from pipeline.progress import FitProgressReporter
from pipeline.provenance import provenance

NO_SERVER_HELP = (
    "no MySQL-compatible server binary (mariadbd or mysqld) found on PATH or in /usr/sbin: "
    "install Debian package mariadb-server (apt-get install mariadb-server) "
    "or run the datajoint/mysql:8.0 container (docker run -d -p 3306:3306 -e MYSQL_ROOT_PASSWORD=simple "
    "datajoint/mysql:8.0, then set DJ_HOST=127.0.0.1 DJ_USER=root DJ_PASS=simple)"
)
PRIVATE_PORT = 3307
# Config.source values that name a server explicitly -> the setting to name in an error
CONFIGURED_SOURCES = {"env": "DJ_HOST", "datajoint.json": "datajoint.json"}


class DatabaseError(RuntimeError):
    """A server could not be reached or started."""


class ConfiguredServerUnreachable(DatabaseError):
    """The server named by ``DJ_HOST`` or ``datajoint.json`` does not answer (a setting to fix, not a reason to
    start a private server)."""


@dataclass(frozen=True)
class Database:
    """An open database: the schema prefix, the DataJoint connection, the resolved configuration (its
    ``schema_prefix`` is ``prefix``) and every activated schema module by name (``{"acquisition": module,
    "model": …, "fitting": …, "gait": …}``, in dependency order, as ``schemas.activate`` returns them)."""

    prefix: str
    connection: Any
    config: Config
    schemas: dict[str, ModuleType]


def open_database(prefix: str, *, config: Config | None = None,
                  progress: schemas.FitProgressFactory | None = None) -> Database:
    """Connect and bind every schema module to ``<prefix>_<module>`` (creating missing tables and lookups).

    ``config`` defaults to :func:`pipeline.config.load_config`; a server is made reachable by
    :func:`ensure_server` first (a private one is started only when nothing was configured).  ``progress``:
    how running fits report their steps (default: a :class:`pipeline.progress.FitProgressReporter` on stderr
    that also keeps the ``FitProgress`` rows ``mmc status`` shows).
    """
    config = replace(ensure_server(config or load_config()), schema_prefix=prefix)
    connection = connect(config)
    modules = schemas.activate(prefix, connection, provenance=provenance,
                               progress=progress if progress is not None else FitProgressReporter())
    return Database(prefix=prefix, connection=connection, config=config, schemas=modules)


def open_existing_database(prefix: str, *, config: Config | None = None) -> Database | None:
    """Like :func:`open_database`, but only when the server already answers and ``<prefix>_acquisition``
    exists; otherwise None. Never starts a server and never creates a schema (for dry runs)."""
    config = replace(config or load_config(), schema_prefix=prefix)
    if not is_reachable(config.host, config.port):
        return None
    try:
        connection = connect(config)
    except DatabaseError:
        return None
    if schemas.schema_name(prefix, "acquisition") not in schemas.existing_schemas(prefix, connection):
        return None
    modules = schemas.activate(prefix, connection, provenance=provenance)
    return Database(prefix=prefix, connection=connection, config=config, schemas=modules)


def _import_datajoint():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no datajoint.json found" is not news to us
        import datajoint as dj
    if not os.environ.get("DJ_LOG_LEVEL"):
        logging.getLogger("datajoint").setLevel(logging.WARNING)  # no "connected to" chatter
    return dj


def connect(config: Config | None = None):
    """DataJoint connection for ``config`` (also made the ``dj.conn()`` singleton, and written into ``dj.config``).

    Reuses the existing singleton when it already points at the same server, so schemas stay bound.
    """
    dj = _import_datajoint()
    import datajoint.instance as instance_module

    config = config or load_config()
    dj.config["database.host"] = config.host
    dj.config["database.port"] = int(config.port)
    dj.config["database.user"] = config.user
    dj.config["database.password"] = config.password
    existing = instance_module._singleton_connection
    if existing is not None:
        info = existing.conn_info
        if (info["host"], int(info["port"]), info["user"]) == (config.host, int(config.port), config.user):
            if not existing.is_connected:
                existing.connect()
            return existing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MariaDB "best-effort" warning
        try:
            return dj.conn(host=config.host, user=config.user, password=config.password, reset=True)
        except Exception as error:  # pymysql / DataJoint errors: one line
            raise DatabaseError(f"cannot connect to {config.describe()}: {error}") from None


# ----------------------------------------------------------------------------------------------- private server
def find_server_binary() -> tuple[Path, Path | None, bool] | None:
    """(server binary, install-db script or None, is_mariadb) or None when no server is installed."""
    search = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/usr/local/sbin"
    for name in ("mariadbd", "mysqld"):
        binary = shutil.which(name, path=search)
        if binary is None:
            continue
        try:
            version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        is_mariadb = "mariadb" in version.lower()
        installer = None
        if is_mariadb:
            for tool in ("mariadb-install-db", "mysql_install_db"):
                found = shutil.which(tool, path=search)
                if found:
                    installer = Path(found)
                    break
        return Path(binary), installer, is_mariadb
    return None


def _free_port(preferred: int = PRIVATE_PORT) -> int:
    for port in [preferred, *range(preferred + 1, preferred + 50)]:
        if is_reachable(DEFAULT_HOST, port, timeout_s=0.2):
            continue
        with socket.socket() as probe:
            try:
                probe.bind((DEFAULT_HOST, port))
                return port
            except OSError:
                continue
    with socket.socket() as probe:
        probe.bind((DEFAULT_HOST, 0))
        return probe.getsockname()[1]


def _socket_path(mysql_dir: Path) -> Path:
    path = mysql_dir / "mysqld.sock"
    if len(str(path)) < 100:  # unix socket paths are limited to ~108 bytes
        return path
    import hashlib

    return Path("/tmp") / f"mmc-{hashlib.sha1(str(mysql_dir).encode()).hexdigest()[:10]}.sock"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _as_root_args() -> list[str]:
    return ["--user=root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def start_private_server(config: Config, timeout_s: float = 60.0, verbose: bool = True) -> Config:
    """Initialise (first time) and start the private server under ``<data_dir>/mysql``; return a config for it."""
    found = find_server_binary()
    if found is None:
        raise DatabaseError(NO_SERVER_HELP)
    binary, installer, is_mariadb = found
    mysql_dir = Path(config.data_dir) / "mysql"
    datadir = mysql_dir / "data"
    mysql_dir.mkdir(parents=True, exist_ok=True)
    log_file = mysql_dir / "server.log"

    if not (datadir / "mysql").is_dir():
        datadir.mkdir(parents=True, exist_ok=True)
        if is_mariadb:
            if installer is None:
                raise DatabaseError("found mariadbd but not mariadb-install-db: " + NO_SERVER_HELP)
            command = [str(installer), "--no-defaults", f"--datadir={datadir}",
                       "--auth-root-authentication-method=normal", "--skip-test-db", *_as_root_args()]
        else:  # Oracle MySQL 8
            command = [str(binary), "--no-defaults", "--initialize-insecure", f"--datadir={datadir}",
                       *_as_root_args()]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
            raise DatabaseError(f"initialising {datadir} with {command[0]} failed: {tail[0]}")

    port = _free_port()
    sock = _socket_path(mysql_dir)
    pid_file = mysql_dir / "mysqld.pid"
    command = [str(binary), "--no-defaults", f"--datadir={datadir}", f"--port={port}",
               f"--bind-address={DEFAULT_HOST}", f"--socket={sock}", f"--pid-file={pid_file}",
               f"--log-error={log_file}", "--innodb-buffer-pool-size=128M", "--max-connections=200",
               *_as_root_args()]
    with open(os.devnull, "wb") as devnull:
        process = subprocess.Popen(command, stdout=devnull, stderr=devnull, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DatabaseError(f"private server exited with code {process.returncode}; see {log_file}")
        if is_reachable(DEFAULT_HOST, port, timeout_s=0.2):
            break
        time.sleep(0.2)
    else:
        process.terminate()
        raise DatabaseError(f"private server did not open port {port} within {timeout_s:.0f} s; see {log_file}")
    info = dict(pid=process.pid, port=port, host=DEFAULT_HOST, socket=str(sock), datadir=str(datadir),
                binary=str(binary), log=str(log_file), started=time.strftime("%Y-%m-%dT%H:%M:%S"))
    (mysql_dir / "server.json").write_text(json.dumps(info, indent=2))
    # the port opens slightly before logins work: wait for one (plain pymysql, the dj.conn() singleton is untouched)
    import pymysql

    password = load_private_password(config.data_dir) or ""
    while True:
        try:
            pymysql.connect(host=DEFAULT_HOST, port=port, user="root", password=password, connect_timeout=2).close()
            break
        except pymysql.MySQLError as error:
            if time.monotonic() > deadline:
                raise DatabaseError(f"private server on port {port} refuses root login: {error}") from None
            time.sleep(0.3)
    if not password:  # first start: every local account could log in as root; give root a generated password
        try:
            secure_private_server(DEFAULT_HOST, port, config.data_dir)
        except CredentialsError as error:
            raise DatabaseError(str(error)) from None
    private = config.with_private_server(info)
    if verbose:
        print(f"started private {binary.name} (pid {process.pid}) on {DEFAULT_HOST}:{port}, data in {datadir}\n"
              f"connect with: DJ_HOST={DEFAULT_HOST}:{port} DJ_USER=root DJ_PASS=<the password in "
              f"{credentials_path(config.data_dir)}>", file=sys.stderr)
    return private


def ensure_server(config: Config | None = None, verbose: bool = True) -> Config:
    """Return a config whose server answers: the configured one if reachable, else a (new) private server.

    Raises :class:`ConfiguredServerUnreachable` when the server was configured explicitly (``DJ_HOST``,
    ``datajoint.json``) and does not answer: the private server stands in only when nothing was configured.
    """
    config = config or load_config()
    if is_reachable(config.host, config.port):
        return config
    if config.source in CONFIGURED_SOURCES:
        raise ConfiguredServerUnreachable(
            f"no server answers at {config.host}:{config.port} (set by {CONFIGURED_SOURCES[config.source]}): "
            f"start it or change the setting")
    info = read_server_json(config.data_dir)
    if info and is_reachable(DEFAULT_HOST, int(info["port"])):
        return config.with_private_server(info)
    if verbose:
        print(f"no server reachable at {config.host}:{config.port}; starting a private one", file=sys.stderr)
    return start_private_server(config, verbose=verbose)


def stop_server(config: Config | None = None, timeout_s: float = 30.0) -> bool:
    """Stop the private server recorded in ``server.json`` (only that process). True if one was stopped."""
    config = config or load_config(probe=False)
    info = read_server_json(config.data_dir)
    if not info:
        return False
    pid = int(info["pid"])
    server_json = Path(config.data_dir) / "mysql" / "server.json"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        cmdline = None
    if cmdline is not None and info["datadir"] not in cmdline:
        server_json.unlink(missing_ok=True)  # pid was reused by another process: not ours
        return False
    if _process_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _process_alive(pid) and time.monotonic() < deadline:
            try:  # reap if it is our child
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
    server_json.unlink(missing_ok=True)
    return True


# ----------------------------------------------------------------------------------------------- status
def server_status(config: Config | None = None, connection=None) -> dict:
    """Server version, address, private-server info, and per-schema table row counts for the prefix.

    Returns ``{"address", "version", "private_server", "schema_prefix", "schemas": {schema: {table: rows}}}``.
    """
    config = config or load_config()
    connection = connection or connect(config)
    version = connection.query("SELECT VERSION()").fetchone()[0]
    pattern = config.schema_prefix.replace("_", "\\_") + "\\_%"
    names = [row[0] for row in connection.query(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s ORDER BY schema_name",
        args=(pattern,)).fetchall()]
    schemas: dict[str, dict[str, int]] = {}
    for schema in names:
        tables = [row[0] for row in connection.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
            args=(schema,)).fetchall()]
        schemas[schema] = {
            table: int(connection.query(f"SELECT COUNT(*) FROM `{schema}`.`{table}`").fetchone()[0])
            for table in tables}
    return dict(address=f"{config.host}:{config.port}", version=version, private_server=config.private_server,
                schema_prefix=config.schema_prefix, schemas=schemas)


def format_status(status: dict) -> str:
    lines = [f"server {status['address']}  version {status['version']}"]
    if status.get("private_server"):
        info = status["private_server"]
        lines.append(f"private server pid {info['pid']}, data {info['datadir']}")
    if not status["schemas"]:
        lines.append(f"no schemas with prefix '{status['schema_prefix']}_' (run `mmc ingest` or `mmc demo`)")
    for schema, tables in status["schemas"].items():
        lines.append(f"{schema}")
        for table, rows in tables.items():
            lines.append(f"  {table:<40s} {rows:>8d}")
    return "\n".join(lines)
