"""The read side: every query the fits, the report, the figures and the exports make, by real table and column.

Each function returns numpy arrays, builtins or lists of row dicts (no pandas, no DataJoint objects), so a
consumer never names a table itself. Columns are named once, here; a renamed or missing table or column is a
:class:`MissingColumnError` that names it, never an empty result.

* :mod:`schemas.reads.observations` — what a fit reads (acquisition only): a session's camera rig, a trial's
  keypoints ``(C, T, J, 2)`` with confidence, a session's observations, a trial's walkway footfalls;
* :mod:`schemas.reads.results` — what the report, figures and exports read: fitted trials, walkway-matched
  steps with their errors, detected contacts, the walkway clock offset, refined cameras, rows to export.

Restrictions (``*restrictions``) are anything DataJoint accepts after ``&`` (a key dict, a list of dicts meaning
OR, an SQL string, a query expression), applied one after the other (AND).
"""
from __future__ import annotations

from typing import Any


class MissingColumnError(LookupError):
    """A table lacks a column the read side reads (the message names table and column)."""


def require_columns(table, *columns: str):
    """``table`` itself, after checking it has ``columns`` (a missing one is an error naming table and column)."""
    names = set(table.heading.names)
    missing = [c for c in columns if c not in names]
    if missing:
        raise MissingColumnError(f"{table.full_table_name}: no column(s) {missing} (has {sorted(names)})")
    return table


def restrict(query, restrictions: tuple) -> Any:
    """``query & r`` for every ``r`` in ``restrictions`` (AND)."""
    for restriction in restrictions:
        query = query & restriction
    return query


def session_only(key: dict) -> dict:
    """The session part of a key."""
    return {k: key[k] for k in ("subject_id", "session_id")}
