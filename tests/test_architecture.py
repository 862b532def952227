"""The layering rule of the project: ``compute/`` is usable alone, without the database or the CLI."""
from __future__ import annotations

import subprocess
import sys


def test_importing_every_compute_module_never_imports_the_database_or_pipeline():
    code = (
        "import importlib, pkgutil, sys, compute\n"
        "names = [m.name for m in pkgutil.walk_packages(compute.__path__, 'compute.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "bad = sorted({'datajoint', 'pipeline', 'schemas', 'pymysql'} & set(sys.modules))\n"
        "assert len(names) >= 14, names\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
