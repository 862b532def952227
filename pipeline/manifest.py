"""Session manifest: parse, validate, read every file into memory, then insert in ONE transaction.

A manifest (TOML, paths relative to it)::

    [subject]
    id = "S00_P00"
    population = "control"        # a Population row
    height_m = 1.72               # optional
    mass_kg = 70.0                # optional
    sex = "F"                     # optional F/M/U
    birth_year = 1980             # optional
    notes = ""                    # optional
    [session]
    id = "2024-02-28"
    calibration = "calib/Calib.toml"
    calibration_format = "anipose" # anipose | caliscope | qualisys | vicon
    calibration_unit = "m"         # m | mm (optional for anipose: inferred and stated)
    world_alignment = "none"       # optional: none | auto (estimate Z-up + floor from the subject, see below)
    location = ""                  # optional
    notes = ""                     # optional
    [[trials]]
    name = "walk01"
    activity = "walk"
    fps = 60
    keypoints = "walk01/pose"      # openpose: one sub-folder per camera; caliscope: the CSV; npz: folder of <camera>.npz
    keypoints_format = "openpose"  # openpose | caliscope | npz
    keypoint_set = "BODY25B"       # a KeypointSet row
    walkway = "walk01/steps.csv"   # optional
    assistive_device = "none"      # optional
    detector = "openpose 1.7"      # optional
    camera_map = {cam01_json = "cam_1"}  # optional: keypoint source -> calibration camera
    person = 0                     # optional (openpose): which of several people is the subject (see below)

Several participants filmed together (trials given by ``videos``): ``[[subjects]]`` instead of ``[subject]``,
one table per participant with the subject keys plus one rule choosing them among the people the detector finds
(``near_m = [x, y]``: nearest this world point, e.g. the walkway centre; ``track = { camera = "cam01", id = N }``:
detected as track N in that camera; ``person = N``: N-th by confidence). Each becomes its own subject and session
(same cameras and videos), all inserted in one transaction (:mod:`pipeline.videos`).

World alignment: ``world_alignment = "auto"`` is for calibrations whose world is not Z-up with the floor at
z = 0 (Caliscope: the world is camera 1's frame). After reading the calibration and the keypoints, the subject's
keypoints are triangulated (:func:`compute.triangulation.triangulate_trajectories`, 100 px outlier threshold) in
every trial of the most common keypoint set, and :func:`compute.world_alignment.estimate_world_alignment` (with
the cameras' rotations for the level-camera up estimate) gives the rigid transform ``X' = R_a X + t_a``. The
Camera rows then hold the extrinsics in the aligned world (projections unchanged) and ``Session.world_alignment``
records ``{method, rotation, translation, up_source, floor_height, floor_source, heading_source}``; the source
file's extrinsics are ``R = R' R_a``, ``t = t' + R' t_a``. ``"none"`` (default) stores the calibration as is and
leaves ``Session.world_alignment`` NULL. Partial ingests (``ingest_calibration``) never align.

Several people (OpenPose): when some frame holds more than one person, the subject is the person whose detections
triangulate consistently across the cameras (:mod:`pipeline.importers.multiperson`); people seen at the seed frame
are ranked by summed confidence and ``person = N`` picks one (default 0). The trial summary says which person was
chosen and why. With one person per frame every view is tracked on its own.

Validation beyond the importers (one-line :class:`IngestError`, nothing written): unknown keys at any level are
errors naming the key and the closest valid one; ids (subject, session, trial) are at most 32 characters without
quotes, slashes, leading/trailing whitespace or control characters, and — because the server compares keys
case-insensitively — a subject/session/trial whose id differs from a stored one only in letter case, or a subject
re-declared with different attributes, is an error naming both; subject height/mass/birth year within
``SUBJECT_RANGES``; fps within ``FPS_RANGE``; every trial has at least two calibrated cameras with keypoints and
some keypoint with confidence > 0; keypoints lie within ``MAX_IMAGE_SIZES_AWAY`` image sizes of the image.

Provenance: every file read (manifest, calibration, every keypoint file, walkway CSV) is recorded with its path,
size and SHA-256 in ``SourceFile`` rows, with the trial and camera whose rows it produced; ``--dry-run`` lists them,
marking paths outside the manifest's folder.

Nothing is written unless everything validates: :func:`plan_session` builds all rows in memory (raising
:class:`IngestError` with ``file: field: expected`` on any problem) and :func:`insert_plan` inserts them inside
``with connection.transaction:``, so a session is inserted whole or not at all.
"""
from __future__ import annotations

import datetime
import difflib
import math
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.importers.calibration import CALIBRATION_FORMATS, Calibration, read_calibration
from pipeline.importers.errors import IngestError
from pipeline.importers.files import FileRecord, decode_text, read_input, resolve_path
from pipeline.importers.keypoints import (CameraKeypoints, align_frames, keypoints_of_choice,
                                          read_openpose_detections_folder, read_keypoints, track_single_view)
from pipeline.importers.multiperson import choose_subject, rig_from_rows
from pipeline.importers.naming import match_cameras, normalize_camera_name
from pipeline.importers.walkway import parse_walkway_csv
from pipeline.videos import (SELECTION_KEYS, TrialVideos, apply_subject_rule, check_subject_tables,
                             describe_selection, insert_trial_videos, plan_trial_videos, subject_entry)
from compute.markersets import KEYPOINT_SETS
from compute.sync import check_sync, sync_warning

KEY_PATTERN_LENGTH = 32
SUBJECT_KEYS = ("id", "population", "height_m", "mass_kg", "sex", "birth_year", "notes")
SESSION_KEYS = ("id", "calibration", "calibration_format", "calibration_unit", "world_alignment", "location", "notes")
TRIAL_KEYS = ("name", "activity", "fps", "keypoints", "keypoints_format", "keypoint_set", "walkway",
              "assistive_device", "detector", "camera_map", "person", "videos")
TOP_LEVEL_KEYS = ("subject", "subjects", "session", "trials")
SUBJECT_RANGES = {"height_m": (0.3, 2.8), "mass_kg": (1.0, 500.0)}  # beyond any person; also the columns' range
FIRST_BIRTH_YEAR = 1900
FPS_RANGE = (1.0, 10_000.0)
MIN_CAMERAS = 2
MAX_IMAGE_SIZES_AWAY = 10.0
WORLD_ALIGNMENTS = ("none", "auto")
ALIGNMENT_OUTLIER_THRESHOLD_PX = 100.0
KEYPOINT_FORMATS = ("openpose", "caliscope", "npz")


