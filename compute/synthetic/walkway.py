"""The instrumented walkway's own frame and clock, and the footfalls it reports.

``walkway_xy = R(angle) @ world_xy + translation``; the walkway clock reads ``trial time + time_offset_s``.
A footfall's heel/toe positions are taken at foot-flat (25 % of stance), where they equal the positions at
contact because the planted heel does not move.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compute.synthetic.feet import detect_footfalls
from compute.synthetic.motion import Motion


@dataclass(frozen=True)
class WalkwayTransform:
    """World -> walkway: ``walkway_xy = R(angle_rad) @ world_xy + translation_m``; clock offset in seconds."""

    angle_rad: float
    translation_m: tuple[float, float]
    time_offset_s: float = 0.0

    def apply(self, world_xy: np.ndarray) -> np.ndarray:
        """(..., 2) or (..., 3) world points -> (..., 2) walkway coordinates, metres."""
        xy = np.asarray(world_xy, dtype=np.float64)[..., :2]
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)
        rot = np.array([[c, -s], [s, c]])
        return xy @ rot.T + np.asarray(self.translation_m)


def walkway_footfalls(motion: Motion, walkway: WalkwayTransform, walkway_length: float) -> list[dict]:
    """Footfall dicts (contract fields) from a planted-foot motion; positions at foot-flat (25 % of stance)."""
    events = detect_footfalls(motion.times, motion.foot_heights, motion.heel[..., :2], motion.allowed)
    out = []
    for ev in events:
        f = "LR".index(ev["foot"])
        flat = ev["start"] + int(0.25 * (ev["end"] - ev["start"]))
        heel, toe = motion.heel[flat, f], motion.toe[flat, f]
        heel_w, toe_w = walkway.apply(heel), walkway.apply(toe)
        out.append(dict(foot=ev["foot"], contact_time=ev["contact_time"], toe_off_time=ev["toe_off_time"],
                        heel_world=heel.copy(), toe_world=toe.copy(), heel_walkway=heel_w, toe_walkway=toe_w,
                        on_walkway=bool(abs(heel[0]) <= walkway_length / 2)))
    return out
