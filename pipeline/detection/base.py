"""The detector interface: what any 2D pose detector hands to the rest of the pipeline.

A lab adds its own detector (RTMPose, MeTRAbs, a wrapper around stored OpenPose outputs, ...) by writing one
class with these attributes and a ``detect`` method; video reading, tracking and storage never look inside it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, eq=False)
class PersonDetection:
    """One person found in one frame.

    Attributes:
        keypoints: (J, 2) float px, image coordinates (x right, y down, origin at the top-left pixel corner).
        confidence: (J,) float in [0, 1]; 0 where the keypoint is not detected.
        box: (4,) float px ``(x_min, y_min, x_max, y_max)``: the region the detector attributes to this person.
        score: float in [0, 1], the detector's confidence that this is a person.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    box: np.ndarray
    score: float

    def __post_init__(self) -> None:
        J = self.keypoints.shape[0]
        if self.keypoints.shape != (J, 2) or self.confidence.shape != (J,) or self.box.shape != (4,):
            raise ValueError(f"PersonDetection shapes: keypoints {self.keypoints.shape} (want (J, 2)), "
                             f"confidence {self.confidence.shape} (want (J,)), box {self.box.shape} (want (4,))")


@runtime_checkable
class Detector(Protocol):
    """A 2D pose detector for single frames.

    Attributes:
        name: short identifier, e.g. ``"blazepose-full"``.
        version: the detector's version (model release and our wrapper's revision).
        model_checksum: SHA-256 hex digest identifying the model weights, so stored keypoints record exactly
            which weights produced them.
        keypoint_set: the keypoint set name, one of the project's marker-set names (e.g. ``"BLAZEPOSE33"``);
            it fixes J and the order of ``PersonDetection.keypoints``.
    """

    name: str
    version: str
    model_checksum: str
    keypoint_set: str

    def detect(self, frame_bgr: np.ndarray, previous: Sequence[PersonDetection] = ()) -> list[PersonDetection]:
        """Every person in one frame.

        Args:
            frame_bgr: (H, W, 3) uint8, OpenCV's BGR channel order.
            previous: this detector's detections in the same camera's preceding frame (empty for a first frame
                or a single image). A detector may use them to keep following people it would otherwise miss
                (BlazePose does, as MediaPipe's video mode does) or ignore them.

        Returns:
            One ``PersonDetection`` per person found (empty when none), in no particular order.
        """
        ...