@dataclass
class Lookups:
    """Allowed lookup values (from the database when connected, else the built-in contents)."""

    populations: set[str]
    activities: set[str]
    keypoint_sets: dict[str, tuple[str, ...]]

    @classmethod
    def builtin(cls) -> "Lookups":
        from schemas.acquisition import ACTIVITIES, POPULATIONS

        return cls({p for p, _ in POPULATIONS}, {a for a, _ in ACTIVITIES}, dict(KEYPOINT_SETS))

    @classmethod
    def from_database(cls) -> "Lookups":
        from schemas import acquisition as acq

        sets = acq.KeypointSet().to_dicts()
        return cls({r["population"] for r in acq.Population().to_dicts()},
                   {r["activity"] for r in acq.Activity().to_dicts()},
                   {row["keypoint_set"]: tuple(row["joint_names"]) for row in sets})


@dataclass
class TrialPlan:
    trial: dict
    keypoints: list[dict]
    walkway: dict | None = None
    footfalls: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # points outside the keypoint set, by group (rows)
    files: list[tuple[FileRecord, str]] = field(default_factory=list)  # (file, camera name or "")
    videos: TrialVideos | None = None
    person: int | None = None  # manifest `person`: which of several people is the subject
    selection: dict | None = None  # the subject's rule among several people (pipeline.videos.selection_from_manifest)

    def video_rows(self) -> tuple[dict | None, list[dict]]:
        """The ``VideoTrial`` row (None without videos) and the ``Video`` rows."""
        if self.videos is None:
            return None, []
        key = {k: self.trial[k] for k in ("subject_id", "session_id", "trial_name")}
        return (dict(key, n_videos=len(self.videos.videos), person=self.person, selection=self.selection,
                     consistency_warning=self.videos.warning),
                [dict(key, **video) for video in self.videos.videos])

    def summary(self) -> str:
        t = self.trial
        if t["keypoints_format"] == "video":
            person = "" if self.person is None else f", subject = person {self.person}"
            person += "" if self.selection is None else f", subject = {describe_selection(self.selection)}"
            views = f"videos of {len(self.videos.videos)} cameras (keypoints to come from detection{person})"
        else:
            views = f"{len(self.keypoints)} cameras"
        lines = [f"trial {t['trial_name']}: {t['activity']}, {t['keypoint_set']}, {t['n_frames']} frames at "
                 f"{t['fps']:g} fps, {views}"]
        for row in self.keypoints:
            conf = row["confidence"]
            lines.append(f"    {row['camera_name']}: {conf.shape[0]}×{conf.shape[1]} keypoints, "
                         f"{float(np.mean(conf > 0)):.0%} present, {row['n_missing_frames']} frames missing")
        if self.walkway:
            lines.append(f"    walkway: {len(self.footfalls)} footfalls from {self.walkway['source_file']}")
        if self.videos is not None:
            lines += self.videos.summary_lines()
        lines += [f"    note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class SessionPlan:
    manifest: Path
    subject: dict
    session: dict
    cameras: list[dict]
    trials: list[TrialPlan]
    calibration: Calibration | None = None
    files: list[FileRecord] = field(default_factory=list)  # session-level files: manifest, calibration
    dry_run: bool = False

    def source_files(self) -> list[dict]:
        """``SourceFile`` rows (file_index from 0, in reading order)."""
        key = {k: self.session[k] for k in ("subject_id", "session_id")}
        entries = [(f, "", "") for f in self.files]
        entries += [(f, t.trial["trial_name"], camera) for t in self.trials for f, camera in t.files]
        return source_file_rows(key, entries, 0)

    def file_listing(self) -> str:
        """Every file read, one per line; paths outside the manifest's folder are marked."""
        base = self.manifest.parent
        lines = [f"files read ({len(self.source_files())}):"]
        for row in self.source_files():
            path = Path(row["path"])
            outside = "" if path.is_relative_to(base) else "  [outside the manifest's folder]"
            where = "/".join(x for x in (row["trial_name"], row["camera_name"]) if x)
            lines.append(f"    {row['role']:<11} {path}  {row['size_bytes']} B  sha256 {row['sha256'][:12]}"
                         f"{'  (' + where + ')' if where else ''}{outside}")
        return "\n".join(lines)

    def row_counts(self) -> dict[str, int]:
        return {"Subject": 1, "Session": 1, "Camera": len(self.cameras), "Trial": len(self.trials),
                "Keypoints": sum(len(t.keypoints) for t in self.trials),
                "WalkwaySteps": sum(1 for t in self.trials if t.walkway),
                "WalkwaySteps.Footfall": sum(len(t.footfalls) for t in self.trials),
                "Video": sum(len(t.videos.videos) for t in self.trials if t.videos is not None),
                "SourceFile": len(self.source_files())}

    def summary(self) -> str:
        s = self.subject
        lines = [f"subject {s['subject_id']} ({s['population']}), session {self.session['session_id']}"]
        if self.calibration is not None:
            lines.append(self.calibration.summary())
        alignment = self.session.get("world_alignment")
        if alignment:
            up = np.asarray(alignment["rotation"])[2]
            lines.append(f"world alignment ({alignment['method']}): up = calibration ({up[0]:.3f}, {up[1]:.3f}, "
                         f"{up[2]:.3f}) from {alignment['up_source']}, floor {alignment['floor_height']:+.3f} m "
                         f"from {alignment['floor_source']}, X from {alignment['heading_source']}")
        lines += [t.summary() for t in self.trials]
        lines.append("rows: " + ", ".join(f"{k} {v}" for k, v in self.row_counts().items()))
        if self.dry_run:
            lines.append(self.file_listing())
        return "\n".join(lines)


def source_file_rows(key: dict, entries: list[tuple[FileRecord, str, str]], first_index: int) -> list[dict]:
    """``SourceFile`` rows for ``entries`` of (file, trial name or "", camera name or "")."""
    return [dict(key, file_index=first_index + i, role=f.role, trial_name=trial, camera_name=camera,
                 path=str(f.path)[:1000], size_bytes=f.size_bytes, sha256=f.sha256)
            for i, (f, trial, camera) in enumerate(entries)]


# --------------------------------------------------------------------------------------------- field checks
def _get(table: dict, manifest: Path, section: str, key: str, kind, required: bool = True, default=None):
    field_name = f"{section}.{key}"
    if key not in table:
        if required:
            raise IngestError(manifest, field_name, f"present ({kind.__name__ if isinstance(kind, type) else kind})")
        return default
    value = table[key]
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise IngestError(manifest, field_name, f"a finite number, got {value!r}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise IngestError(manifest, field_name, f"an integer, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str) or (required and not value.strip()):
            raise IngestError(manifest, field_name, f"a non-empty string, got {value!r}")
        return value
    if kind is dict:
        if not isinstance(value, dict):
            raise IngestError(manifest, field_name, f"a table {{name = \"value\"}}, got {value!r}")
        return value
    raise TypeError(kind)


def _key(value: str, manifest: Path, field_name: str) -> str:
    """An id: at most 32 characters, no quotes/slashes, no leading/trailing whitespace, no control characters."""
    if (len(value) > KEY_PATTERN_LENGTH or any(c in value for c in "\"'`\\/") or value != value.strip()
            or any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)):
        raise IngestError(manifest, field_name, f"an identifier of at most {KEY_PATTERN_LENGTH} characters without "
                                                f"quotes, slashes, leading/trailing spaces or control characters, "
                                                f"got {value!r}")
    return value


