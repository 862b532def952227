"""Fitting: parameter sets, fit tasks, bilevel fits (with refined calibration) and trilevel fits.

Processing is requested, never implied (as in DataJoint Elements): ``FitTask`` names the session × base model ×
parameter set to fit and is the key source of ``BilevelFit``; ``TrilevelTask`` does the same for a named
``SubjectGroup``. ``FitParams`` rows are hashed JSON of ``compute.params.FitParams``; ``paper`` and
``cpu_default`` are present from activation on, and rows are never edited in place.

Every fit uses DataJoint's three-part make: ``make_fetch`` (database → numpy, wrapped in
:class:`schemas._inputs.FetchedInputs` so the re-fetch check is a SHA-1 compare), ``make_compute`` (no database;
one call into ``compute.fit``; jax arrays become numpy here), ``make_insert`` (master + parts). ``populate`` runs
fetch + compute outside any transaction and only the re-fetch + insert inside one, so an hour-long fit never holds
a transaction open and never leaves a partial fit: a ``FitDivergedError`` (NaN/inf loss) or any other error
leaves no row, and with ``reserve_jobs=True`` it lands in the table's jobs table with message and traceback.

Where the bytes live
--------------------
All arrays — per-frame joint angles ``(T, Q)``, markers ``(T, J, 3)``, loss histories, and the trajectory
networks' weights — are stored **in the tables themselves** (``<blob>``: DataJoint's packed numpy format,
zlib-compressed; ``bytes`` for the serialized networks) on the MySQL server. A 10 s, 30 fps trial is
~0.3 MB of markers plus ~0.3 MB of cpu_default network weights, so a second machine reaches every result through
the MySQL connection alone (``DJ_HOST``/``DJ_USER``/``DJ_PASS``): no shared file system or object store to
configure, and a ``mysqldump`` backs everything up. Part rows are inserted one by one so a single packet stays
below the server's ``max_allowed_packet`` (MySQL 8 default 64 MB). The ``paper`` parameter set's networks are
~45 MB per trial: labs fitting with it should raise ``max_allowed_packet`` to 256M, or switch the two
``network_weights``/``markers`` attributes to an object store (``<blob@store>`` with ``dj.config.stores``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import datajoint as dj

from compute.markersets import is_sparse
from compute.params import DEFAULT_PARAMS_NAME, PARAMETER_SETS, SPARSE_PARAMS_NAME, default_params_name
from compute.params import FitParams as FitParamsData
from schemas import acquisition, model
from schemas._inputs import FetchedInputs
from schemas.context import NotActivatedError, SchemaContext
from schemas.reads.observations import camera_rig, session_observations

schema = dj.Schema()

_PARAMETER_SET_DESCRIPTIONS = {
    "paper": "Cotton 2024 hyper-parameters (40k steps, wide MLP): hours per trial on a CPU",
    "cpu_default": ("tuned for a 2-core CPU on synthetic sessions; once the loss has plateaued and the cameras "
                    "settled, runs the schedule's last 200 steps and ends (trials of 500+ frames: whole budget)"),
    "cpu_full_budget": "cpu_default that always runs its whole step budget (no plateau stop)",
    "cpu_sparse": ("cpu_default + posture/joint-limit/lumbopelvic priors, swap correction and a 4 px Huber "
                   "threshold, for sparse keypoint sets"),
}


@schema
class FitParams(dj.Lookup):
    definition = """
    # a named, hashed set of fit hyper-parameters (compute.params.FitParams as JSON); never edited in place
    params_name : varchar(32)
    ---
    params : json                      # canonical JSON of compute.params.FitParams
    params_hash : char(40)             # sha1 of that JSON
    description = "" : varchar(255)
    unique index (params_hash)
    """
    contents = [
        dict(params_name=name, params=p.to_dict(), params_hash=p.hash,
             description=_PARAMETER_SET_DESCRIPTIONS.get(name, ""))
        for name, p in PARAMETER_SETS.items()
    ]

    @classmethod
    def insert_params(cls, name: str, params: FitParamsData, description: str = "") -> str:
        """Add a parameter set; returns its name. Identical parameters under another name are an error."""
        same = (cls & {"params_hash": params.hash}).keys()
        if same:
            if same[0]["params_name"] == name:
                return name
            raise ValueError(f"FitParams: these parameters already exist as {same[0]['params_name']!r} "
                             f"(params_hash {params.hash[:12]}); use that name")
        if cls & {"params_name": name}:
            raise ValueError(f"FitParams: name {name!r} already holds different parameters; rows are never "
                             "edited in place, choose a new name")
        cls.insert1(dict(params_name=name, params=params.to_dict(), params_hash=params.hash,
                         description=description[:255]))
        return name

    @classmethod
    def ensure_defaults(cls) -> None:
        """Insert the packaged parameter sets that are missing (activation normally did it)."""
        for row in cls.contents:
            if not (cls & {"params_name": row["params_name"]}) and not (cls & {"params_hash": row["params_hash"]}):
                cls.insert1(row, skip_duplicates=True)

    @classmethod
    def outdated_packaged_sets(cls) -> dict[str, dict[str, Any]]:
        """Packaged set names (``compute.params.PARAMETER_SETS``) whose stored row differs from the packaged set
        (a database created before an update changed a default) -> {"section.field": packaged value} of the
        differing fields.  The stored row stays what fits of that name use: rows are never edited."""
        out = {}
        for row in (cls & [{"params_name": n} for n in PARAMETER_SETS]).to_dicts():
            packaged = PARAMETER_SETS[row["params_name"]].to_dict()
            stored = FitParamsData.from_dict(row["params"]).to_dict()
            changed = {f"{section}.{name}": value for section, fields in packaged.items()
                       for name, value in fields.items() if stored[section][name] != value}
            if changed:
                out[row["params_name"]] = changed
        return out

    @classmethod
    def load(cls, name: str) -> FitParamsData:
        """The ``compute.params.FitParams`` stored under ``name``."""
        return FitParamsData.from_dict((cls & {"params_name": name}).fetch1("params"))


@schema
class FitTask(dj.Manual):
    definition = """
    # request: fit this session with this base model and parameter set
    -> acquisition.Session
    -> model.BaseModel
    -> FitParams
    ---
    seed = 0 : int32                   # PRNG seed of network initialisation and time sampling
    task_note = "" : varchar(255)
    """


def add_missing_fit_tasks(base_model: str | None = None, params_name: str | None = None,
                          restriction: Any = None) -> int:
    """Add a ``FitTask(base_model, params_name)`` for every session (in ``restriction``) that has no task at all.

    ``base_model`` defaults to the default model (inserted on first use). ``params_name`` None chooses per
    session: ``cpu_sparse`` when one of its trials uses a sparse keypoint set (two hip points on the pelvis,
    ``compute.markersets.is_sparse``), else ``cpu_default``. Returns the number of tasks added.
    """
    base_model = base_model or model.ensure_default_model()
    for name in {params_name} if params_name else {DEFAULT_PARAMS_NAME, SPARSE_PARAMS_NAME}:
        if not (FitParams & {"params_name": name}):
            FitParams.ensure_defaults()
        if not (FitParams & {"params_name": name}):
            raise LookupError(f"FitParams: no parameter set named {name!r} "
                              f"(have {sorted(r['params_name'] for r in FitParams.keys())})")
    sessions = acquisition.Session.proj()
    if restriction is not None:
        sessions = sessions & restriction
    missing = (sessions - FitTask.proj()).keys()
    sparse_sessions = {(row["subject_id"], row["session_id"])
                       for row in (acquisition.Trial & missing).to_dicts() if is_sparse(row["keypoint_set"])}
    FitTask.insert([dict(key, base_model=base_model,
                         params_name=params_name or default_params_name(
                             (key["subject_id"], key["session_id"]) in sparse_sessions))
                    for key in missing], skip_duplicates=True)
    return len(missing)


# ------------------------------------------------------------------------------------- activation context
_context: SchemaContext | None = None


def use_context(context: SchemaContext) -> None:
    """Called by :func:`schemas.activate`: the fits record ``context.provenance()`` with every row."""
    global _context
    _context = context


def _provenance() -> dict:
    """Provenance of the running fit from the activation's provider (code version, package versions, host)."""
    if _context is None:
        raise NotActivatedError("schemas.fitting: no provenance provider; call schemas.activate(prefix, connection, "
                                "provenance=...) before populating BilevelFit or TrilevelFit")
    return _context.provenance()


