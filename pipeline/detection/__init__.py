"""2D pose detection on a lab's videos: a detector interface, the embedded BlazePose default, video reading
and per-camera tracking.

    from pipeline.detection import BlazePoseDetector, detect_video
    poses = detect_video("cam01.mp4", BlazePoseDetector.from_installed())
    poses.tracks[0].keypoints        # (T, 33, 2) px, NaN where not detected

The BlazePose model files are installed once (``python -m pipeline.detection.models``) and read offline.
"""
from pipeline.detection.base import Detector, PersonDetection
from pipeline.detection.blazepose import BlazePoseDetector, BlazePoseOptions
from pipeline.detection.models import ModelFilesMissing, install_blazepose_models, installed_blazepose_models
from pipeline.detection.tracking import PoseTrack, TrackingOptions, track_people
from pipeline.detection.video import Frame, VideoInfo, iter_frames, read_video_info
from pipeline.detection.video_poses import DetectorIdentity, VideoPoses, detect_video

__all__ = [
    "BlazePoseDetector", "BlazePoseOptions", "Detector", "DetectorIdentity", "Frame", "ModelFilesMissing",
    "PersonDetection", "PoseTrack", "TrackingOptions", "VideoInfo", "VideoPoses", "detect_video",
    "install_blazepose_models", "installed_blazepose_models", "iter_frames", "read_video_info", "track_people",
]