def check_keys(table: dict, allowed: tuple[str, ...], manifest: Path, section: str) -> None:
    """Unknown keys are errors naming the key and the closest valid one."""
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(allowed)}"
            raise IngestError(manifest, f"{section}.{key}" if section else str(key), f"a known key; {hint}")


def _in_range(value: float, bounds: tuple[float, float], manifest: Path, field_name: str, unit: str) -> float:
    if not bounds[0] <= value <= bounds[1]:
        raise IngestError(manifest, field_name, f"a value between {bounds[0]:g} and {bounds[1]:g} {unit}, got "
                                                f"{value:g}")
    return value


def _choice(value: str, allowed, manifest: Path, field_name: str, what: str) -> str:
    if value not in allowed:
        raise IngestError(manifest, field_name, f"{what} ({', '.join(sorted(allowed))}), got {value!r}")
    return value


def load_manifest(path: str | Path) -> tuple[dict, FileRecord]:
    """The manifest's tables (top level and table keys checked) and its provenance record."""
    path = Path(path)
    file = read_input(path, "manifest")
    try:
        data = tomllib.loads(decode_text(file, "manifest TOML"))
    except tomllib.TOMLDecodeError as error:
        raise IngestError(path, "file", f"valid TOML ({error})") from None
    except RecursionError:
        raise IngestError(path, "file", "TOML nested at most a few hundred levels deep") from None
    check_keys(data, TOP_LEVEL_KEYS, path, "")
    for index, table in enumerate(data["subjects"] if isinstance(data.get("subjects"), list) else []):
        if isinstance(table, dict):
            check_keys(table, SUBJECT_KEYS + SELECTION_KEYS, path, f"subjects[{index}]")
    check_subject_tables(data, path)  # [subject] or [[subjects]] (several participants filmed together)
    for section in ("subject", "session"):
        if not isinstance(data.get(section), dict):
            raise IngestError(path, f"[{section}]", "a table")
    if not isinstance(data.get("trials", []), list):
        raise IngestError(path, "[[trials]]", "an array of tables")
    check_keys(data["subject"], SUBJECT_KEYS + SELECTION_KEYS, path, "subject")
    check_keys(data["session"], SESSION_KEYS, path, "session")
    for index, trial in enumerate(data.get("trials", [])):
        if isinstance(trial, dict):
            check_keys(trial, TRIAL_KEYS, path, f"trials[{index}]")
    return data, file.record()


def _subject_row(data: dict, manifest: Path, lookups: Lookups) -> dict:
    subject = data["subject"]
    row = dict(subject_id=_key(_get(subject, manifest, "subject", "id", str), manifest, "subject.id"),
               population=_choice(_get(subject, manifest, "subject", "population", str), lookups.populations,
                                  manifest, "subject.population", "a Population row"))
    for key, unit in (("height_m", "m"), ("mass_kg", "kg")):
        value = _get(subject, manifest, "subject", key, float, required=False)
        if value is not None:
            row[key] = _in_range(value, SUBJECT_RANGES[key], manifest, f"subject.{key}", unit)
    sex = _get(subject, manifest, "subject", "sex", str, required=False)
    if sex is not None:
        row["sex"] = _choice(sex, {"F", "M", "U"}, manifest, "subject.sex", "one of")
    birth_year = _get(subject, manifest, "subject", "birth_year", int, required=False)
    if birth_year is not None:
        row["birth_year"] = int(_in_range(birth_year, (FIRST_BIRTH_YEAR, datetime.date.today().year), manifest,
                                          "subject.birth_year", "(a year)"))
    notes = _get(subject, manifest, "subject", "notes", str, required=False)
    if notes:
        row["notes"] = notes[:1000]
    return row


def cameras_from_calibration(calibration: Calibration) -> dict[str, dict]:
    """{calibration camera name: Camera row without the session key}."""
    rows = {}
    for cam in calibration.cameras:
        rows[cam.name] = dict(
            camera_name=normalize_camera_name(cam.name), image_width=cam.image_size[0],
            image_height=cam.image_size[1], intrinsics=cam.K, distortion=cam.dist, rotation=cam.rvec,
            translation=cam.tvec, calibration_file=str(calibration.source)[:1000],
            calibration_format=calibration.format, calibration_unit=calibration.unit,
            unit_inferred=int(calibration.unit_inferred))
    names = [r["camera_name"] for r in rows.values()]
    if len(set(names)) != len(names):
        raise IngestError(calibration.source, "[cam_*].name", f"camera names distinct after normalisation, got {names}")
    too_long = [n for n in names if len(n) > KEY_PATTERN_LENGTH]
    if too_long:
        raise IngestError(calibration.source, "[cam_*].name", f"names of at most 32 characters, got {too_long}")
    return rows


