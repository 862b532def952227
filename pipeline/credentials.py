"""The private server's root password: generated once, kept in a file only its owner can read.

A private server (``mmc db up``) is initialised with an empty root password, which would let every account of
the machine into every schema. Right after initialisation :func:`secure_private_server` gives each ``root``
account a generated password, drops anonymous accounts, and saves the password in
``<data_dir>/mysql/credentials.json`` (mode 0600, next to ``server.json``). The configuration reads it back with
:func:`load_private_password`. A credentials file that others can read is refused, as ssh refuses such keys.
"""
from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

CREDENTIALS_FILE = "credentials.json"
PASSWORD_BYTES = 24  # 32 URL-safe characters


class CredentialsError(RuntimeError):
    """The credentials file is unsafe or unreadable, or the server refused to be secured."""


def credentials_path(data_dir: Path) -> Path:
    """``<data_dir>/mysql/credentials.json``: where the private server's root password is kept."""
    return Path(data_dir) / "mysql" / CREDENTIALS_FILE


def generate_password() -> str:
    """A random password of 32 URL-safe characters (192 bits from the OS's secure generator)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def write_user_only(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 from the first byte on (never briefly world-readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # the umask cannot widen it, an existing file keeps no old mode
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
    return path


def save_private_password(data_dir: Path, user: str, password: str) -> Path:
    """Record the private server's account in ``credentials_path(data_dir)`` (mode 0600)."""
    return write_user_only(credentials_path(data_dir), json.dumps({"user": user, "password": password}) + "\n")


def load_private_password(data_dir: Path) -> str | None:
    """The private server's root password from ``credentials_path(data_dir)``; None when there is no file.

    Raises CredentialsError when the file can be read by its group or others, or is not the expected JSON.
    """
    path = credentials_path(data_dir)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(f"{path} is readable by other accounts (mode {stat.S_IMODE(mode):03o}): "
                               f"run `chmod 600 {path}`")
    try:
        return str(json.loads(path.read_text())["password"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CredentialsError(f"{path}: expected {{\"user\": …, \"password\": …}} ({error})") from None


def secure_private_server(host: str, port: int, data_dir: Path) -> str:
    """Give every ``root`` account of a freshly initialised server a generated password and drop anonymous
    accounts; returns the password, saved first in ``credentials_path(data_dir)``.

    The server must still accept root without a password (as ``mariadb-install-db
    --auth-root-authentication-method=normal`` and ``mysqld --initialize-insecure`` leave it).
    """
    import pymysql

    password = generate_password()
    try:
        connection = pymysql.connect(host=host, port=int(port), user="root", password="", connect_timeout=5)
    except pymysql.MySQLError as error:
        raise CredentialsError(f"cannot secure the server at {host}:{port}: root without a password is refused "
                               f"and {credentials_path(data_dir)} does not exist ({error})") from None
    path = save_private_password(data_dir, "root", password)  # first: a lost password would lock us out
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT User, Host FROM mysql.user WHERE User IN ('root', '')")
            for user, account_host in cursor.fetchall():
                if user == "root":
                    cursor.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, account_host, password))
                else:
                    cursor.execute("DROP USER %s@%s", (user, account_host))
            cursor.execute("FLUSH PRIVILEGES")
    except pymysql.MySQLError as error:
        path.unlink(missing_ok=True)
        raise CredentialsError(f"cannot set the root password at {host}:{port}: {error}") from None
    finally:
        connection.close()
    return password
