"""Virtual marker trajectories as a C3D file (read by Vicon Nexus, Visual3D, Mokka, OpenSim, ezc3d, ...).

Written with ezc3d (Michaud & Begon 2021, "ezc3d: An easy C3D file I/O cross-platform solution for
C++, Python and MATLAB", JOSS 6:2911). Conventions, following the C3D file format user guide (c3d.org):

* **Points only.** One 3D point per keypoint, ``POINT:LABELS`` = keypoint names in detector order
  (``POINT:DESCRIPTIONS`` optional, e.g. the anatomical landmark); ``POINT:RATE`` = frame rate in Hz;
  no analog channels (``ANALOG:USED`` = 0). Values are stored as 32-bit floats (``POINT:SCALE`` < 0).
* **Units: millimetres** (``POINT:UNITS = "mm"``), the unit nearly every C3D producer and reader assumes
  (``"m"`` is accepted on request).
* **Axes: our lab frame, Z up** (X walking direction, Y left), the usual C3D laboratory convention; unlike
  the ``.trc`` export, nothing is rotated into OpenSim's Y-up frame (OpenSim's C3D reader rotates on
  import). ``POINT:X_SCREEN = "+X"`` and ``POINT:Y_SCREEN = "+Z"`` tell viewers which axis is up.
* **Missing markers.** A point with any NaN coordinate is written as invalid: residual ``-1`` (the C3D
  convention for "no data in this frame"). ezc3d reads such a point back as NaN; readers that expose
  raw values (e.g. the ``c3d`` package) show zeros with residual ``-1``. Valid points carry residual 0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import ezc3d
import numpy as np

__all__ = ["write_c3d", "read_c3d", "C3D_LENGTH_FACTORS"]

C3D_LENGTH_FACTORS = {"mm": 1000.0, "m": 1.0}
"""File units per metre."""


def write_c3d(path: str | Path, markers: np.ndarray, marker_names: Sequence[str], rate_hz: float,
              units: str = "mm", descriptions: Sequence[str] | None = None) -> Path:
    """Write virtual markers to a C3D file (points only; see the module docstring for conventions).

    markers: (T, J, 3) metres in our Z-up lab frame, NaN where missing; marker_names: (J,) keypoint
    names (``POINT:LABELS``); rate_hz: frame rate (``POINT:RATE``); units: ``"mm"`` (default) or ``"m"``;
    descriptions: optional (J,) text per point. Returns the path.
    """
    if units not in C3D_LENGTH_FACTORS:
        raise ValueError(f"units: expected one of {sorted(C3D_LENGTH_FACTORS)}, got {units!r}")
    markers = np.asarray(markers, dtype=np.float64)
    if markers.ndim != 3 or markers.shape[1:] != (len(marker_names), 3):
        raise ValueError(f"markers: expected shape (T, J={len(marker_names)}, 3), got {markers.shape}")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz: expected a positive frame rate, got {rate_hz}")
    if descriptions is not None and len(descriptions) != len(marker_names):
        raise ValueError(f"descriptions: expected {len(marker_names)} entries, got {len(descriptions)}")

    c3d = ezc3d.c3d()
    point = c3d["parameters"]["POINT"]
    point["RATE"]["value"] = np.array([float(rate_hz)])
    point["LABELS"]["value"] = [str(n) for n in marker_names]
    point["UNITS"]["value"] = [units]
    if descriptions is not None:
        point["DESCRIPTIONS"]["value"] = [str(d) for d in descriptions]
    c3d.add_parameter("POINT", "X_SCREEN", ["+X"])
    c3d.add_parameter("POINT", "Y_SCREEN", ["+Z"])

    values = markers * C3D_LENGTH_FACTORS[units]
    missing = ~np.all(np.isfinite(values), axis=2)  # (T, J)
    values[missing] = np.nan  # a point is present or absent as a whole
    points = np.ones((4, len(marker_names), markers.shape[0]))
    points[:3] = values.transpose(2, 1, 0)
    c3d["data"]["points"] = points
    # explicit residuals: ezc3d's reader reports -1 only when it was given (it writes -1 for NaN points anyway)
    residuals = np.where(missing.T, -1.0, 0.0)[None]  # (1, J, T)
    c3d["data"]["meta_points"] = {"residuals": residuals,
                                  "camera_masks": np.zeros((7, *residuals.shape[1:]), dtype=bool)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c3d.write(str(path))
    return path


def read_c3d(path: str | Path) -> tuple[np.ndarray, tuple[str, ...], float]:
    """Read the points of a C3D file: ``(markers (T, J, 3) metres, NaN where missing; labels (J,); rate Hz)``.

    Positions stay in the file's axes; lengths are converted from ``POINT:UNITS`` (``mm`` or ``m``).
    """
    c3d = ezc3d.c3d(str(path))
    point = c3d["parameters"]["POINT"]
    units = str(point["UNITS"]["value"][0]).strip() if len(point["UNITS"]["value"]) else "mm"
    if units not in C3D_LENGTH_FACTORS:
        raise ValueError(f"{path}: POINT:UNITS is {units!r}; expected one of {sorted(C3D_LENGTH_FACTORS)}")
    points = np.asarray(c3d["data"]["points"], dtype=np.float64)  # (4, J, T)
    markers = points[:3].transpose(2, 1, 0) / C3D_LENGTH_FACTORS[units]
    residuals = np.asarray(c3d["data"]["meta_points"]["residuals"], dtype=np.float64)[0].T  # (T, J)
    markers[residuals < 0] = np.nan
    labels = tuple(str(label).strip() for label in point["LABELS"]["value"])
    return markers, labels, float(np.asarray(point["RATE"]["value"]).reshape(-1)[0])
