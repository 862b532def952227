"""Exports of a fit in the formats labs already use: OpenSim ``.mot`` / ``.trc`` / ``.osim``, C3D and CSV.

Two layers:

* plain writers over numpy arrays (``write_mot``, ``write_trc``, ``write_joint_angles_csv``,
  ``write_markers_csv``) and their readers (``read_mot``, ``read_trc``) used by the tests and by anyone
  who wants to load the files back;
* ``export_trials`` (``TrialExport`` objects) and ``export_fits`` / ``export_command`` which read the fitted
  trials of an opened database (``schemas.reads``) and write them into one folder; ``mmc export [--restrict ...]
  OUT_DIR``. Per trial: ``.mot``, ``.trc``, ``.c3d`` (virtual markers, :mod:`pipeline.c3d_export`) and CSV; per
  fit: the scaled model as ``.osim`` (:mod:`pipeline.opensim_model`), on which the trial's ``.mot`` and
  ``.trc`` load unchanged.

Conventions
-----------
* Our world frame is Z-up with walking along +X (metres). OpenSim's ground frame is Y-up. With
  ``opensim_axes=True`` (the default) positions are rotated by +90 deg about X into OpenSim's frame:
  ``(x, y, z)_opensim = (x, z, -y)_world``. This is applied to ``.trc`` marker positions and to the
  ``pelvis_tx/ty/tz`` columns of ``.mot`` (so a model in OpenSim walks along +X, upright).
  Joint angles are generalised coordinates of the same OpenSim-named joints and are written unchanged
  (converted to degrees).
* ``.mot``: rotational coordinates in degrees (header ``inDegrees=yes``), translational coordinates
  (names ending in ``_tx``, ``_ty``, ``_tz``) in metres, as OpenSim's IK tool writes them.
* ``.trc``: marker positions in ``mm`` (default) or ``m``; missing markers (NaN) are written as empty
  fields, which OpenSim's ``TRCFileAdapter`` reads back as NaN.
* ``.c3d``: virtual markers in our Z-up lab frame (not rotated; OpenSim's C3D reader rotates on import), in the
  same length unit as the ``.trc``; missing markers are invalid points (residual -1).
* ``.osim``: the fit's scaled body model with its fitted marker sites, Y-up like the ``.mot``/``.trc``;
  segment masses from the subject's ``mass_kg`` (a default adult mass when unknown).
* CSV: ``time_s`` then one column per coordinate (``<name>_deg`` or ``<name>_m``); markers in long-wide
  form ``time_s, <marker>_x_m, <marker>_y_m, <marker>_z_m`` in our world frame (Z-up, metres).
* ``<stem>_observability.csv`` (when the fit stored posterior SDs): ``coordinate, posterior_sd, unit,
  determined_by_images``; ``False`` marks coordinates the images do not pin (sparse keypoint sets: pelvis tilt,
  lumbar extension, forearm rotation...), whose values come from the fit's priors
  (:func:`compute.fit.observability.weakly_observed`).
"""
from __future__ import annotations

import argparse
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import datajoint as dj
import numpy as np
import pandas as pd

from pipeline.c3d_export import write_c3d
from pipeline.db import Database, open_database
from pipeline.importers.errors import IngestError
from pipeline.restrictions import add_restriction_arguments, restrictions_for
from schemas.reads import results

TRANSLATION_SUFFIXES = ("_tx", "_ty", "_tz")
_WORLD_TO_OPENSIM = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # rows: OpenSim X, Y, Z
_LENGTH_FACTORS = {"m": 1.0, "mm": 1000.0}


