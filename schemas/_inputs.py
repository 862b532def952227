"""Fetched inputs of a three-part ``make`` with a cheap, exact fingerprint.

DataJoint's tripartite ``populate`` fetches twice (before the computation and again inside the insert
transaction) and compares the two fetches with ``deepdiff.DeepHash``. DeepHash walks numpy arrays element by
element in Python (~10 s per million floats), so handing it a session's keypoints directly would cost more than a
short fit. :class:`FetchedInputs` carries the arrays together with a SHA-1 over their bytes, and exposes only that
digest to DeepHash: the integrity check stays exact (any changed byte changes the digest) and costs milliseconds.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["FetchedInputs", "fingerprint"]


def _update(digest: "hashlib._Hash", value: Any) -> None:
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        digest.update(f"ndarray{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    elif isinstance(value, Mapping):
        digest.update(b"{")
        for key in sorted(value, key=str):
            digest.update(str(key).encode() + b":")
            _update(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _update(digest, item)
        digest.update(b"]")
    elif isinstance(value, (bytes, bytearray)):
        digest.update(b"bytes" + bytes(value))
    else:
        digest.update(json.dumps(value, default=str).encode())


def fingerprint(value: Any) -> str:
    """SHA-1 hex digest over nested dicts/lists/tuples of numpy arrays, bytes and JSON-able scalars."""
    digest = hashlib.sha1()
    _update(digest, value)
    return digest.hexdigest()


class FetchedInputs:
    """Everything a ``make_compute`` needs, as numpy arrays and builtins, plus their fingerprint.

    ``inputs.data`` is the dict of fetched values; ``inputs.digest`` its :func:`fingerprint`. DeepHash
    (DataJoint's re-fetch check) reads ``__dict__``, which here shows only the digest.
    """

    __slots__ = ("data", "digest")

    def __init__(self, data: dict[str, Any]) -> None:
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "digest", fingerprint(data))

    @property
    def __dict__(self) -> dict[str, str]:  # type: ignore[override]
        return {"digest": self.digest}

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FetchedInputs) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"FetchedInputs({sorted(self.data)}, digest={self.digest[:12]})"
