"""Acquisition: who was recorded, with which cameras, and the 2D keypoints and walkway steps of every trial.

Keys are short strings chosen by the lab (``subject_id``, ``session_id`` e.g. the date, ``trial_name``,
``camera_name`` e.g. ``cam_1``), so a lab can hold thousands of subjects. Nothing is called ``pid``: DataJoint's
jobs tables use that name.

Arrays are stored as in-table ``<blob>`` (DataJoint's packed numpy format, zlib-compressed): a 10 s, 30 fps,
87-keypoint trial is 300×87×3×4 B ≈ 0.3 MB per camera before compression, well within a LONGBLOB and fast to
fetch; an object store (``<npy@>``) would add a deployment requirement for no gain at this size.
"""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import datajoint as dj

from compute.markersets import MARKER_SET_NAMES, keypoint_names, keypoint_set_description

schema = dj.Schema()

POPULATIONS = (
    ("control", "able-bodied control"),
    ("llpu", "lower-limb prosthesis user"),
    ("neurologic", "neurologic condition (stroke, SCI, TBI, ...)"),
    ("orthopedic", "orthopedic condition"),
    ("pediatric", "child"),
    ("other", "other or unspecified"),
)

ACTIVITIES = (
    ("walk", "overground walking"),
    ("tug", "timed up and go"),
    ("fsst", "four square step test"),
    ("static", "standing still (calibration / scaling pose)"),
    ("other", "anything else"),
)


@schema
class Population(dj.Lookup):
    definition = """
    # clinical population a subject belongs to
    population : varchar(16)
    ---
    description : varchar(255)
    """
    contents = [dict(population=p, description=d) for p, d in POPULATIONS]


@schema
class Activity(dj.Lookup):
    definition = """
    # what the subject did during a trial
    activity : varchar(16)
    ---
    description : varchar(255)
    """
    contents = [dict(activity=a, description=d) for a, d in ACTIVITIES]


@schema
class KeypointSet(dj.Lookup):
    definition = """
    # a 2D detector's keypoint format; joint_names[j] is the name of keypoint index j
    keypoint_set : varchar(16)
    ---
    n_joints : int16          # J
    joint_names : json        # (J,) ordered keypoint names
    description : varchar(255)
    """
    contents = [dict(keypoint_set=name, n_joints=len(keypoint_names(name)), joint_names=list(keypoint_names(name)),
                     description=keypoint_set_description(name)) for name in MARKER_SET_NAMES]


@schema
class Subject(dj.Manual):
    definition = """
    # a person who was recorded
    subject_id : varchar(32)
    ---
    -> Population
    sex = "U" : enum('F', 'M', 'U')   # U = unknown / not recorded
    birth_year = null : int16
    height_m = null : float32          # metres
    mass_kg = null : float32           # kilograms
    notes = "" : varchar(1000)
    """


@schema
class Session(dj.Manual):
    definition = """
    # one recording session of a subject with one calibrated camera rig
    -> Subject
    session_id : varchar(32)           # e.g. the date 2024-02-28
    ---
    location = "" : varchar(255)       # lab / rig
    manifest_file = "" : varchar(1000) # the session manifest it was ingested from
    notes = "" : varchar(1000)
    world_alignment = null : json      # NULL: extrinsics as in the calibration file; else X'=RX+t applied at ingest
    """


@schema
class Camera(dj.Manual):
    definition = """
    # calibrated camera of a session: OpenCV pinhole + distortion, x_cam = R X_world + t (world: Session.world_alignment)
    -> Session
    camera_name : varchar(32)          # normalised, e.g. cam_1
    ---
    image_width : int32                # px
    image_height : int32               # px
    intrinsics : <blob>                # (3, 3) K, px
    distortion : <blob>                # (5,) k1 k2 p1 p2 k3
    rotation : <blob>                  # (3,) Rodrigues vector, world -> camera, rad
    translation : <blob>               # (3,) world -> camera, metres
    calibration_file : varchar(1000)   # source file
    calibration_format : enum('anipose', 'caliscope', 'qualisys', 'vicon')
    calibration_unit : enum('m', 'mm') # length unit of the translations in the source file
    unit_inferred : bool               # 1 if the unit was inferred from the magnitudes, 0 if given
    """


@schema
class Trial(dj.Manual):
    definition = """
    # one recorded movement
    -> Session
    trial_name : varchar(32)
    ---
    -> Activity
    -> KeypointSet
    assistive_device = "none" : varchar(64)
    fps : float32                      # frames per second
    n_frames : int32                   # T, frames aligned across cameras
    keypoints_file : varchar(1000)     # source path (folder or CSV)
    keypoints_format : enum('openpose', 'caliscope', 'npz', 'video')  # video: Keypoints from Detection
    sync_warning = "" : varchar(1000)  # ingest pre-check (compute.sync): cameras that look shifted in time by > 1 frame; "" = in sync
    """


@schema
class Keypoints(dj.Manual):
    definition = """
    # 2D keypoints of one trial seen by one camera, aligned to the trial's frames
    -> Trial
    -> Camera
    ---
    points = null : <blob>             # (T, J, 2) float32, px; NaN where missing; NULL: stored in Chunk parts
    confidence = null : <blob>         # (T, J) float32 in [0, 1]; 0 where missing; NULL: stored in Chunk parts
    frame_index : <blob>               # (T,) int64 source frame / sync index, same for every camera of the trial
    n_missing_frames : int32           # frames of the trial without a detection in this camera
    detector = "" : varchar(64)        # name and version of the 2D detector
    source = "" : varchar(1000)        # source file or folder
    """

    class Chunk(dj.Part):
        definition = """
        # consecutive frames of one camera's keypoints when the whole trial would not fit in one row: a row must
        # travel in one SQL statement, at most the server's max_allowed_packet (16 MB on a default MariaDB: about
        # 7 minutes at 60 fps x 25 keypoints); the master's points/confidence are then NULL
        -> master
        chunk_index : int32            # 0, 1, ... in frame order
        ---
        points : <blob>                # (T_chunk, J, 2) float32, px
        confidence : <blob>            # (T_chunk, J) float32 in [0, 1]
        """


@schema
class WalkwaySteps(dj.Manual):
    definition = """
    # footfalls measured by an instrumented walkway (GaitRite-style) during a trial
    -> Trial
    ---
    source_file : varchar(1000)
    n_footfalls : int32
    """

    class Footfall(dj.Part):
        definition = """
        # one foot contact, in walkway coordinates
        -> master
        footfall_index : int32         # order of contact in the file
        ---
        foot : enum('L', 'R')
        contact_time : float64         # s
        toe_off_time = null : float64  # s
        heel_x : float64               # m, walkway frame
        heel_y : float64               # m
        toe_x : float64                # m
        toe_y : float64                # m
        """


@schema
class SourceFile(dj.Manual):
    definition = """
    # an input file read by ingestion, with the rows it produced: a fit traces back to the exact bytes
    -> Session
    file_index : int32                 # order of reading within the session (0, 1, ...)
    ---
    role : enum('manifest', 'calibration', 'keypoints', 'walkway', 'video')
    trial_name = "" : varchar(32)      # trial whose rows it produced; "" = session level (manifest, calibration)
    camera_name = "" : varchar(32)     # camera whose keypoints it produced; "" = none or all
    path : varchar(1000)               # absolute path when ingested, symlinks resolved
    size_bytes : int64
    sha256 : char(64)                  # hex digest of the content
    """