def _fit_progress(table_name: str, key: dict):
    """The activation's progress context for one fit (yields its ``(step, total_steps, loss)`` callback)."""
    if _context is None:
        raise NotActivatedError("schemas.fitting: no activation context; call schemas.activate(prefix, connection, "
                                "provenance=...) before populating BilevelFit or TrilevelFit")
    return _context.progress(table_name, key)


# ------------------------------------------------------------------------------------------ bilevel fitting
_BODY_CACHE: dict[str, Any] = {}


def _body_model(mjcf_xml: str, keypoint_set: str, sites: np.ndarray):
    """``compute.kinematics.load_body_model`` cached per content within this process.

    Reusing one BodyModel per (model, keypoint set) keeps jitted fit steps from recompiling for every session.
    """
    from compute.kinematics import load_body_model

    digest = hashlib.sha1(mjcf_xml.encode() + keypoint_set.encode() + np.ascontiguousarray(sites).tobytes())
    key = digest.hexdigest()
    if key not in _BODY_CACHE:
        _BODY_CACHE[key] = load_body_model(keypoint_set, marker_sites=np.asarray(sites, np.float64),
                                           mjcf_xml=mjcf_xml)
    return _BODY_CACHE[key]


def _numpy(value) -> np.ndarray:
    """jax → numpy at the boundary (the blob codec packs numpy and builtins only)."""
    return np.asarray(value)


