"""The fitted, scaled body model as an OpenSim 4 model file (``.osim``).

A ``.mot`` of our joint angles only means something on the model that produced it: loading it into a
generic OpenSim model (e.g. an unscaled Rajagopal or Pose2Sim model) puts the feet centimetres away from
our ``.trc`` markers. This module writes *our* model, scaled per segment with the fitted scales and
carrying the fitted marker sites, so OpenSim reproduces our forward kinematics exactly.

What is written (OpenSim 4 XML, ``<OpenSimDocument Version="40000">``; element names as in the OpenSim
API documentation of ``Model``, ``Body``, ``CustomJoint``, ``SpatialTransform``, ``TransformAxis``,
``Coordinate``, ``PhysicalOffsetFrame``, ``WeldJoint`` and ``Marker``):

* **Frames and axes.** Our world is Z-up with bodies X anterior, Y left, Z up; OpenSim's ground is
  Y-up and its gait models' bodies are X anterior, Y up, Z right. Every position and axis is rotated by
  the same constant rotation (``WORLD_TO_OPENSIM``) that ``pipeline.exporters`` applies to ``.trc`` markers
  and to the pelvis translation triple of ``.mot`` files: ``(x, y, z)_opensim = (x, z, -y)_ours``.
  Applied to body frames too, this yields OpenSim's customary axes (pelvis_tilt and hip_flexion about
  +Z, pelvis_rotation about +Y, the talocrural axis ``(-0.105, -0.174, 0.979)`` of gait2392, ...), so the
  ``.mot``/``.trc`` written by ``pipeline.exporters`` load unchanged.
* **Joints.** Each MuJoCo body with hinge/slide joints becomes a ``CustomJoint`` named
  ``<parent>_<child>`` (``ground_pelvis``, ``pelvis_femur_r``, ...). Its parent frame is a
  ``PhysicalOffsetFrame`` on the parent body at the scaled joint centre (``s_parent * body_pos``, the
  same substitution ``compute.kinematics`` makes); its child frame is the child body itself (all joint
  centres are body origins). A ``SpatialTransform`` applies up to three rotations as a body-fixed
  (intrinsic) sequence, each about its axis carried along by the previous ones, then up to three
  translations along the parent frame's axes -- exactly MuJoCo's composition of a body's joints when
  slides come first and hinges pass through the body origin (checked). Each used ``TransformAxis`` has a
  ``LinearFunction`` (slope 1, intercept 0) of the coordinate of the same name as ours, so signs are ours
  (= OpenSim's, see ``compute.kinematics``); unused rotation axes complete an orthonormal set and carry
  ``Constant`` 0. Coordinates keep our ranges and are not clamped (driving the model with a ``.mot``
  must not alter the values). A body without joints gets a ``WeldJoint``.
* **Root translations.** The pelvis translation triple ``pelvis_tx/ty/tz`` is written along OpenSim's
  ground X, Y (up), Z (right) under the same names, matching the ``.mot`` writer, which rotates that triple
  into OpenSim's frame: OpenSim ``pelvis_ty`` is the height, OpenSim ``pelvis_tz`` is ``-`` our lateral
  ``pelvis_ty``. The ranges follow the same permutation.
* **Mass properties.** Segment masses are de Leva (1996, "Adjustments to Zatsiorsky-Seluyanov's segment
  inertia parameters", J Biomech 29:1223) male mass fractions of ``total_mass_kg`` (trunk split into
  pelvis = lower trunk and torso = middle + upper trunk; forearm shared equally by ulna and radius; foot
  shared by talus, calcaneus and toes 10/75/15 %); bodies the table does not know get the share of their
  display geometry's mass. Centres of mass and inertia shapes come from the MJCF display geometry
  (uniform density), scaled with the segment (COM by ``s``, inertia by ``mass * s^2``). Good enough for
  inverse dynamics on a markerless fit; not a substitute for a subject-specific inertial model.
* **Display geometry.** The MJCF's capsules and spheres, scaled, as OpenSim ``Cylinder``/``Sphere``
  shapes on offset frames of their body, so the model is visible in the OpenSim GUI (no mesh files).
* **Markers.** One ``Marker`` per keypoint of the fitted marker set, fixed to its body at
  ``s_body * site + offset`` (the offset is a fitted body-frame displacement in metres, not scaled), the
  location ``compute.kinematics.forward_kinematics`` uses.

The result matches our kinematics to float precision (the tests drive it with our ``.mot`` in OpenSim and
compare markers with our ``.trc``) and OpenSim's ``InverseKinematicsTool`` can run on it directly.
"""
from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from compute.kinematics import BodyModel, load_body_model

