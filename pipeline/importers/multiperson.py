"""Choosing the subject consistently across cameras when OpenPose saw several people.

Tracking each view on its own can follow one participant in camera 1 and another in camera 2; the 3D fit would then
see keypoints that triangulate nowhere. Here the subject is a *3D* person:

1. Seed: in the first frame (of the first ``SEED_FRAMES`` with detections in two or more cameras) where some
   combination of one detection per camera triangulates consistently, every combination of detections (one or
   none per camera, at least two) is triangulated; a combination is consistent when every one of its views
   reprojects within ``gate`` px (median over keypoints; ``SEED_GATE_FRACTION`` × the image diagonal, at least
   ``MIN_GATE_PX``). Consistent combinations are taken greedily (most views, then lowest error) without reusing a
   detection: these are the people seen at that frame, ranked by their summed confidence (person 0 = most
   confident). ``person = N`` in the manifest chooses person N; the default is 0. A ``pick`` rule (e.g.
   :func:`nearest_to`: the person nearest a point of the world) may choose instead; when it chooses nobody at a
   frame, the seed moves on to the next frame.
2. Tracking: from the seed frame forwards and then backwards, every camera keeps the detection nearest (median
   px over shared keypoints) to the projection of the subject's last 3D keypoints, if nearer than
   ``TRACK_GATE_FRACTION`` × the image diagonal; the kept detections are triangulated to update the 3D keypoints.

If no combination is consistent in the seed frames (e.g. a calibration that does not match), the caller falls back
to tracking each view on its own and says so.
"""
from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from compute.cameras import Camera, project_points_numpy
from compute.triangulation import triangulate_points
from pipeline.importers.keypoints import OpenPoseDetections

SEED_FRAMES = 30
SEED_GATE_FRACTION = 0.02
TRACK_GATE_FRACTION = 0.1
MIN_GATE_PX = 10.0
MAX_COMBINATIONS = 4096
MIN_CONFIDENCE = 0.1


@dataclass(frozen=True)
class SubjectChoice:
    """Per camera (order of the rig), the chosen person index in each of its frames (None: not seen)."""

    choices: list[list[int | None]]
    person: int                # rank of the chosen person among those seen at the seed frame
    n_people: int              # people seen consistently at the seed frame
    seed_frame: int            # frame number of the seed
    seed_views: int            # cameras that saw the chosen person at the seed frame
    seed_error_px: float       # median reprojection error of the chosen person at the seed frame
    kept: int                  # detections kept over the trial
    total: int                 # frames × cameras with any detection

    def explanation(self, given: bool, rule: str | None = None) -> str:
        """Why this person; ``rule`` (e.g. "nearest (1.0, 2.0) m") replaces the default wording."""
        how = rule or ("as given by `person`" if given else "the most confident; `person = N` chooses another")
        return (f"subject = person {self.person} of {self.n_people} seen consistently across cameras at frame "
                f"{self.seed_frame} ({self.seed_views} cameras, median reprojection {self.seed_error_px:.1f} px; "
                f"{how}); followed through time as the detection nearest its 3D projection: "
                f"{self.kept} of {self.total} camera-frames with detections kept")


# A subject rule: given the seed frame's number, its people (combination of one detection index or None per
# camera, median reprojection px, summed confidence; most confident first) and their triangulated keypoints
# (list of (J, 3) m, NaN where unknown), the index of the subject among them, or None to try the next frame.
SubjectPicker = Callable[[int, list[tuple[tuple, float, float]], list[np.ndarray]], "int | None"]


def nearest_to(point_xy: tuple[float, float]) -> SubjectPicker:
    """A rule choosing the person whose keypoints' median horizontal position (world x, y, Z up) is nearest
    ``point_xy`` (m), e.g. the centre of the walkway."""
    target = np.asarray(point_xy, np.float64)

    def pick(frame: int, people: list, keypoints_3d: list[np.ndarray]) -> int | None:
        distances = [float(np.linalg.norm(np.nanmedian(X[:, :2], axis=0) - target))
                     if np.any(np.isfinite(X[:, 0])) else np.inf for X in keypoints_3d]
        return int(np.argmin(distances)) if distances and np.isfinite(min(distances)) else None

    return pick


def _camera(rig: Camera, c: int) -> Camera:
    return Camera(np.asarray(rig.K)[c], np.asarray(rig.dist)[c], np.asarray(rig.rvec)[c], np.asarray(rig.tvec)[c],
                  np.asarray(rig.size)[c])


