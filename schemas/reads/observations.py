"""What a fit reads, from ``schemas.acquisition`` only: cameras, keypoints, observations, walkway footfalls.

Cameras follow OpenCV: ``x_cam = R X + t`` with ``R`` from the Rodrigues vector (world -> camera), distortion
``(k1, k2, p1, p2, k3)``, intrinsics ``K`` in px.
"""
from __future__ import annotations

import numpy as np

from schemas import acquisition
from schemas.reads import require_columns, session_only

# ------------------------------------------------------------------------------------------------ cameras
CAMERA_COLUMNS = ("camera_name", "intrinsics", "distortion", "rotation", "translation", "image_width",
                  "image_height")


def camera_arrays(rows: list[dict]) -> dict:
    """``acquisition.Camera`` rows -> ``dict(names (C,), K (C,3,3), dist (C,5), rvec (C,3), tvec (C,3),
    size (C,2))`` float64 numpy (px, rad, m). Pure: no database."""
    return dict(
        names=[r["camera_name"] for r in rows],
        K=np.stack([np.asarray(r["intrinsics"], np.float64) for r in rows]),
        dist=np.stack([np.pad(np.asarray(r["distortion"], np.float64).ravel(), (0, 5))[:5] for r in rows]),
        rvec=np.stack([np.asarray(r["rotation"], np.float64).ravel() for r in rows]),
        tvec=np.stack([np.asarray(r["translation"], np.float64).ravel() for r in rows]),
        size=np.array([[r["image_width"], r["image_height"]] for r in rows], np.float64),
    )


def session_cameras(session_key: dict) -> dict:
    """The calibrated cameras of a session, ordered by ``camera_name``, as :func:`camera_arrays`.

    Raises ValueError when the session has no cameras.
    """
    rows = (require_columns(acquisition.Camera, *CAMERA_COLUMNS) & session_only(session_key)).to_dicts(
        order_by="camera_name")
    if not rows:
        raise ValueError(f"session {session_key['subject_id']}/{session_key['session_id']}: "
                         "no calibrated cameras (acquisition.Camera is empty)")
    return camera_arrays(rows)


def camera_rig(cameras: dict):
    """:func:`camera_arrays` output -> a ``compute.cameras.Camera`` rig (leaves with a leading ``(C,)`` axis)."""
    from compute.cameras import make_camera, stack_cameras

    # one camera at a time: with exactly three cameras a stacked (3, 3) rvec would read as a rotation matrix
    return stack_cameras([make_camera(cameras["K"][c], cameras["dist"][c], cameras["rvec"][c], cameras["tvec"][c],
                                      cameras["size"][c]) for c in range(cameras["K"].shape[0])])


# ------------------------------------------------------------------------------------------ observations
def trial_keypoints(trial_key: dict, camera_names: list[str], n_frames: int, n_joints: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``acquisition.Keypoints`` of one trial stacked over ``camera_names``.

    Returns keypoints (C, T, J, 2) float32 px and confidence (C, T, J) float32 in [0, 1]; a camera without
    keypoints in this trial is NaN with confidence 0.
    """
    table = require_columns(acquisition.Keypoints, "camera_name", "points", "confidence")
    keypoints = np.full((len(camera_names), n_frames, n_joints, 2), np.nan, np.float32)
    confidence = np.zeros((len(camera_names), n_frames, n_joints), np.float32)
    restriction = dict(session_only(trial_key), trial_name=trial_key["trial_name"])
    for row in (table & restriction).to_dicts(order_by="camera_name"):
        c = camera_names.index(row["camera_name"])
        points, weights = camera_keypoints(row)
        keypoints[c] = points
        confidence[c] = weights
    return keypoints, confidence


def camera_keypoints(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """One ``acquisition.Keypoints`` row's arrays, joined from its ``Chunk`` parts when the row holds NULL.

    Returns points (T, J, 2) float32 px and confidence (T, J) float32.
    """
    if row["points"] is not None:
        return np.asarray(row["points"], np.float32), np.asarray(row["confidence"], np.float32)
    key = {name: row[name] for name in acquisition.Keypoints.primary_key}
    chunks = require_columns(acquisition.Keypoints.Chunk, "chunk_index", "points", "confidence") & key
    parts = chunks.to_dicts(order_by="chunk_index")
    if not parts:
        raise LookupError(f"acquisition.Keypoints {key}: points are NULL and no Keypoints.Chunk rows exist")
    return (np.concatenate([np.asarray(p["points"], np.float32) for p in parts]),
            np.concatenate([np.asarray(p["confidence"], np.float32) for p in parts]))


def session_observations(session_key: dict) -> dict:
    """Cameras and keypoints of every trial of a session (what a fit sees), numpy only.

    Returns dict(keypoint_set, camera_names (C,), cameras: dict of (C, ...) arrays (:func:`camera_arrays` without
    names), trials: list of dict(name, fps, activity, keypoints (C,T,J,2) px, confidence (C,T,J))), trials ordered
    by name. Raises ValueError for a session without trials or cameras, or whose trials mix keypoint sets.
    """
    session = (acquisition.Session & session_key).fetch1("KEY")
    label = f"session {session['subject_id']}/{session['session_id']}"
    trial_table = require_columns(acquisition.Trial, "trial_name", "keypoint_set", "n_frames", "fps", "activity")
    trials = (trial_table & session).to_dicts(order_by="trial_name")
    if not trials:
        raise ValueError(f"{label}: no trials to fit (acquisition.Trial is empty for this session)")
    keypoint_sets = sorted({t["keypoint_set"] for t in trials})
    if len(keypoint_sets) != 1:
        by_set = {s: [t["trial_name"] for t in trials if t["keypoint_set"] == s] for s in keypoint_sets}
        raise ValueError(f"{label}: trials mix keypoint sets {by_set}; a fit uses one marker set — "
                         "split the session or re-detect the trials with one detector")
    cameras = session_cameras(session)
    camera_names = cameras.pop("names")
    n_joints = int((require_columns(acquisition.KeypointSet, "n_joints") & {"keypoint_set": keypoint_sets[0]}
                    ).fetch1("n_joints"))
    trial_data = []
    for trial in trials:
        keypoints, confidence = trial_keypoints(dict(session, trial_name=trial["trial_name"]), camera_names,
                                                int(trial["n_frames"]), n_joints)
        trial_data.append(dict(name=trial["trial_name"], fps=float(trial["fps"]), activity=trial["activity"],
                               keypoints=keypoints, confidence=confidence))
    return dict(keypoint_set=keypoint_sets[0], camera_names=camera_names, cameras=cameras, trials=trial_data)


def walkway_footfalls(trial_key: dict) -> list[dict]:
    """``WalkwaySteps.Footfall`` of one trial: ``dict(foot, contact_time s, toe_off_time s or None, heel_x, heel_y,
    toe_x, toe_y m)`` in walkway clock and frame, ordered by ``footfall_index``."""
    footfall = require_columns(acquisition.WalkwaySteps.Footfall, "foot", "contact_time", "toe_off_time", "heel_x",
                        "heel_y", "toe_x", "toe_y")
    restriction = dict(session_only(trial_key), trial_name=trial_key["trial_name"])
    return (footfall & restriction).to_dicts(order_by="footfall_index")