__all__ = ["segment_scales", "scaled_marker_locations", "segment_mass_properties", "opensim_model_xml",
           "write_opensim_model", "write_fit_opensim_model", "DE_LEVA_MASS_FRACTIONS", "WORLD_TO_OPENSIM",
           "DEFAULT_TOTAL_MASS_KG"]

WORLD_TO_OPENSIM = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""(3, 3) rotation ``v_opensim = WORLD_TO_OPENSIM @ v_ours`` (rows: OpenSim X, Y, Z); the same rotation the
``.mot``/``.trc`` writers of ``pipeline.exporters`` apply (a test holds the two equal). Not imported from
there so that the exporters can import this module without an import cycle."""
TRANSLATION_SUFFIXES = ("_tx", "_ty", "_tz")  # OpenSim's names of a joint's translation coordinates
GRAVITY_OPENSIM = (0.0, -9.80665, 0.0)  # m/s^2, OpenSim ground is Y-up
DEFAULT_TOTAL_MASS_KG = 75.0  # kg, when the subject's mass is unknown (about that of the generic OpenSim models)

DE_LEVA_MASS_FRACTIONS: dict[str, float] = {
    "pelvis": 0.1117, "torso": 0.3229, "head": 0.0694,
    "humerus": 0.0271, "ulna": 0.0081, "radius": 0.0081, "hand": 0.0061,
    "femur": 0.1416, "tibia": 0.0433, "talus": 0.0014, "calcn": 0.0103, "toes": 0.0020,
}
"""Fraction of body mass per body-name stem (``femur`` for ``femur_r``/``femur_l``), de Leva 1996, male."""


def _fmt(values: Sequence[float] | float) -> str:
    """OpenSim writes vectors as space-separated numbers; 12 significant digits keep sub-micrometre detail."""
    if np.ndim(values) == 0:
        return f"{float(values):.12g}"
    return " ".join(f"{float(v):.12g}" for v in np.asarray(values).reshape(-1))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _numpy_model_fields(body: BodyModel) -> dict[str, np.ndarray]:
    m = body.mjx_model
    names = ("body_parentid", "body_pos", "body_quat", "body_mass", "body_ipos", "body_iquat", "body_inertia",
             "jnt_type", "jnt_bodyid", "jnt_axis", "jnt_pos",
             "geom_type", "geom_bodyid", "geom_size", "geom_pos", "geom_quat")
    return {name: np.asarray(getattr(m, name)) for name in names}


def segment_scales(body: BodyModel, log_scale: np.ndarray) -> np.ndarray:
    """(B,) isotropic scale of every body (``body.body_names`` order): ``exp(scale_matrix @ log_scale)``.

    log_scale: (G,) per scale group, as stored with a fit (``body.scale_group_names`` order).
    """
    log_scale = np.asarray(log_scale, dtype=np.float64).reshape(-1)
    matrix = np.asarray(body.scale_matrix, dtype=np.float64)
    if log_scale.shape != (matrix.shape[1],):
        raise ValueError(f"log_scale: expected shape ({matrix.shape[1]},) for scale groups "
                         f"{body.scale_group_names}, got {log_scale.shape}")
    return np.exp(matrix @ log_scale)


def scaled_marker_locations(body: BodyModel, log_scale: np.ndarray, offsets: np.ndarray | None = None,
                            marker_sites: np.ndarray | None = None) -> np.ndarray:
    """(J, 3) marker positions in their body's frame (our axes, metres): ``s_body * site + offset``.

    offsets: (J, 3) fitted marker offsets, metres, body frame, not scaled (default zeros);
    marker_sites: (J, 3) base-model sites (default ``body.marker_sites``, e.g. trilevel-learned ones).
    """
    sites = np.asarray(body.marker_sites if marker_sites is None else marker_sites, dtype=np.float64)
    if sites.shape != (body.n_markers, 3):
        raise ValueError(f"marker_sites: expected shape ({body.n_markers}, 3), got {sites.shape}")
    scales = segment_scales(body, log_scale)[np.asarray(body.marker_body_ids)]
    local = scales[:, None] * sites
    if offsets is not None:
        offsets = np.asarray(offsets, dtype=np.float64)
        if offsets.shape != (body.n_markers, 3):
            raise ValueError(f"offsets: expected shape ({body.n_markers}, 3), got {offsets.shape}")
        local = local + offsets
    return local


def _mass_fraction(body_name: str) -> float | None:
    stem = body_name.rsplit("_", 1)[0] if body_name.endswith(("_r", "_l")) else body_name
    return DE_LEVA_MASS_FRACTIONS.get(stem)


def segment_mass_properties(body: BodyModel, log_scale: np.ndarray, total_mass_kg: float = DEFAULT_TOTAL_MASS_KG
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mass properties of the scaled segments, in our body frames.

    Returns masses (B,) kg summing to ``total_mass_kg``; centres of mass (B, 3) m in the body frame;
    inertia (B, 3, 3) kg m^2 about the centre of mass, body axes. Masses from de Leva fractions
    (``DE_LEVA_MASS_FRACTIONS``), shapes from the display geometry (see the module docstring).
    """
    if not total_mass_kg > 0:
        raise ValueError(f"total_mass_kg: expected a positive mass in kg, got {total_mass_kg}")
    fields = _numpy_model_fields(body)
    scales = segment_scales(body, log_scale)
    geometric_mass = fields["body_mass"][1:]
    known = np.array([_mass_fraction(n) is not None for n in body.body_names])
    fractions = np.array([_mass_fraction(n) or 0.0 for n in body.body_names])
    # unknown bodies share the remaining mass in proportion to their display geometry (s^3 volume)
    unknown_geometric = geometric_mass * scales**3 * ~known
    if unknown_geometric.sum() > 0:
        fractions = fractions + unknown_geometric / unknown_geometric.sum() * max(0.0, 1.0 - fractions.sum())
    masses = total_mass_kg * fractions / fractions.sum()
    com = scales[:, None] * fields["body_ipos"][1:]
    # principal inertia of the display geometry, rotated to body axes; shape kept, mass and size replaced
    rotations = Rotation.from_quat(np.roll(fields["body_iquat"][1:], -1, axis=1)).as_matrix()  # (x, y, z, w)
    principal = np.where(geometric_mass[:, None] > 0,
                         fields["body_inertia"][1:] / np.maximum(geometric_mass, 1e-12)[:, None], 0.0)
    inertia = np.einsum("bij,bj,bkj->bik", rotations, principal, rotations)
    inertia = inertia * (masses * scales**2)[:, None, None]
    return masses, com, inertia


