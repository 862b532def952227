"""BlazePose (33 landmarks) for several people per frame, run with ``ai-edge-litert`` on the MediaPipe models.

The two-stage method of Bazarevsky et al. 2020 ("BlazePose: On-device Real-time Body Pose tracking",
arXiv:2006.10204), as MediaPipe's public pose graphs configure it, re-implemented here from that description:

1. **Person detector** on the whole frame letterboxed to 224 × 224 (RGB scaled to [-1, 1], zero padding) and,
   because a person fills only ~10 % of a 224-pixel view of a full-HD frame and is then often missed, also on
   square tiles of the frame (side = the short side, evenly spaced along the long side, overlapping): a
   1088 × 1920 portrait frame gives the whole frame plus a top and a bottom tile. For each view the model
   predicts, for each of 2254 fixed SSD anchors, a box and 4 alignment keypoints (12 numbers, offsets in input
   pixels relative to the anchor centre) and a score logit. Anchors: strides 8, 16, 32, 32, 32 on the 224
   input (feature maps 28², 14², 7²); consecutive layers with the same stride share one grid, and every layer
   puts 2 anchors in each cell (aspect ratio 1 and the interpolated scale), all of unit size, so the grids
   hold 28²·2 + 14²·2 + 7²·6 = 2254 anchors centred at ((i + 0.5) / n, (j + 0.5) / n). Scores are sigmoids
   of logits clipped to ±100. A tile cuts some people in two, and on a headless torso the detector invents a
   person; so a detection from a tile counts only if its box (the detector's box is around the head) stays at
   least one box size away from every tile edge lying inside the frame (a real head there is also seen whole
   by the overlapping tile or the whole-frame view). Boxes above ``min_detection_score`` from all views, in
   image pixels, are merged by *weighted* non-maximum suppression (IoU > 0.3 with the best remaining box: the
   cluster's boxes and keypoints are averaged with score weights). Unlike MediaPipe's single-person tracker we
   keep every merged detection: one pose per person.
2. **Region of interest** per detection from its alignment keypoints: keypoint 0 is the hip centre, keypoint 1
   a point whose distance from it gives the body's size and whose direction gives its rotation. The ROI is a
   square centred on the hip centre, side 2·|k1 − k0| × 1.25, rotated so that its "up" points from k0 to k1.
3. **Landmark model** on that ROI resampled to 256 × 256 (RGB in [0, 1]): 39 × (x, y, z, visibility logit,
   presence logit) in crop pixels (the first 33 are the landmarks, the rest auxiliary), plus a pose-presence
   probability. Landmarks go back to image pixels through the same affine map that cut the crop; a keypoint's
   confidence is min(sigmoid(visibility), sigmoid(presence)). Poses whose presence is below
   ``min_pose_presence`` are dropped, and of two poses whose body landmarks nearly coincide (median distance
   below ``duplicate_fraction`` × the body size) only the more confident is kept.

In a video, each person of the previous frame also proposes a ROI built from their landmarks (hip centre,
hip-to-shoulder direction, and the farthest landmark standing in for the scale point), unless a detector ROI
already lies close to it, much as MediaPipe's video mode follows a person from the previous frame's
landmarks: a participant half hidden behind another is often missed by the detector yet fully found by the
landmark model.

MediaPipe also refines landmarks with the model's 64 × 64 heatmaps and smooths them over time; neither is done
here (tracking and the biomechanical fit handle time).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from pipeline.detection.base import PersonDetection
from pipeline.detection.models import MEDIAPIPE_VERSION, BlazePoseModelFiles, installed_blazepose_models

DETECTOR_INPUT = 224
LANDMARK_INPUT = 256
ANCHOR_STRIDES = (8, 16, 32, 32, 32)
ANCHORS_PER_LAYER = 2            # aspect ratio 1.0 plus the interpolated-scale anchor
SCORE_CLIP = 100.0
NMS_IOU = 0.3
ROI_SCALE = 1.25
NUM_LANDMARKS = 33
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 11, 12, 23, 24
BODY = slice(11, 33)             # shoulders, arms, hands, hips, legs, feet: every landmark but the face
# The farthest landmark from the hip centre is ~0.93 × the detector's scale-point distance (measured on the
# Pose2Sim demo), so this factor gives a landmark-derived ROI of about the size a detection would give.
REACH_TO_SCALE_POINT = 1.08
SAME_REGION_FRACTION = 0.2
# Output tensors by role; the converted models name them Identity, Identity_1, ...
DETECTOR_BOXES, DETECTOR_LOGITS = "Identity", "Identity_1"          # (2254, 12), (2254, 1)
LANDMARK_VALUES, LANDMARK_PRESENCE = "Identity", "Identity_1"       # (195,) = 39 × 5, (1,)
WRAPPER_REVISION = "1"


@dataclass(frozen=True)
class BlazePoseOptions:
    """Thresholds of the multi-person BlazePose detector.

    Attributes:
        min_detection_score: person-detector score (probability) a box needs before non-maximum suppression.
        min_pose_presence: landmark model's pose-presence probability a pose needs to be kept.
        duplicate_fraction: two poses whose median landmark distance is below this fraction of the larger
            body size (ROI side / 1.25 / 2, roughly hip-to-head) are the same person.
        max_people: at most this many detections (highest scores first) get a landmark pass per frame.
        tiles: also run the person detector on square tiles of a non-square frame (see the module doc).
        num_threads: CPU threads the TFLite interpreter may use.
    """

    min_detection_score: float = 0.3
    min_pose_presence: float = 0.5
    duplicate_fraction: float = 0.2
    max_people: int = 10
    tiles: bool = True
    num_threads: int = 2


def ssd_anchor_centres(input_size: int = DETECTOR_INPUT, strides: tuple[int, ...] = ANCHOR_STRIDES,
                       anchors_per_layer: int = ANCHORS_PER_LAYER) -> np.ndarray:
    """Centres of the detector's SSD anchors, normalised to [0, 1] of the square input.

    Consecutive layers with equal stride share one feature grid; within a grid the anchors run row by row,
    column by column, and each cell holds ``anchors_per_layer`` anchors per layer sharing it (all of unit
    size, so only the centres matter).

    Returns:
        (N, 2) float32 ``(x, y)``; N = 2254 for the pose detector.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        layers_in_grid = 1
        while layer + layers_in_grid < len(strides) and strides[layer + layers_in_grid] == stride:
            layers_in_grid += 1
        n = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, anchors_per_layer * layers_in_grid, axis=0))
        layer += layers_in_grid
    return np.concatenate(centres).astype(np.float32)


