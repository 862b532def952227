"""What the report, the figures and the exports read: fitted trials, gait steps, contacts, cameras, exports,
gait-cycle strides and spatiotemporal parameters."""
from __future__ import annotations

import numpy as np

from schemas import acquisition, fitting, gait, model, schema_name, video
from schemas.reads import require_columns, restrict
from schemas.reads.observations import session_cameras


def require_prefix(prefix: str) -> None:
    """Raise LookupError unless the schema modules read here are bound to ``<prefix>_<module>``."""
    for name, module in (("acquisition", acquisition), ("model", model), ("fitting", fitting), ("gait", gait)):
        if module.schema.database != schema_name(prefix, name):
            raise LookupError(f"schemas.{name} is bound to {module.schema.database!r}, not "
                              f"{schema_name(prefix, name)!r}: open the database with prefix {prefix!r} first")


def parameter_sets() -> dict[str, dict]:
    """``{params_name: params}``: every ``FitParams`` row's JSON (``compute.params.FitParams.to_dict`` form)."""
    table = require_columns(fitting.FitParams, "params_name", "params")
    return {row["params_name"]: row["params"] for row in table.to_dicts()}


def refined_cameras(fit_key: dict) -> dict:
    """A fit's cameras as :func:`~schemas.reads.observations.camera_arrays`: intrinsics from
    ``acquisition.Camera``, extrinsics from ``BilevelFit.RefinedCalibration`` (after bundle adjustment) where the
    fit has them, else from the calibration file."""
    cameras = session_cameras(fit_key)
    table = require_columns(fitting.BilevelFit.RefinedCalibration, "camera_name", "rotation", "translation")
    fit = {k: fit_key[k] for k in ("subject_id", "session_id", "base_model", "params_name")}
    refined = {r["camera_name"]: r for r in (table & fit).to_dicts()}
    for c, name in enumerate(cameras["names"]):
        if name in refined:
            cameras["rvec"][c] = np.asarray(refined[name]["rotation"], np.float64).ravel()
            cameras["tvec"][c] = np.asarray(refined[name]["translation"], np.float64).ravel()
    return cameras


def camera_time_offsets(*restrictions) -> list[dict]:
    """Fitted camera time offsets: ``BilevelFit.RefinedCalibration`` rows whose ``time_offset_s`` is not NULL
    (fit key, camera_name, time_offset_s, population), ordered by fit and camera."""
    table = require_columns(fitting.BilevelFit.RefinedCalibration, "camera_name", "time_offset_s")
    query = restrict((table.proj("time_offset_s") & "time_offset_s IS NOT NULL")
                     * require_columns(acquisition.Subject, "population").proj("population"), restrictions)
    return query.to_dicts(order_by="subject_id, session_id, base_model, params_name, camera_name")


# ------------------------------------------------------------------------------------------- fitted trials
FIT_KEY = ("subject_id", "session_id", "trial_name", "base_model", "params_name")


def render_inputs(trial_fit_key: dict) -> dict:
    """What drawing one fitted trial needs: ``qpos`` (T, Q) rad/m, ``markers`` (T, J, 3) m, ``times`` (T,) s,
    ``fps``, the fit's ``log_scale`` (G,), the base model's ``mjcf_xml`` and ``scale_matrix`` (B, G), the refined
    ``cameras`` (:func:`refined_cameras`), ``first_frame``: the video frame of fit frame 0 (the trial's first
    keypoint frame index), and ``videos``: {camera_name: path} from ``video.Video`` (empty without videos)."""
    trial = (require_columns(fitting.BilevelFit.Trial, "times", "qpos", "markers") & dict(trial_fit_key)).fetch1()
    key = {k: trial[k] for k in FIT_KEY}
    fit = {k: key[k] for k in ("subject_id", "session_id", "base_model", "params_name")}
    log_scale = (require_columns(fitting.BilevelFit, "log_scale") & fit).fetch1("log_scale")
    base = (require_columns(model.BaseModel, "mjcf_xml", "scale_matrix") & {"base_model": key["base_model"]}).fetch1()
    trial_key = {k: key[k] for k in ("subject_id", "session_id", "trial_name")}
    fps = (require_columns(acquisition.Trial, "fps") & trial_key).fetch1("fps")
    frame_index = (require_columns(acquisition.Keypoints, "frame_index") & trial_key).to_arrays("frame_index")
    videos = (require_columns(video.Video, "camera_name", "path") & trial_key).to_dicts()
    return dict(key=key, qpos=np.asarray(trial["qpos"], np.float64), markers=np.asarray(trial["markers"], np.float64),
                times=np.asarray(trial["times"], np.float64), fps=float(fps),
                log_scale=np.asarray(log_scale, np.float64), mjcf_xml=str(base["mjcf_xml"]),
                scale_matrix=np.asarray(base["scale_matrix"], np.float64), cameras=refined_cameras(key),
                first_frame=int(np.asarray(frame_index[0]).ravel()[0]) if len(frame_index) else 0,
                videos={r["camera_name"]: r["path"] for r in videos})


