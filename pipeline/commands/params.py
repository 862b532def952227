"""``mmc params``: the named fit parameter sets of a database (``FitParams`` rows).

    mmc params list
    mmc params show cpu_sparse
    mmc params add cpu_sparse_sync --from cpu_sparse --set bundle_adjustment.fit_time_offsets=true \\
        --description "sparse priors + camera time offsets"

A set is stored once under one name and never edited: ``add`` takes an existing set (``--from``, default
``cpu_default``), changes the fields given by ``--set SECTION.FIELD=VALUE`` (VALUE read as JSON: ``true``,
``0.02``, ``[64, 64]``; anything else is a string), checks the result against ``compute.params.FitParams`` and
inserts it; the same parameters under another name, or another content under a taken name, is an error.  Fit
tasks then use it with ``mmc populate --params NAME``.
"""
from __future__ import annotations

import argparse
import copy
import json
import re

from pipeline.importers.errors import IngestError

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")  # FitParams.params_name is varchar(32)


def parse_setting(text: str) -> tuple[str, str, object]:
    """``"section.field=value"`` -> (section, field, value); value parsed as JSON, else kept as a string."""
    path, sep, raw = text.partition("=")
    section, dot, field = path.strip().partition(".")
    if not sep or not dot or not section or not field:
        raise IngestError("command line", "mmc params add --set",
                          f"{text!r}: expected SECTION.FIELD=VALUE, e.g. bundle_adjustment.fit_time_offsets=true")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return section, field.strip(), value


def changed_params(base: dict, settings: list[str]) -> dict:
    """A copy of the parameter dict ``base`` ({section: {field: value}}) with ``settings`` applied; unknown
    sections or fields and values of the wrong type are one-line errors."""
    from compute.params import FitParams

    params = copy.deepcopy(base)
    for text in settings:
        section, field, value = parse_setting(text)
        if section not in params:
            raise IngestError("command line", f"mmc params add --set {text}",
                              f"no section {section!r}; expected one of {', '.join(sorted(params))}")
        if field not in params[section]:
            raise IngestError("command line", f"mmc params add --set {text}",
                              f"no field {field!r} in {section}; expected one of {', '.join(sorted(params[section]))}")
        old = params[section][field]
        if isinstance(old, bool) != isinstance(value, bool) or (
                isinstance(old, (int, float)) and not isinstance(value, (int, float))) or (
                isinstance(old, list) and not isinstance(value, list)):
            raise IngestError("command line", f"mmc params add --set {text}",
                              f"expected a value like {json.dumps(old)}, got {json.dumps(value)}")
        params[section][field] = value
    try:
        return FitParams.from_dict(params).to_dict()
    except (TypeError, ValueError) as error:
        raise IngestError("command line", "mmc params add --set", str(error)) from None


def outdated_lines(outdated: dict[str, dict[str, object]]) -> list[str]:
    """One line per packaged set this database stored before an update changed it
    (``FitParams.outdated_packaged_sets``): what differs and the command that stores the packaged version."""
    lines = []
    for name, changed in sorted(outdated.items()):
        settings = " ".join(f"--set '{field}={json.dumps(value)}'" for field, value in changed.items())
        lines.append(f"note: the packaged {name} now differs from this database's in {', '.join(changed)}; fits "
                     f"named {name} keep the stored values. To use the packaged ones: mmc params add {name}_v2 "
                     f"--from {name} {settings}")
    return lines


def params_command(args: argparse.Namespace) -> int:
    """Handler of ``mmc params list | show | add``."""
    from compute.params import FitParams
    from pipeline.db import open_database

    fitting = open_database(args.prefix).schemas["fitting"]
    if args.action == "list":
        for row in fitting.FitParams.proj("params_hash", "description").to_dicts(order_by="params_name"):
            print(f"{row['params_name']:<24} {row['params_hash'][:12]}  {row['description']}")
        for line in outdated_lines(fitting.FitParams.outdated_packaged_sets()):
            print(line)
        return 0
    rows = {r["params_name"]: r for r in fitting.FitParams.to_dicts()}
    if args.action == "show":
        if args.name not in rows:
            raise IngestError("command line", "mmc params show", f"no parameter set {args.name!r}; have "
                              f"{', '.join(sorted(rows))}")
        print(json.dumps(rows[args.name]["params"], indent=2, sort_keys=True))
        return 0
    if not NAME_PATTERN.fullmatch(args.name):
        raise IngestError("command line", "mmc params add", f"{args.name!r}: expected a letter then up to 31 "
                          "letters, digits, '_' or '-'")
    if args.base not in rows:
        raise IngestError("command line", "mmc params add --from", f"no parameter set {args.base!r}; have "
                          f"{', '.join(sorted(rows))}")
    params = FitParams.from_dict(changed_params(FitParams.from_dict(rows[args.base]["params"]).to_dict(),
                                                args.set or []))
    try:
        name = fitting.FitParams.insert_params(args.name, params, description=args.description or
                                               f"{args.base} with {', '.join(args.set or []) or 'no change'}")
    except ValueError as error:
        raise IngestError("command line", "mmc params add", str(error)) from None
    print(f"parameter set {name!r} stored (params_hash {params.hash[:12]}); use it with "
          f"`mmc populate --params {name}`")
    return 0


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``params list | show NAME | add NAME``."""
    parser = subparsers.add_parser("params", help="list, show or add named fit parameter sets",
                                   description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="every stored parameter set with its hash and description")
    show = actions.add_parser("show", help="one set's parameters as JSON")
    show.add_argument("name")
    add = actions.add_parser("add", help="store a new set: an existing one with some fields changed")
    add.add_argument("name")
    add.add_argument("--from", dest="base", default="cpu_default", help="the set to start from (default cpu_default)")
    add.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="a field to change (repeatable)")
    add.add_argument("--description", help="one line saying what the set is for")
    parser.set_defaults(handler=params_command)