def decode_detections(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, min_score: float,
                      input_size: int = DETECTOR_INPUT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn the detector's raw outputs into boxes, alignment keypoints and scores above ``min_score``.

    Args:
        raw: (N, 12) box centre offset x, y, box width, height, then 4 keypoints' x, y offsets, all in input px.
        logits: (N,) score logits.
        anchors: (N, 2) anchor centres, normalised.
        min_score: keep anchors whose sigmoid score is at least this.

    Returns:
        boxes (K, 4) ``(x_min, y_min, x_max, y_max)``, keypoints (K, 4, 2), scores (K,); coordinates
        normalised to the (letterboxed) input.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= min_score
    raw, anchors, scores = raw[keep] / input_size, anchors[keep], scores[keep]
    centre = anchors + raw[:, 0:2]
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = anchors[:, None, :] + raw[:, 4:12].reshape(-1, 4, 2)
    return boxes, keypoints, scores


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (M, 4) with every box in ``b`` (N, 4): (M, N)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float = NMS_IOU) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted non-maximum suppression: each cluster becomes the score-weighted mean of its members.

    The best remaining box takes every remaining box overlapping it by more than ``iou_threshold`` (itself
    included); box and keypoint coordinates are averaged with score weights, the score is the best one's.

    Args:
        boxes: (K, 4); keypoints: (K, P, 2); scores: (K,).

    Returns:
        boxes (M, 4), keypoints (M, P, 2), scores (M,), best first.
    """
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), dtype=bool)
    out_boxes, out_keypoints, out_scores = [], [], []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        cluster = remaining & (box_iou(boxes[i:i + 1], boxes)[0] > iou_threshold)
        cluster[i] = True
        w = scores[cluster] / scores[cluster].sum()
        out_boxes.append(np.tensordot(w, boxes[cluster], axes=1))
        out_keypoints.append(np.tensordot(w, keypoints[cluster], axes=1))
        out_scores.append(scores[i])
        remaining &= ~cluster
    P = keypoints.shape[1] if keypoints.ndim == 3 else 0
    if not out_scores:
        return np.zeros((0, 4)), np.zeros((0, P, 2)), np.zeros(0)
    return np.array(out_boxes), np.array(out_keypoints), np.array(out_scores)


@dataclass(frozen=True)
class SquareRegion:
    """A rotated square in the image: centre (2,) px, side px, and ``up`` (2,), the unit image vector that the
    crop's upward direction (−y) maps to (``(0, -1)`` for an unrotated crop)."""

    centre: np.ndarray
    side: float
    up: np.ndarray

    def crop_to_image(self, size: int) -> np.ndarray:
        """(2, 3) affine map from continuous crop coordinates (0..size, pixel corners) to image pixels."""
        scale = self.side / size
        right = np.array([-self.up[1], self.up[0]])
        down = -self.up
        linear = np.stack([right, down], axis=1) * scale
        offset = self.centre - linear @ np.array([size / 2.0, size / 2.0])
        return np.concatenate([linear, offset[:, None]], axis=1)

    def corners(self) -> np.ndarray:
        """(4, 2) image px of the square's corners."""
        unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
        A = self.crop_to_image(1)
        return unit @ A[:, :2].T + A[:, 2]

    def bounds(self) -> np.ndarray:
        """(4,) axis-aligned ``(x_min, y_min, x_max, y_max)`` px of the square."""
        c = self.corners()
        return np.concatenate([c.min(axis=0), c.max(axis=0)])