def rig_from_rows(rows: list[dict]) -> Camera:
    """A float64 numpy rig from Camera rows (``intrinsics, distortion, rotation, translation, image_width/height``)."""
    return Camera(np.stack([np.asarray(r["intrinsics"], np.float64) for r in rows]),
                  np.stack([np.asarray(r["distortion"], np.float64) for r in rows]),
                  np.stack([np.asarray(r["rotation"], np.float64) for r in rows]),
                  np.stack([np.asarray(r["translation"], np.float64) for r in rows]),
                  np.array([[r["image_width"], r["image_height"]] for r in rows], np.float64))


def _reprojection_px(rig: Camera, X: np.ndarray, detections: np.ndarray) -> np.ndarray:
    """Median px distance per view. ``X`` (N, J, 3) m, ``detections`` (C, N, J, 3) -> (C, N), NaN without support."""
    C = detections.shape[0]
    errors = np.full(detections.shape[:2], np.nan)
    for c in range(C):
        uv, z = project_points_numpy(_camera(rig, c), X)
        d = np.linalg.norm(uv - detections[c, ..., :2], axis=-1)
        d = np.where((detections[c, ..., 2] >= MIN_CONFIDENCE) & np.isfinite(d) & (z > 0), d, np.nan)
        with np.errstate(all="ignore"):
            errors[c] = np.nanmedian(np.where(np.all(np.isnan(d), axis=-1, keepdims=True), np.inf, d), axis=-1)
    return np.where(np.isinf(errors), np.nan, errors)


def _triangulate(rig: Camera, detections: np.ndarray, gate: float) -> np.ndarray:
    """(C, N, J, 3) detections (confidence 0 = unused) -> (N, J, 3) m."""
    X, _ = triangulate_points(rig, detections[..., :2], detections[..., 2], min_confidence=MIN_CONFIDENCE,
                              outlier_threshold_px=gate)
    return X


def _people_at(frame_people: list[np.ndarray | None], rig: Camera, gate: float, J: int):
    """Consistent people at one frame: list of (combination, error px, summed confidence), most confident first."""
    options = [list(range(len(p))) + [None] if p is not None and len(p) else [None] for p in frame_people]
    combos = [combo for combo in itertools.product(*options) if sum(i is not None for i in combo) >= 2]
    combos = combos[:MAX_COMBINATIONS]
    if not combos:
        return []
    C = len(frame_people)
    stacked = np.zeros((C, len(combos), J, 3))
    for n, combo in enumerate(combos):
        for c, index in enumerate(combo):
            if index is not None:
                stacked[c, n] = frame_people[c][index]
    stacked[..., :2] = np.nan_to_num(stacked[..., :2])
    X = _triangulate(rig, stacked, gate)
    errors = _reprojection_px(rig, X, stacked)
    candidates = []
    for n, combo in enumerate(combos):
        used = [c for c, i in enumerate(combo) if i is not None]
        e = errors[used, n]
        if np.all(np.isfinite(e)) and np.all(e < gate):
            candidates.append((combo, float(np.median(e)), len(used)))
    candidates.sort(key=lambda item: (-item[2], item[1]))
    taken: set[tuple[int, int]] = set()
    people = []
    for combo, error, n_views in candidates:
        pairs = {(c, i) for c, i in enumerate(combo) if i is not None}
        if pairs & taken:
            continue
        taken |= pairs
        confidence = sum(float(np.sum(frame_people[c][i][:, 2])) for c, i in pairs)
        people.append((combo, error, confidence))
    people.sort(key=lambda item: -item[2])
    return people


def _people_keypoints(frame_people: list[np.ndarray | None], people: list, rig: Camera, gate: float,
                      J: int) -> list[np.ndarray]:
    """(J, 3) m triangulated keypoints of each person of :func:`_people_at`."""
    stack = np.zeros((len(frame_people), len(people), J, 3))
    for n, (combo, _, _) in enumerate(people):
        for c, index in enumerate(combo):
            if index is not None:
                stack[c, n] = frame_people[c][index]
    stack[..., :2] = np.nan_to_num(stack[..., :2])
    return list(_triangulate(rig, stack, gate))


