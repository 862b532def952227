"""Database fixtures: a real MySQL-compatible server and a throw-away schema prefix per test session.

- ``db_config``: the resolved :class:`pipeline.config.Config` after ``ensure_server`` (a private server is started
  under ``<data_dir>/mysql`` if nothing is reachable; it is left running for the next test run).
- ``db_connection``: the DataJoint connection (also the ``dj.conn()`` singleton).
- ``db_prefix``: a unique ``mmct_<hex8>`` prefix with every schema module activated (lookups filled, provenance
  from ``pipeline.provenance``); all its schemas are dropped at teardown, even when tests fail.
  ``activated_schemas`` yields {module name: module}; ``database`` the same as a ``pipeline.db.Database``.
"""
from __future__ import annotations

import dataclasses
import uuid

import pytest


@pytest.fixture(scope="session")
def db_config():
    from pipeline import db
    from pipeline.config import load_config

    try:
        return db.ensure_server(load_config(), verbose=False)
    except db.DatabaseError as error:  # the README's test command starts one first: a missing server is a failure
        pytest.fail(f"no database server: {error}")


@pytest.fixture(scope="session")
def db_connection(db_config):
    from pipeline import db

    return db.connect(db_config)


@pytest.fixture(scope="session")
def _activated(db_connection, db_config):
    import schemas
    from pipeline.provenance import provenance

    prefix = f"mmct_{uuid.uuid4().hex[:8]}"
    try:
        modules = schemas.activate(prefix, db_connection, provenance=provenance)
        yield prefix, modules
    finally:
        try:
            if db_connection.in_transaction:
                db_connection.cancel_transaction()
        finally:
            schemas.drop_all(prefix, db_connection)


@pytest.fixture(scope="session")
def db_prefix(_activated) -> str:
    return _activated[0]


@pytest.fixture(scope="session")
def activated_schemas(_activated) -> dict:
    return _activated[1]


@pytest.fixture(scope="session")
def db_test_config(db_config, db_prefix):
    """``db_config`` with the test prefix (for code that takes a Config)."""
    return dataclasses.replace(db_config, schema_prefix=db_prefix)


@pytest.fixture(scope="session")
def database(db_connection, db_test_config, db_prefix, activated_schemas):
    """The test prefix as an opened :class:`pipeline.db.Database` (for code that takes one)."""
    from pipeline.db import Database

    return Database(prefix=db_prefix, connection=db_connection, config=db_test_config, schemas=activated_schemas)
