"""Exports of a fit in the formats labs already use: OpenSim ``.mot`` / ``.trc`` and CSV.

Two layers:

* plain writers over numpy arrays (``write_mot``, ``write_trc``, ``write_joint_angles_csv``,
  ``write_markers_csv``) and their readers (``read_mot``, ``read_trc``) used by the tests and by anyone
  who wants to load the files back;
* ``export_fit`` / ``export_command`` which fetch ``BilevelFit.Trial`` rows from the database (or take
  ``TrialExport`` objects directly) and write one folder per trial; ``mmc export [--restrict ...] OUT_DIR``.

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
* CSV: ``time_s`` then one column per coordinate (``<name>_deg`` or ``<name>_m``); markers in long-wide
  form ``time_s, <marker>_x_m, <marker>_y_m, <marker>_z_m`` in our world frame (Z-up, metres).
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

TRANSLATION_SUFFIXES = ("_tx", "_ty", "_tz")
_WORLD_TO_OPENSIM = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # rows: OpenSim X, Y, Z
_LENGTH_FACTORS = {"m": 1.0, "mm": 1000.0}


@dataclass(frozen=True)
class TrialExport:
    """Everything written for one fitted trial.

    times: (T,) seconds; qpos: (T, Q) with translations in metres and angles in radians;
    joint_names: (Q,) OpenSim coordinate names; markers: (T, J, 3) metres, world frame (Z-up);
    marker_names: (J,); fps: frame rate in Hz (inferred from ``times`` when None).
    """

    name: str
    times: np.ndarray
    qpos: np.ndarray
    joint_names: tuple[str, ...]
    markers: np.ndarray | None = None
    marker_names: tuple[str, ...] | None = None
    fps: float | None = None


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


def write_markers_csv(path: str | Path, times: np.ndarray, markers: np.ndarray, marker_names: Sequence[str]) -> Path:
    """Write :func:`markers_frame` as CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    markers_frame(times, markers, marker_names).to_csv(path, index=False, float_format="%.8g")
    return path


# --------------------------------------------------------------------------------------------------
# whole trials / fits
# --------------------------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "trial"


def export_trial(trial: TrialExport, out_dir: str | Path, units: str = "mm", opensim_axes: bool = True) -> dict[str, Path]:
    """Write ``<name>.mot``, ``<name>_angles.csv`` and (when markers are given) ``<name>.trc`` and
    ``<name>_markers.csv`` into ``out_dir``. Returns ``{kind: path}``."""
    out_dir = Path(out_dir)
    stem = _safe(trial.name)
    written = {
        "mot": write_mot(out_dir / f"{stem}.mot", trial.times, trial.qpos, trial.joint_names, name=stem,
                         opensim_axes=opensim_axes),
        "angles_csv": write_joint_angles_csv(out_dir / f"{stem}_angles.csv", trial.times, trial.qpos, trial.joint_names),
    }
    if trial.markers is not None:
        names = trial.marker_names or tuple(f"M{j + 1}" for j in range(np.asarray(trial.markers).shape[1]))
        written["trc"] = write_trc(out_dir / f"{stem}.trc", trial.times, trial.markers, names, units=units,
                                   data_rate=trial.fps, opensim_axes=opensim_axes)
        written["markers_csv"] = write_markers_csv(out_dir / f"{stem}_markers.csv", trial.times, trial.markers, names)
    return written


def fetch_trial_exports(restriction: Any = None) -> list[TrialExport]:
    """Fetch ``BilevelFit.Trial`` rows (optionally restricted) as :class:`TrialExport` objects.

    Marker names are the fit's keypoint set (``acquisition.KeypointSet.joint_names``), the frame rate is the
    trial's ``fps``. The export name is ``<subject>_<session>_<trial>_<base model>_<parameter set>``, so
    exports of several fits of one trial never collide. Needs activated schemas.
    """
    from schemas import acquisition, fitting  # lazily: the writers above work without a database

    query = (fitting.BilevelFit.Trial * fitting.BilevelFit.proj("keypoint_set")
             * acquisition.Trial.proj("fps"))
    if restriction is not None:
        query = query & restriction
    marker_names = {row["keypoint_set"]: tuple(row["joint_names"])
                    for row in acquisition.KeypointSet.proj("joint_names").to_dicts()}
    exports = []
    for key in query.keys(order_by="subject_id, session_id, trial_name"):
        row = (query & key).fetch1()
        parts = [key[k] for k in ("subject_id", "session_id", "trial_name", "base_model", "params_name") if k in key]
        exports.append(TrialExport(
            name="_".join(str(p) for p in parts),
            times=np.asarray(row["times"], dtype=float),
            qpos=np.asarray(row["qpos"], dtype=float),
            joint_names=tuple(row["joint_names"]),
            markers=np.asarray(row["markers"], dtype=float),
            marker_names=marker_names.get(row["keypoint_set"]),
            fps=float(row["fps"]),
        ))
    return exports


def export_fit(
    source: Any,
    out_dir: str | Path,
    units: str = "mm",
    opensim_axes: bool = True,
) -> list[dict[str, Path]]:
    """Export fitted trials to ``out_dir``.

    source: a :class:`TrialExport`, a list of them, or a DataJoint restriction (key dict, list of keys,
    query expression or SQL string) on ``BilevelFit.Trial`` / ``BilevelFit``. Returns one
    ``{kind: path}`` dict per trial (kinds: mot, angles_csv, trc, markers_csv).
    """
    if isinstance(source, TrialExport):
        trials: Iterable[TrialExport] = [source]
    elif isinstance(source, (list, tuple)) and source and all(isinstance(t, TrialExport) for t in source):
        trials = source
    else:
        trials = fetch_trial_exports(source)
    return [export_trial(t, out_dir, units=units, opensim_axes=opensim_axes) for t in trials]


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mmc export``."""
    parser.add_argument("out_dir", help="folder to write .mot/.trc/.csv files into")
    parser.add_argument("--restrict", action="append", default=[], metavar="ATTR=VALUE",
                        help="restrict BilevelFit.Trial, e.g. --restrict subject_id=S01 (repeatable)")
    parser.add_argument("--units", choices=sorted(_LENGTH_FACTORS), default="mm", help="TRC length unit")
    parser.add_argument("--world-axes", action="store_true",
                        help="keep our Z-up world axes instead of OpenSim's Y-up ground frame")


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
    """``mmc export [--restrict ATTR=VALUE ...] OUT_DIR``: activate schemas, export every matching trial."""
    from pipeline.report import activate_from_config

    activate_from_config()
    restriction = parse_restrictions(getattr(args, "restrict", []))
    results = export_fit(restriction or None, args.out_dir, units=getattr(args, "units", "mm"),
                         opensim_axes=not getattr(args, "world_axes", False))
    for written in results:
        print("  ".join(str(p) for p in written.values()))
    print(f"exported {len(results)} trial(s) to {args.out_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mmc export`` (``pipeline.cli`` passes the remaining arguments)."""
    parser = argparse.ArgumentParser(prog="mmc export",
                                     description="write fitted trials as OpenSim .mot/.trc and CSV")
    add_export_arguments(parser)
    return export_command(parser.parse_args(list(argv) if argv is not None else None))
