"""Writes tests/data/mini_session: 2 anipose cameras (translations in mm), 6 OpenPose frames per camera (BODY25,
a second person in some frames, one frame missing in cam02), and a walkway CSV. Run once; the output is committed."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent / "mini_session"
J = 25


def main() -> None:
    rng = np.random.default_rng(0)
    (OUT / "calib").mkdir(parents=True, exist_ok=True)
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    cams = {
        "cam01": (np.array([1.2, -1.2, 1.2]), np.array([-100.0, 800.0, 4000.0])),
        "cam02": (np.array([1.2, 1.2, -1.2]), np.array([200.0, 700.0, 4200.0])),
    }
    lines = []
    for i, (name, (rvec, tvec)) in enumerate(cams.items()):
        lines += [f"[cam_{i}]", f'name = "{name}"', "size = [1280, 720]",
                  f"matrix = {K.tolist()}", "distortions = [0.01, -0.02, 0.0, 0.0]",
                  f"rotation = {rvec.tolist()}", f"translation = {tvec.tolist()}", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.5", ""]
    (OUT / "calib" / "calibration.toml").write_text("\n".join(lines))

    body = rng.normal(0, 0.25, (J, 3)) + np.array([0.0, 0.0, 1.0])
    for cam_index, (name, (rvec, tvec)) in enumerate(cams.items()):
        folder = OUT / "walk01" / "pose" / f"{name}_json"
        folder.mkdir(parents=True, exist_ok=True)
        for frame in range(6):
            if name == "cam02" and frame == 4:
                continue  # a missing frame
            people = []
            for offset in (0.0, 1.5):
                if offset and frame % 2:
                    continue
                X = body + np.array([0.1 * frame + offset, 0, 0])
                xy, _ = cv2.projectPoints(X * 1000.0, rvec, tvec, K, np.array([0.01, -0.02, 0.0, 0.0]))
                xy = xy.reshape(J, 2)
                c = np.full(J, 0.9 if not offset else 0.6)
                c[3] = 0.0
                xy[3] = 0.0
                people.append({"person_id": [-1], "pose_keypoints_2d":
                               np.column_stack([xy, c]).round(3).ravel().tolist()})
            if frame % 2 == 0:
                people = people[::-1]  # the tracked person is not always first
            (folder / f"walk01_{frame:012d}_keypoints.json").write_text(json.dumps({"version": 1.3,
                                                                                    "people": people}))
    (OUT / "walk01" / "steps.csv").write_text(
        "foot,contact_time_s,toe_off_time_s,heel_x_m,heel_y_m,toe_x_m,toe_y_m\n"
        "L,0.10,0.70,0.50,0.10,0.72,0.11\n"
        "R,0.65,,1.20,-0.10,1.42,-0.09\n"
        "L,1.20,1.80,1.90,0.10,2.12,0.11\n")


if __name__ == "__main__":
    main()