@schema
class BilevelFit(dj.Computed):
    definition = """
    # one subject's session fitted end to end: scales, marker offsets, trajectories, refined cameras
    -> FitTask
    ---
    -> acquisition.KeypointSet         # marker set of the session's keypoints
    log_scale : <blob>                 # (G,) log of per-scale-group scale factors
    scale_group_names : json           # (G,)
    offsets : <blob>                   # (J, 3) marker offsets, m, body frame (not scaled)
    final_loss : float32               # total loss at the last step
    final_losses : json                # {loss component: value at the last recorded step}
    gc5 : float32                      # fraction of confident keypoints (w > 0.5) reprojected within 5 px
    gc_curve : <blob>                  # (20,) GC_d for d = 1..20 px
    iterations : int32                 # optimiser steps run
    stop_reason : varchar(255)         # "step budget: N steps" or "converged at step k: relative improvement ..."
    wall_time_s : float32              # s, compute only
    seed : int32
    loss_history : <blob>              # (N, k) every history_every steps
    loss_history_columns : json        # (k,) column names
    code_version : varchar(64)         # mmc-biomech version [+g<commit>[.dirty]]
    package_versions : json            # jax, jaxlib, mujoco, mujoco-mjx, equinox, optax, datajoint, numpy, python
    compute_host : varchar(255)        # machine that ran make_compute
    fitted_at = CURRENT_TIMESTAMP : datetime
    """

    class Trial(dj.Part):
        definition = """
        # one trial's implicit trajectory, sampled at the frame times
        -> master
        -> acquisition.Trial
        ---
        times : <blob>                 # (T,) s, frame times
        joint_names : json             # (Q,) qpos order
        qpos : <blob>                  # (T, Q) pelvis translation m, joint angles rad
        markers : <blob>               # (T, J, 3) m, world frame
        network_weights : bytes        # equinox-serialised trajectory network
        network_config : json          # everything needed to rebuild and evaluate it
        gc5 : float32
        gc_curve : <blob>              # (20,)
        final_loss : float32
        coordinate_sd=null : <blob>    # (Q,) posterior SD per coordinate, rad (m root): how well the images pin it
        """

    class CameraResidual(dj.Part):
        definition = """
        # reprojection residual of one trial in one camera after the fit
        -> master.Trial
        -> acquisition.Camera
        ---
        median_error_px : float32      # median over confident keypoints (w > 0.5); NaN if none
        """

    class RefinedCalibration(dj.Part):
        definition = """
        # camera extrinsics after bundle adjustment and their change from the input calibration
        -> master
        -> acquisition.Camera
        ---
        rotation : <blob>              # (3,) Rodrigues, world -> camera, rad
        translation : <blob>           # (3,) world -> camera, m
        rotation_change_deg : float32
        translation_change_mm : float32  # change of the camera centre, mm
        time_offset_s=null : float32   # fitted time offset, s: frame i shows the body at i / fps + offset (mean 0 over the observed cameras); NULL: not fitted
        """

    def make_fetch(self, key: dict) -> tuple[FetchedInputs]:
        """Task, parameters, model sites and the session's cameras and keypoints, as numpy."""
        seed = int((FitTask & key).fetch1("seed"))
        params_json = (FitParams & key).fetch1("params")
        observations = session_observations(key)
        sites = model.marker_sites(key["base_model"], observations["keypoint_set"])
        n_joints = observations["trials"][0]["keypoints"].shape[2]
        if len(sites.marker_names) != n_joints:
            raise ValueError(f"BaseModel.Marker {key['base_model']}/{observations['keypoint_set']}: "
                             f"{len(sites.marker_names)} sites, keypoints have J={n_joints}")
        mjcf_xml = (model.BaseModel & key).fetch1("mjcf_xml")
        return (FetchedInputs(dict(seed=seed, params=params_json, mjcf_xml=mjcf_xml, sites=sites.sites,
                                   **observations)),)

    def make_compute(self, key: dict, inputs: FetchedInputs) -> tuple[dict]:
        """No database: one call to ``compute.fit.fit_session``; converts its result to numpy/builtins."""
        from compute import fit as fit_lib

        body = _body_model(inputs["mjcf_xml"], inputs["keypoint_set"], inputs["sites"])
        trials = [fit_lib.TrialObservations(name=t["name"], fps=t["fps"], keypoints=t["keypoints"],
                                            confidence=t["confidence"]) for t in inputs["trials"]]
        params = FitParamsData.from_dict(inputs["params"])
        with _fit_progress(self.full_table_name, key) as report:
            result = fit_lib.fit_session(body, camera_rig(inputs["cameras"]), trials, params, seed=inputs["seed"],
                                         progress=report)
        return (_session_fit_to_rows(key, result, inputs, body, _provenance()),)

    def make_insert(self, key: dict, rows: dict) -> None:
        """Master, then parts one row at a time (keeps each packet small)."""
        self.insert1(rows["master"], allow_direct_insert=True)
        for row in rows["trials"]:
            self.Trial.insert1(row, allow_direct_insert=True)
        self.CameraResidual.insert(rows["residuals"], allow_direct_insert=True)
        self.RefinedCalibration.insert(rows["calibration"], allow_direct_insert=True)