def choose_subject(detections: list[OpenPoseDetections], rig: Camera, image_diagonals: np.ndarray,
                   person: int | None, pick: SubjectPicker | None = None) -> SubjectChoice | int | None:
    """See the module docstring. ``rig`` leaves (C, ...) in the order of ``detections``; ``image_diagonals``
    (C,) px; ``pick``: a rule choosing among the people at a candidate seed frame (overrides ``person``).
    Returns the choice; the number of people seen if ``person`` is out of range; None if nobody is seen
    consistently in the seed frames (or the rule chose nobody in them)."""
    C = len(detections)
    J = detections[0].people[0].shape[1] if detections[0].people else 0
    frames = np.asarray(sorted(set().union(*(d.frame_index.tolist() for d in detections))), np.int64)
    lookup = [dict(zip(d.frame_index.tolist(), range(len(d.frame_index)))) for d in detections]

    def people_at(f: int) -> list[np.ndarray | None]:
        return [d.people[lookup[c][f]] if f in lookup[c] else None for c, d in enumerate(detections)]

    seed_gate = max(MIN_GATE_PX, SEED_GATE_FRACTION * float(np.min(image_diagonals)))
    track_gate = TRACK_GATE_FRACTION * image_diagonals
    tried, seed = 0, None
    for position, f in enumerate(frames.tolist()):
        current = people_at(f)
        if sum(p is not None and len(p) > 0 for p in current) < 2:
            continue
        tried += 1
        people = _people_at(current, rig, seed_gate, J)
        if people and pick is not None:
            chosen = pick(f, people, _people_keypoints(current, people, rig, seed_gate, J))
            if chosen is not None:
                seed = (position, f, people, chosen)
                break
        elif people:
            seed = (position, f, people, 0 if person is None else person)
            break
        if tried >= SEED_FRAMES:
            break
    if seed is None:
        return None
    position, seed_frame, people, rank = seed
    if rank >= len(people):
        return len(people)
    combo, seed_error, _ = people[rank]
    P = len(people)
    # Every person seen at the seed is followed, not only the subject: in each camera and frame the detections
    # are shared out among them (Hungarian method on the distance to each one's 3D projection), so when the
    # subject is hidden behind another participant, that participant's detection is not taken for the subject.
    choices = [[[None] * len(d.frame_index) for d in detections] for _ in range(P)]
    for n, (person_combo, _, _) in enumerate(people):
        for c, index in enumerate(person_combo):
            if index is not None:
                choices[n][c][lookup[c][seed_frame]] = index
    seed_X = np.stack(_people_keypoints(people_at(seed_frame), people, rig, seed_gate, J))  # (P, J, 3)
    kept = sum(i is not None for i in combo)
    order = [frames[position + 1:], frames[:position][::-1]]
    for direction in order:
        X = seed_X.copy()
        for f in direction.tolist():
            current = people_at(f)
            chosen = np.zeros((C, P, J, 3))
            for c, candidates in enumerate(current):
                if candidates is None or len(candidates) == 0:
                    continue
                uv, z = project_points_numpy(_camera(rig, c), X)                     # (P, J, 2), (P, J)
                d = np.linalg.norm(candidates[None, ..., :2] - uv[:, None], axis=-1)  # (P, K, J)
                usable = (candidates[None, ..., 2] >= MIN_CONFIDENCE) & np.isfinite(d) & (z > 0)[:, None]
                d = np.where(usable, d, np.nan)
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no shared keypoint
                    distance = np.nanmedian(d, axis=-1)                                  # (P, K) px
                distance = np.where(np.isfinite(distance), distance, np.inf)
                rows, cols = linear_sum_assignment(np.where(np.isfinite(distance), distance, 1e12))
                for n, k in zip(rows, cols):
                    if distance[n, k] < track_gate[c]:
                        choices[n][c][lookup[c][f]] = int(k)
                        chosen[c, n] = candidates[k]
                        kept += n == rank
            seen = np.sum(np.any(chosen[..., 2] > 0, axis=-1), axis=0) >= 2                # (P,)
            if seen.any():
                chosen[..., :2] = np.nan_to_num(chosen[..., :2])
                X_new = _triangulate(rig, chosen, float(np.max(track_gate)))
                X = np.where(seen[:, None, None] & np.isfinite(X_new), X_new, X)
    total = sum(sum(1 for p in d.people if len(p)) for d in detections)
    return SubjectChoice(choices[rank], rank, len(people), seed_frame, sum(i is not None for i in combo), seed_error,
                         kept, total)
