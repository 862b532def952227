"""The one error type of ingestion: names the file, the field and what was expected."""
from __future__ import annotations

from pathlib import Path


class IngestError(ValueError):
    """Bad input. ``str(error)`` is one line: ``<file>: <field>: <expected>``."""

    def __init__(self, file: str | Path, field: str, expected: str):
        self.file = str(file)
        self.field = field
        self.expected = " ".join(str(expected).split())  # keep it on one line
        super().__init__(f"{self.file}: {self.field}: {self.expected}")