def fitted_trial(trial_fit_key: dict) -> dict:
    """One ``BilevelFit.Trial`` row: times (T,) s, joint_names (Q,), qpos (T, Q), markers (T, J, 3) m, gc5, ...;
    plus the subject's ``population``, the fit's ``keypoint_set`` and its ``keypoint_names`` (J,)."""
    table = require_columns(fitting.BilevelFit.Trial, "times", "joint_names", "qpos", "markers")
    row = (table & dict(trial_fit_key)).fetch1()
    key = {k: row[k] for k in FIT_KEY}
    row["population"] = (require_columns(acquisition.Subject, "population") & key).fetch1("population")
    row["keypoint_set"] = (require_columns(fitting.BilevelFit, "keypoint_set") & key).fetch1("keypoint_set")
    row["keypoint_names"] = tuple((require_columns(acquisition.KeypointSet, "joint_names")
                                   & {"keypoint_set": row["keypoint_set"]}).fetch1("joint_names"))
    return row


def fitted_trials(*restrictions) -> list[dict]:
    """Every fitted trial: ``BilevelFit.Trial`` (gc5 fraction, gc_curve (20,)) with the subject's population, the
    trial's activity and fps; ordered by key."""
    query = (require_columns(fitting.BilevelFit.Trial, "gc5", "gc_curve").proj("gc5", "gc_curve")
             * require_columns(acquisition.Subject, "population").proj("population")
             * require_columns(acquisition.Trial, "activity", "fps").proj("activity", "fps"))
    return restrict(query, restrictions).to_dicts(order_by=", ".join(FIT_KEY))


CROSS_VALIDATION_COLUMNS = ("n_keypoints", "fit_median_px", "fit_gc5", "fit_median_common_px",
                            "triangulation_median_px", "triangulation_gc5", "triangulation_coverage",
                            "in_sample_median_px", "remaining_median_px", "rotation_change_deg", "centre_change_mm",
                            "frames_refined_median_px", "frames_input_median_px", "calibration_verdict",
                            "calibration_flagged")


def cross_validation_cameras(*restrictions) -> list[dict]:
    """Every ``CrossValidation.HeldOutCamera`` row (fit key, camera_name and :data:`CROSS_VALIDATION_COLUMNS`: px,
    fractions, deg, mm) with the subject's population, ordered by fit key and camera; empty when the table is
    missing from this database (validation never run)."""
    from schemas import validation

    if validation.schema.database is None or not validation.CrossValidation.HeldOutCamera.is_declared:
        return []
    part = require_columns(validation.CrossValidation.HeldOutCamera, "camera_name", *CROSS_VALIDATION_COLUMNS)
    query = part.proj(*CROSS_VALIDATION_COLUMNS) * require_columns(acquisition.Subject, "population").proj(
        "population")
    return restrict(query, restrictions).to_dicts(
        order_by="subject_id, session_id, base_model, params_name, camera_name")


def cross_validation_notes(*restrictions) -> list[dict]:
    """``CrossValidation`` rows that carry remarks: fit key and ``notes`` (list of str), ordered by fit key; empty
    when the table is missing from this database (validation never run)."""
    from schemas import validation

    if validation.schema.database is None or not validation.CrossValidation.is_declared:
        return []
    table = require_columns(validation.CrossValidation, "notes")
    rows = restrict(table.proj("notes"), restrictions).to_dicts(
        order_by="subject_id, session_id, base_model, params_name")
    return [row for row in rows if row["notes"]]


STEP_ERROR_COLUMNS = ("step_width_error", "stride_length_error", "step_length_error")


def walkway_matched_steps(*restrictions) -> list[dict]:
    """Steps of ``GaitMetrics.Step`` with an error against the walkway (matched to a footfall), with their errors (model - walkway, m:
    ``step_width_error``, ``stride_length_error``, ``step_length_error``) and the subject's population."""
    step = require_columns(gait.GaitMetrics.Step, "footfall_index", *STEP_ERROR_COLUMNS)
    query = (step.proj("foot", "contact_time", "footfall_index", *STEP_ERROR_COLUMNS)
             * acquisition.Subject.proj("population"))
    has_error = " OR ".join(f"{name} IS NOT NULL" for name in STEP_ERROR_COLUMNS)
    query = restrict(query, restrictions) & has_error
    return query.to_dicts(order_by=", ".join(FIT_KEY) + ", step_index")


def detected_contacts(trial_fit_key: dict) -> list[dict]:
    """Foot contacts the gait table found in the fitted markers: ``dict(foot 'L'/'R', contact_time s)``."""
    step = require_columns(gait.GaitMetrics.Step, "foot", "contact_time")
    return (step & dict(trial_fit_key)).proj("foot", "contact_time").to_dicts(order_by="step_index")


def walkway_time_offset(trial_fit_key: dict) -> float:
    """``time_offset_s`` of the session's walkway alignment (walkway time = video time + offset); 0 when the
    trial has no ``GaitMetrics`` row or no alignment."""
    metrics = require_columns(gait.GaitMetrics, "walkway_alignment")
    for row in (metrics & dict(trial_fit_key)).proj("walkway_alignment").to_dicts():
        alignment = row["walkway_alignment"]
        if alignment is not None and np.isfinite(alignment["time_offset_s"]):
            return float(alignment["time_offset_s"])
    return 0.0