def _body_fixed_xyz(rotation: np.ndarray) -> np.ndarray:
    """(3,) body-fixed X-Y-Z Euler angles (rad) of a (3, 3) rotation, OpenSim's ``orientation`` property.

    At gimbal lock (middle angle +-90 deg) the split between the first and third angle is arbitrary but the
    rotation is still represented exactly, so scipy's warning about it is silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        return Rotation.from_matrix(rotation).as_euler("XYZ")


def _opensim_orientation(quat_wxyz: np.ndarray) -> np.ndarray:
    """Body-fixed X-Y-Z Euler angles (rad; OpenSim's ``orientation`` of an offset frame) of a MuJoCo
    ``body_quat`` expressed in OpenSim axes."""
    rotation = Rotation.from_quat(np.roll(quat_wxyz, -1)).as_matrix()  # scipy wants (x, y, z, w)
    return _body_fixed_xyz(WORLD_TO_OPENSIM @ rotation @ WORLD_TO_OPENSIM.T)


# an OpenSim Cylinder runs along its frame's Y axis, a MuJoCo capsule along its geom's Z axis
_CYLINDER_Y_TO_CAPSULE_Z = Rotation.from_euler("x", np.pi / 2).as_matrix()


def _display_geometry(body_element: ET.Element, body: BodyModel, fields: dict[str, np.ndarray], scale: float,
                      b: int) -> None:
    """Attach the MJCF display geometry of body ``b`` (capsules as cylinders, spheres), scaled by ``scale``.

    Each shape sits on its own ``PhysicalOffsetFrame`` (a component of the body, ``socket_parent`` ``..``)
    because OpenSim geometry is centred on, and aligned with, the frame it is attached to. Display only.
    """
    shapes = []
    for g in np.flatnonzero(fields["geom_bodyid"] == b + 1):
        kind = int(fields["geom_type"][g])
        if kind not in (int(mujoco.mjtGeom.mjGEOM_CAPSULE), int(mujoco.mjtGeom.mjGEOM_SPHERE)):
            continue
        rotation = Rotation.from_quat(np.roll(fields["geom_quat"][g], -1)).as_matrix() @ _CYLINDER_Y_TO_CAPSULE_Z
        shapes.append((kind, g, rotation))
    if not shapes:
        return
    components = _sub(body_element, "components")
    for k, (kind, g, rotation) in enumerate(shapes):
        name = f"{body.body_names[b]}_geom_{k + 1}"
        frame = _sub(components, "PhysicalOffsetFrame", name=f"{name}_frame")
        _sub(frame, "socket_parent", "..")
        _sub(frame, "translation", _fmt(WORLD_TO_OPENSIM @ (scale * fields["geom_pos"][g])))
        _sub(frame, "orientation", _fmt(_body_fixed_xyz(WORLD_TO_OPENSIM @ rotation)))
        geometry = _sub(frame, "attached_geometry")
        radius, half_length = scale * fields["geom_size"][g][:2]
        if kind == int(mujoco.mjtGeom.mjGEOM_CAPSULE):
            shape = _sub(geometry, "Cylinder", name=name)
            _sub(shape, "radius", _fmt(radius))
            _sub(shape, "half_height", _fmt(half_length))
        else:
            shape = _sub(geometry, "Sphere", name=name)
            _sub(shape, "radius", _fmt(radius))


def _complete_axes(axes: list[np.ndarray]) -> list[np.ndarray]:
    """Extend 0-3 independent unit axes to three (OpenSim needs three independent rotation axes)."""
    axes = [a / np.linalg.norm(a) for a in axes]
    if len(axes) == 2:
        axes.append(np.cross(axes[0], axes[1]))
    elif len(axes) == 1:
        helper = np.eye(3)[int(np.argmin(np.abs(axes[0])))]
        second = np.cross(axes[0], helper)
        second /= np.linalg.norm(second)
        axes += [second, np.cross(axes[0], second)]
    elif len(axes) == 0:
        axes = list(np.eye(3))
    return [a / np.linalg.norm(a) for a in axes]


def _translation_triple(names: list[str], axes: list[np.ndarray]) -> bool:
    """True when the slides are one ``<prefix>_tx/_ty/_tz`` triple along our world X, Y, Z in that order,
    the triple ``pipeline.exporters`` rotates into OpenSim's frame in ``.mot`` files."""
    if len(names) != 3:
        return False
    if not all(n.endswith(suffix) for n, suffix in zip(names, TRANSLATION_SUFFIXES)):
        return False
    prefixes = {n[: -len(suffix)] for n, suffix in zip(names, TRANSLATION_SUFFIXES)}
    return len(prefixes) == 1 and all(np.allclose(a, e) for a, e in zip(axes, np.eye(3)))


def _coordinate_element(parent: ET.Element, name: str, lower: float, upper: float) -> None:
    coordinate = _sub(parent, "Coordinate", name=name)
    _sub(coordinate, "default_value", "0")
    _sub(coordinate, "default_speed_value", "0")
    _sub(coordinate, "range", _fmt((lower, upper)))
    _sub(coordinate, "clamped", "false")
    _sub(coordinate, "locked", "false")


def _transform_axis(parent: ET.Element, axis_name: str, coordinate: str | None, axis: np.ndarray) -> None:
    element = _sub(parent, "TransformAxis", name=axis_name)
    _sub(element, "coordinates", coordinate or "")
    _sub(element, "axis", _fmt(axis))
    if coordinate is None:
        _sub(_sub(element, "Constant", name="function"), "value", "0")
    else:
        _sub(_sub(element, "LinearFunction", name="function"), "coefficients", "1 0")


def _joint_element(joint_set: ET.Element, body: BodyModel, fields: dict[str, np.ndarray], scales: np.ndarray,
                   b: int) -> None:
    """Append the joint that carries body ``b`` (index into ``body.body_names``) to ``joint_set``."""
    mj_id = b + 1  # MuJoCo body ids count the world body first
    child = body.body_names[b]
    parent_id = int(fields["body_parentid"][mj_id])
    parent = "ground" if parent_id == 0 else body.body_names[parent_id - 1]
    parent_scale = 1.0 if parent_id == 0 else scales[parent_id - 1]
    joint_ids = [int(j) for j in np.flatnonzero(fields["jnt_bodyid"] == mj_id)]
    slides = [j for j in joint_ids if fields["jnt_type"][j] == int(mujoco.mjtJoint.mjJNT_SLIDE)]
    hinges = [j for j in joint_ids if fields["jnt_type"][j] == int(mujoco.mjtJoint.mjJNT_HINGE)]
    if len(slides) + len(hinges) != len(joint_ids) or len(slides) > 3 or len(hinges) > 3:
        raise ValueError(f"body {child!r}: an OpenSim CustomJoint holds at most 3 hinges and 3 slides, "
                         f"got joints {[body.joint_names[j] for j in joint_ids]}")
    if joint_ids != slides + hinges:
        raise ValueError(f"body {child!r}: slides must precede hinges (OpenSim translates in the parent frame)")
    if hinges and np.abs(fields["jnt_pos"][hinges]).max() > 1e-12:
        raise ValueError(f"body {child!r}: hinge axes must pass through the body origin (jnt_pos = 0)")

    offset_name = f"{parent}_offset"
    if joint_ids:
        joint = _sub(joint_set, "CustomJoint", name=f"{parent}_{child}")
    else:
        joint = _sub(joint_set, "WeldJoint", name=f"{parent}_{child}")
    _sub(joint, "socket_parent_frame", offset_name)
    _sub(joint, "socket_child_frame", f"/bodyset/{child}")
    frames = _sub(joint, "frames")
    offset = _sub(frames, "PhysicalOffsetFrame", name=offset_name)
    _sub(offset, "socket_parent", "/ground" if parent_id == 0 else f"/bodyset/{parent}")
    _sub(offset, "translation", _fmt(WORLD_TO_OPENSIM @ (parent_scale * fields["body_pos"][mj_id])))
    _sub(offset, "orientation", _fmt(_opensim_orientation(fields["body_quat"][mj_id])))
    if not joint_ids:
        return

    lower, upper = np.asarray(body.joint_lower, float), np.asarray(body.joint_upper, float)
    slide_names = [body.joint_names[j] for j in slides]
    slide_axes = [fields["jnt_axis"][j] for j in slides]
    if _translation_triple(slide_names, slide_axes):
        # OpenSim coordinate k is row k of the world->OpenSim rotation applied to our triple
        translation_axes = list(np.eye(3))
        translation_ranges = []
        for row in WORLD_TO_OPENSIM:
            source = int(np.argmax(np.abs(row)))
            bounds = row[source] * np.array([lower[slides[source]], upper[slides[source]]])
            translation_ranges.append((bounds.min(), bounds.max()))
    else:
        translation_axes = [WORLD_TO_OPENSIM @ a for a in slide_axes]
        translation_ranges = [(lower[j], upper[j]) for j in slides]
    rotation_axes = [WORLD_TO_OPENSIM @ fields["jnt_axis"][j] for j in hinges]

    coordinates = _sub(joint, "coordinates")
    for j in hinges:
        _coordinate_element(coordinates, body.joint_names[j], lower[j], upper[j])
    for name, (lo, hi) in zip(slide_names, translation_ranges):
        _coordinate_element(coordinates, name, lo, hi)

    transform = _sub(joint, "SpatialTransform")
    for k, axis in enumerate(_complete_axes(rotation_axes)):
        _transform_axis(transform, f"rotation{k + 1}", body.joint_names[hinges[k]] if k < len(hinges) else None,
                        axis)
    translation_axes = translation_axes + [e for e in np.eye(3)][len(translation_axes):]
    for k, axis in enumerate(translation_axes):
        _transform_axis(transform, f"translation{k + 1}", slide_names[k] if k < len(slides) else None, axis)


def opensim_model_xml(body: BodyModel, log_scale: np.ndarray, offsets: np.ndarray | None = None,
                      marker_sites: np.ndarray | None = None, total_mass_kg: float = DEFAULT_TOTAL_MASS_KG,
                      model_name: str = "mmc_body40") -> str:
    """The scaled model with its markers as OpenSim 4 XML text (see the module docstring for conventions).

    body: the body model with the fit's marker set (``compute.kinematics.load_body_model``);
    log_scale: (G,) fitted log scale per scale group; offsets: (J, 3) fitted marker offsets, metres, body
    frame (default zeros); marker_sites: (J, 3) base sites (default ``body.marker_sites``);
    total_mass_kg: subject mass distributed over the segments.
    """
    fields = _numpy_model_fields(body)
    scales = segment_scales(body, log_scale)
    masses, coms, inertias = segment_mass_properties(body, log_scale, total_mass_kg)
    markers = scaled_marker_locations(body, log_scale, offsets, marker_sites)

    document = ET.Element("OpenSimDocument", Version="40000")
    model = _sub(document, "Model", name=model_name)
    _sub(model, "credits", "Written by mmc (pipeline.opensim_model) from the fitted MuJoCo body model; "
                           "joint axes and coordinate conventions after the OpenSim gait models.")
    _sub(model, "publications", "Cotton 2024, Differentiable Biomechanics Unlocks Opportunities for "
                                "Markerless Motion Capture. Segment masses: de Leva 1996, J Biomech 29:1223.")
    _sub(model, "length_units", "meters")
    _sub(model, "force_units", "N")
    _sub(model, "gravity", _fmt(GRAVITY_OPENSIM))
    _sub(model, "Ground", name="ground")

    bodies = _sub(_sub(model, "BodySet", name="bodyset"), "objects")
    for b, name in enumerate(body.body_names):
        element = _sub(bodies, "Body", name=name)
        _sub(element, "mass", _fmt(masses[b]))
        _sub(element, "mass_center", _fmt(WORLD_TO_OPENSIM @ coms[b]))
        inertia = WORLD_TO_OPENSIM @ inertias[b] @ WORLD_TO_OPENSIM.T
        _sub(element, "inertia", _fmt([inertia[0, 0], inertia[1, 1], inertia[2, 2],
                                       inertia[0, 1], inertia[0, 2], inertia[1, 2]]))
        _display_geometry(element, body, fields, scales[b], b)

    joints = _sub(_sub(model, "JointSet", name="jointset"), "objects")
    for b in range(len(body.body_names)):
        _joint_element(joints, body, fields, scales, b)

    marker_objects = _sub(_sub(model, "MarkerSet", name="markerset"), "objects")
    for name, body_id, location in zip(body.marker_names, np.asarray(body.marker_body_ids), markers):
        marker = _sub(marker_objects, "Marker", name=name)
        _sub(marker, "socket_parent_frame", f"/bodyset/{body.body_names[int(body_id)]}")
        _sub(marker, "location", _fmt(WORLD_TO_OPENSIM @ location))
        _sub(marker, "fixed", "true")

    ET.indent(document, space="\t")
    return '<?xml version="1.0" encoding="UTF-8" ?>\n' + ET.tostring(document, encoding="unicode") + "\n"


def write_opensim_model(path: str | Path, body: BodyModel, log_scale: np.ndarray,
                        offsets: np.ndarray | None = None, marker_sites: np.ndarray | None = None,
                        total_mass_kg: float = DEFAULT_TOTAL_MASS_KG, model_name: str | None = None) -> Path:
    """Write :func:`opensim_model_xml` to ``path`` (``.osim``); the model is named after the file stem
    unless ``model_name`` is given. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(opensim_model_xml(body, log_scale, offsets, marker_sites, total_mass_kg,
                                      model_name or path.stem))
    return path


def write_fit_opensim_model(path: str | Path, keypoint_set: str, log_scale: np.ndarray, offsets: np.ndarray,
                            marker_sites: np.ndarray | None = None, mjcf_xml: str | None = None,
                            total_mass_kg: float | None = None, model_name: str | None = None) -> Path:
    """Write the ``.osim`` of one stored fit from its raw values (no ``BodyModel`` at hand).

    keypoint_set: the fit's marker set (e.g. ``"HALPE26"``); log_scale: (G,) and offsets: (J, 3) metres as
    stored with the fit; marker_sites: (J, 3) the base model's sites for that set (default: the packaged
    marker-set file); mjcf_xml: the base model's MJCF text (default: the packaged body40); total_mass_kg:
    the subject's mass, ``DEFAULT_TOTAL_MASS_KG`` when None. Returns the path.
    """
    body = load_body_model(keypoint_set, marker_sites=marker_sites, mjcf_xml=mjcf_xml)
    mass = DEFAULT_TOTAL_MASS_KG if total_mass_kg is None else float(total_mass_kg)
    return write_opensim_model(path, body, log_scale, offsets, total_mass_kg=mass, model_name=model_name)
