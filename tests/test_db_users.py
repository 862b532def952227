"""Who gets into the database: per-person accounts limited to the project's schemas, and a private server
whose root password is generated and kept in a file only its owner can read."""
from __future__ import annotations

import json
import shutil
import stat
import uuid

import pytest

from pipeline import db
from pipeline.config import load_config
from pipeline.credentials import (CredentialsError, credentials_path, load_private_password,
                                  save_private_password)
from pipeline.db_users import UserError, add_user, grant_statement, schema_pattern


def test_grants_name_the_project_schemas_with_literal_underscores():
    assert schema_pattern("mmc") == "mmc\\_%"
    assert schema_pattern("lab_a") == "lab\\_a\\_%"  # 'lab_a' must not also match 'labXa_…'
    assert grant_statement("mmc", read_only=True) == "GRANT SELECT, SHOW VIEW ON `mmc\\_%%`.* TO %s@%s"
    assert "INSERT" in grant_statement("mmc", read_only=False)
    with pytest.raises(UserError):
        schema_pattern("mmc`; DROP DATABASE mysql; --")


def test_credentials_file_is_readable_by_its_owner_only(tmp_path):
    path = save_private_password(tmp_path, "root", "s3cret")
    assert path == credentials_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_private_password(tmp_path) == "s3cret"
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_private_password(tmp_path)
    assert load_private_password(tmp_path / "elsewhere") is None


@pytest.fixture
def account_name(db_connection):
    name = f"mmct_{uuid.uuid4().hex[:8]}"
    yield name
    db_connection.query("DROP USER IF EXISTS %s@%s", args=(name, "%"))


def _login(db_config, account, database: str | None = None):
    import pymysql

    return pymysql.connect(host=db_config.host, port=db_config.port, user=account.name,
                           password=account.password, database=database)


def _fails(connection, sql: str) -> bool:
    import pymysql

    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    except pymysql.MySQLError:
        return True
    return False


@pytest.mark.db
def test_read_only_account_reads_the_project_and_nothing_else(db_connection, db_config, db_prefix,
                                                              activated_schemas, account_name):
    account = add_user(db_connection, account_name, db_prefix, read_only=True)
    with pytest.raises(UserError, match="already exists"):
        add_user(db_connection, account_name, db_prefix, read_only=True)
    with _login(db_config, account) as connection:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM `{db_prefix}_acquisition`.`#population`")
            assert cursor.fetchone()[0] >= 6
            cursor.execute("SHOW DATABASES")
            visible = {row[0] for row in cursor.fetchall()} - {"information_schema"}
        assert visible and all(name.startswith(f"{db_prefix}_") for name in visible), visible
        assert _fails(connection, f"DELETE FROM `{db_prefix}_acquisition`.`#population`")
        assert _fails(connection, "SELECT COUNT(*) FROM mysql.user")


@pytest.mark.db
def test_read_write_account_writes_the_project_but_cannot_create_other_schemas(
        db_connection, db_config, db_prefix, activated_schemas, account_name):
    account = add_user(db_connection, account_name, db_prefix)
    with _login(db_config, account) as connection:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE `{db_prefix}_acquisition`.`scratch_{account_name}` (x INT)")
            cursor.execute(f"DROP TABLE `{db_prefix}_acquisition`.`scratch_{account_name}`")
        assert _fails(connection, f"CREATE DATABASE `other_{account_name}`")
        assert _fails(connection, "SELECT COUNT(*) FROM mysql.user")


@pytest.mark.skipif(db.find_server_binary() is None, reason="no mariadbd/mysqld binary installed")
def test_private_server_root_needs_the_generated_password(tmp_path):
    import pymysql

    config = load_config({"DJ_PORT": "1", "MMC_DATA_DIR": str(tmp_path)}, probe=False)
    try:
        private = db.ensure_server(config, verbose=False)
        path = credentials_path(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        password = json.loads(path.read_text())["password"]
        assert len(password) >= 24 and private.password == password
        with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
            pymysql.connect(host="127.0.0.1", port=private.port, user="root", password="")
        pymysql.connect(host="127.0.0.1", port=private.port, user="root", password=password).close()
        # the configuration finds the running private server and its password on its own
        resolved = load_config({"DJ_PORT": "1", "MMC_DATA_DIR": str(tmp_path)})
        assert (resolved.source, resolved.port, resolved.password) == ("private", private.port, password)
    finally:
        db.stop_server(config)  # whatever failed, leave no server behind
    shutil.rmtree(tmp_path / "mysql", ignore_errors=True)
