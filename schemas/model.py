"""Body models: the MJCF skeleton, its scale groups and the marker sites of every keypoint set.

A ``BaseModel`` row is immutable and identified by name; ``content_hash`` (SHA-1 over the XML, the scale-group
matrix and every marker site) is unique, so the same model cannot be stored twice under two names. The default
model (``DEFAULT_BASE_MODEL``, built by ``compute.kinematics.load_body_model`` from the packaged MJCF and marker
sets) is inserted on first use by :func:`ensure_default_model`. A trilevel fit (``schemas.fitting.TrilevelFit``)
inserts its result as a new row whose ``BaseModel.Parent`` is the model it started from.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import datajoint as dj

from schemas import acquisition

schema = dj.Schema()

DEFAULT_BASE_MODEL = "body40"
DEFAULT_MODEL_VERSION = "1"  # version string of the packaged body40 model rows


@schema
class BaseModel(dj.Manual):
    definition = """
    # a body model: MJCF skeleton + scale groups; marker sites in the part table (one row per keypoint)
    base_model : varchar(64)           # e.g. body40; trilevel results: <parent>-tri-<hash8>
    ---
    model_version : varchar(32)
    mjcf_xml : <blob>                  # MJCF text (str) of the unscaled skeleton
    body_names : json                  # (B,) MuJoCo body order, world excluded
    scale_group_names : json           # (G,) e.g. overall, pelvis, thigh_l, ...
    scale_matrix : <blob>              # (B, G) 0/1: per-body log-scale = scale_matrix @ log_scale
    content_hash : char(40)            # sha1 over XML, scale matrix and all marker sites
    description = "" : varchar(255)
    created = CURRENT_TIMESTAMP : datetime
    unique index (content_hash)
    """

    class Marker(dj.Part):
        definition = """
        # where keypoint marker_index of a keypoint set sits on the unscaled skeleton
        -> master
        -> acquisition.KeypointSet
        marker_index : int16           # position in the keypoint set's order (detector output order)
        ---
        marker_name : varchar(64)
        body : varchar(64)             # MuJoCo body the site is attached to
        site_x : float64               # m, body frame
        site_y : float64               # m
        site_z : float64               # m
        is_heel : bool                 # frozen in trilevel optimization
        """

    class Parent(dj.Part):
        definition = """
        # the model this one was derived from (trilevel optimization)
        -> master
        ---
        -> BaseModel.proj(parent_model="base_model")
        """


@dataclass(frozen=True)
class MarkerSites:
    """Marker sites of one keypoint set on one base model (arrays in keypoint order)."""

    keypoint_set: str
    marker_names: tuple[str, ...]
    bodies: tuple[str, ...]
    sites: np.ndarray       # (J, 3) metres, body frame, unscaled
    heel_mask: np.ndarray   # (J,) bool


def content_hash(mjcf_xml: str, scale_group_names, scale_matrix: np.ndarray,
                 marker_sets: dict[str, MarkerSites]) -> str:
    """SHA-1 over the model content; sites rounded to 1e-9 m so float noise does not split identical models."""
    digest = hashlib.sha1()
    digest.update(mjcf_xml.encode())
    digest.update(repr(list(scale_group_names)).encode())
    digest.update(np.asarray(scale_matrix, dtype=np.float64).tobytes())
    for name in sorted(marker_sets):
        markers = marker_sets[name]
        digest.update(name.encode() + repr((markers.marker_names, markers.bodies)).encode())
        digest.update(np.round(np.asarray(markers.sites, dtype=np.float64), 9).tobytes())
        digest.update(np.asarray(markers.heel_mask, dtype=bool).tobytes())
    return digest.hexdigest()


def insert_model(name: str, version: str, mjcf_xml: str, body_names, scale_group_names,
                 scale_matrix: np.ndarray, marker_sets: dict[str, MarkerSites], parent: str | None = None,
                 description: str = "") -> str:
    """Insert a model with its marker rows (and parent link) in one transaction; returns the model's name.

    When a model with identical content already exists, nothing is inserted and that model's name is returned.
    """
    digest = content_hash(mjcf_xml, scale_group_names, scale_matrix, marker_sets)
    existing = (BaseModel & {"content_hash": digest}).keys()
    if existing:
        return existing[0]["base_model"]
    master = dict(base_model=name, model_version=str(version), mjcf_xml=str(mjcf_xml),
                  body_names=list(body_names), scale_group_names=list(scale_group_names),
                  scale_matrix=np.asarray(scale_matrix, dtype=np.float64), content_hash=digest,
                  description=description[:255])
    markers = [
        dict(base_model=name, keypoint_set=set_name, marker_index=j, marker_name=ms.marker_names[j],
             body=ms.bodies[j], site_x=float(ms.sites[j, 0]), site_y=float(ms.sites[j, 1]),
             site_z=float(ms.sites[j, 2]), is_heel=bool(ms.heel_mask[j]))
        for set_name, ms in marker_sets.items() for j in range(len(ms.marker_names))
    ]
    connection = BaseModel.connection
    started = not connection.in_transaction
    if started:
        connection.start_transaction()
    try:
        BaseModel.insert1(master)
        BaseModel.Marker.insert(markers)
        if parent is not None:
            BaseModel.Parent.insert1(dict(base_model=name, parent_model=parent))
    except BaseException:
        if started:
            connection.cancel_transaction()
        raise
    if started:
        connection.commit_transaction()
    return name


def marker_sites(base_model: str, keypoint_set: str) -> MarkerSites:
    """The sites of ``keypoint_set`` on ``base_model``, in keypoint order."""
    rows = (BaseModel.Marker & {"base_model": base_model, "keypoint_set": keypoint_set}).to_dicts(
        order_by="marker_index")
    if not rows:
        raise LookupError(f"BaseModel.Marker: model {base_model!r} has no sites for keypoint set {keypoint_set!r}")
    return MarkerSites(
        keypoint_set=keypoint_set,
        marker_names=tuple(r["marker_name"] for r in rows),
        bodies=tuple(r["body"] for r in rows),
        sites=np.array([[r["site_x"], r["site_y"], r["site_z"]] for r in rows], dtype=np.float64),
        heel_mask=np.array([bool(r["is_heel"]) for r in rows], dtype=bool),
    )


# --------------------------------------------------------------------------------------------- default model
def _packaged_mjcf_xml() -> str:
    """The MJCF text of the body model packaged with ``compute.kinematics`` (``BODY40_XML_PATH``)."""
    from compute import kinematics

    return Path(kinematics.BODY40_XML_PATH).read_text()


def marker_sites_from_body(body) -> MarkerSites:
    """Marker sites of a ``compute.kinematics.BodyModel`` (jax arrays converted to numpy)."""
    body_ids = np.asarray(body.marker_body_ids)
    return MarkerSites(
        keypoint_set=str(body.marker_set),
        marker_names=tuple(body.marker_names),
        bodies=tuple(body.body_names[int(i)] for i in body_ids),
        sites=np.asarray(body.marker_sites, dtype=np.float64),
        heel_mask=np.asarray(body.heel_marker_mask, dtype=bool),
    )


def ensure_default_model() -> str:
    """Insert the default model (every keypoint set) unless present; returns its name."""
    if BaseModel & {"base_model": DEFAULT_BASE_MODEL}:
        return DEFAULT_BASE_MODEL
    from compute import kinematics, markersets

    mjcf_xml = _packaged_mjcf_xml()
    available = {row["keypoint_set"] for row in acquisition.KeypointSet.keys()}
    marker_sets: dict[str, MarkerSites] = {}
    body = None
    for set_name in markersets.MARKER_SET_NAMES:
        if set_name not in available:
            continue
        body = kinematics.load_body_model(set_name)
        marker_sets[set_name] = marker_sites_from_body(body)
    if body is None:
        raise LookupError("acquisition.KeypointSet: none of compute.markersets.MARKER_SET_NAMES is present")
    version = DEFAULT_MODEL_VERSION
    try:
        return insert_model(DEFAULT_BASE_MODEL, version, mjcf_xml, body.body_names, body.scale_group_names,
                            np.asarray(body.scale_matrix), marker_sets,
                            description="default model packaged with compute.kinematics")
    except dj.errors.DuplicateError:  # another worker inserted it meanwhile
        return DEFAULT_BASE_MODEL
