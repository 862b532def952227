"""Synthetic ground truth: multi-camera walking sessions whose every quantity is known.

A fitter is validated by recovering what generated its input: body scales, marker offsets, joint angles,
camera calibration and the footfalls an instrumented walkway would report. Pure numpy/JAX, no file I/O
(the writer is ``pipeline/synth.py``); the same config gives bit-identical sessions.

Modules, in dependency order:

* ``config``: ``SyntheticSessionConfig`` and its parts (trials, rig, observation model).
* ``waveforms``: normative gait angles over the stride and smooth phase functions.
* ``forward``: forward kinematics in fixed-size chunks (one compilation for every trial length).
* ``conventions``: the model's joint signs, found by probing its forward kinematics.
* ``feet``: planted stance feet and contact events.
* ``subject``: body scales and the gait style of each population.
* ``motion``: joint angles and pelvis translation over a trial (walk, static, timed-up-and-go, sit-to-stand).
* ``rig``: the camera rig and exact projection.
* ``observation``: noisy, dropped and outlier keypoints with confidences.
* ``walkway``: the walkway frame and clock, and its footfall records.
* ``session``: ``generate_session``, which ties them together.

Conventions
-----------
* World frame: metres, Z up, walking direction +X. The walkway (capture volume) is centred on the world
  origin and spans ``x ∈ [-walkway_length/2, +walkway_length/2]``; the floor is ``z = 0``.
* Gait waveforms are written in anatomical degrees (flexion, adduction, dorsiflexion positive; pelvis
  anterior tilt, left-side-up obliquity and left-side-forward rotation positive) and mapped onto the model's
  joint signs by probing its forward kinematics once (``JointConventions``).
* Cameras follow OpenCV (x right, y down, z forward; pinhole with k1, k2, p1, p2 distortion).
* Walkway frame: ``walkway_xy = R(angle) @ world_xy + translation``; the walkway clock reads
  ``trial time + time_offset_s``.
"""
from __future__ import annotations

from compute.synthetic.config import (ACTIVITIES, POPULATIONS, SyntheticRigConfig, SyntheticSessionConfig,
                                      SyntheticTrialSpec, default_trials)
from compute.synthetic.conventions import JointConventions, joint_conventions
from compute.synthetic.feet import detect_footfalls
from compute.synthetic.forward import forward_markers
from compute.synthetic.rig import sample_rig
from compute.synthetic.session import SyntheticSession, SyntheticTrial, generate_session
from compute.synthetic.walkway import WalkwayTransform
from compute.synthetic.waveforms import gait_waveform

__all__ = [
    "POPULATIONS",
    "ACTIVITIES",
    "SyntheticTrialSpec",
    "SyntheticRigConfig",
    "SyntheticSessionConfig",
    "WalkwayTransform",
    "SyntheticTrial",
    "SyntheticSession",
    "JointConventions",
    "default_trials",
    "generate_session",
    "sample_rig",
    "detect_footfalls",
    "gait_waveform",
    "joint_conventions",
    "forward_markers",
]
