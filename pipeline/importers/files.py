"""Reading input files safely, and recording what was read (path, size, SHA-256) for provenance.

Every importer reads through :func:`read_input`, which refuses anything that is not a regular file (a folder, a
FIFO, ``/dev/zero``, a symlink loop) and anything larger than the cap for its kind, with a one-line
:class:`IngestError` instead of a hang, a memory blow-up or a traceback. The returned :class:`InputFile` carries the
bytes and their SHA-256, so the rows a file produced can be traced to its exact content.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pipeline.importers.errors import IngestError

MB = 1 << 20
# Size caps by kind: generous for real recordings, small enough to fail fast on a wrong path.
MAX_BYTES = {"manifest": 1 * MB, "calibration": 16 * MB, "keypoints": 2048 * MB, "walkway": 64 * MB}


@dataclass(frozen=True)
class InputFile:
    """One file as read: its resolved path, its bytes and their SHA-256 (hex)."""

    path: Path
    role: str                 # "manifest" | "calibration" | "keypoints" | "walkway"
    data: bytes
    sha256: str

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    def record(self) -> "FileRecord":
        return FileRecord(self.path, self.role, self.size_bytes, self.sha256)


@dataclass(frozen=True)
class FileRecord:
    """Provenance of one input file (no content)."""

    path: Path
    role: str
    size_bytes: int
    sha256: str


def resolve_path(path: str | Path, source: str | Path, field: str) -> Path:
    """``path`` made absolute with symlinks resolved; a symlink loop or unreadable path is an IngestError."""
    try:
        return Path(path).resolve(strict=False)
    except (OSError, RuntimeError) as error:  # RuntimeError: symlink loop before Python 3.13
        raise IngestError(source, field, f"a resolvable path, {path} is not ({error})") from None


def check_regular_file(path: Path, role: str, field: str = "file", max_bytes: int | None = None) -> int:
    """Size in bytes of ``path`` if it is a regular file within ``max_bytes`` (default: the cap for ``role``)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise IngestError(path, field, f"an existing {role} file") from None
    except OSError as error:  # ELOOP (symlink loop), EACCES, ENAMETOOLONG...
        raise IngestError(path, field, f"a readable {role} file ({error.strerror or error})") from None
    if stat.S_ISDIR(info.st_mode):
        raise IngestError(path, field, f"a {role} file, got a folder")
    if not stat.S_ISREG(info.st_mode):
        raise IngestError(path, field, f"a regular {role} file, got a device, FIFO or socket")
    cap = max_bytes or MAX_BYTES[role]
    if info.st_size > cap:
        raise IngestError(path, field, f"a {role} file of at most {cap // MB} MB, got {info.st_size / MB:.0f} MB")
    return info.st_size


def read_input(path: str | Path, role: str, field: str = "file", max_bytes: int | None = None) -> InputFile:
    """Read a regular file of kind ``role`` (a key of ``MAX_BYTES``) whole; see the module docstring."""
    path = Path(path)
    check_regular_file(path, role, field, max_bytes)
    cap = max_bytes or MAX_BYTES[role]
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except OSError as error:
        raise IngestError(path, field, f"a readable {role} file ({error.strerror or error})") from None
    if len(data) > cap:  # grew between stat and read
        raise IngestError(path, field, f"a {role} file of at most {cap // MB} MB")
    return InputFile(path, role, data, hashlib.sha256(data).hexdigest())


def decode_text(file: InputFile, what: str) -> str:
    """UTF-8 text of ``file`` (a byte-order mark is dropped); IngestError naming ``what`` otherwise."""
    try:
        return file.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError(file.path, "file", f"UTF-8 text ({what})") from None
