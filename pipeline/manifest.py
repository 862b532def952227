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
    calibration_format = "anipose" # anipose | caliscope
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

World alignment: ``world_alignment = "auto"`` is for calibrations whose world is not Z-up with the floor at
z = 0 (Caliscope: the world is camera 1's frame). After reading the calibration and the keypoints, the subject's
keypoints are triangulated (:func:`compute.triangulation.triangulate_trajectories`, 100 px outlier threshold) in
every trial of the most common keypoint set, and :func:`compute.world_alignment.estimate_world_alignment` (with
the cameras' rotations for the level-camera up estimate) gives the rigid transform ``X' = R_a X + t_a``. The
Camera rows then hold the extrinsics in the aligned world (projections unchanged) and ``Session.world_alignment``
records ``{method, rotation, translation, up_source, floor_height, floor_source, heading_source}``; the source
file's extrinsics are ``R = R' R_a``, ``t = t' + R' t_a``. ``"none"`` (default) stores the calibration as is and
leaves ``Session.world_alignment`` NULL. Partial ingests (``ingest_calibration``) never align.

Nothing is written unless everything validates: :func:`plan_session` builds all rows in memory (raising
:class:`IngestError` with ``file: field: expected`` on any problem) and :func:`insert_plan` inserts them inside
``with connection.transaction:``, so a session is inserted whole or not at all.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.importers.calibration import Calibration, read_calibration
from pipeline.importers.errors import IngestError
from pipeline.importers.keypoints import align_frames, read_keypoints
from pipeline.importers.naming import match_cameras, normalize_camera_name
from pipeline.importers.walkway import read_walkway_csv
from pipeline.keypoint_sets import KEYPOINT_SETS

KEY_PATTERN_LENGTH = 32
CALIBRATION_FORMATS = ("anipose", "caliscope")
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

    def summary(self) -> str:
        t = self.trial
        lines = [f"trial {t['trial_name']}: {t['activity']}, {t['keypoint_set']}, {t['n_frames']} frames at "
                 f"{t['fps']:g} fps, {len(self.keypoints)} cameras"]
        for row in self.keypoints:
            conf = row["confidence"]
            lines.append(f"    {row['camera_name']}: {conf.shape[0]}×{conf.shape[1]} keypoints, "
                         f"{float(np.mean(conf > 0)):.0%} present, {row['n_missing_frames']} frames missing")
        if self.walkway:
            lines.append(f"    walkway: {len(self.footfalls)} footfalls from {self.walkway['source_file']}")
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

    def row_counts(self) -> dict[str, int]:
        return {"Subject": 1, "Session": 1, "Camera": len(self.cameras), "Trial": len(self.trials),
                "Keypoints": sum(len(t.keypoints) for t in self.trials),
                "WalkwaySteps": sum(1 for t in self.trials if t.walkway),
                "WalkwaySteps.Footfall": sum(len(t.footfalls) for t in self.trials)}

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
        return "\n".join(lines)


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
    if len(value) > KEY_PATTERN_LENGTH or any(c in value for c in "\"'`\\/\n"):
        raise IngestError(manifest, field_name, f"an identifier of at most {KEY_PATTERN_LENGTH} characters without "
                                                f"quotes or slashes, got {value!r}")
    return value


def _choice(value: str, allowed, manifest: Path, field_name: str, what: str) -> str:
    if value not in allowed:
        raise IngestError(manifest, field_name, f"{what} ({', '.join(sorted(allowed))}), got {value!r}")
    return value


def load_manifest(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise IngestError(path, "file", "an existing manifest TOML") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise IngestError(path, "file", f"valid TOML ({error})") from None
    for section in ("subject", "session"):
        if not isinstance(data.get(section), dict):
            raise IngestError(path, f"[{section}]", "a table")
    if not isinstance(data.get("trials", []), list):
        raise IngestError(path, "[[trials]]", "an array of tables")
    return data


def _subject_row(data: dict, manifest: Path, lookups: Lookups) -> dict:
    subject = data["subject"]
    row = dict(subject_id=_key(_get(subject, manifest, "subject", "id", str), manifest, "subject.id"),
               population=_choice(_get(subject, manifest, "subject", "population", str), lookups.populations,
                                  manifest, "subject.population", "a Population row"))
    for key in ("height_m", "mass_kg"):
        value = _get(subject, manifest, "subject", key, float, required=False)
        if value is not None:
            if value <= 0:
                raise IngestError(manifest, f"subject.{key}", f"a positive number, got {value}")
            row[key] = value
    sex = _get(subject, manifest, "subject", "sex", str, required=False)
    if sex is not None:
        row["sex"] = _choice(sex, {"F", "M", "U"}, manifest, "subject.sex", "one of")
    birth_year = _get(subject, manifest, "subject", "birth_year", int, required=False)
    if birth_year is not None:
        row["birth_year"] = birth_year
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
    fps = _get(trial, manifest, section, "fps", float)
    if fps <= 0:
        raise IngestError(manifest, f"{section}.fps", f"a positive frame rate, got {fps}")
    keypoint_set = _choice(_get(trial, manifest, section, "keypoint_set", str), set(lookups.keypoint_sets), manifest,
                           f"{section}.keypoint_set", "a KeypointSet row")
    keypoints_format = _choice(_get(trial, manifest, section, "keypoints_format", str), set(KEYPOINT_FORMATS),
                               manifest, f"{section}.keypoints_format", "one of")
    keypoints_path = (base / _get(trial, manifest, section, "keypoints", str)).resolve()
    if not keypoints_path.exists():
        raise IngestError(manifest, f"{section}.keypoints", f"an existing path, {keypoints_path} does not exist")
    camera_map = _get(trial, manifest, section, "camera_map", dict, required=False, default={})
    device = _get(trial, manifest, section, "assistive_device", str, required=False, default="none") or "none"
    detector = _get(trial, manifest, section, "detector", str, required=False, default="") or ""

    names = lookups.keypoint_sets[keypoint_set]
    per_camera = read_keypoints(keypoints_path, keypoints_format, names, keypoint_set)
    mapping = match_cameras(list(per_camera), list(calibration_cameras), camera_map, keypoints_path,
                            field="camera")
    aligned = align_frames(per_camera, keypoints_path)
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
    plan = TrialPlan(trial_row, keypoint_rows, left_out=dict(aligned.left_out))
    uncovered = sorted({row["camera_name"] for row in calibration_cameras.values()}
                       - {row["camera_name"] for row in keypoint_rows})
    if uncovered:
        plan.notes.append(f"calibrated cameras without keypoints in this trial: {', '.join(uncovered)}")
    if aligned.left_out:
        plan.notes.append("points outside " + keypoint_set + " left out: "
                          + ", ".join(f"{group} {count}" for group, count in sorted(aligned.left_out.items())))
    walkway = _get(trial, manifest, section, "walkway", str, required=False)
    if walkway:
        walkway_path = (base / walkway).resolve()
        footfalls = read_walkway_csv(walkway_path)
        plan.walkway = dict(trial_key, source_file=str(walkway_path)[:1000], n_footfalls=len(footfalls))
        plan.footfalls = [dict(trial_key, **row) for row in footfalls]
    return plan


def plan_session(path: str | Path, lookups: Lookups | None = None) -> SessionPlan:
    """Validate the manifest and read every file it names; nothing touches the database."""
    manifest = Path(path).resolve()
    lookups = lookups or Lookups.builtin()
    data = load_manifest(manifest)
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
    calibration_path = (manifest.parent / _get(session_table, manifest, "session", "calibration", str)).resolve()
    if not calibration_path.is_file():
        raise IngestError(manifest, "session.calibration", f"an existing file, {calibration_path} does not exist")
    calibration = read_calibration(calibration_path, calibration_format, unit)
    calibration_cameras = cameras_from_calibration(calibration)
    cameras = [dict(session_key, **row) for row in calibration_cameras.values()]

    trials = data.get("trials", [])
    if not trials:
        raise IngestError(manifest, "[[trials]]", "at least one trial")
    plans = [plan_trial(trial, i, manifest, session_key, calibration_cameras, lookups)
             for i, trial in enumerate(trials)]
    names = [p.trial["trial_name"] for p in plans]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise IngestError(manifest, "trials.name", f"unique trial names, repeated: {', '.join(duplicates)}")
    alignment = _choice(_get(session_table, manifest, "session", "world_alignment", str, required=False,
                             default="none"), set(WORLD_ALIGNMENTS), manifest, "session.world_alignment", "one of")
    if alignment == "auto":
        session["world_alignment"] = align_cameras(cameras, plans, lookups, manifest)
    return SessionPlan(manifest, subject, session, cameras, plans, calibration)


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

    subject_key = {"subject_id": plan.subject["subject_id"]}
    existing = acq.Subject & subject_key
    if existing:
        population = existing.fetch1("population")
        if population != plan.subject["population"]:
            raise IngestError(plan.manifest, "subject.population",
                              f"{population!r} as already stored for subject {plan.subject['subject_id']}, got "
                              f"{plan.subject['population']!r}")
    session_key = {k: plan.session[k] for k in ("subject_id", "session_id")}
    if acq.Session & session_key:
        raise IngestError(plan.manifest, "session.id", f"a session not yet ingested; {session_key['subject_id']}/"
                                                       f"{session_key['session_id']} is already in the database")


def insert_plan(plan: SessionPlan, connection) -> dict[str, int]:
    """Insert the whole session in one transaction; returns the row counts inserted."""
    from schemas import acquisition as acq

    check_not_present(plan)
    with connection.transaction:
        acq.Subject.insert1(plan.subject, skip_duplicates=True)
        acq.Session.insert1(plan.session)
        acq.Camera.insert(plan.cameras)
        insert_trials(plan.trials)
    return plan.row_counts()


def insert_trials(trials: list[TrialPlan]) -> None:
    """Insert trials with their keypoints and walkway steps (call inside a transaction)."""
    from schemas import acquisition as acq

    for trial in trials:
        acq.Trial.insert1(trial.trial)
        acq.Keypoints.insert(trial.keypoints)
        if trial.walkway:
            acq.WalkwaySteps.insert1(trial.walkway)
            acq.WalkwaySteps.Footfall.insert(trial.footfalls)


def ingest_session(path: str | Path, connection=None, dry_run: bool = False) -> SessionPlan:
    """Validate + read everything, then (unless ``dry_run``) insert it in one transaction.

    ``connection``: an activated DataJoint connection (schemas bound); None with ``dry_run`` uses built-in lookups.
    """
    lookups = Lookups.from_database() if connection is not None else Lookups.builtin()
    plan = plan_session(path, lookups)
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


def ingest_calibration(subject_id: str, session_id: str, path: str | Path, calibration_format: str,
                       unit: str | None, connection, dry_run: bool = False) -> list[dict]:
    """Add the cameras of a calibration file to an existing session that has none of them yet."""
    from schemas import acquisition as acq

    path = Path(path).resolve()
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
    plan = plan_trial(trial, 0, pseudo_manifest, key, cameras, Lookups.from_database())
    if acq.Trial & plan.trial:
        raise IngestError(source, "trial", f"a new trial; {plan.trial['trial_name']} is already in the database")
    if not dry_run:
        with connection.transaction:
            insert_trials([plan])
    return plan


def ingest_walkway(subject_id: str, session_id: str, trial_name: str, path: str | Path, connection,
                   dry_run: bool = False) -> list[dict]:
    """Add walkway footfalls to an existing trial that has none yet."""
    from schemas import acquisition as acq

    path = Path(path).resolve()
    key = dict(subject_id=subject_id, session_id=session_id, trial_name=trial_name)
    if not acq.Trial & key:
        raise IngestError(path, "trial", f"an existing trial; {subject_id}/{session_id}/{trial_name} is not in the "
                                         f"database")
    if acq.WalkwaySteps & key:
        raise IngestError(path, "trial", f"a trial without walkway steps; {trial_name} already has them")
    footfalls = [dict(key, **row) for row in read_walkway_csv(path)]
    if not dry_run:
        with connection.transaction:
            acq.WalkwaySteps.insert1(dict(key, source_file=str(path)[:1000], n_footfalls=len(footfalls)))
            acq.WalkwaySteps.Footfall.insert(footfalls)
    return footfalls
