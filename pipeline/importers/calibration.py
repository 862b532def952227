"""Camera calibration readers: anipose / Pose2Sim TOML and Caliscope ``config.toml``.

Both give OpenCV cameras, ``x_cam = R X_world + t``. Output translations are always metres.

Anipose: ``[cam_N]`` sections with ``name``, ``size = [w, h]``, ``matrix`` (3×3 K, px), ``distortions``
(k1 k2 p1 p2 [k3]), ``rotation`` (Rodrigues vector, world→camera), ``translation`` (calibration board unit).
The unit is taken from the manifest (``calibration_unit``) when given; otherwise it is **inferred**: if the median
camera distance from the world origin exceeds 20 (no lab rig is 20 m away, no camera is 20 mm away) the unit is mm.
The inferred unit is stated in the summary and stored (``Camera.unit_inferred``).

Caliscope: ``[cam_N]`` sections with ``port``, ``size``, ``matrix``, ``distortions``, ``rotation`` (3×3 matrix,
world→camera), ``translation`` (metres). Camera name ``cam_<port>``. Rotations must be orthonormal with det +1
(tolerance 1e-4 on ``RᵀR − I``), otherwise it is an error.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.importers.errors import IngestError

ORTHONORMAL_TOLERANCE = 1e-4
MM_THRESHOLD = 20.0


@dataclass(frozen=True)
class CameraCalibration:
    """One camera. Arrays are float64 numpy."""

    name: str                  # as written in the file (anipose ``name``, or ``cam_<port>`` for Caliscope)
    image_size: tuple[int, int]  # (width, height) px
    K: np.ndarray              # (3, 3) px
    dist: np.ndarray           # (5,) k1 k2 p1 p2 k3
    rvec: np.ndarray           # (3,) Rodrigues, world -> camera
    tvec: np.ndarray           # (3,) metres, world -> camera


@dataclass(frozen=True)
class Calibration:
    source: Path
    format: str                # "anipose" | "caliscope"
    unit: str                  # unit of the translations in the source file: "m" | "mm"
    unit_inferred: bool
    cameras: tuple[CameraCalibration, ...]

    def summary(self) -> str:
        how = "inferred from magnitudes" if self.unit_inferred else "given"
        return (f"{len(self.cameras)} cameras from {self.source} ({self.format}, translation unit "
                f"{self.unit} {how}): " + ", ".join(c.name for c in self.cameras))


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise IngestError(path, "file", "an existing calibration file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise IngestError(path, "file", f"valid TOML ({error})") from None


def _array(path: Path, section: str, data: dict, key: str, shape: tuple[int, ...] | None, *, lengths=None):
    field = f"[{section}].{key}"
    if key not in data:
        raise IngestError(path, field, "present")
    try:
        value = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise IngestError(path, field, f"numbers of shape {shape or lengths}") from None
    if shape is not None and value.shape != shape:
        raise IngestError(path, field, f"shape {shape}, got {value.shape}")
    if lengths is not None and (value.ndim != 1 or len(value) not in lengths):
        raise IngestError(path, field, f"a list of {' or '.join(map(str, lengths))} numbers, got shape {value.shape}")
    if not np.all(np.isfinite(value)):
        raise IngestError(path, field, "finite numbers")
    return value


def _image_size(path: Path, section: str, data: dict) -> tuple[int, int]:
    size = _array(path, section, data, "size", (2,))
    if np.any(size <= 0):
        raise IngestError(path, f"[{section}].size", "positive [width, height] in px")
    return int(size[0]), int(size[1])


def _intrinsics(path: Path, section: str, data: dict) -> tuple[np.ndarray, np.ndarray]:
    K = _array(path, section, data, "matrix", (3, 3))
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise IngestError(path, f"[{section}].matrix", "positive focal lengths K[0,0], K[1,1]")
    dist = _array(path, section, data, "distortions", None, lengths=(4, 5))
    return K, np.pad(dist, (0, 5 - len(dist)))


def _camera_sections(path: Path, data: dict) -> list[str]:
    sections = [key for key, value in data.items() if isinstance(value, dict) and key.startswith("cam")]
    if not sections:
        raise IngestError(path, "[cam_*]", "at least one camera section")
    return sections


def infer_unit(translations: np.ndarray) -> str:
    """"mm" if the median camera-to-origin distance exceeds 20 units, else "m". ``translations`` (C, 3)."""
    return "mm" if float(np.median(np.linalg.norm(translations, axis=-1))) > MM_THRESHOLD else "m"


def read_anipose_calibration(path: str | Path, unit: str | None = None) -> Calibration:
    """Anipose / Pose2Sim calibration TOML. ``unit`` "m" | "mm" | None (infer)."""
    path = Path(path)
    data = _read_toml(path)
    raw = []
    for section in _camera_sections(path, data):
        cam = data[section]
        name = str(cam.get("name", section))
        size = _image_size(path, section, cam)
        K, dist = _intrinsics(path, section, cam)
        rvec = _array(path, section, cam, "rotation", (3,))
        tvec = _array(path, section, cam, "translation", (3,))
        raw.append((name, size, K, dist, rvec, tvec))
    names = [r[0] for r in raw]
    if len(set(names)) != len(names):
        raise IngestError(path, "[cam_*].name", f"unique camera names, got {names}")
    inferred = unit is None
    if unit is None:
        unit = infer_unit(np.stack([r[5] for r in raw]))
    if unit not in ("m", "mm"):
        raise IngestError(path, "calibration_unit", f"'m' or 'mm', got {unit!r}")
    factor = 1e-3 if unit == "mm" else 1.0
    cameras = tuple(CameraCalibration(n, s, K, d, r, t * factor) for n, s, K, d, r, t in raw)
    return Calibration(path, "anipose", unit, inferred, cameras)


def check_rotation_matrix(path: Path, field: str, R: np.ndarray) -> None:
    error = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if error > ORTHONORMAL_TOLERANCE or np.linalg.det(R) <= 0:
        raise IngestError(path, field, f"an orthonormal rotation matrix with det +1 "
                                       f"(max |RᵀR − I| = {error:.2g}, det = {np.linalg.det(R):.4g})")


def read_caliscope_calibration(path: str | Path, unit: str | None = None) -> Calibration:
    """Caliscope ``config.toml``; translations are metres unless ``unit`` says otherwise."""
    path = Path(path)
    data = _read_toml(path)
    cameras = []
    unit = unit or "m"
    if unit not in ("m", "mm"):
        raise IngestError(path, "calibration_unit", f"'m' or 'mm', got {unit!r}")
    factor = 1e-3 if unit == "mm" else 1.0
    for section in _camera_sections(path, data):
        cam = data[section]
        if cam.get("ignore", False):
            continue
        if "port" not in cam:
            raise IngestError(path, f"[{section}].port", "an integer camera port")
        size = _image_size(path, section, cam)
        K, dist = _intrinsics(path, section, cam)
        if "rotation" not in cam or "translation" not in cam:
            continue  # intrinsics only (not part of the extrinsic calibration)
        R = _array(path, section, cam, "rotation", (3, 3))
        check_rotation_matrix(path, f"[{section}].rotation", R)
        tvec = _array(path, section, cam, "translation", (3,)) * factor
        rvec = Rotation.from_matrix(R).as_rotvec()
        cameras.append(CameraCalibration(f"cam_{int(cam['port'])}", size, K, dist, rvec, tvec))
    if not cameras:
        raise IngestError(path, "[cam_*].rotation", "at least one camera with extrinsics")
    return Calibration(path, "caliscope", unit, False, tuple(cameras))


def read_calibration(path: str | Path, calibration_format: str, unit: str | None = None) -> Calibration:
    if calibration_format == "anipose":
        return read_anipose_calibration(path, unit)
    if calibration_format == "caliscope":
        return read_caliscope_calibration(path, unit)
    raise IngestError(path, "calibration_format", f"'anipose' or 'caliscope', got {calibration_format!r}")
