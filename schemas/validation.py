"""Validation of bilevel fits on data they did not see (``compute.fit.crossval``).

``CrossValidationTask`` requests it for one ``BilevelFit`` (processing is requested, never implied: it costs one
refit per camera plus two); ``CrossValidation`` stores, per camera, (1) the camera left out of a refit: the
reprojection error distribution of its keypoints through its input calibration, for the fit and for a robust
triangulation from the remaining cameras; (2) bundle adjustment judged on held-out frames: the camera's change and
its held-out-frame error through the refined and through the input calibration, a verdict and a flag.  The
settings are the fit's own parameter set (its ``crossval`` sub-configuration), so the key is the fit's key.

``make`` is three-part as in ``schemas.fitting``: fetch (observations, the stored fit), compute (one call to
``compute.fit.crossval.cross_validate``), insert (master + one part row per camera).
"""
from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import datajoint as dj

from compute.params import FitParams as FitParamsData
from schemas import acquisition, fitting, model
from schemas._inputs import FetchedInputs
from schemas.context import NotActivatedError, SchemaContext
from schemas.reads.observations import camera_rig, session_observations

schema = dj.Schema()

_context: SchemaContext | None = None


def use_context(context: SchemaContext) -> None:
    """Called by :func:`schemas.activate`: rows record ``context.provenance()``."""
    global _context
    _context = context


def _provenance() -> dict:
    if _context is None:
        raise NotActivatedError("schemas.validation: no provenance provider; call schemas.activate(prefix, "
                                "connection, provenance=...) before populating CrossValidation")
    return _context.provenance()


@schema
class CrossValidationTask(dj.Manual):
    definition = """
    # request: validate this bilevel fit on held-out cameras and held-out frames
    -> fitting.BilevelFit
    ---
    task_note = "" : varchar(255)
    """


def add_cross_validation_tasks(restriction=None) -> int:
    """A ``CrossValidationTask`` for every ``BilevelFit`` (in ``restriction``) without one; returns how many."""
    fits = fitting.BilevelFit.proj()
    if restriction is not None:
        fits = fits & restriction
    missing = (fits - CrossValidationTask.proj()).keys()
    CrossValidationTask.insert([dict(k) for k in missing], skip_duplicates=True)
    return len(missing)