def plan_trial(trial: dict, index: int, manifest: Path, session_key: dict, calibration_cameras: dict[str, dict],
               lookups: Lookups) -> TrialPlan:
    """Read and validate one ``[[trials]]`` entry; ``calibration_cameras`` from :func:`cameras_from_calibration`."""
    section = f"trials[{index}]"
    if not isinstance(trial, dict):
        raise IngestError(manifest, section, "a table")
    base = manifest.parent
    name = _key(_get(trial, manifest, section, "name", str), manifest, f"{section}.name")
    activity = _choice(_get(trial, manifest, section, "activity", str), lookups.activities, manifest,
                       f"{section}.activity", "an Activity row")
    fps = _in_range(_get(trial, manifest, section, "fps", float), FPS_RANGE, manifest, f"{section}.fps",
                    "frames per second")
    camera_map = _get(trial, manifest, section, "camera_map", dict, required=False, default={})
    device = _get(trial, manifest, section, "assistive_device", str, required=False, default="none") or "none"
    detector = _get(trial, manifest, section, "detector", str, required=False, default="") or ""
    videos = None
    if "videos" in trial:
        videos = plan_trial_videos(trial["videos"], manifest, f"{section}.videos", calibration_cameras, camera_map,
                                   fps)
    if "keypoints" not in trial and videos is not None:
        return _plan_video_trial(trial, manifest, section, session_key, name, activity, fps, device, videos,
                                 lookups, calibration_cameras)
    keypoint_set = _choice(_get(trial, manifest, section, "keypoint_set", str), set(lookups.keypoint_sets), manifest,
                           f"{section}.keypoint_set", "a KeypointSet row")
    keypoints_format = _choice(_get(trial, manifest, section, "keypoints_format", str), set(KEYPOINT_FORMATS),
                               manifest, f"{section}.keypoints_format", "one of")
    keypoints_path = resolve_path(base / _get(trial, manifest, section, "keypoints", str), manifest,
                                  f"{section}.keypoints")
    if not keypoints_path.exists():
        raise IngestError(manifest, f"{section}.keypoints", f"an existing path, {keypoints_path} does not exist")

    person = _get(trial, manifest, section, "person", int, required=False)
    if person is not None and (person < 0 or keypoints_format != "openpose"):
        raise IngestError(manifest, f"{section}.person", f"a person number ≥ 0 for openpose keypoints or a trial "
                                                         f"with videos only, got {person} for {keypoints_format}")

    names = lookups.keypoint_sets[keypoint_set]
    notes = []
    if keypoints_format == "openpose":
        detections = read_openpose_detections_folder(keypoints_path, len(names), keypoint_set)
        mapping = match_cameras(list(detections), list(calibration_cameras), camera_map, keypoints_path,
                                field="camera")
        per_camera, note = _choose_openpose_subject(detections, mapping, calibration_cameras, person, len(names),
                                                    keypoint_set, manifest, f"{section}.person")
        notes += [note] if note else []
    else:
        per_camera = read_keypoints(keypoints_path, keypoints_format, names, keypoint_set)
        mapping = match_cameras(list(per_camera), list(calibration_cameras), camera_map, keypoints_path,
                                field="camera")
    aligned = align_frames(per_camera, keypoints_path)
    check_keypoints_plausible(aligned, mapping, calibration_cameras, keypoints_path)
    trial_key = dict(session_key, trial_name=name)
    trial_row = dict(trial_key, activity=activity, keypoint_set=keypoint_set, assistive_device=device[:64],
                     fps=fps, n_frames=len(aligned.frame_index), keypoints_file=str(keypoints_path)[:1000],
                     keypoints_format=keypoints_format)
    keypoint_rows = []
    for c, source_name in enumerate(aligned.cameras):
        camera_name = calibration_cameras[mapping[source_name]]["camera_name"]
        keypoint_rows.append(dict(
            trial_key, camera_name=camera_name, points=aligned.points[c], confidence=aligned.confidence[c],
            frame_index=aligned.frame_index, n_missing_frames=aligned.missing_frames[source_name],
            detector=(aligned.detectors[source_name] or detector)[:64],
            source=str(aligned.sources[source_name])[:1000]))
    plan = TrialPlan(trial_row, keypoint_rows, left_out=dict(aligned.left_out), notes=notes, videos=videos,
                     person=person)
    if videos is not None:
        plan.files += videos.files
        if videos.n_frames < trial_row["n_frames"]:
            plan.notes.append(f"videos have {videos.n_frames} frames, fewer than the keypoints' "
                              f"{trial_row['n_frames']}")
    for source_name in aligned.cameras:
        camera_name = calibration_cameras[mapping[source_name]]["camera_name"]
        plan.files += [(record, camera_name) for record in aligned.files[source_name]]
    zero_points = {calibration_cameras[mapping[n]]["camera_name"]: c for n, c in aligned.zero_points.items() if c}
    if zero_points:
        plan.notes.append("points at exactly (0, 0) treated as missing: "
                          + ", ".join(f"{camera} {count}" for camera, count in sorted(zero_points.items())))
    uncovered = sorted({row["camera_name"] for row in calibration_cameras.values()}
                       - {row["camera_name"] for row in keypoint_rows})
    if uncovered:
        plan.notes.append(f"calibrated cameras without keypoints in this trial: {', '.join(uncovered)}")
    if aligned.left_out:
        plan.notes.append("points outside " + keypoint_set + " left out: "
                          + ", ".join(f"{group} {count}" for group, count in sorted(aligned.left_out.items())))
    sync = _sync_warning(keypoint_rows, [calibration_cameras[mapping[n]] for n in aligned.cameras], fps)
    if sync:  # stored with the trial (Trial.sync_warning) and printed with the summary
        plan.notes.append(sync)
        trial_row["sync_warning"] = sync[:1000]
    _plan_walkway(plan, trial, manifest, section, trial_key)
    return plan


def _sync_warning(keypoint_rows: list[dict], camera_rows: list[dict], fps: float) -> str:
    """``compute.sync`` pre-check of a trial's keypoints (rows of one camera each, with their Camera rows in the
    same order): "" when the cameras see the same instants within a frame, else the warning naming the cameras
    that look shifted in time."""
    if len(keypoint_rows) < 2:
        return ""
    check = check_sync(rig_from_rows(camera_rows), np.stack([row["points"] for row in keypoint_rows]),
                       np.stack([row["confidence"] for row in keypoint_rows]))
    return sync_warning(check, [row["camera_name"] for row in keypoint_rows], fps)