@dataclass(frozen=True)
class TrialExport:
    """Everything written for one fitted trial.

    times: (T,) seconds; qpos: (T, Q) with translations in metres and angles in radians;
    joint_names: (Q,) OpenSim coordinate names; markers: (T, J, 3) metres, world frame (Z-up);
    marker_names: (J,); fps: frame rate in Hz (inferred from ``times`` when None); fit_key: the key of the fit it
    belongs to (``subject_id``, ``session_id``, ``base_model``, ``params_name``), None when unknown;
    coordinate_sd: (Q,) posterior SD per coordinate (rad, m for translations) or None when not computed.
    """

    name: str
    times: np.ndarray
    qpos: np.ndarray
    joint_names: tuple[str, ...]
    markers: np.ndarray | None = None
    marker_names: tuple[str, ...] | None = None
    fps: float | None = None
    fit_key: dict | None = None
    coordinate_sd: np.ndarray | None = None


@dataclass(frozen=True)
class FitModelExport:
    """Everything the ``.osim`` of one fit needs (:func:`pipeline.opensim_model.write_fit_opensim_model`).

    name: export name; keypoint_set: the fit's marker set; log_scale: (G,) fitted log scale factors; offsets:
    (J, 3) m fitted marker offsets (body frame); marker_sites: (J, 3) m the base model's unscaled sites;
    mjcf_xml: the base model's MJCF text; total_mass_kg: the subject's mass (None: default adult mass).
    """

    name: str
    keypoint_set: str
    log_scale: np.ndarray
    offsets: np.ndarray
    marker_sites: np.ndarray
    mjcf_xml: str
    total_mass_kg: float | None = None


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def is_translation(name: str) -> bool:
    """True for OpenSim translational coordinates (``pelvis_tx`` ...), which stay in metres."""
    return name.endswith(TRANSLATION_SUFFIXES)


def world_to_opensim(points: np.ndarray) -> np.ndarray:
    """Rotate Z-up world positions ``(..., 3)`` into OpenSim's Y-up ground frame: ``(x, z, -y)``."""
    return np.asarray(points, dtype=float) @ _WORLD_TO_OPENSIM.T


