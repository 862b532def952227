"""``mmc render``: videos of one fitted trial — the scaled MuJoCo body walking, and per camera the fitted
skeleton and virtual markers projected through the refined calibration, over that camera's video when the trial
has a ``Video`` row for it (else over a plain frame of the camera's image size).

    mmc render OUT_DIR --restrict subject_id=S01 --restrict trial_name=walk01 [--params cpu_default]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.db import open_database
from pipeline.restrictions import add_restriction_arguments, restrictions_for

if TYPE_CHECKING:
    from compute.cameras import Camera


def camera_of(cameras: dict, c: int) -> Camera:
    """Camera ``c`` of a :func:`schemas.reads.observations.camera_arrays` dict as a ``compute.cameras.Camera``."""
    from compute.cameras import Camera  # starts JAX: only when rendering, not for every mmc command

    return Camera(cameras["K"][c], cameras["dist"][c], cameras["rvec"][c], cameras["tvec"][c], cameras["size"][c])


def render_fitted_trial(inputs: dict, out_dir: Path, strips: bool = False) -> list[Path]:
    """Write ``<name>_body.mp4`` and ``<name>_<camera>.mp4`` per camera into ``out_dir`` (with ``strips``, also
    ``<name>_body_strip.png`` and ``<name>_<camera>_strip.png``: 6 frames spread over the trial); returns the
    paths.

    inputs: :func:`schemas.reads.results.render_inputs` of one fitted trial (qpos (T, Q), markers (T, J, 3) m,
    log_scale (G,), fps, cameras, videos).
    """
    from pipeline.rendering import (render_body_strip, render_body_video, render_overlay_strip,
                                    render_overlay_video, scaled_body_model, skeleton_over_time)

    out_dir.mkdir(parents=True, exist_ok=True)
    key = inputs["key"]
    name = "_".join(str(key[k]) for k in ("subject_id", "session_id", "trial_name", "params_name"))
    written = [render_body_video(out_dir / f"{name}_body.mp4", inputs["qpos"], inputs["log_scale"], inputs["fps"],
                                 markers=inputs["markers"], scale_matrix=inputs["scale_matrix"],
                                 mjcf_xml=inputs["mjcf_xml"])]
    body = scaled_body_model(inputs["log_scale"], inputs["scale_matrix"], inputs["mjcf_xml"])
    skeleton = skeleton_over_time(body, inputs["qpos"])
    cameras = inputs["cameras"]
    for c, camera_name in enumerate(cameras["names"]):
        video = inputs["videos"].get(camera_name)
        written.append(render_overlay_video(out_dir / f"{name}_{camera_name}.mp4", camera_of(cameras, c),
                                            inputs["markers"], inputs["fps"], skeleton=skeleton, video_path=video,
                                            video_start_frame=inputs["first_frame"] if video else 0))
        if strips:
            written.append(render_overlay_strip(out_dir / f"{name}_{camera_name}_strip.png",
                                                camera_of(cameras, c), inputs["markers"], skeleton=skeleton,
                                                video_path=video,
                                                video_start_frame=inputs["first_frame"] if video else 0))
    if strips:
        written.append(render_body_strip(out_dir / f"{name}_body_strip.png", inputs["qpos"], inputs["log_scale"],
                                         markers=inputs["markers"], scale_matrix=inputs["scale_matrix"],
                                         mjcf_xml=inputs["mjcf_xml"]))
    return written


def render_command(args: argparse.Namespace) -> int:
    """Render every fitted trial matching the restrictions (refusing more than ``--max-trials``)."""
    from schemas.reads import results

    database = open_database(args.prefix)
    results.require_prefix(database.prefix)
    table = database.schemas["fitting"].BilevelFit.Trial
    keys = table.proj()
    for restriction in restrictions_for(table, args.restrict, args.where, "BilevelFit.Trial"):
        keys = keys & restriction
    keys = keys.keys(order_by=", ".join(results.FIT_KEY))
    if not keys:
        print("no fitted trial matches (BilevelFit.Trial); nothing rendered")
        return 1
    if len(keys) > args.max_trials:
        print(f"{len(keys)} fitted trials match, more than --max-trials {args.max_trials}: restrict further "
              f"(e.g. --restrict trial_name=...)")
        return 1
    for key in keys:
        inputs = results.render_inputs(key)
        for path in render_fitted_trial(inputs, Path(args.out_dir), strips=args.strips):
            print(path)
    return 0


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """``mmc render``."""
    parser = subparsers.add_parser("render", help="render a fitted trial: body video and per-camera overlays",
                                   description="write the fitted body MP4 and one overlay MP4 per camera "
                                               "(over the camera's video when ingested)")
    parser.add_argument("out_dir", help="folder to write the MP4 files into")
    add_restriction_arguments(parser, "BilevelFit.Trial")
    parser.add_argument("--max-trials", type=int, default=1,
                        help="render at most this many matching trials (default 1)")
    parser.add_argument("--strips", action="store_true",
                        help="also write a PNG strip of 6 frames per camera and of the body")
    parser.set_defaults(handler=render_command)