def cut_square(image: np.ndarray, region: SquareRegion, size: int) -> np.ndarray:
    """Resample ``region`` of ``image`` (H, W, C) to (size, size, C), zeros outside the image (bilinear)."""
    A = region.crop_to_image(size)
    # warpAffine indexes pixels by their centres: src_idx + 0.5 = A · (dst_idx + 0.5).
    M = A.copy()
    M[:, 2] = A[:, 2] + A[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def to_image(points: np.ndarray, region: SquareRegion, size: int) -> np.ndarray:
    """Map (..., 2) continuous crop coordinates (0..size) of ``region`` to image px."""
    A = region.crop_to_image(size)
    return points @ A[:, :2].T + A[:, 2]


def letterbox_region(height: int, width: int) -> SquareRegion:
    """The unrotated square that letterboxes a whole ``height`` × ``width`` frame (padding on the short side)."""
    return SquareRegion(np.array([width / 2.0, height / 2.0]), float(max(height, width)), np.array([0.0, -1.0]))


def detector_views(height: int, width: int, tiles: bool) -> list[SquareRegion]:
    """The squares the person detector looks at: the letterboxed frame, then (if ``tiles``) squares with the
    short side's length spaced evenly from one end of the long side to the other (none for a square frame)."""
    views = [letterbox_region(height, width)]
    short, long = min(height, width), max(height, width)
    n = int(np.ceil(long / short)) if tiles and long > short else 0
    for along in np.linspace(short / 2.0, long - short / 2.0, n):
        centre = np.array([short / 2.0, along]) if height > width else np.array([along, short / 2.0])
        views.append(SquareRegion(centre, float(short), np.array([0.0, -1.0])))
    return views


def away_from_cut_edges(boxes: np.ndarray, view: SquareRegion, height: int, width: int) -> np.ndarray:
    """(K,) bool: boxes (K, 4) image px that keep one box size clear of every edge of the unrotated square
    ``view`` lying inside the ``height`` × ``width`` frame (edges on or beyond the frame border do not count)."""
    x0, y0, x1, y1 = view.bounds()
    size = boxes[:, 2:] - boxes[:, :2]
    keep = np.ones(len(boxes), dtype=bool)
    if x0 > 0:
        keep &= boxes[:, 0] - x0 >= size[:, 0]
    if y0 > 0:
        keep &= boxes[:, 1] - y0 >= size[:, 1]
    if x1 < width:
        keep &= x1 - boxes[:, 2] >= size[:, 0]
    if y1 < height:
        keep &= y1 - boxes[:, 3] >= size[:, 1]
    return keep


def region_from_alignment(hip_centre: np.ndarray, scale_point: np.ndarray,
                          scale: float = ROI_SCALE) -> SquareRegion | None:
    """The landmark model's ROI from the detector's alignment keypoints (image px); None if they coincide."""
    axis = scale_point - hip_centre
    length = float(np.hypot(*axis))
    if not np.isfinite(length) or length < 1e-6:
        return None
    return SquareRegion(hip_centre.astype(float), 2.0 * length * scale, axis / length)


def region_from_landmarks(keypoints: np.ndarray) -> SquareRegion | None:
    """A ROI for the next frame from one pose's 33 landmarks (J, 2) px: centred on the hip centre, "up" from
    there towards the shoulder centre, half-side = farthest landmark × ``REACH_TO_SCALE_POINT`` × ROI scale."""
    hip = keypoints[[LEFT_HIP, RIGHT_HIP]].mean(axis=0)
    shoulders = keypoints[[LEFT_SHOULDER, RIGHT_SHOULDER]].mean(axis=0)
    axis = shoulders - hip
    length = float(np.hypot(*axis))
    if not np.all(np.isfinite(keypoints)) or length < 1e-6:
        return None
    reach = float(np.max(np.linalg.norm(keypoints - hip, axis=1))) * REACH_TO_SCALE_POINT
    return region_from_alignment(hip, hip + axis / length * reach)


def same_region(a: SquareRegion, b: SquareRegion, fraction: float = SAME_REGION_FRACTION) -> bool:
    """Whether two ROIs frame the same body: centres closer than ``fraction`` × the larger side and sides
    within that fraction of each other."""
    larger = max(a.side, b.side)
    return bool(np.hypot(*(a.centre - b.centre)) < fraction * larger and abs(a.side - b.side) < fraction * larger)


def suppress_duplicate_poses(poses: list[PersonDetection], sizes: list[float],
                             fraction: float) -> list[PersonDetection]:
    """Keep the most confident of poses whose median *body* landmark distance (shoulders to feet, indices
    11-32) is below ``fraction`` × body size. The 11 face landmarks are left out: when one person stands
    behind another the landmark model can put the front person's body under the back person's head, and
    such a pose must not pass for a duplicate of the back person's own pose."""
    order = np.argsort([-p.score for p in poses])
    kept: list[int] = []
    for i in order:
        if all(np.median(np.linalg.norm(poses[i].keypoints[BODY] - poses[k].keypoints[BODY], axis=1))
               >= fraction * max(sizes[i], sizes[k]) for k in kept):
            kept.append(int(i))
    return [poses[i] for i in kept]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class _Model:
    """A TFLite interpreter with its one input and outputs by name."""

    interpreter: Interpreter
    input_index: int
    outputs: dict[str, int]

    @classmethod
    def load(cls, path: Path, num_threads: int) -> "_Model":
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
        outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
        return cls(interpreter, interpreter.get_input_details()[0]["index"], outputs)

    def run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        self.interpreter.set_tensor(self.input_index, tensor[None].astype(np.float32))
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(index)[0] for name, index in self.outputs.items()}