def opensim_to_world(points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`world_to_opensim`."""
    return np.asarray(points, dtype=float) @ _WORLD_TO_OPENSIM


def infer_rate(times: np.ndarray) -> float:
    """Frame rate (Hz) from the median time step of ``times (T,)``; 1.0 for a single frame."""
    times = np.asarray(times, dtype=float)
    if times.size < 2:
        return 1.0
    return float(1.0 / np.median(np.diff(times)))


def _check_qpos(times: np.ndarray, qpos: np.ndarray, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times, dtype=float).reshape(-1)
    qpos = np.asarray(qpos, dtype=float)
    if qpos.ndim != 2 or qpos.shape[0] != times.size or qpos.shape[1] != len(joint_names):
        raise ValueError(
            f"qpos: expected shape (T={times.size}, Q={len(joint_names)}) matching times and joint_names, "
            f"got {qpos.shape}"
        )
    return times, qpos


def joint_angles_to_opensim(qpos: np.ndarray, joint_names: Sequence[str], opensim_axes: bool = True) -> np.ndarray:
    """Convert ``qpos (T, Q)`` (radians, metres, Z-up) to OpenSim ``.mot`` values (degrees, metres, Y-up).

    Rotational coordinates are converted to degrees; ``*_tx/_ty/_tz`` stay metres, and when
    ``opensim_axes`` is set each ``<prefix>_tx/_ty/_tz`` triple is rotated into OpenSim's Y-up frame.
    """
    qpos = np.asarray(qpos, dtype=float)
    out = np.empty_like(qpos)
    names = list(joint_names)
    for i, name in enumerate(names):
        out[:, i] = qpos[:, i] if is_translation(name) else np.degrees(qpos[:, i])
    if opensim_axes:
        for prefix in {n[:-3] for n in names if is_translation(n)}:
            idx = [names.index(prefix + s) if prefix + s in names else -1 for s in TRANSLATION_SUFFIXES]
            if min(idx) < 0:
                continue  # an incomplete triple cannot be rotated; keep as is
            out[:, idx] = world_to_opensim(qpos[:, idx])
    return out


# --------------------------------------------------------------------------------------------------
# .mot
# --------------------------------------------------------------------------------------------------


def write_mot(
    path: str | Path,
    times: np.ndarray,
    qpos: np.ndarray,
    joint_names: Sequence[str],
    name: str = "Coordinates",
    opensim_axes: bool = True,
) -> Path:
    """Write an OpenSim motion file (``.mot``, Storage version 1) of joint coordinates.

    times: (T,) s; qpos: (T, Q) radians for rotations, metres for ``*_tx/_ty/_tz``; joint_names: (Q,)
    OpenSim coordinate names. Values are written in degrees (``inDegrees=yes``) as OpenSim's IK does.
    """
    times, qpos = _check_qpos(times, qpos, joint_names)
    values = joint_angles_to_opensim(qpos, joint_names, opensim_axes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [
        name,
        "version=1",
        f"nRows={times.size}",
        f"nColumns={len(joint_names) + 1}",
        "inDegrees=yes",
        "",
        "Units are S.I. units (second, meters, Newtons, ...)",
        "If the header above contains a line with 'inDegrees', this indicates whether rotational values "
        "are in degrees (yes) or radians (no).",
        "",
        "endheader",
        "\t".join(["time", *joint_names]),
    ]
    table = np.column_stack([times, values])
    with path.open("w", newline="\n") as f:
        f.write("\n".join(header) + "\n")
        np.savetxt(f, table, delimiter="\t", fmt="%.8f")
    return path


def read_mot(path: str | Path) -> tuple[dict[str, str], pd.DataFrame]:
    """Read a ``.mot``/``.sto`` file: returns ``(header key=value dict, DataFrame with a 'time' column)``.

    Values are returned as stored (degrees when ``inDegrees=yes``).
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    header: dict[str, str] = {"name": lines[0].strip()} if lines else {}
    for i, line in enumerate(lines):
        if line.strip() == "endheader":
            body_start = i + 1
            break
        if "=" in line:
            key, value = line.split("=", 1)
            header[key.strip()] = value.strip()
    else:
        raise ValueError(f"{path}: no 'endheader' line; not an OpenSim .mot/.sto file")
    columns = lines[body_start].split("\t")
    data = np.loadtxt(lines[body_start + 1 :], delimiter="\t", ndmin=2) if len(lines) > body_start + 1 else np.empty((0, len(columns)))
    return header, pd.DataFrame(data, columns=columns)


# --------------------------------------------------------------------------------------------------
# .trc
# --------------------------------------------------------------------------------------------------


def write_trc(
    path: str | Path,
    times: np.ndarray,
    markers: np.ndarray,
    marker_names: Sequence[str],
    units: str = "mm",
    data_rate: float | None = None,
    opensim_axes: bool = True,
    first_frame: int = 1,
) -> Path:
    """Write a marker trajectory file (``.trc``, PathFileType 4) readable by OpenSim and Mokka.

    times: (T,) s; markers: (T, J, 3) metres in our world frame (Z-up); marker_names: (J,);
    units: ``"mm"`` or ``"m"``; data_rate: Hz (default inferred from ``times``). NaN markers are
    written as empty fields (OpenSim reads them back as NaN).
    """
    if units not in _LENGTH_FACTORS:
        raise ValueError(f"units: expected one of {sorted(_LENGTH_FACTORS)}, got {units!r}")
    times = np.asarray(times, dtype=float).reshape(-1)
    markers = np.asarray(markers, dtype=float)
    if markers.ndim != 3 or markers.shape[0] != times.size or markers.shape[1] != len(marker_names) or markers.shape[2] != 3:
        raise ValueError(
            f"markers: expected shape (T={times.size}, J={len(marker_names)}, 3), got {markers.shape}"
        )
    rate = float(data_rate) if data_rate is not None else infer_rate(times)
    positions = world_to_opensim(markers) if opensim_axes else markers
    positions = positions * _LENGTH_FACTORS[units]
    n_frames, n_markers = markers.shape[:2]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.6g}\t{rate:.6g}\t{n_frames}\t{n_markers}\t{units}\t{rate:.6g}\t{first_frame}\t{n_frames}",
        "Frame#\tTime\t" + "\t\t\t".join(marker_names) + "\t\t",
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, n_markers + 1)),
        "",
    ]
    flat = positions.reshape(n_frames, n_markers * 3)
    for t in range(n_frames):
        cells = ["" if not np.isfinite(v) else f"{v:.6f}" for v in flat[t]]
        # a marker is either fully present or fully missing
        for j in range(n_markers):
            if any(c == "" for c in cells[3 * j : 3 * j + 3]):
                cells[3 * j : 3 * j + 3] = ["", "", ""]
        lines.append("\t".join([str(first_frame + t), f"{times[t]:.6f}", *cells]))
    path.write_text("\n".join(lines) + "\n")
    return path


