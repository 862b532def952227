"""What an activation hands to the schema modules: the connection, the provenance and the progress providers.

The schema modules never reach into the application for these (as DataJoint Elements' ``activate(schema,
linking_module=...)`` is given its upstream tables): :func:`schemas.activate` builds one :class:`SchemaContext`
and passes it to the modules that need it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

FitProgressCallback = Callable[[int, int, float], None]
"""``progress(step, total_steps, loss)``, as ``compute.fit.fit_session`` calls it."""
FitProgressFactory = Callable[[str, dict], ContextManager[FitProgressCallback | None]]
"""``progress(table_name, key)``: a context manager around one fit yielding its progress callback (or None)."""


def no_progress(table_name: str, key: dict) -> ContextManager[None]:
    """The default progress factory: fits report nothing."""
    return contextlib.nullcontext(None)


@dataclass(frozen=True)
class SchemaContext:
    """One activation.

    prefix: schema prefix (``<prefix>_acquisition`` ...); connection: the DataJoint connection the schemas are
    bound to; provenance: called once per fit, returns ``{"code_version": str, "package_versions": dict,
    "host": str}`` recorded with the fit's row; progress: entered around each fit's computation with the
    computed table's full name and the key, yields the callback the fit reports its steps to.
    """

    prefix: str
    connection: Any
    provenance: Callable[[], dict]
    progress: FitProgressFactory = no_progress


class NotActivatedError(RuntimeError):
    """A table needed its activation context before ``schemas.activate`` was called."""
