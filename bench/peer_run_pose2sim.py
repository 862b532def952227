"""Run Pose2Sim's triangulation -> filtering -> kinematics on one project folder; print one JSON line of timings.

Usage (inside the venv that has Pose2Sim, not the project's):  python bench/peer_run_pose2sim.py PROJECT_DIR
The JSON line: ``{"import_s", "triangulation_s", "filtering_s", "kinematics_s", "total_s"}`` in seconds;
``total_s`` is the wall time from before ``import Pose2Sim`` to the end of kinematics (the process start-up of
the interpreter itself is measured by the caller). Standalone on purpose: it imports nothing of this project.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time


def main() -> int:
    project = os.path.abspath(sys.argv[1])
    start = time.perf_counter()
    from Pose2Sim import Pose2Sim  # noqa: PLC0415 (timed)

    timings = {"import_s": time.perf_counter() - start}
    os.chdir(project)  # Pose2Sim reads Config.toml from the working directory
    for step in ("triangulation", "filtering", "kinematics"):
        t0 = time.perf_counter()
        getattr(Pose2Sim, step)()
        timings[f"{step}_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - start
    logging.shutdown()
    print("PEER_TIMINGS " + json.dumps(timings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