def _plan_video_trial(trial: dict, manifest: Path, section: str, session_key: dict, name: str, activity: str,
                      fps: float, device: str, videos: TrialVideos, lookups: Lookups,
                      calibration_cameras: dict[str, dict]) -> TrialPlan:
    """A trial given by videos alone: its ``Keypoints`` come later from ``Detection`` (keypoint set default
    BLAZEPOSE33, the detector's); T = the fewest frames of any camera."""
    for key in ("keypoints_format", "detector"):
        if key in trial:
            raise IngestError(manifest, f"{section}.{key}", "absent for a trial given by `videos` alone")
    keypoint_set = _choice(_get(trial, manifest, section, "keypoint_set", str, required=False,
                                default="BLAZEPOSE33"), set(lookups.keypoint_sets), manifest,
                           f"{section}.keypoint_set", "a KeypointSet row")
    if len(videos.videos) < MIN_CAMERAS:
        raise IngestError(manifest, f"{section}.videos", f"videos of at least {MIN_CAMERAS} calibrated cameras, got "
                                                         f"{len(videos.videos)}")
    person = _get(trial, manifest, section, "person", int, required=False)
    if person is not None and person < 0:
        raise IngestError(manifest, f"{section}.person", f"a person number ≥ 0, got {person}")
    trial_key = dict(session_key, trial_name=name)
    source = trial["videos"] if isinstance(trial["videos"], str) else videos.videos[0]["path"]
    trial_row = dict(trial_key, activity=activity, keypoint_set=keypoint_set, assistive_device=device[:64], fps=fps,
                     n_frames=videos.n_frames, keypoints_file=str(resolve_path(manifest.parent / source, manifest,
                                                                               f"{section}.videos"))[:1000],
                     keypoints_format="video")
    plan = TrialPlan(trial_row, [], videos=videos, person=person, files=list(videos.files))
    uncovered = sorted({row["camera_name"] for row in calibration_cameras.values()}
                       - {v["camera_name"] for v in videos.videos})
    if uncovered:
        plan.notes.append(f"calibrated cameras without a video in this trial: {', '.join(uncovered)}")
    _plan_walkway(plan, trial, manifest, section, trial_key)
    return plan


def _plan_walkway(plan: TrialPlan, trial: dict, manifest: Path, section: str, trial_key: dict) -> None:
    """Read the trial's walkway CSV, when it names one, into ``plan``."""
    base = manifest.parent
    walkway = _get(trial, manifest, section, "walkway", str, required=False)
    if walkway:
        walkway_path = resolve_path(base / walkway, manifest, f"{section}.walkway")
        walkway_file = read_input(walkway_path, "walkway")
        footfalls = parse_walkway_csv(walkway_file)
        plan.files.append((walkway_file.record(), ""))
        plan.walkway = dict(trial_key, source_file=str(walkway_path)[:1000], n_footfalls=len(footfalls))
        plan.footfalls = [dict(trial_key, **row) for row in footfalls]


def _choose_openpose_subject(detections: dict, mapping: dict[str, str], calibration_cameras: dict[str, dict],
                             person: int | None, n_joints: int, keypoint_set: str, manifest: Path, field_name: str
                             ) -> tuple[dict[str, CameraKeypoints], str]:
    """The subject's keypoints per camera and a note saying how it was chosen (single person: no note).

    Several people in some frame (or ``person`` given): the person seen consistently across cameras
    (:mod:`pipeline.importers.multiperson`); otherwise each view is tracked on its own."""
    names = list(detections)
    several = any(detections[n].max_people > 1 for n in names)
    if not several and person is None:
        return {n: keypoints_of_choice(detections[n], track_single_view(detections[n]), n_joints, keypoint_set)
                for n in names}, ""
    rows = [calibration_cameras[mapping[n]] for n in names]
    diagonals = np.array([math.hypot(r["image_width"], r["image_height"]) for r in rows])
    choice = choose_subject([detections[n] for n in names], rig_from_rows(rows), diagonals, person)
    if isinstance(choice, int):
        raise IngestError(manifest, field_name, f"a person number in 0..{choice - 1} ({choice} people were seen "
                                                f"consistently across cameras), got {person}")
    if choice is None:
        if person is not None:
            raise IngestError(manifest, field_name, "people seen consistently by two cameras to choose from; none "
                                                    "were (does the calibration match the recording?)")
        return ({n: keypoints_of_choice(detections[n], track_single_view(detections[n]), n_joints, keypoint_set)
                 for n in names},
                "several people detected but none seen consistently by two cameras: each camera tracked on its own")
    return ({n: keypoints_of_choice(detections[n], choice.choices[c], n_joints, keypoint_set)
             for c, n in enumerate(names)}, choice.explanation(person is not None))


def check_keypoints_plausible(aligned, mapping: dict[str, str], calibration_cameras: dict[str, dict],
                              source: Path) -> None:
    """At least MIN_CAMERAS cameras with a confident keypoint; no keypoint farther than MAX_IMAGE_SIZES_AWAY image
    sizes from the image (``aligned``: :class:`AlignedKeypoints`, points (C, T, J, 2) px)."""
    seen = [name for c, name in enumerate(aligned.cameras) if np.any(aligned.confidence[c] > 0)]
    if not seen:
        raise IngestError(source, "confidence", "some keypoints with confidence > 0; every confidence is 0, "
                                                "there is nothing to fit")
    if len(seen) < MIN_CAMERAS:
        raise IngestError(source, "cameras", f"at least {MIN_CAMERAS} calibrated cameras with keypoints, got "
                                             f"{len(seen)} ({', '.join(seen)})")
    for c, name in enumerate(aligned.cameras):
        row = calibration_cameras[mapping[name]]
        size = np.array([row["image_width"], row["image_height"]], np.float64)
        offset = np.abs(aligned.points[c] - size / 2) - size / 2  # px beyond the image border, per axis
        limit = MAX_IMAGE_SIZES_AWAY * size
        far = (aligned.confidence[c] > 0) & np.any(np.nan_to_num(offset) > limit, axis=-1)
        if np.any(far):
            t, j = np.argwhere(far)[0]
            raise IngestError(aligned.sources[name], "keypoints",
                              f"points within {MAX_IMAGE_SIZES_AWAY:g} image sizes of the {int(size[0])}×"
                              f"{int(size[1])} image of {row['camera_name']}, got {aligned.points[c, t, j].tolist()} "
                              f"px at frame {int(aligned.frame_index[t])} keypoint {j}")


def _duplicates_ignoring_case(names: list[str]) -> list[str]:
    """Names equal to another one up to letter case (the server compares keys case-insensitively)."""
    folded = [n.casefold() for n in names]
    return sorted({n for n, f in zip(names, folded) if folded.count(f) > 1})


