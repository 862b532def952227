"""Restrictions given on the command line, one syntax for ``mmc populate``, ``worker``, ``export`` and ``report``.

* ``--restrict ATTR=VALUE`` (repeatable; several are AND-ed). ``ATTR`` must be an attribute of the table the
  command restricts; ``VALUE`` is converted by that attribute's type: integers and floats for numeric columns,
  ISO dates (``2024-02-28``) for ``date`` columns, ISO date-times for ``datetime``/``timestamp``, one of the
  choices for ``enum`` columns, text as given otherwise (one pair of surrounding quotes is dropped, so the SQL
  habit ``subject_id='S01'`` means ``S01``). Blob and JSON columns cannot be restricted this way.
* ``--where SQL`` (repeatable; AND-ed): a raw SQL condition, for what ``ATTR=VALUE`` cannot say (ranges,
  ``IN``, ``LIKE``). It is sent to the server once before use, so a misspelt column or a syntax error is an
  error here, not an empty selection.

Every problem is an :class:`~pipeline.importers.errors.IngestError` (one line ``command line: --restrict: ...``,
exit code 2) that names the attribute and, for an unknown one, the valid ones. A restriction that selects
nothing is not an error: it is a valid question with an empty answer.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import decimal
import re
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from pipeline.importers.errors import IngestError

SOURCE = "command line"
_ASSIGNMENT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)", re.DOTALL)
_ENUM_CHOICES = re.compile(r"'((?:[^']|'')*)'")


@dataclass(frozen=True)
class Assignment:
    """One ``ATTR=VALUE`` as typed on the command line (value still text)."""

    attribute: str
    text: str


def add_restriction_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--restrict ATTR=VALUE`` and ``--where SQL`` (both repeatable) on ``parser``; ``what`` names the table."""
    parser.add_argument("--restrict", action="append", default=[], metavar="ATTR=VALUE",
                        help=f"restrict {what} to rows whose ATTR equals VALUE, e.g. --restrict subject_id=S01 "
                             "(repeatable: AND; VALUE typed by the attribute)")
    parser.add_argument("--where", action="append", default=[], metavar="SQL",
                        help=f"raw SQL condition on {what}, e.g. --where \"session_id >= '2024-01-01'\" "
                             "(repeatable: AND)")


def parse_assignments(items: Iterable[str]) -> tuple[Assignment, ...]:
    """``["subject_id=S01", ...]`` -> assignments; anything but ``NAME=VALUE`` is an error naming the item."""
    out = []
    for item in items or ():
        match = _ASSIGNMENT.fullmatch(item)
        if match is None:
            raise IngestError(SOURCE, "--restrict", f"ATTR=VALUE with ATTR a column name, got {item!r} (an SQL "
                                                    "condition goes after --where)")
        out.append(Assignment(match.group(1), match.group(2).strip()))
    return tuple(out)


def unknown_attributes(assignments: Sequence[Assignment], attribute_names: Iterable[str]) -> list[str]:
    """Attributes of ``assignments`` not among ``attribute_names``, in the order given."""
    names = set(attribute_names)
    return [a.attribute for a in assignments if a.attribute not in names]


def require_attributes(assignments: Sequence[Assignment], attribute_names: Iterable[str], what: str) -> None:
    """Error naming the first unknown attribute and the valid ones (``what``: the table, for the message)."""
    names = sorted(attribute_names)
    unknown = unknown_attributes(assignments, names)
    if unknown:
        raise IngestError(SOURCE, "--restrict", f"{what} has no attribute {unknown[0]!r}; valid attributes: "
                                                f"{', '.join(names)}")


def typed_value(attribute, text: str) -> Any:
    """``text`` converted for the DataJoint heading attribute ``attribute`` (its ``type``/``numeric``/...)."""
    name, sql_type = attribute.name, str(attribute.type).lower()

    def bad(expected: str) -> IngestError:
        return IngestError(SOURCE, "--restrict", f"{name}={text}: {name} is {attribute.type}, expected {expected}")

    if attribute.is_blob or attribute.json or attribute.codec is not None:
        raise bad("a column that can be compared (blob/JSON columns cannot be restricted with ATTR=VALUE)")
    if attribute.uuid:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise bad("a UUID") from None
    if attribute.numeric:
        if "int" in sql_type or sql_type.startswith("bool"):
            try:
                return int(text)
            except ValueError:
                raise bad("an integer") from None
        if sql_type.startswith("decimal"):
            try:
                return decimal.Decimal(text)
            except decimal.InvalidOperation:
                raise bad("a decimal number") from None
        try:
            return float(text)
        except ValueError:
            raise bad("a number") from None
    if sql_type == "date":
        try:
            return _dt.date.fromisoformat(text)
        except ValueError:
            raise bad("a date YYYY-MM-DD") from None
    if sql_type.startswith(("datetime", "timestamp")):
        try:
            return _dt.datetime.fromisoformat(text)
        except ValueError:
            raise bad("a date-time YYYY-MM-DD[ HH:MM:SS]") from None
    if sql_type.startswith("enum"):
        choices = [c.replace("''", "'") for c in _ENUM_CHOICES.findall(str(attribute.type))]
        if _unquoted(text) not in choices:
            raise bad(f"one of {choices}")
    return _unquoted(text)


def _unquoted(text: str) -> str:
    """``text`` without one pair of surrounding quotes: ``subject_id='S01'`` (SQL habit) means ``S01``."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def attribute_restrictions(heading, assignments: Sequence[Assignment], what: str) -> tuple[dict, ...]:
    """One ``{attribute: typed value}`` per assignment (AND them), checked against DataJoint ``heading``."""
    require_attributes(assignments, heading.names, what)
    return tuple({a.attribute: typed_value(heading.attributes[a.attribute], a.text)} for a in assignments)


def checked_sql(query, conditions: Sequence[str], what: str) -> tuple[str, ...]:
    """``conditions`` after asking the server to apply them to ``query`` (error naming the condition if not)."""
    for condition in conditions:
        try:
            len(query & condition)
        except Exception as error:  # the server's own message says what is wrong (unknown column, syntax)
            detail = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
            message = detail.splitlines()[0] if detail else error.__class__.__name__
            raise IngestError(SOURCE, "--where", f"{condition!r} does not apply to {what}: {message}") from None
    return tuple(conditions)


def restrictions_for(query, restrict: Sequence[str], where: Sequence[str], what: str) -> tuple:
    """All command-line restrictions on ``query`` (a DataJoint table or query expression), validated: the
    ``ATTR=VALUE`` dicts then the SQL conditions, to be AND-ed (``query & r`` for each, or ``populate(*r)``)."""
    return (attribute_restrictions(query.heading, parse_assignments(restrict), what)
            + checked_sql(query, where or (), what))