@schema
class CrossValidation(dj.Computed):
    definition = """
    # held-out validation of a bilevel fit: leave-one-camera-out refits and bundle adjustment on held-out frames
    -> CrossValidationTask
    ---
    refit_steps : int32                # optimiser steps per refit (C + 2 refits)
    warm_start : bool                  # refits started from the fit (cheap; a little optimistic)
    held_out_frame_every : int16       # the calibration check held out every k-th frame
    max_held_out_median_px = null : float32  # worst camera's held-out median (fit), px
    n_flagged_cameras : int16          # cameras moved beyond a limit without held-out improvement
    notes : json                       # list of remarks (e.g. fitted time offsets not applied)
    wall_time_s : float32
    code_version : varchar(64)
    package_versions : json
    compute_host : varchar(255)
    validated_at = CURRENT_TIMESTAMP : datetime
    """

    class HeldOutCamera(dj.Part):
        definition = """
        # one camera: left out of a refit, and its bundle adjustment judged on held-out frames
        -> master
        -> acquisition.Camera
        ---
        n_keypoints : int32                        # its confident keypoints (w > 0.5)
        fit_median_px = null : float32             # refit without it, through its input calibration
        fit_gc5 = null : float32
        fit_gc_curve : <blob>                      # (20,) GC_d, d = 1..20 px
        fit_median_common_px = null : float32      # the fit's median where triangulation also predicts
        triangulation_median_px = null : float32   # robust triangulation from the other cameras
        triangulation_gc5 = null : float32         # (no prediction = failure)
        triangulation_gc_curve : <blob>            # (20,)
        triangulation_coverage = null : float32    # fraction of its keypoints triangulation predicts
        in_sample_median_px = null : float32       # the fit's own error in this camera (it saw it)
        remaining_median_px = null : float32       # the refit's error in the other cameras
        rotation_change_deg : float32              # bundle adjustment in the held-out-frame refit
        centre_change_mm : float32
        frames_refined_median_px = null : float32  # held-out frames through the refined calibration
        frames_input_median_px = null : float32    # held-out frames, refit keeping the input calibration
        calibration_verdict : enum('improves', 'no improvement')
        calibration_flagged : bool                 # moved beyond a limit without held-out improvement
        """

    def make_fetch(self, key: dict) -> tuple[FetchedInputs]:
        """The fit's observations, parameters, model sites, stored networks, body and refined cameras."""
        fit_key = (fitting.BilevelFit & key).fetch1("KEY")
        seed = int((fitting.FitTask & key).fetch1("seed"))
        params_json = (fitting.FitParams & key).fetch1("params")
        observations = session_observations(key)
        sites = model.marker_sites(key["base_model"], observations["keypoint_set"])
        mjcf_xml = (model.BaseModel & key).fetch1("mjcf_xml")
        log_scale, offsets = (fitting.BilevelFit & fit_key).fetch1("log_scale", "offsets")
        trials = (fitting.BilevelFit.Trial & fit_key).to_dicts(order_by="trial_name")
        names = [t["name"] for t in observations["trials"]]
        if [t["trial_name"] for t in trials] != names:
            raise ValueError(f"BilevelFit.Trial {fit_key}: fitted trials {[t['trial_name'] for t in trials]} "
                             f"differ from the session's trials {names}")
        refined = {r["camera_name"]: r for r in (fitting.BilevelFit.RefinedCalibration & fit_key).to_dicts()}
        missing = [c for c in observations["camera_names"] if c not in refined]
        if missing:
            raise ValueError(f"BilevelFit.RefinedCalibration {fit_key}: no row for camera(s) {missing}")
        refined_rvec = np.stack([np.asarray(refined[c]["rotation"], np.float64)
                                 for c in observations["camera_names"]])
        refined_tvec = np.stack([np.asarray(refined[c]["translation"], np.float64)
                                 for c in observations["camera_names"]])
        return (FetchedInputs(dict(
            seed=seed, params=params_json, mjcf_xml=mjcf_xml, sites=sites.sites, log_scale=np.asarray(log_scale),
            offsets=np.asarray(offsets), network_weights=[bytes(t["network_weights"]) for t in trials],
            network_configs=[t["network_config"] for t in trials], refined_rvec=refined_rvec,
            refined_tvec=refined_tvec, **observations)),)

    def make_compute(self, key: dict, inputs: FetchedInputs) -> tuple[dict]:
        """No database: one call to ``compute.fit.crossval.cross_validate``."""
        from compute import fit as fit_lib
        from compute.fit import crossval

        body = fitting._body_model(inputs["mjcf_xml"], inputs["keypoint_set"], inputs["sites"])
        trials = [fit_lib.TrialObservations(name=t["name"], fps=t["fps"], keypoints=t["keypoints"],
                                            confidence=t["confidence"]) for t in inputs["trials"]]
        params = FitParamsData.from_dict(inputs["params"])
        cameras = camera_rig(inputs["cameras"])
        refined = camera_rig(dict(inputs["cameras"], rvec=inputs["refined_rvec"], tvec=inputs["refined_tvec"]))
        fitted = crossval.FittedState.from_serialised(inputs["network_weights"], inputs["network_configs"],
                                                      inputs["log_scale"], inputs["offsets"], refined)
        result = crossval.cross_validate(body, cameras, trials, params, fitted, seed=inputs["seed"])
        return (_rows(key, result, inputs["camera_names"], _provenance()),)

    def make_insert(self, key: dict, rows: dict) -> None:
        self.insert1(rows["master"], allow_direct_insert=True)
        self.HeldOutCamera.insert(rows["cameras"], allow_direct_insert=True)


def _rows(key: dict, result, camera_names: list[str], provenance: dict) -> dict:
    """``compute.fit.crossval.CrossValidation`` -> the master row and one ``HeldOutCamera`` row per camera."""
    cameras = []
    for held, check in zip(result.held_out_cameras, result.calibration):
        cameras.append(dict(
            key, camera_name=camera_names[held.camera_index], n_keypoints=int(held.fit.n_keypoints),
            fit_median_px=float(held.fit.median_px), fit_gc5=float(held.fit.gc5),
            fit_gc_curve=np.asarray(held.fit.gc_curve, np.float64),
            fit_median_common_px=float(held.fit_median_common_px),
            triangulation_median_px=float(held.triangulation.median_px),
            triangulation_gc5=float(held.triangulation.gc5),
            triangulation_gc_curve=np.asarray(held.triangulation.gc_curve, np.float64),
            triangulation_coverage=float(held.triangulation.coverage),
            in_sample_median_px=float(held.in_sample_median_px), remaining_median_px=float(held.remaining_median_px),
            rotation_change_deg=float(check.rotation_change_deg), centre_change_mm=float(check.centre_change_mm),
            frames_refined_median_px=float(check.refined.median_px),
            frames_input_median_px=float(check.input.median_px), calibration_verdict=check.verdict,
            calibration_flagged=bool(check.flagged)))
    medians = [h.fit.median_px for h in result.held_out_cameras if np.isfinite(h.fit.median_px)]
    master = dict(key, refit_steps=int(result.refit_steps), warm_start=bool(result.warm_start),
                  held_out_frame_every=int(result.held_out_frame_every),
                  max_held_out_median_px=float(max(medians)) if medians else float("nan"),
                  n_flagged_cameras=int(sum(c.flagged for c in result.calibration)), notes=list(result.notes),
                  wall_time_s=float(result.wall_time_s), code_version=provenance["code_version"],
                  package_versions=provenance["package_versions"], compute_host=provenance["host"])
    return dict(master=master, cameras=cameras)