def plan_session(path: str | Path, lookups: Lookups | None = None, subject_index: int = 0) -> SessionPlan:
    """Validate the manifest and read every file it names; nothing touches the database. ``subject_index``:
    which entry of ``[[subjects]]`` (a manifest with one ``[subject]`` has only 0)."""
    manifest = resolve_path(path, path, "manifest")
    lookups = lookups or Lookups.builtin()
    data, manifest_file = load_manifest(manifest)
    data, selection = subject_entry(data, subject_index, manifest)
    subject = _subject_row(data, manifest, lookups)
    session_table = data["session"]
    session_id = _key(_get(session_table, manifest, "session", "id", str), manifest, "session.id")
    session_key = dict(subject_id=subject["subject_id"], session_id=session_id)
    session = dict(session_key, manifest_file=str(manifest)[:1000])
    for key in ("location", "notes"):
        value = _get(session_table, manifest, "session", key, str, required=False)
        if value:
            session[key] = value[:1000 if key == "notes" else 255]
    calibration_format = _choice(_get(session_table, manifest, "session", "calibration_format", str),
                                 set(CALIBRATION_FORMATS), manifest, "session.calibration_format", "one of")
    unit = _get(session_table, manifest, "session", "calibration_unit", str, required=False)
    if unit is not None:
        _choice(unit, {"m", "mm"}, manifest, "session.calibration_unit", "one of")
    calibration_path = resolve_path(manifest.parent / _get(session_table, manifest, "session", "calibration", str),
                                    manifest, "session.calibration")
    if not calibration_path.exists():
        raise IngestError(manifest, "session.calibration", f"an existing file, {calibration_path} does not exist")
    calibration = read_calibration(calibration_path, calibration_format, unit)
    calibration_cameras = cameras_from_calibration(calibration)
    cameras = [dict(session_key, **row) for row in calibration_cameras.values()]

    trials = data.get("trials", [])
    if not trials:
        raise IngestError(manifest, "[[trials]]", "at least one trial")
    plans = [plan_trial(trial, i, manifest, session_key, calibration_cameras, lookups)
             for i, trial in enumerate(trials)]
    duplicates = _duplicates_ignoring_case([p.trial["trial_name"] for p in plans])
    if duplicates:
        raise IngestError(manifest, "trials.name", f"trial names unique ignoring letter case (the database does "
                                                   f"not distinguish them), repeated: {', '.join(duplicates)}")
    apply_subject_rule(plans, selection, manifest, subject_index)
    alignment = _choice(_get(session_table, manifest, "session", "world_alignment", str, required=False,
                             default="none"), set(WORLD_ALIGNMENTS), manifest, "session.world_alignment", "one of")
    if alignment == "auto":
        session["world_alignment"] = align_cameras(cameras, plans, lookups, manifest)
    return SessionPlan(manifest, subject, session, cameras, plans, calibration,
                       files=[manifest_file, calibration.file])


def align_cameras(cameras: list[dict], plans: list[TrialPlan], lookups: Lookups, manifest: Path) -> dict:
    """Estimate the world alignment from the subject (module docstring); rewrite ``cameras`` rotation/translation
    in place; return the provenance record stored in ``Session.world_alignment``."""
    from compute.cameras import make_camera
    from compute.triangulation import triangulate_trajectories
    from compute.world_alignment import estimate_world_alignment, transform_extrinsics
    from scipy.spatial.transform import Rotation

    by_name = {row["camera_name"]: row for row in cameras}
    frames: dict[str, int] = {}
    for plan in plans:
        frames[plan.trial["keypoint_set"]] = frames.get(plan.trial["keypoint_set"], 0) + plan.trial["n_frames"]
    keypoint_set = max(frames, key=frames.get)
    points = []
    for plan in plans:
        if plan.trial["keypoint_set"] != keypoint_set:
            continue
        rows = [by_name[k["camera_name"]] for k in plan.keypoints]
        rig = make_camera(np.stack([r["intrinsics"] for r in rows]), np.stack([r["distortion"] for r in rows]),
                          np.stack([r["rotation"] for r in rows]), np.stack([r["translation"] for r in rows]),
                          np.array([[r["image_width"], r["image_height"]] for r in rows], np.float64))
        xyz, _ = triangulate_trajectories(rig, np.stack([k["points"] for k in plan.keypoints]),
                                          np.stack([k["confidence"] for k in plan.keypoints]),
                                          outlier_threshold_px=ALIGNMENT_OUTLIER_THRESHOLD_PX)
        points.append(xyz)
    rotations = Rotation.from_rotvec(np.stack([np.asarray(r["rotation"], np.float64) for r in cameras])).as_matrix()
    try:
        alignment = estimate_world_alignment(np.concatenate(points), lookups.keypoint_sets[keypoint_set],
                                             camera_rotations=rotations)
    except ValueError as error:
        raise IngestError(manifest, "session.world_alignment", f"a subject seen well enough to find up and "
                                                               f"the floor ({error})") from None
    for row in cameras:
        rvec, tvec = transform_extrinsics(row["rotation"], row["translation"], alignment)
        row["rotation"], row["translation"] = rvec, tvec
    return dict(method="auto", keypoint_set=keypoint_set, **alignment.to_dict())


# --------------------------------------------------------------------------------------------- database
def check_not_present(plan: SessionPlan) -> None:
    """Duplicate ingest and conflicting subjects are errors (before any insert)."""
    from schemas import acquisition as acq

    subject_id = plan.subject["subject_id"]
    stored = (acq.Subject & {"subject_id": subject_id}).to_dicts()  # the server matches ignoring case
    if stored:
        check_same_subject(plan.manifest, plan.subject, stored[0])
    session_key = {k: plan.session[k] for k in ("subject_id", "session_id")}
    stored_sessions = (acq.Session & session_key).to_dicts()
    if stored_sessions:
        other = stored_sessions[0]
        same = other["subject_id"] == subject_id and other["session_id"] == session_key["session_id"]
        raise IngestError(plan.manifest, "session.id",
                          f"a session not yet ingested; {subject_id}/{session_key['session_id']} is already in "
                          f"the database" + ("" if same else f" as {other['subject_id']}/{other['session_id']} "
                                                             f"(ids are compared ignoring letter case)"))


def check_same_subject(manifest: Path, declared: dict, stored: dict) -> None:
    """A subject already stored may be re-declared only with its exact id and the same attributes (those given)."""
    if stored["subject_id"] != declared["subject_id"]:
        raise IngestError(manifest, "subject.id", f"an id distinct from stored subject {stored['subject_id']!r} "
                                                  f"ignoring letter case (the database does not distinguish them), "
                                                  f"got {declared['subject_id']!r}")
    for key, value in declared.items():
        old = stored.get(key)
        differs = (not math.isclose(float(old), float(value), rel_tol=1e-6) if isinstance(value, float)
                   and old is not None else old != value)
        if differs:
            raise IngestError(manifest, f"subject.{key}", f"{old!r} as already stored for subject "
                                                          f"{declared['subject_id']}, got {value!r} (a subject's "
                                                          f"attributes are set once)")