@dataclass
class BlazePoseDetector:
    """Multi-person BlazePose GHUM (full) detector: 33 landmarks per person (``BLAZEPOSE33``).

    Build it with ``BlazePoseDetector.from_installed()`` (reads the installed model files, never downloads).
    Not thread-safe: one instance per worker thread.
    """

    files: BlazePoseModelFiles
    options: BlazePoseOptions = field(default_factory=BlazePoseOptions)
    name: str = "blazepose-full"
    keypoint_set: str = "BLAZEPOSE33"

    def __post_init__(self) -> None:
        self.version = f"mediapipe-{MEDIAPIPE_VERSION}/mmc-{WRAPPER_REVISION}"
        self.model_checksum = self.files.checksum
        self._detector = _Model.load(self.files.detector, self.options.num_threads)
        self._landmarker = _Model.load(self.files.landmarks, self.options.num_threads)
        self._anchors = ssd_anchor_centres()

    @classmethod
    def from_installed(cls, options: BlazePoseOptions | None = None,
                       model_dir: Path | None = None) -> "BlazePoseDetector":
        """The detector on the installed model files (raises ``ModelFilesMissing`` with the install command)."""
        return cls(installed_blazepose_models(model_dir), options or BlazePoseOptions())

    def find_people(self, rgb: np.ndarray) -> list[tuple[SquareRegion, float]]:
        """Stage 1–2: the landmark ROI and detector score of every person in an (H, W, 3) uint8 RGB frame."""
        boxes, keypoints, scores = [], [], []
        H, W = rgb.shape[:2]
        for view in detector_views(H, W, self.options.tiles):
            tensor = cut_square(rgb, view, DETECTOR_INPUT).astype(np.float32) / 127.5 - 1.0
            out = self._detector.run(tensor)
            b, k, s = decode_detections(out[DETECTOR_BOXES], out[DETECTOR_LOGITS][:, 0], self._anchors,
                                        self.options.min_detection_score)
            # Views are unrotated squares, so box corners map to image box corners.
            b = to_image(b.reshape(-1, 2, 2) * DETECTOR_INPUT, view, DETECTOR_INPUT).reshape(-1, 4)
            trusted = away_from_cut_edges(b, view, H, W)
            boxes.append(b[trusted])
            keypoints.append(to_image(k[trusted] * DETECTOR_INPUT, view, DETECTOR_INPUT))
            scores.append(s[trusted])
        boxes, keypoints, scores = weighted_nms(np.concatenate(boxes), np.concatenate(keypoints),
                                                np.concatenate(scores))
        regions = []
        for kps, score in zip(keypoints[:self.options.max_people], scores[:self.options.max_people]):
            region = region_from_alignment(kps[0], kps[1])
            if region is not None:
                regions.append((region, float(score)))
        return regions

    def landmarks(self, rgb: np.ndarray, region: SquareRegion) -> tuple[np.ndarray, np.ndarray, float]:
        """Stage 3 on one ROI: landmarks (33, 2) image px, confidence (33,), pose presence probability."""
        crop = cut_square(rgb, region, LANDMARK_INPUT).astype(np.float32) / 255.0
        out = self._landmarker.run(crop)
        values = out[LANDMARK_VALUES].reshape(-1, 5)[:NUM_LANDMARKS]
        keypoints = to_image(values[:, :2].astype(float), region, LANDMARK_INPUT)
        confidence = np.minimum(_sigmoid(values[:, 3]), _sigmoid(values[:, 4])).astype(float)
        return keypoints, confidence, float(np.ravel(out[LANDMARK_PRESENCE])[0])

    def detect(self, frame_bgr: np.ndarray, previous: Sequence[PersonDetection] = ()) -> list[PersonDetection]:
        """Every person in one (H, W, 3) uint8 BGR frame, 33 BlazePose landmarks each (see the module doc);
        ``previous`` (the preceding frame's poses) adds a ROI for each person the detector did not find again."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"detect wants an (H, W, 3) uint8 BGR frame, got {frame_bgr.shape} {frame_bgr.dtype}")
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        candidates = self.find_people(rgb)
        for pose in previous:
            hint = region_from_landmarks(pose.keypoints)
            if hint is not None and not any(same_region(hint, region) for region, _ in candidates):
                candidates.append((hint, pose.score))
        poses, sizes = [], []
        for region, score in candidates:
            keypoints, confidence, presence = self.landmarks(rgb, region)
            if presence < self.options.min_pose_presence:
                continue
            poses.append(PersonDetection(keypoints, confidence, region.bounds(), min(score, presence)))
            sizes.append(region.side / ROI_SCALE / 2.0)
        return suppress_duplicate_poses(poses, sizes, self.options.duplicate_fraction)
