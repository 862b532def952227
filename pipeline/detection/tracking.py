"""Following each person through one camera's frames: per-frame detections → identities over time.

Frame by frame, every live track (a person last seen at most ``max_gap_frames`` frames ago) is matched to at
most one detection by the Hungarian method (``scipy.optimize.linear_sum_assignment``) on a cost that is the
median distance between their confident keypoints divided by the track's body size (the diagonal of its last
confident keypoints' bounding box). A pair costing more than ``max_cost`` is not a match; an unmatched
detection starts a new track. Comparing keypoints rather than boxes keeps two people apart when their boxes
overlap (one walking behind the other), and the gap allowance bridges short misses. Identities are per camera:
matching tracks across cameras is a separate, 3D step.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.detection.base import PersonDetection


@dataclass(frozen=True)
class TrackingOptions:
    """Matching thresholds.

    Attributes:
        min_confidence: keypoints below this confidence do not count in distances or body size.
        max_cost: largest median keypoint distance, as a fraction of body size, that still continues a track.
            At 60 fps a walking person moves a few percent of body size per frame, but BlazePose's landmarks
            sometimes jump by a quarter of it for a frame (a turning body, an overlapping person); two
            different people cost well over half (0.6-0.7 in the Pose2Sim demo).
        max_gap_frames: a track not matched for more frames than this is closed.
        min_shared_keypoints: fewer confident keypoints in common than this and the pair cannot match.
    """

    min_confidence: float = 0.3
    max_cost: float = 0.4
    max_gap_frames: int = 15
    min_shared_keypoints: int = 4


@dataclass(frozen=True, eq=False)
class PoseTrack:
    """One person in one camera over a sequence of T frames.

    Attributes:
        track_id: 0, 1, … in order of first appearance (ties: higher detection score first).
        keypoints: (T, J, 2) float px; NaN where the person was not detected.
        confidence: (T, J) float in [0, 1]; 0 where not detected.
        score: (T,) detection score; 0 where not detected.
    """

    track_id: int
    keypoints: np.ndarray
    confidence: np.ndarray
    score: np.ndarray

    @property
    def detected(self) -> np.ndarray:
        """(T,) bool: frames in which this person was detected."""
        return self.score > 0


def body_size(keypoints: np.ndarray, confidence: np.ndarray, min_confidence: float) -> float:
    """Diagonal (px) of the bounding box of the keypoints (J, 2) with confidence ≥ ``min_confidence``
    (all keypoints when none is)."""
    good = confidence >= min_confidence
    points = keypoints[good] if good.any() else keypoints
    return float(np.hypot(*(points.max(axis=0) - points.min(axis=0))))


def match_cost(track_pose: PersonDetection, detection: PersonDetection, options: TrackingOptions) -> float:
    """Median distance between the keypoints confident in both, / the track's body size; inf if too few."""
    shared = (track_pose.confidence >= options.min_confidence) & (detection.confidence >= options.min_confidence)
    if shared.sum() < options.min_shared_keypoints:
        return np.inf
    size = body_size(track_pose.keypoints, track_pose.confidence, options.min_confidence)
    distance = np.median(np.linalg.norm(track_pose.keypoints[shared] - detection.keypoints[shared], axis=1))
    return float(distance / max(size, 1.0))


def assign_tracks(frames: Sequence[Sequence[PersonDetection]],
                  options: TrackingOptions = TrackingOptions()) -> list[list[int]]:
    """Track id of every detection: ``ids[t][k]`` for detection k of frame t (ids numbered from 0)."""
    last_pose: dict[int, PersonDetection] = {}
    last_seen: dict[int, int] = {}
    ids: list[list[int]] = []
    next_id = 0
    for t, detections in enumerate(frames):
        live = [i for i in last_pose if t - last_seen[i] <= options.max_gap_frames + 1]
        frame_ids = [-1] * len(detections)
        if live and detections:
            cost = np.array([[match_cost(last_pose[i], d, options) for d in detections] for i in live])
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
            for r, c in zip(rows, cols):
                if cost[r, c] <= options.max_cost:
                    frame_ids[c] = live[r]
        for k in sorted(range(len(detections)), key=lambda k: -detections[k].score):
            if frame_ids[k] < 0:
                frame_ids[k] = next_id
                next_id += 1
        for k, i in enumerate(frame_ids):
            last_pose[i], last_seen[i] = detections[k], t
        ids.append(frame_ids)
    return ids


def track_people(frames: Sequence[Sequence[PersonDetection]],
                 options: TrackingOptions = TrackingOptions()) -> list[PoseTrack]:
    """Per-person arrays over the T frames of one camera.

    Args:
        frames: T lists of detections (one list per frame, possibly empty), all of one keypoint set (J points).

    Returns:
        One ``PoseTrack`` per identity, by ``track_id``; empty when nobody was ever detected.
    """
    ids = assign_tracks(frames, options)
    n_tracks = max((max(f) for f in ids if f), default=-1) + 1
    if n_tracks == 0:
        return []
    J = next(d for f in frames for d in f).keypoints.shape[0]
    T = len(frames)
    keypoints = np.full((n_tracks, T, J, 2), np.nan)
    confidence = np.zeros((n_tracks, T, J))
    score = np.zeros((n_tracks, T))
    for t, (detections, frame_ids) in enumerate(zip(frames, ids)):
        for d, i in zip(detections, frame_ids):
            keypoints[i, t], confidence[i, t], score[i, t] = d.keypoints, d.confidence, max(d.score, 1e-6)
    return [PoseTrack(i, keypoints[i], confidence[i], score[i]) for i in range(n_tracks)]