def insert_plan(plan: SessionPlan, connection) -> dict[str, int]:
    """Insert the whole session in one transaction; returns the row counts inserted."""
    return insert_plans([plan], connection)[0]


def insert_plans(plans: list[SessionPlan], connection) -> list[dict[str, int]]:
    """Insert sessions (one per subject of a manifest) all in one transaction; returns each one's row counts."""
    from schemas import acquisition as acq

    for plan in plans:
        check_not_present(plan)
    max_packet = max_packet_bytes(connection)
    batches = [keypoint_batches(plan.trials, max_packet) for plan in plans]  # too large a row: error before writing
    with connection.transaction:
        for plan, plan_batches in zip(plans, batches):
            acq.Subject.insert1(plan.subject, skip_duplicates=True)
            acq.Session.insert1(plan.session)
            acq.Camera.insert(plan.cameras)
            insert_trials(plan.trials, plan_batches)
            acq.SourceFile.insert(plan.source_files())
    return [plan.row_counts() for plan in plans]


# A Keypoints INSERT carries, besides its blobs, the column list, keys, short text and DataJoint's provenance
# value; this bounds all of that per row, so a statement never reaches the server's limit.
ROW_OVERHEAD_BYTES = 64 * 1024


def max_packet_bytes(connection) -> int:
    """The server's ``max_allowed_packet`` (bytes): the largest SQL statement it accepts."""
    return int(connection.query("SELECT @@max_allowed_packet").fetchone()[0])


def encoded_row_bytes(row: dict) -> int:
    """Upper bound of the bytes one Keypoints row takes in an INSERT statement (``ROW_OVERHEAD_BYTES`` included).

    Numpy arrays count as DataJoint stores a ``<blob>`` (its serialisation, zlib-compressed when that is smaller)
    and as the MySQL client sends bytes: PyMySQL writes them as a hex literal ``X'…'``, two characters per byte
    (escaping instead would also be at most two per byte), so a blob takes twice its size in the statement.
    """
    import datajoint as dj

    size = ROW_OVERHEAD_BYTES
    for value in row.values():
        size += 2 * len(dj.blob.pack(value, compress=True)) + 16 if isinstance(value, np.ndarray) \
            else len(str(value)) + 2
    return size


KeypointStatement = tuple[str, list[dict]]  # ("Keypoints" | "Keypoints.Chunk", rows of one INSERT)


