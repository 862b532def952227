"""The layering rules of the project, checked on the import graph of the source (parsed, nothing executed).

* ``compute/`` is usable alone: it imports nothing of ours outside ``compute`` (never ``schemas`` or ``pipeline``),
  and importing it never loads DataJoint;
* ``schemas/`` imports only ``compute`` and itself (never ``pipeline``): the application hands it what it needs;
* no import cycles between modules anywhere, counting imports inside functions too.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("compute", "schemas", "pipeline")


def module_files(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """``{dotted module name: file}`` of every ``.py`` file of ``packages`` (``pkg/__init__.py`` is ``pkg``)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest prefix of dotted ``name`` that is one of our modules; None when it is not ours."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that ``module`` imports anywhere in its file (module level, functions, ``TYPE_CHECKING``).

    ``from a.b import c`` is an import of ``a.b.c`` when that is a module, else of ``a.b``; relative imports are
    resolved against the module's package.
    """
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, known)
            if target is not None and target != module:
                found.add(target)
    return found


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """``{module: our modules it imports}`` for every module of ``packages``."""
    files = module_files(root, packages)
    known = set(files)
    return {module: imports_of(module, path, known) for module, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted; [] when acyclic."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _violations(graph: dict[str, set[str]], layer: str, allowed: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {target}" for module, targets in graph.items()
                  if module.split(".")[0] == layer
                  for target in targets if target.split(".")[0] not in allowed)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_sees_every_package_and_function_level_imports(graph):
    assert {"compute", "schemas", "pipeline"} <= {m.split(".")[0] for m in graph}
    assert len([m for m in graph if m.startswith("compute.")]) >= 14
    assert "compute.gait" in graph["schemas.gait"] or "compute" in graph["schemas.gait"]  # imported in a function


def test_compute_imports_nothing_of_ours_outside_compute(graph):
    assert _violations(graph, "compute", ("compute",)) == []


def test_schemas_import_only_compute_and_schemas(graph):
    assert _violations(graph, "schemas", ("compute", "schemas")) == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_the_checks_can_fail(tmp_path):
    """A schema module importing the application, and two modules importing each other, are both caught."""
    (tmp_path / "schemas").mkdir()
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "schemas" / "__init__.py").write_text("")
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    (tmp_path / "schemas" / "tables.py").write_text("def f():\n    from pipeline import provenance\n")
    (tmp_path / "pipeline" / "provenance.py").write_text("")
    (tmp_path / "pipeline" / "report.py").write_text("from . import figures\n")
    (tmp_path / "pipeline" / "figures.py").write_text("import pipeline.report\n")
    toy = import_graph(tmp_path, ("schemas", "pipeline"))
    assert _violations(toy, "schemas", ("compute", "schemas")) == ["schemas.tables imports pipeline.provenance"]
    assert cycles(toy) == [["pipeline.figures", "pipeline.report"]]


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


def test_the_command_line_loads_plotting_statistics_and_jax_only_for_the_commands_that_use_them():
    """Every ``mmc`` command imports the whole command tree; matplotlib (~1 s) and statsmodels (~0.8 s) are
    imported by the report and the demo when they draw or test, JAX and MuJoCo (~2 s) by the commands that fit,
    ingest, export, render or synthesise, not by ``mmc status``, ``mmc params`` or ``mmc db``."""
    code = ("import sys, pipeline.cli\n"
            "print(sorted({'matplotlib', 'statsmodels', 'jax', 'mujoco', 'equinox'}\n"
            "             & {m.split('.')[0] for m in sys.modules}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
