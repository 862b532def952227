"""Benchmark: the embedded BlazePose detector on Pose2Sim's multi-person demo (4 cameras × 100 frames, 60 fps,
1088 × 1920 portrait, two participants).

Per camera: detection speed (wall-clock frames per second of ``detect``, the tracking is negligible, and CPU
time per frame including decoding, which other jobs on the machine do not inflate), how many tracks the
per-camera tracker formed, and the share of frames in which each participant was found. Within one camera the
two participants are the two longest tracks (a tracker that fragmented a participant shows up as more tracks
and a lower share). The baseline, measured in the same run, is the same detector with the person detector on
the whole frame only (MediaPipe's single 224 × 224 view, ``tiles=False``).

Run: ``.venv/bin/python bench/bench_detection.py [--quick] [--frames 100] [--threads 2]``
(the model files must be installed: ``python -m pipeline.detection.models``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.detection import BlazePoseDetector, BlazePoseOptions, ModelFilesMissing, detect_video

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pose2sim_demo_multiperson" / "videos"
CAMERAS = ("cam01", "cam02", "cam03", "cam04")


def camera_row(camera: str, poses, cpu_seconds: float) -> dict:
    T = len(poses.frame_index)
    found = sorted((int(tr.detected.sum()) for tr in poses.tracks), reverse=True) + [0, 0]
    people_per_frame = np.array([len(d) for d in poses.detections])
    return {
        "camera": camera,
        "fps": T / poses.seconds_detecting,
        "cpu_ms": 1000.0 * cpu_seconds / T,
        "tracks": len(poses.tracks),
        "participant_a": found[0] / T,
        "participant_b": found[1] / T,
        "frames_with_2": float(np.mean(people_per_frame >= 2)),
        "max_people": int(people_per_frame.max(initial=0)),
    }


def run(options: BlazePoseOptions, frames: int) -> list[dict]:
    detector = BlazePoseDetector.from_installed(options)
    rows = []
    for camera in CAMERAS:
        cpu_start = time.process_time()          # all threads of this process: robust to other jobs' load
        poses = detect_video(VIDEOS / f"{camera}.mp4", detector, stop=frames)
        rows.append(camera_row(camera, poses, time.process_time() - cpu_start))
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n### {title}\n")
    print("| camera | frames/s | CPU ms/frame | tracks | participant A found | participant B found "
          "| frames with ≥ 2 people | max people |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['camera']} | {r['fps']:.2f} | {r['cpu_ms']:.0f} | {r['tracks']} | {r['participant_a']:.0%} | "
              f"{r['participant_b']:.0%} | {r['frames_with_2']:.0%} | {r['max_people']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 frames per camera")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    frames = 20 if args.quick else args.frames
    if not VIDEOS.is_dir():
        print(f"skipped: the demo recording is not at {VIDEOS}")
        return 0
    load = os.getloadavg()
    print(f"{frames} frames per camera, {args.threads} interpreter threads, {os.cpu_count()} cores, "
          f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    try:
        tiled = run(BlazePoseOptions(num_threads=args.threads), frames)
        single = run(BlazePoseOptions(num_threads=args.threads, tiles=False), frames)
    except ModelFilesMissing as missing:
        print(missing, file=sys.stderr)
        return 2
    print_table("default: whole frame + tiles", tiled)
    print_table("baseline: whole frame only (MediaPipe's single view)", single)
    share = lambda rows: np.mean([[r["participant_a"], r["participant_b"]] for r in rows])  # noqa: E731
    fps = lambda rows: np.mean([r["fps"] for r in rows])  # noqa: E731
    print(f"\nparticipant-frames found: default {share(tiled):.1%}, baseline {share(single):.1%}; "
          f"speed default / baseline = {fps(tiled) / fps(single):.2f}")
    load = os.getloadavg()
    print(f"load average at end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
