"""Walkway footfalls (GaitRite-style export), metres and seconds in the walkway frame.

CSV with header ``foot,contact_time_s,toe_off_time_s,heel_x_m,heel_y_m,toe_x_m,toe_y_m`` (column order free);
``foot`` is ``L`` or ``R``; ``toe_off_time_s`` may be blank or absent. One row per footfall. UTF-8, with or
without a byte-order mark (spreadsheet programs write one).
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from pipeline.importers.errors import IngestError
from pipeline.importers.files import InputFile, decode_text, read_input

WALKWAY_COLUMNS = ("foot", "contact_time_s", "toe_off_time_s", "heel_x_m", "heel_y_m", "toe_x_m", "toe_y_m")
_REQUIRED = ("foot", "contact_time_s", "heel_x_m", "heel_y_m", "toe_x_m", "toe_y_m")


def _number(path: Path, line: int, column: str, text: str | None, optional: bool = False) -> float | None:
    if text is None or text.strip() == "":
        if optional:
            return None
        raise IngestError(path, f"line {line} {column}", "a number")
    try:
        value = float(text)
    except ValueError:
        raise IngestError(path, f"line {line} {column}", f"a number, got {text!r}") from None
    if not math.isfinite(value):
        raise IngestError(path, f"line {line} {column}", f"a finite number, got {text!r}")
    return value


def read_walkway_csv(path: str | Path) -> list[dict]:
    """Footfall rows ``dict(footfall_index, foot, contact_time, toe_off_time, heel_x, heel_y, toe_x, toe_y)``."""
    return parse_walkway_csv(read_input(Path(path), "walkway"))


def parse_walkway_csv(file: InputFile) -> list[dict]:
    """:func:`read_walkway_csv` on an already-read file (UTF-8, a byte-order mark is allowed)."""
    path = file.path
    reader = csv.DictReader(io.StringIO(decode_text(file, "a walkway CSV"), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise IngestError(path, "header", f"columns {','.join(WALKWAY_COLUMNS)}; missing {','.join(missing)}")
    rows = []
    try:
        for index, raw in enumerate(reader):
            line = index + 2
            record = {(k or "").strip(): v for k, v in raw.items()}
            foot = (record.get("foot") or "").strip().upper()
            if foot not in ("L", "R"):
                raise IngestError(path, f"line {line} foot", f"L or R, got {record.get('foot')!r}")
            rows.append(dict(
                footfall_index=index, foot=foot,
                contact_time=_number(path, line, "contact_time_s", record.get("contact_time_s")),
                toe_off_time=_number(path, line, "toe_off_time_s", record.get("toe_off_time_s"), optional=True),
                heel_x=_number(path, line, "heel_x_m", record.get("heel_x_m")),
                heel_y=_number(path, line, "heel_y_m", record.get("heel_y_m")),
                toe_x=_number(path, line, "toe_x_m", record.get("toe_x_m")),
                toe_y=_number(path, line, "toe_y_m", record.get("toe_y_m"))))
    except csv.Error as error:
        raise IngestError(path, "file", f"a CSV file ({error})") from None
    if not rows:
        raise IngestError(path, "rows", "at least one footfall")
    return rows
