"""DataJoint schemas: declared at import with ``dj.Schema()`` (no name), bound to a prefix by :func:`activate`.

``activate("mmc", connection, provenance=provider)`` binds ``schemas.acquisition`` to ``mmc_acquisition``,
``schemas.model`` to ``mmc_model`` and so on, creating tables and filling lookup tables. The caller hands in
everything the tables need from outside (the connection, the provenance recorded with each fit): this package
imports only ``compute`` and ``datajoint``.
"""
from __future__ import annotations

import warnings
from types import ModuleType
from typing import Callable

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "no datajoint.json found"
    import datajoint as dj  # noqa: F401

from schemas.context import FitProgressFactory, SchemaContext, no_progress

# dependency order: later modules reference tables of earlier ones
SCHEMA_MODULES: tuple[str, ...] = ("acquisition", "video", "model", "fitting", "gait", "validation", "jobs")


def schema_name(prefix: str, module: str) -> str:
    return f"{prefix}_{module}"


def schema_modules() -> tuple[ModuleType, ...]:
    """The table modules in :data:`SCHEMA_MODULES` order (imported here, not at package import, so that
    ``import schemas`` stays cheap and a table module may import its upstream siblings)."""
    from schemas import acquisition, fitting, gait, jobs, model, validation, video

    modules = (acquisition, video, model, fitting, gait, validation, jobs)
    assert tuple(m.__name__.rsplit(".", 1)[-1] for m in modules) == SCHEMA_MODULES
    return modules


def activate(prefix: str, connection, *, provenance: Callable[[], dict],
             progress: FitProgressFactory = no_progress) -> dict[str, ModuleType]:
    """Bind every schema module to ``<prefix>_<module>`` on ``connection``; returns {module name: module}.

    provenance: called by the fit tables' ``make`` once per fit; returns ``{"code_version": str,
    "package_versions": dict, "host": str}``. progress: ``progress(table_name, key)`` is entered around each
    fit's computation and yields its ``(step, total_steps, loss)`` callback (default: none). Lookup contents are
    inserted by DataJoint on activation.
    """
    context = SchemaContext(prefix=prefix, connection=connection, provenance=provenance, progress=progress)
    activated: dict[str, ModuleType] = {}
    for module in schema_modules():
        module_name = module.__name__.rsplit(".", 1)[-1]
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
    activated["fitting"].use_context(context)
    activated["validation"].use_context(context)
    return activated


def existing_schemas(prefix: str, connection) -> list[str]:
    """Names of the project's schemas with this prefix that exist on the server, in dependency order."""
    rows = connection.query(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
        args=(prefix.replace("_", "\\_") + "\\_%",)).fetchall()
    present = {row[0] for row in rows}
    return [schema_name(prefix, m) for m in SCHEMA_MODULES if schema_name(prefix, m) in present]


def drop_all(prefix: str, connection) -> list[str]:
    """Drop ``<prefix>_gait``, ``_fitting``, ``_model``, ``_acquisition`` (reverse dependency order); returns names."""
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