def split_keypoint_row(row: dict, max_packet: int) -> tuple[dict, list[dict]]:
    """A Keypoints row too large for one statement → (master row with NULL points/confidence, Chunk rows).

    Chunks hold consecutive frames, each sized to take at most ~80 % of ``max_packet`` in an INSERT (measured on
    the chunk itself, halved until it fits, since compression makes the size per frame uneven).
    Raises IngestError when even the master row (its ``frame_index``) or one frame does not fit.
    """
    master = dict(row, points=None, confidence=None)
    if encoded_row_bytes(master) > max_packet:
        raise IngestError(row["source"] or row["camera_name"], "keypoints",
                          f"at most {max_packet / 2**20:.1f} MiB of frame indices per camera of a trial (the "
                          f"server's max_allowed_packet); camera {row['camera_name']} has "
                          f"{row['points'].shape[0]} frames: raise max_allowed_packet or split the recording")
    points, confidence = row["points"], row["confidence"]
    n_frames = points.shape[0]
    key = {k: row[k] for k in ("subject_id", "session_id", "trial_name", "camera_name")}
    per_frame = max(1.0, encoded_row_bytes(dict(points=points, confidence=confidence)) / max(n_frames, 1))
    frames_per_chunk = max(1, int(0.8 * max_packet / per_frame))
    chunks, start = [], 0
    while start < n_frames:
        stop = min(n_frames, start + frames_per_chunk)
        chunk = dict(key, chunk_index=len(chunks), points=points[start:stop], confidence=confidence[start:stop])
        if encoded_row_bytes(chunk) > max_packet:
            if stop - start == 1:
                raise IngestError(row["source"] or row["camera_name"], "keypoints",
                                  f"one frame of camera {row['camera_name']} exceeds the server's "
                                  f"max_allowed_packet ({max_packet} bytes)")
            frames_per_chunk = max(1, (stop - start) // 2)
            continue
        chunks.append(chunk)
        start = stop
    return master, chunks


def keypoint_batches(trials: list[TrialPlan], max_packet: int) -> list[list[KeypointStatement]]:
    """Per trial, the INSERT statements of its Keypoints rows, each under ``max_packet`` bytes.

    All cameras of a long trial in one multi-row INSERT exceed the server's packet limit (6 min at 60 fps,
    4 cameras, 25 keypoints: ~27 MB against MariaDB's default 16 MB); grouped greedily they go in several
    statements of the same transaction. A camera whose row alone exceeds the limit (about 7 minutes at 60 fps
    × 25 keypoints on a 16 MB server, so any hours-long trial) is stored as a master row with NULL arrays plus
    ``Keypoints.Chunk`` parts of consecutive frames, one statement each (:func:`split_keypoint_row`).
    """
    batches = []
    for trial in trials:
        statements: list[KeypointStatement] = []
        chunk_statements: list[KeypointStatement] = []
        group_bytes = max_packet
        for row in trial.keypoints:
            size = encoded_row_bytes(row)
            if size > max_packet:
                row, chunks = split_keypoint_row(row, max_packet)
                size = encoded_row_bytes(row)
                chunk_statements.extend(("Keypoints.Chunk", [chunk]) for chunk in chunks)
            if group_bytes + size > max_packet:
                statements.append(("Keypoints", []))
                group_bytes = 0
            statements[-1][1].append(row)
            group_bytes += size
        batches.append(statements + chunk_statements)  # parts after their masters
    return batches


def insert_trials(trials: list[TrialPlan], keypoint_batches_per_trial: list[list[KeypointStatement]]) -> None:
    """Insert trials with their keypoints (``keypoint_batches_per_trial``: :func:`keypoint_batches`, one INSERT
    per statement), videos and walkway steps (call inside a transaction)."""
    from schemas import acquisition as acq

    tables = {"Keypoints": acq.Keypoints, "Keypoints.Chunk": acq.Keypoints.Chunk}
    for trial, statements in zip(trials, keypoint_batches_per_trial, strict=True):
        acq.Trial.insert1(trial.trial)
        for table_name, rows in statements:
            tables[table_name].insert(rows)
        video_trial, videos = trial.video_rows()
        if video_trial is not None:
            insert_trial_videos(video_trial, videos)
        if trial.walkway:
            acq.WalkwaySteps.insert1(trial.walkway)
            acq.WalkwaySteps.Footfall.insert(trial.footfalls)


def ingest_sessions(path: str | Path, connection=None, dry_run: bool = False) -> list[SessionPlan]:
    """:func:`ingest_session` for a manifest with one ``[subject]`` or several ``[[subjects]]`` (participants
    filmed together: one session per subject, all inserted in one transaction or none)."""
    lookups = Lookups.from_database() if connection is not None else Lookups.builtin()
    data, _ = load_manifest(resolve_path(path, path, "manifest"))
    plans = [plan_session(path, lookups, i) for i in range(len(data.get("subjects", [data["subject"]])))]
    for plan in plans:
        plan.dry_run = dry_run
        if connection is not None:
            check_not_present(plan)
    if not dry_run:
        if connection is None:
            raise ValueError("a database connection is needed to insert")
        insert_plans(plans, connection)
    return plans


def ingest_session(path: str | Path, connection=None, dry_run: bool = False) -> SessionPlan:
    """Validate + read everything, then (unless ``dry_run``) insert it in one transaction.

    ``connection``: an activated DataJoint connection (schemas bound); None with ``dry_run`` uses built-in lookups.
    """
    lookups = Lookups.from_database() if connection is not None else Lookups.builtin()
    plan = plan_session(path, lookups)
    plan.dry_run = dry_run
    if connection is not None:
        check_not_present(plan)
    if not dry_run:
        if connection is None:
            raise ValueError("a database connection is needed to insert")
        insert_plan(plan, connection)
    return plan


# --------------------------------------------------------------------------------------------- partial ingests
def _existing_session(subject_id: str, session_id: str, source: Path | str) -> dict:
    from schemas import acquisition as acq

    key = dict(subject_id=subject_id, session_id=session_id)
    if not acq.Session & key:
        raise IngestError(source, "session", f"an existing session; {subject_id}/{session_id} is not in the database "
                                             f"(use `mmc ingest session` first)")
    return key


def _next_file_index(key: dict) -> int:
    from schemas import acquisition as acq

    indices = (acq.SourceFile & key).to_arrays("file_index")
    return int(max(indices)) + 1 if len(indices) else 0


def ingest_calibration(subject_id: str, session_id: str, path: str | Path, calibration_format: str,
                       unit: str | None, connection, dry_run: bool = False) -> list[dict]:
    """Add the cameras of a calibration file to an existing session that has none of them yet."""
    from schemas import acquisition as acq

    path = resolve_path(path, path, "calibration")
    key = _existing_session(subject_id, session_id, path)
    calibration = read_calibration(path, calibration_format, unit)
    rows = [dict(key, **row) for row in cameras_from_calibration(calibration).values()]
    present = [r["camera_name"] for r in rows if acq.Camera & dict(key, camera_name=r["camera_name"])]
    if present:
        raise IngestError(path, "camera_name", f"cameras not yet in session {subject_id}/{session_id}; already "
                                               f"present: {', '.join(present)}")
    if not dry_run:
        with connection.transaction:
            acq.Camera.insert(rows)
            acq.SourceFile.insert(source_file_rows(key, [(calibration.file, "", "")], _next_file_index(key)))
    return rows


def _session_cameras(key: dict) -> dict[str, dict]:
    from schemas import acquisition as acq

    rows = (acq.Camera & key).to_dicts()
    return {row["camera_name"]: row for row in rows}


def ingest_trial(subject_id: str, session_id: str, trial: dict, base_dir: str | Path, connection,
                 dry_run: bool = False, source: str | Path = "command line") -> TrialPlan:
    """Add one trial (fields as a manifest ``[[trials]]`` entry, paths relative to ``base_dir``)."""
    from schemas import acquisition as acq

    key = _existing_session(subject_id, session_id, source)
    cameras = _session_cameras(key)
    if not cameras:
        raise IngestError(source, "camera", f"calibrated cameras in session {subject_id}/{session_id} "
                                            f"(run `mmc ingest calibration` first)")
    pseudo_manifest = Path(base_dir).resolve() / "command-line"
    name = _key(_get(trial, pseudo_manifest, "trial", "name", str), pseudo_manifest, "trial.name")
    stored = (acq.Trial & dict(key, trial_name=name)).to_arrays("trial_name")  # the server ignores case
    if len(stored):
        also = "" if stored[0] == name else f" as {stored[0]!r} (names are compared ignoring letter case)"
        raise IngestError(source, "trial", f"a new trial; {name!r} is already in session {subject_id}/"
                                           f"{session_id}{also}")
    plan = plan_trial(trial, 0, pseudo_manifest, key, cameras, Lookups.from_database())
    if not dry_run:
        batches = keypoint_batches([plan], max_packet_bytes(connection))
        with connection.transaction:
            insert_trials([plan], batches)
            entries = [(f, plan.trial["trial_name"], camera) for f, camera in plan.files]
            acq.SourceFile.insert(source_file_rows(key, entries, _next_file_index(key)))
    return plan


def ingest_walkway(subject_id: str, session_id: str, trial_name: str, path: str | Path, connection,
                   dry_run: bool = False) -> list[dict]:
    """Add walkway footfalls to an existing trial that has none yet."""
    from schemas import acquisition as acq

    path = resolve_path(path, path, "walkway")
    key = dict(subject_id=subject_id, session_id=session_id, trial_name=trial_name)
    if not acq.Trial & key:
        raise IngestError(path, "trial", f"an existing trial; {subject_id}/{session_id}/{trial_name} is not in the "
                                         f"database")
    if acq.WalkwaySteps & key:
        raise IngestError(path, "trial", f"a trial without walkway steps; {trial_name} already has them")
    file = read_input(path, "walkway")
    footfalls = [dict(key, **row) for row in parse_walkway_csv(file)]
    if not dry_run:
        session_key = dict(subject_id=subject_id, session_id=session_id)
        with connection.transaction:
            acq.WalkwaySteps.insert1(dict(key, source_file=str(path)[:1000], n_footfalls=len(footfalls)))
            acq.WalkwaySteps.Footfall.insert(footfalls)
            acq.SourceFile.insert(source_file_rows(session_key, [(file.record(), trial_name, "")],
                                                   _next_file_index(session_key)))
    return footfalls
