"""Left/right swaps of single-view detectors: found by the other views and exchanged back."""
from __future__ import annotations

import numpy as np
import pytest

from compute.cameras import project_points_numpy, unstack_cameras
from compute.markersets import MARKER_SET_NAMES, keypoint_names
from compute.swaps import detect_swaps, exchange_pairs, left_right_pairs
from compute.synthetic.rig import sample_rig


def test_left_right_pairs_from_every_naming_style():
    coco = keypoint_names("COCO17")
    pairs = {(coco[a], coco[b]) for a, b in left_right_pairs(coco)}
    assert ("LShoulder", "RShoulder") in pairs and ("LAnkle", "RAnkle") in pairs and len(pairs) == 8
    blaze = keypoint_names("BLAZEPOSE33")
    pairs = {(blaze[a], blaze[b]) for a, b in left_right_pairs(blaze)}
    assert ("left_eye_inner", "right_eye_inner") in pairs and ("mouth_left", "mouth_right") in pairs
    assert len(pairs) == 16                                     # all but the nose
    movi = keypoint_names("MOVI87")
    pairs = {(movi[a], movi[b]) for a, b in left_right_pairs(movi)}
    assert ("lknem", "rknem") in pairs and ("lasis", "rasis") in pairs
    for name in MARKER_SET_NAMES:
        names = keypoint_names(name)
        p = left_right_pairs(names)
        assert len(set(p.ravel())) == p.size                     # every keypoint in at most one pair
        for a, b in p:                                           # the left member carries the left marker
            assert names[a][0] in "Ll" or names[a].endswith("_left"), (names[a], names[b])


def walking_points(names: tuple[str, ...], n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(T, J, 3) m: a crude walker crossing the rig's volume along X (-3 to 3 m), left side at +Y, limbs swinging
    in anti-phase."""
    t = np.arange(n_frames) / 30.0
    phase = 2 * np.pi * 0.9 * t
    height = {"eye": 1.62, "ear": 1.6, "nose": 1.6, "shoulder": 1.42, "elbow": 1.12, "wrist": 0.85,
              "hip": 0.92, "knee": 0.5, "ankle": 0.08}
    points = np.zeros((n_frames, len(names), 3))
    for j, name in enumerate(names):
        low = name.lower()
        part = next(k for k in height if k in low)
        side = 1.0 if low.startswith("l") else -1.0 if low.startswith("r") else 0.0
        width = {"eye": 0.03, "ear": 0.07, "nose": 0.0, "shoulder": 0.19, "elbow": 0.22, "wrist": 0.22,
                 "hip": 0.1, "knee": 0.11, "ankle": 0.12}[part]
        swing = {"knee": 0.2, "ankle": 0.35, "elbow": 0.1, "wrist": 0.2}.get(part, 0.0)
        sign = -side if part in ("elbow", "wrist") else side     # arms swing against the legs
        points[:, j, 0] = -3.0 + 6.0 * t / t[-1] + swing * np.sin(phase) * sign + (0.1 if part == "nose" else 0.0)
        points[:, j, 1] = side * width
        points[:, j, 2] = height[part]
    return points + rng.normal(0, 0.005, points.shape)


@pytest.mark.parametrize("marker_set", ["COCO17"])
def test_injected_swaps_in_one_camera_are_found_and_undone(marker_set):
    rng = np.random.default_rng(7)
    names = keypoint_names(marker_set)
    rig, _ = sample_rig(rng, 8, (1920, 1080))
    n_frames = 400
    points = walking_points(names, n_frames, rng)
    pixels = np.stack([project_points_numpy(cam, points)[0] for cam in unstack_cameras(rig)])  # (C, T, J, 2)
    clean = pixels + rng.normal(0, 1.5, pixels.shape)
    confidence = np.full(pixels.shape[:3], 0.9, np.float32)
    pairs = left_right_pairs(names)
    observed = clean.copy()
    injected = np.zeros((8, n_frames), bool)
    injected[2, rng.choice(n_frames, n_frames // 20, replace=False)] = True   # 5 % of frames in camera 2
    observed[2, injected[2]] = exchange_pairs(clean[2, injected[2]], pairs, axis=1)

    result = detect_swaps(rig, observed, confidence, pairs)

    found = result.swapped[injected].mean()
    false = result.swapped[~injected].mean()
    print(f"{marker_set}: detected {found:.1%} of injected swaps, false swaps {false:.2%}, count {result.count}")
    assert found >= 0.95
    assert false < 0.01
    assert result.count[2] == result.swapped[2].sum()
    both = result.swapped & injected
    np.testing.assert_allclose(result.keypoints[both], clean[both].astype(np.float32), atol=1e-3)


def test_fit_option_relabels_swapped_frames_of_the_trials():
    from compute.fit.bilevel import correct_left_right_swaps
    from compute.fit.types import TrialObservations
    from compute.kinematics import load_body_model
    from compute.params import PARAMETER_SETS

    assert not PARAMETER_SETS["cpu_default"].initialisation.correct_left_right_swaps
    body = load_body_model("COCO17")
    rng = np.random.default_rng(3)
    rig, _ = sample_rig(rng, 6, (1920, 1080))
    points = walking_points(body.marker_names, 60, rng)
    pixels = np.stack([project_points_numpy(cam, points)[0] for cam in unstack_cameras(rig)]).astype(np.float32)
    observed = pixels.copy()
    observed[4, 10:13] = exchange_pairs(pixels[4, 10:13], left_right_pairs(body.marker_names), axis=1)
    trial = TrialObservations("walk", 30.0, observed, np.ones(pixels.shape[:3], np.float32))
    (fixed,) = correct_left_right_swaps(body, rig, [trial])
    assert fixed.name == "walk" and fixed.fps == 30.0
    np.testing.assert_allclose(fixed.keypoints, pixels, atol=1e-3)
