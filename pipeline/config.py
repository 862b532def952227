"""Where the database is and which schema prefix to use.

Resolution order for the connection (first that applies wins):

1. ``DJ_HOST`` / ``DJ_PORT`` / ``DJ_USER`` / ``DJ_PASS`` environment variables (DataJoint's own names);
2. DataJoint 2.x's project config file ``datajoint.json`` (searched upward from the working directory),
   keys ``database.host``/``port``/``user``/``password`` (flat or nested);
3. ``127.0.0.1:3306`` if something answers there;
4. a private server started earlier by ``mmc db up`` and recorded in ``<data_dir>/mysql/server.json``;
5. otherwise ``127.0.0.1:3306`` (unreachable: ``ensure_server`` will start a private server).

1 and 2 name a server explicitly: when it does not answer, ``ensure_server`` says so instead of starting a private
server.

``MMC_SCHEMA_PREFIX`` (default ``mmc``) prefixes every schema (``<prefix>_acquisition`` …) so several users or test
runs share one server. It is read here, once, as a configuration source (``mmc --prefix`` overrides it); inside the
program the prefix is passed as an argument. ``MMC_DATA_DIR`` (default ``<repo>/.mmc`` in a checkout, else
``~/.local/share/mmc``) holds the private server's data directory and other local state.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.credentials import load_private_password

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3306
DEFAULT_USER = "root"
DEFAULT_SCHEMA_PREFIX = "mmc"


@dataclass(frozen=True)
class Config:
    """Connection and storage settings (immutable; use ``dataclasses.replace`` to change)."""

    host: str
    port: int
    user: str
    password: str
    schema_prefix: str
    data_dir: Path
    source: str  # where host/port came from: "env", "datajoint.json", "default", "private"
    private_server: dict | None = None  # contents of server.json when the private server is used

    @property
    def server_json(self) -> Path:
        return self.data_dir / "mysql" / "server.json"

    def with_private_server(self, info: dict) -> "Config":
        """This config pointed at a private server described by ``info`` (server.json contents), as root with the
        password generated when the server was initialised (``<data_dir>/mysql/credentials.json``, mode 0600)."""
        return replace(self, host=DEFAULT_HOST, port=int(info["port"]), user=DEFAULT_USER,
                       password=load_private_password(self.data_dir) or "", source="private", private_server=info)

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port} (from {self.source}), schema prefix '{self.schema_prefix}'"


def repo_root() -> Path | None:
    """The checkout containing this package (has pyproject.toml next to pipeline/), or None when installed."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "pipeline").is_dir() else None


def default_data_dir() -> Path:
    root = repo_root()
    if root is not None:
        return root / ".mmc"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "mmc"


def is_reachable(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` succeeds (does not check that it is MySQL)."""
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def _read_datajoint_json(start: Path | None = None) -> dict:
    """Database settings from DataJoint's ``datajoint.json`` (flat ``database.host`` or nested), or {}."""
    current = (start or Path.cwd()).resolve()
    while True:
        candidate = current / "datajoint.json"
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text())
            except (OSError, ValueError):
                return {}
            out = {}
            nested = data.get("database", {}) if isinstance(data.get("database"), dict) else {}
            for key in ("host", "port", "user", "password"):
                value = data.get(f"database.{key}", nested.get(key))
                if value is not None:
                    out[key] = value
            return out
        if (current / ".git").exists() or current.parent == current:
            return {}
        current = current.parent


def read_server_json(data_dir: Path) -> dict | None:
    path = Path(data_dir) / "mysql" / "server.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _split_host(host: str, port: int | None) -> tuple[str, int | None]:
    if ":" in host and not host.startswith("["):
        host, port_text = host.rsplit(":", 1)
        return host, int(port_text)
    return host, port


def load_config(environ: dict | None = None, probe: bool = True) -> Config:
    """Resolve the configuration from the environment, ``datajoint.json`` and a running private server.

    ``probe=False`` skips the reachability checks (no network access): the default host is then used as is.
    """
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("MMC_DATA_DIR") or default_data_dir()).expanduser()
    prefix = env.get("MMC_SCHEMA_PREFIX") or DEFAULT_SCHEMA_PREFIX
    file_settings = _read_datajoint_json()

    user = env.get("DJ_USER") or file_settings.get("user") or DEFAULT_USER
    password = env.get("DJ_PASS", file_settings.get("password", "")) or ""
    port_env = env.get("DJ_PORT")

    if env.get("DJ_HOST"):
        host, port = _split_host(env["DJ_HOST"], int(port_env) if port_env else None)
        return Config(host, port or DEFAULT_PORT, user, password, prefix, data_dir, "env")
    if file_settings.get("host"):
        port_value = port_env or file_settings.get("port")
        host, port = _split_host(str(file_settings["host"]), int(port_value) if port_value else None)
        return Config(host, port or DEFAULT_PORT, user, password, prefix, data_dir, "datajoint.json")

    default_port = int(port_env) if port_env else DEFAULT_PORT
    config = Config(DEFAULT_HOST, default_port, user, password, prefix, data_dir, "default")
    if not probe or is_reachable(DEFAULT_HOST, default_port):
        return config
    info = read_server_json(data_dir)
    if info and is_reachable(DEFAULT_HOST, int(info["port"])):
        return config.with_private_server(info)
    return config
