"""DataJoint schemas: declared at import with ``dj.Schema()`` (no name), bound to a prefix by :func:`activate`.

``activate("mmc")`` binds ``schemas.acquisition`` to ``mmc_acquisition``, ``schemas.model`` to ``mmc_model`` and so
on, creating tables and filling lookup tables. Schema modules that do not exist yet are skipped.
"""
from __future__ import annotations

import importlib
import warnings
from types import ModuleType

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "no datajoint.json found"
    import datajoint as dj  # noqa: F401

# dependency order: later modules reference tables of earlier ones
SCHEMA_MODULES: tuple[str, ...] = ("acquisition", "model", "fitting", "gait")


def schema_name(prefix: str, module: str) -> str:
    return f"{prefix}_{module}"


def _import_schema_module(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"schemas.{module}")
    except ModuleNotFoundError as error:
        if error.name == f"schemas.{module}":
            return None  # not written yet
        raise


def activate(prefix: str | None = None, connection=None) -> dict[str, ModuleType]:
    """Bind every existing schema module to ``<prefix>_<module>``; returns {module name: module}.

    ``connection`` defaults to ``pipeline.db.connect()`` of the current configuration; ``prefix`` defaults to the
    configured ``MMC_SCHEMA_PREFIX``. Lookup contents are inserted by DataJoint on activation.
    """
    from pipeline import db
    from pipeline.config import load_config

    if prefix is None or connection is None:
        config = load_config()
        prefix = prefix or config.schema_prefix
        connection = connection or db.connect(config)
    activated: dict[str, ModuleType] = {}
    for module_name in SCHEMA_MODULES:
        module = _import_schema_module(module_name)
        if module is None:
            continue
        name = schema_name(prefix, module_name)
        schema = module.schema
        if schema.database is not None and schema.database != name:
            # re-binding a schema object to another prefix is only possible once the old schema is gone
            if schema.connection is not connection or schema.exists:
                schema.database = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schema.activate(name, connection=connection)
        activated[module_name] = module
    return activated


def existing_schemas(prefix: str, connection) -> list[str]:
    """Names of the project's schemas with this prefix that exist on the server, in dependency order."""
    rows = connection.query(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
        args=(prefix.replace("_", "\\_") + "\\_%",)).fetchall()
    present = {row[0] for row in rows}
    return [schema_name(prefix, m) for m in SCHEMA_MODULES if schema_name(prefix, m) in present]


def drop_all(prefix: str, connection=None) -> list[str]:
    """Drop ``<prefix>_gait``, ``_fitting``, ``_model``, ``_acquisition`` (reverse dependency order); returns names."""
    if connection is None:
        from pipeline import db

        connection = db.connect()
    dropped = []
    for name in reversed(existing_schemas(prefix, connection)):
        try:
            connection.query(f"DROP DATABASE `{name}`")
        except Exception:
            # a schema outside our list may still reference this one: drop without FK checks
            connection.query("SET FOREIGN_KEY_CHECKS=0")
            try:
                connection.query(f"DROP DATABASE `{name}`")
            finally:
                connection.query("SET FOREIGN_KEY_CHECKS=1")
        connection.schemas.pop(name, None)
        dropped.append(name)
    connection.dependencies.clear()
    return dropped