def trial_exports(*restrictions) -> list[dict]:
    """Rows to export: ``BilevelFit.Trial`` (times, qpos, joint_names, markers) with the trial's ``fps`` and the
    fit's keypoint names (``marker_names``, from ``acquisition.KeypointSet.joint_names``); ordered by key."""
    query = (require_columns(fitting.BilevelFit.Trial, "times", "qpos", "joint_names", "markers")
             * require_columns(fitting.BilevelFit, "keypoint_set").proj("keypoint_set")
             * require_columns(acquisition.Trial, "fps").proj("fps"))
    query = restrict(query, restrictions)
    names = {r["keypoint_set"]: tuple(r["joint_names"])
             for r in require_columns(acquisition.KeypointSet, "joint_names").proj("joint_names").to_dicts()}
    rows = []
    for key in query.keys(order_by=", ".join(FIT_KEY)):
        row = (query & key).fetch1()
        row["marker_names"] = names[row["keypoint_set"]]
        rows.append(row)
    return rows


FIT_MODEL_KEY = ("subject_id", "session_id", "base_model", "params_name")


def fit_models(*restrictions) -> list[dict]:
    """What the ``.osim`` of each matching ``BilevelFit`` needs, ordered by key: the fit key (``FIT_MODEL_KEY``),
    ``keypoint_set``, ``log_scale`` (G,), ``offsets`` (J, 3) m body frame, the base model's ``mjcf_xml`` (MJCF
    text) and ``marker_sites`` (J, 3) m (``BaseModel.Marker`` of that keypoint set, keypoint order, unscaled body
    frame), and the subject's ``mass_kg`` (None when unknown).

    Raises LookupError naming the model and set when the base model has no marker sites for the fit's set.
    """
    fit = require_columns(fitting.BilevelFit, "keypoint_set", "log_scale", "offsets")
    query = restrict(fit.proj("keypoint_set", "log_scale", "offsets"), restrictions)
    base = require_columns(model.BaseModel, "mjcf_xml")
    marker = require_columns(model.BaseModel.Marker, "marker_index", "site_x", "site_y", "site_z")
    subject = require_columns(acquisition.Subject, "mass_kg")
    rows = []
    for row in query.to_dicts(order_by=", ".join(FIT_MODEL_KEY)):
        sites = (marker & {"base_model": row["base_model"], "keypoint_set": row["keypoint_set"]}).to_dicts(
            order_by="marker_index")
        if not sites:
            raise LookupError(f"BaseModel.Marker: model {row['base_model']!r} has no sites for keypoint set "
                              f"{row['keypoint_set']!r}")
        mass = (subject & {"subject_id": row["subject_id"]}).fetch1("mass_kg")
        rows.append(dict(
            {k: row[k] for k in FIT_MODEL_KEY}, keypoint_set=row["keypoint_set"],
            log_scale=np.asarray(row["log_scale"], np.float64), offsets=np.asarray(row["offsets"], np.float64),
            mjcf_xml=str((base & {"base_model": row["base_model"]}).fetch1("mjcf_xml")),
            marker_sites=np.array([[r["site_x"], r["site_y"], r["site_z"]] for r in sites], np.float64),
            mass_kg=None if mass is None or not np.isfinite(mass) else float(mass)))
    return rows


# ------------------------------------------------------------------------------ gait cycles, spatiotemporal
def gait_cycle_strides(*restrictions) -> list[dict]:
    """Every kept stride (``GaitCycle.Stride``): the fit key, ``stride_index``, ``side`` 'L'/'R',
    ``toe_off_percent`` (% of cycle, None when unknown), ``angles`` (101, Q) rad over 0-100 % of the cycle, the
    trial's ``coordinate_names`` (Q,) and the subject's ``population``; ordered by key and stride."""
    stride = require_columns(gait.GaitCycle.Stride, "side", "toe_off_percent", "angles")
    query = (stride.proj("side", "toe_off_percent", "angles")
             * require_columns(gait.GaitCycle, "coordinate_names").proj("coordinate_names")
             * require_columns(acquisition.Subject, "population").proj("population"))
    return restrict(query, restrictions).to_dicts(order_by=", ".join(FIT_KEY) + ", stride_index")


def spatiotemporal_parameters(*restrictions) -> list[dict]:
    """``SpatiotemporalParameters`` rows, one per fitted walking trial and side (the fit key, ``side``,
    ``n_strides``, ``n_steps`` and every column of ``schemas.gait.SPATIOTEMPORAL_COLUMNS``, NULL as None), with
    the subject's ``population``; ordered by key and side."""
    table = require_columns(gait.SpatiotemporalParameters, "side", "n_strides", *gait.SPATIOTEMPORAL_COLUMNS)
    query = table * require_columns(acquisition.Subject, "population").proj("population")
    return restrict(query, restrictions).to_dicts(order_by=", ".join(FIT_KEY) + ", side")