RefinedCalibration = BilevelFit.RefinedCalibration  # short module-level name of the refined extrinsics


def _session_fit_to_rows(key: dict, result, inputs: FetchedInputs, body, provenance: dict) -> dict:
    """``compute.fit.SessionFit`` → the rows of BilevelFit and its parts (numpy + builtins only)."""
    history = _numpy(result.loss_history)
    columns = list(result.loss_history_columns)
    final_losses = {name: float(history[-1, i]) for i, name in enumerate(columns)} if history.size else {}
    total = _final_loss(final_losses)
    master = dict(
        key, keypoint_set=inputs["keypoint_set"],
        log_scale=_numpy(result.log_scale).astype(np.float64),
        scale_group_names=list(body.scale_group_names),
        offsets=_numpy(result.offsets).astype(np.float64),
        final_loss=float(total), final_losses=final_losses,
        gc5=float(result.gc5), gc_curve=_numpy(result.gc_curve).astype(np.float64),
        iterations=int(result.iterations), stop_reason=str(result.stop_reason)[:255],
        wall_time_s=float(result.wall_time_s), seed=int(result.seed),
        loss_history=history.astype(np.float64), loss_history_columns=columns,
        code_version=provenance["code_version"], package_versions=provenance["package_versions"],
        compute_host=provenance["host"],
    )
    trials, residuals = [], []
    camera_names = inputs["camera_names"]
    for trial in result.trials:
        trials.append(dict(
            key, trial_name=trial.name, times=_numpy(trial.times).astype(np.float64),
            joint_names=list(body.joint_names), qpos=_numpy(trial.qpos).astype(np.float32),
            markers=_numpy(trial.markers).astype(np.float32), network_weights=bytes(trial.network),
            network_config=_jsonable(trial.network_config), gc5=float(trial.gc5),
            gc_curve=_numpy(trial.gc_curve).astype(np.float64), final_loss=float(trial.final_loss),
            coordinate_sd=(None if trial.coordinate_sd_rad is None
                           else _numpy(trial.coordinate_sd_rad).astype(np.float64))))
        for c, name in enumerate(camera_names):
            residuals.append(dict(key, trial_name=trial.name, camera_name=name,
                                  median_error_px=float(_numpy(trial.per_camera_median_error_px)[c])))
    rvec = _numpy(result.cameras.rvec).reshape(len(camera_names), 3)
    tvec = _numpy(result.cameras.tvec).reshape(len(camera_names), 3)
    rotation_change = _numpy(result.camera_rotation_change_deg).ravel()
    translation_change = _numpy(result.camera_translation_change_m).ravel()
    calibration = [dict(key, camera_name=name, rotation=rvec[c].astype(np.float64),
                        translation=tvec[c].astype(np.float64), rotation_change_deg=float(rotation_change[c]),
                        translation_change_mm=float(1000.0 * translation_change[c]))
                   for c, name in enumerate(camera_names)]
    time_offset = getattr(result, "time_offset_s", None)
    if time_offset is not None:  # fitted only with BundleAdjustmentConfig.fit_time_offsets (else NULL)
        for c, row in enumerate(calibration):
            row["time_offset_s"] = float(_numpy(time_offset).ravel()[c])
    return dict(master=master, trials=trials, residuals=residuals, calibration=calibration)


