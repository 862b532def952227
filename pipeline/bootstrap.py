"""One-command set-up and run, using only the standard library of the system Python.

    python3 -m pipeline.bootstrap demo     # the main job (synthetic lab → ingest → fits → report, figures)
    python3 -m pipeline.bootstrap test     # the test suite
    python3 -m pipeline.bootstrap bench    # the benchmarks
    python3 -m pipeline.bootstrap mmc ARGS # any `mmc` command inside the project environment

Each creates ``.venv`` if it is missing, (re)installs the project when ``pyproject.toml`` changed,
makes sure a MySQL-compatible server is reachable (``mmc db up`` starts a private one only when
none is), and then runs. This module must not import anything outside the standard library:
it runs before the project's dependencies exist.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
STAMP = VENV / ".mmc-install-stamp"


def _venv_bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def _install_fingerprint() -> str:
    """Hash of what decides the installed set: pyproject.toml and the interpreter version."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_environment() -> None:
    """Create the virtualenv and install the project with its test extra when needed."""
    if sys.version_info < (3, 11):
        raise SystemExit(f"mmc needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not _venv_bin("python").exists():
        print(f"[bootstrap] creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _install_fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == fingerprint:
        return
    print("[bootstrap] installing the project and its dependencies (first run: a few minutes)", flush=True)
    pip = [str(_venv_bin("python")), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "--quiet", "-e", f"{ROOT}[test]"], check=True)
    # The default 2D detector's model files (idempotent; detection itself never downloads).
    subprocess.run([str(_venv_bin("python")), "-m", "pipeline.detection.models"], check=True, cwd=ROOT)
    STAMP.write_text(fingerprint)


def ensure_database() -> None:
    """Start a private database server only if none is reachable (see `mmc db up`)."""
    subprocess.run([str(_venv_bin("mmc")), "db", "up"], check=True, cwd=ROOT)


def _run(argv: list[str]) -> int:
    return subprocess.run(argv, cwd=ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "help"
    if command not in {"demo", "test", "bench", "mmc", "install"}:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    ensure_environment()
    if command == "install":
        return 0
    python = str(_venv_bin("python"))
    if command == "bench":
        return _run([python, str(ROOT / "bench" / "run_all.py"), *args])
    ensure_database()
    if command == "demo":
        return _run([str(_venv_bin("mmc")), "demo", *args])
    if command == "mmc":
        return _run([str(_venv_bin("mmc")), *args])
    return _run([python, "-m", "pytest", *args])


if __name__ == "__main__":
    raise SystemExit(main())
