"""Run every benchmark in bench/ in turn and print their Markdown summaries.

Usage: ``python3 -m pipeline.bootstrap bench [--quick]`` (``--quick`` is passed on to each script
that accepts it). Benchmarks report ratios against a baseline measured in the same run, never
absolute pass/fail timings.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py"))
    failures = 0
    for script in scripts:
        print(f"\n## {script.name}\n", flush=True)
        # --quick only to the scripts that define it (the others have one size; argparse would refuse it)
        args = [a for a in sys.argv[1:] if a != "--quick" or '"--quick"' in script.read_text()]
        result = subprocess.run([sys.executable, str(script), *args], cwd=HERE.parent)
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