def _final_loss(final_losses: dict) -> float:
    """The total loss of a history row (its ``loss`` column; NaN for an empty history)."""
    return float(final_losses["loss"]) if final_losses else float("nan")


def _jsonable(value):
    """Network configs may hold tuples / numpy scalars: make them plain JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    return value


# ----------------------------------------------------------------------------------------- trilevel fitting
@schema
class SubjectGroup(dj.Manual):
    definition = """
    # a named set of sessions (one per subject) optimised together by a trilevel fit
    subject_group : varchar(32)
    ---
    description = "" : varchar(255)
    """

    class Member(dj.Part):
        definition = """
        -> master
        -> acquisition.Session
        """


@schema
class TrilevelTask(dj.Manual):
    definition = """
    # request: meta-optimise the marker sites of this base model over this subject group
    -> SubjectGroup
    -> model.BaseModel
    -> FitParams
    ---
    seed = 0 : int32
    subjects_per_batch = 4 : int16     # mini-batch of subjects per step (memory does not grow with the group)
    """


@schema
class TrilevelFit(dj.Computed):
    definition = """
    # marker sites optimised over a subject group; the result is a new BaseModel row whose parent is base_model
    -> TrilevelTask
    ---
    -> model.BaseModel.proj(result_model="base_model")
    -> acquisition.KeypointSet         # the marker set whose sites were optimised
    site_change_mm : <blob>            # (J,) |new site - base site|, mm
    final_loss : float32
    loss_history : <blob>              # (N, k)
    iterations : int32
    wall_time_s : float32
    seed : int32
    code_version : varchar(64)
    package_versions : json
    compute_host : varchar(255)
    fitted_at = CURRENT_TIMESTAMP : datetime
    """

    class Member(dj.Part):
        definition = """
        # per-subject scales found alongside the shared marker sites
        -> master
        -> SubjectGroup.Member
        ---
        log_scale : <blob>             # (G,)
        """

    def make_fetch(self, key: dict) -> tuple[FetchedInputs]:
        task = (TrilevelTask & key).fetch1()
        members = (SubjectGroup.Member & key).keys(order_by="subject_id, session_id")
        if not members:
            raise ValueError(f"SubjectGroup {key['subject_group']!r} has no members")
        sessions = [session_observations(m) for m in members]
        keypoint_sets = sorted({s["keypoint_set"] for s in sessions})
        if len(keypoint_sets) != 1:
            raise ValueError(f"SubjectGroup {key['subject_group']!r}: members use keypoint sets {keypoint_sets}; "
                             "a trilevel fit optimises one marker set")
        base = (model.BaseModel & key).fetch1()
        marker_sets = {s: model.marker_sites(key["base_model"], s)
                       for s in sorted({r["keypoint_set"] for r in (model.BaseModel.Marker & key).keys()})}
        return (FetchedInputs(dict(
            members=[dict(m) for m in members], sessions=sessions, keypoint_set=keypoint_sets[0],
            params=(FitParams & key).fetch1("params"), seed=int(task["seed"]),
            subjects_per_batch=int(task["subjects_per_batch"]),
            base=dict(model_version=base["model_version"], mjcf_xml=base["mjcf_xml"],
                      body_names=list(base["body_names"]), scale_group_names=list(base["scale_group_names"]),
                      scale_matrix=np.asarray(base["scale_matrix"])),
            marker_sets={s: dataclasses.asdict(m) for s, m in marker_sets.items()})),)

    def make_compute(self, key: dict, inputs: FetchedInputs) -> tuple[dict]:
        """No database: one call to ``compute.fit.fit_trilevel``."""
        from compute import fit as fit_lib

        set_name = inputs["keypoint_set"]
        base_sites = np.asarray(inputs["marker_sets"][set_name]["sites"])
        body = _body_model(inputs["base"]["mjcf_xml"], set_name, base_sites)
        subjects = [(camera_rig(s["cameras"]),
                     [fit_lib.TrialObservations(name=t["name"], fps=t["fps"], keypoints=t["keypoints"],
                                                confidence=t["confidence"]) for t in s["trials"]])
                    for s in inputs["sessions"]]
        with _fit_progress(self.full_table_name, key) as report:
            result = fit_lib.fit_trilevel(body, subjects, FitParamsData.from_dict(inputs["params"]),
                                          seed=inputs["seed"], subjects_per_batch=inputs["subjects_per_batch"],
                                          progress=report)
        new_sites = _numpy(result.marker_sites).astype(np.float64)
        # frozen (heel) sites are copied bit for bit: the float32 round trip through the body model must not
        # make them differ from the parent's by ~1e-8 m (and change the new model's content hash for nothing)
        frozen = np.asarray(result.frozen_site_mask, bool)
        new_sites[frozen] = base_sites[frozen]
        history = _numpy(result.loss_history)
        return (dict(new_sites=new_sites, base_sites=base_sites,
                     log_scales=[_numpy(s).astype(np.float64) for s in result.log_scales],
                     loss_history=history.astype(np.float64),
                     final_loss=_final_loss(dict(zip(result.loss_history_columns, history[-1])))
                     if history.size else float("nan"),
                     iterations=int(result.iterations),
                     wall_time_s=float(result.wall_time_s),
                     seed=inputs["seed"], members=inputs["members"], keypoint_set=set_name,
                     base=inputs["base"], marker_sets=inputs["marker_sets"], provenance=_provenance()),)

    def make_insert(self, key: dict, out: dict) -> None:
        """A new BaseModel (fitted set replaced, other sets copied from the parent), then the fit row."""
        fetched = out
        set_name = fetched["keypoint_set"]
        marker_sets = {s: model.MarkerSites(**m) for s, m in fetched["marker_sets"].items()}
        marker_sets[set_name] = dataclasses.replace(marker_sets[set_name], sites=out["new_sites"])
        base = fetched["base"]
        digest = model.content_hash(base["mjcf_xml"], base["scale_group_names"], base["scale_matrix"], marker_sets)
        result_model = model.insert_model(
            f"{key['base_model'][:40]}-tri-{digest[:8]}", base["model_version"], base["mjcf_xml"],
            base["body_names"], base["scale_group_names"], base["scale_matrix"], marker_sets,
            parent=key["base_model"],
            description=f"trilevel fit of {key['base_model']} over group {key['subject_group']} "
                        f"with {key['params_name']}")
        prov = out["provenance"]
        self.insert1(dict(key, result_model=result_model, keypoint_set=set_name,
                          site_change_mm=1000.0 * np.linalg.norm(out["new_sites"] - out["base_sites"], axis=-1),
                          final_loss=out["final_loss"], loss_history=out["loss_history"],
                          iterations=out["iterations"], wall_time_s=out["wall_time_s"], seed=int(fetched["seed"]),
                          code_version=prov["code_version"], package_versions=prov["package_versions"],
                          compute_host=prov["host"]), allow_direct_insert=True)
        self.Member.insert([dict(key, **member, log_scale=log_scale)
                            for member, log_scale in zip(fetched["members"], out["log_scales"])],
                           allow_direct_insert=True)