def read_trc(path: str | Path, to_world_metres: bool = False) -> tuple[dict[str, Any], np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read a ``.trc`` file: returns ``(header dict, times (T,), markers (T, J, 3), marker_names)``.

    Positions are returned as stored (file units and axes) unless ``to_world_metres`` is set, in which
    case they are converted to metres and rotated back from OpenSim's Y-up to our Z-up world frame.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("PathFileType"):
        raise ValueError(f"{path}: first line must start with 'PathFileType'")
    keys = [k for k in lines[1].split("\t") if k]
    values = [v for v in lines[2].split("\t") if v]
    if len(keys) != len(values):
        raise ValueError(f"{path}: header has {len(keys)} keys but {len(values)} values")
    header: dict[str, Any] = dict(zip(keys, values))
    for key in ("NumFrames", "NumMarkers", "OrigDataStartFrame", "OrigNumFrames"):
        if key in header:
            header[key] = int(header[key])
    for key in ("DataRate", "CameraRate", "OrigDataRate"):
        if key in header:
            header[key] = float(header[key])
    names = tuple(n for n in lines[3].split("\t") if n)[2:]
    if len(names) != header["NumMarkers"]:
        raise ValueError(f"{path}: NumMarkers={header['NumMarkers']} but {len(names)} marker names")
    rows = [ln for ln in lines[5:] if ln.strip()]
    n_markers = len(names)
    times = np.empty(len(rows))
    markers = np.full((len(rows), n_markers * 3), np.nan)
    for t, row in enumerate(rows):
        cells = row.split("\t")
        times[t] = float(cells[1])
        for k, cell in enumerate(cells[2 : 2 + 3 * n_markers]):
            if cell.strip():
                markers[t, k] = float(cell)
    markers = markers.reshape(len(rows), n_markers, 3)
    if to_world_metres:
        markers = opensim_to_world(markers / _LENGTH_FACTORS[header.get("Units", "m")])
    return header, times, markers, names


# --------------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------------


def joint_angles_frame(times: np.ndarray, qpos: np.ndarray, joint_names: Sequence[str]) -> pd.DataFrame:
    """Tidy wide table: ``time_s`` then ``<name>_deg`` (rotations) / ``<name>_m`` (translations), world frame."""
    times, qpos = _check_qpos(times, qpos, joint_names)
    data = {"time_s": times}
    for i, name in enumerate(joint_names):
        if is_translation(name):
            data[f"{name}_m"] = qpos[:, i]
        else:
            data[f"{name}_deg"] = np.degrees(qpos[:, i])
    return pd.DataFrame(data)


def markers_frame(times: np.ndarray, markers: np.ndarray, marker_names: Sequence[str]) -> pd.DataFrame:
    """Wide table: ``time_s`` then ``<marker>_x_m, <marker>_y_m, <marker>_z_m`` (world frame, Z-up, metres)."""
    times = np.asarray(times, dtype=float).reshape(-1)
    markers = np.asarray(markers, dtype=float)
    if markers.shape != (times.size, len(marker_names), 3):
        raise ValueError(f"markers: expected shape ({times.size}, {len(marker_names)}, 3), got {markers.shape}")
    data = {"time_s": times}
    for j, name in enumerate(marker_names):
        for k, axis in enumerate("xyz"):
            data[f"{name}_{axis}_m"] = markers[:, j, k]
    return pd.DataFrame(data)


def write_joint_angles_csv(path: str | Path, times: np.ndarray, qpos: np.ndarray, joint_names: Sequence[str]) -> Path:
    """Write :func:`joint_angles_frame` as CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joint_angles_frame(times, qpos, joint_names).to_csv(path, index=False, float_format="%.8g")
    return path


def observability_frame(coordinate_sd: np.ndarray, joint_names: Sequence[str]) -> pd.DataFrame:
    """One row per coordinate: ``coordinate``, ``posterior_sd`` (deg, or m for translations), ``unit`` and
    ``determined_by_images`` (False: the images do not pin it; its value comes from the priors)."""
    # imported here: compute.fit starts JAX (~2 s), which every other mmc command would pay for
    from compute.fit.observability import weakly_observed

    sd = np.asarray(coordinate_sd, dtype=float)
    translation = np.array([is_translation(n) for n in joint_names])
    return pd.DataFrame({"coordinate": list(joint_names), "posterior_sd": np.where(translation, sd, np.degrees(sd)),
                         "unit": np.where(translation, "m", "deg"),
                         "determined_by_images": ~weakly_observed(tuple(joint_names), sd)})


def write_markers_csv(path: str | Path, times: np.ndarray, markers: np.ndarray, marker_names: Sequence[str]) -> Path:
    """Write :func:`markers_frame` as CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    markers_frame(times, markers, marker_names).to_csv(path, index=False, float_format="%.8g")
    return path


# --------------------------------------------------------------------------------------------------
# whole trials / fits
# --------------------------------------------------------------------------------------------------


def file_stem(name: str) -> str:
    """A file name stem for the export ``name``, distinct for distinct names.

    Characters other than letters, digits, ``_``, ``.`` and ``-`` become ``_``. When that changes the name
    (``walk 01`` and ``walk_01`` would both give ``walk_01``), the first 8 hex digits of the SHA-1 of the
    original name are appended (``walk_01-3f2a9c1e``), so a sanitised name never takes the stem of a name
    that needed no change.
    """
    name = str(name)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "trial"
    if stem == name:
        return stem
    return f"{stem}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def export_trial(trial: TrialExport, out_dir: str | Path, units: str = "mm", opensim_axes: bool = True) -> dict[str, Path]:
    """Write ``<stem>.mot``, ``<stem>_angles.csv`` and (when markers are given) ``<stem>.trc``, ``<stem>.c3d``
    and ``<stem>_markers.csv`` into ``out_dir`` (``stem``: :func:`file_stem` of the trial's name; ``units``: the
    length unit of the ``.trc`` and ``.c3d``). Returns ``{kind: path}``."""
    out_dir = Path(out_dir)
    stem = file_stem(trial.name)
    written = {
        "mot": write_mot(out_dir / f"{stem}.mot", trial.times, trial.qpos, trial.joint_names, name=stem,
                         opensim_axes=opensim_axes),
        "angles_csv": write_joint_angles_csv(out_dir / f"{stem}_angles.csv", trial.times, trial.qpos, trial.joint_names),
    }
    if trial.markers is not None:
        names = trial.marker_names or tuple(f"M{j + 1}" for j in range(np.asarray(trial.markers).shape[1]))
        written["trc"] = write_trc(out_dir / f"{stem}.trc", trial.times, trial.markers, names, units=units,
                                   data_rate=trial.fps, opensim_axes=opensim_axes)
        written["c3d"] = write_c3d(out_dir / f"{stem}.c3d", trial.markers, names,
                                   trial.fps if trial.fps is not None else infer_rate(trial.times), units=units)
        written["markers_csv"] = write_markers_csv(out_dir / f"{stem}_markers.csv", trial.times, trial.markers, names)
    if trial.coordinate_sd is not None:
        path = out_dir / f"{stem}_observability.csv"
        observability_frame(trial.coordinate_sd, trial.joint_names).to_csv(path, index=False, float_format="%.6g")
        written["observability_csv"] = path
    return written


def export_restrictions(database: Database, restrict: Sequence[str], where: Sequence[str] = ()) -> tuple:
    """``--restrict ATTR=VALUE`` / ``--where SQL`` of ``mmc export`` checked against ``BilevelFit.Trial``
    (:mod:`pipeline.restrictions`): a misspelt attribute is an error naming it and the valid ones."""
    return restrictions_for(database.schemas["fitting"].BilevelFit.Trial, restrict, where, "BilevelFit.Trial")


def fetch_trial_exports(database: Database, restriction: Any = None) -> list[TrialExport]:
    """The fitted trials of the opened ``database`` (``restriction``: anything DataJoint accepts after ``&`` on
    ``BilevelFit.Trial``, or None for all) as :class:`TrialExport` objects.

    Marker names are the fit's keypoint set, the frame rate is the trial's ``fps``. The export name is
    ``<subject>_<session>_<trial>_<base model>_<parameter set>``, so exports of several fits of one trial never
    collide.
    """
    results.require_prefix(database.prefix)
    rows = results.trial_exports(*([] if restriction is None else [restriction]))
    return [TrialExport(
        name="_".join(str(row[k]) for k in results.FIT_KEY),
        times=np.asarray(row["times"], dtype=float),
        qpos=np.asarray(row["qpos"], dtype=float),
        joint_names=tuple(row["joint_names"]),
        markers=np.asarray(row["markers"], dtype=float),
        marker_names=row["marker_names"],
        fps=float(row["fps"]),
        fit_key={k: row[k] for k in results.FIT_MODEL_KEY},
        coordinate_sd=None if row.get("coordinate_sd") is None else np.asarray(row["coordinate_sd"], dtype=float),
    ) for row in rows]


def fit_export_name(fit_key: dict) -> str:
    """``<subject>_<session>_<base model>_<parameter set>``: the export name of a fit (its ``.osim``)."""
    return "_".join(str(fit_key[k]) for k in results.FIT_MODEL_KEY)


def fetch_fit_models(database: Database, fit_keys: Sequence[dict]) -> list[FitModelExport]:
    """The fits ``fit_keys`` (dicts holding ``results.FIT_MODEL_KEY``) of the opened ``database`` as
    :class:`FitModelExport` objects, one per distinct fit, ordered by key."""
    results.require_prefix(database.prefix)
    keys = list({fit_export_name(k): {n: k[n] for n in results.FIT_MODEL_KEY} for k in fit_keys}.values())
    if not keys:
        return []
    return [FitModelExport(name=fit_export_name(row), keypoint_set=row["keypoint_set"], log_scale=row["log_scale"],
                           offsets=row["offsets"], marker_sites=row["marker_sites"], mjcf_xml=row["mjcf_xml"],
                           total_mass_kg=row["mass_kg"]) for row in results.fit_models(keys)]


def export_fit_model(fit: FitModelExport, out_dir: str | Path) -> Path:
    """Write ``<stem>.osim`` (the fit's scaled model, ``stem``: :func:`file_stem` of its name) into ``out_dir``."""
    from pipeline.opensim_model import write_fit_opensim_model

    stem = file_stem(fit.name)
    return write_fit_opensim_model(Path(out_dir) / f"{stem}.osim", fit.keypoint_set, fit.log_scale, fit.offsets,
                                   marker_sites=fit.marker_sites, mjcf_xml=fit.mjcf_xml,
                                   total_mass_kg=fit.total_mass_kg, model_name=stem)


def export_trials(trials: Iterable[TrialExport], out_dir: str | Path, units: str = "mm",
                  opensim_axes: bool = True) -> list[dict[str, Path]]:
    """Write every trial into ``out_dir``; one ``{kind: path}`` dict per trial (kinds: mot, angles_csv, trc, c3d,
    markers_csv). Two trials whose files would share a name are an error naming both (nothing is written)."""
    trials = list(trials)
    by_stem: dict[str, str] = {}
    for trial in trials:
        stem = file_stem(trial.name)
        if stem in by_stem:
            raise IngestError(out_dir, "file names", f"distinct files per trial; trials {by_stem[stem]!r} and "
                                                     f"{trial.name!r} would both be written as {stem}.*")
        by_stem[stem] = trial.name
    return [export_trial(t, out_dir, units=units, opensim_axes=opensim_axes) for t in trials]


def export_fits(database: Database, restriction: Any, out_dir: str | Path, units: str = "mm",
                opensim_axes: bool = True, opensim_models: bool = True) -> list[dict[str, Path]]:
    """Export the fitted trials of ``database`` matching ``restriction`` (None: all) to ``out_dir``.

    One ``{kind: path}`` dict per trial (:func:`export_trials`); with ``opensim_models`` each also holds
    ``osim``: the ``.osim`` of its fit, written once per fit (the ``.mot``/``.trc`` load on it unchanged).
    """
    trials = fetch_trial_exports(database, restriction)
    written = export_trials(trials, out_dir, units=units, opensim_axes=opensim_axes)
    if opensim_models and trials:
        fits = fetch_fit_models(database, [t.fit_key for t in trials])
        models = {fit.name: export_fit_model(fit, out_dir) for fit in fits}
        for trial, paths in zip(trials, written):
            paths["osim"] = models[fit_export_name(trial.fit_key)]
    return written


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mmc export``."""
    parser.add_argument("out_dir", help="folder to write .mot/.trc/.c3d/.osim/.csv files into")
    add_restriction_arguments(parser, "BilevelFit.Trial")
    parser.add_argument("--units", choices=sorted(_LENGTH_FACTORS), default="mm", help="TRC and C3D length unit")
    parser.add_argument("--world-axes", action="store_true",
                        help="keep our Z-up world axes instead of OpenSim's Y-up ground frame")
    parser.add_argument("--no-osim", action="store_true", help="do not write the fits' OpenSim models")


def parse_restrictions(items: Sequence[str]) -> dict[str, Any]:
    """``["subject_id=S01", "trial_name=walk01"]`` -> dict (numbers converted where they parse)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--restrict: expected ATTR=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        value = value.strip()
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        out[key.strip()] = value
    return out


def export_command(args: argparse.Namespace) -> int:
    """``mmc export [--restrict ATTR=VALUE ...] [--where SQL ...] OUT_DIR``: export every matching fitted trial."""
    database = open_database(args.prefix)
    restrictions = export_restrictions(database, args.restrict, args.where)
    results_written = export_fits(database, dj.AndList(restrictions) if restrictions else None, args.out_dir,
                                  units=args.units, opensim_axes=not args.world_axes,
                                  opensim_models=not args.no_osim)
    for written in results_written:
        print("  ".join(str(p) for kind, p in written.items() if kind != "osim"))
    for model_path in sorted({written["osim"] for written in results_written if "osim" in written}):
        print(model_path)
    print(f"exported {len(results_written)} trial(s) to {args.out_dir}")
    return 0


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """``mmc export``."""
    parser = subparsers.add_parser("export", help="export fits (.trc, .mot, .c3d, OpenSim model, CSV)",
                                   description="write fitted trials as OpenSim .mot/.trc, C3D and CSV, and each "
                                               "fit's scaled OpenSim model (.osim)")
    add_export_arguments(parser)
    parser.set_defaults(handler=export_command)
