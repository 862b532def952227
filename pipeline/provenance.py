"""Provenance of a computed row: which code, which libraries, which machine.

Every fit row (``BilevelFit``, ``TrilevelFit``) records

- ``code_version``: the installed ``mmc-biomech`` version, plus ``+g<commit>`` (and ``.dirty`` when the
  working tree has uncommitted changes) when the package runs from a git checkout;
- ``package_versions``: versions of the numerical stack (jax, jaxlib, mujoco, mujoco-mjx, equinox, optax,
  datajoint, numpy) and of Python;
- ``host``: the machine's network name.

Only read-only git commands are used (``git rev-parse``, ``git --no-optional-locks status --porcelain``, which
never rewrites the index); a missing git binary or
a copy without ``.git`` simply yields the bare package version.
"""
from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGE_NAME", "TRACKED_PACKAGES", "code_version", "package_versions", "host_name", "provenance"]

PACKAGE_NAME = "mmc-biomech"
TRACKED_PACKAGES = ("jax", "jaxlib", "mujoco", "mujoco-mjx", "equinox", "optax", "datajoint", "numpy")
_REPO_ROOT = Path(__file__).resolve().parents[1]


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(_REPO_ROOT), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``'<package version>[+g<short commit>[.dirty]]'``, at most 64 characters (fits ``varchar(64)``)."""
    version = _installed_version(PACKAGE_NAME) or "0+unknown"
    commit = _git("rev-parse", "--short=12", "HEAD") if (_REPO_ROOT / ".git").exists() else None
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=no")
        version = f"{version}+g{commit}" + (".dirty" if status else "")
    return version[:64]


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """Versions of the numerical stack and Python; ``None`` for a package that is not installed."""
    versions: dict[str, str | None] = {name: _installed_version(name) for name in TRACKED_PACKAGES}
    versions["python"] = platform.python_version()
    versions[PACKAGE_NAME] = _installed_version(PACKAGE_NAME)
    return versions


def host_name() -> str:
    """Network name of this machine (at most 255 characters)."""
    return (platform.node() or "unknown")[:255]


def provenance() -> dict:
    """All three as a dict: ``{'code_version', 'package_versions', 'host'}``."""
    return {"code_version": code_version(), "package_versions": package_versions(), "host": host_name()}


if __name__ == "__main__":  # pragma: no cover - a quick manual check
    import json

    json.dump(provenance(), sys.stdout, indent=2)
    print()
