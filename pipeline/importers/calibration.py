"""Camera calibration readers: anipose / Pose2Sim TOML, Caliscope ``config.toml``, Qualisys QTM ``.qca.txt``, Vicon
``.xcp``.

All give OpenCV cameras, ``x_cam = R X_world + t``, ``u = K · distort(x_cam / z)``. Output translations are metres.

Anipose / Pose2Sim: one table per camera holding ``matrix`` (any section name: ``[cam_0]``, ``[cam_01]``,
``[int_cam01_img]``; tables without ``matrix`` such as ``[metadata]`` are skipped), with ``name`` (default: the
section name), ``size = [w, h]``, ``matrix`` (3×3 K, px), ``distortions`` (k1 k2 p1 p2 [k3]), ``rotation``
(Rodrigues vector, world→camera), ``translation`` (calibration board unit). The unit is taken from the manifest
(``calibration_unit``) when given; otherwise it is **inferred**: if the median camera distance from the world origin
exceeds 20 (no lab rig is 20 m away, no camera is 20 mm away) the unit is mm. The inferred unit is stated in the
summary and stored (``Camera.unit_inferred``).

Caliscope: ``[cam_N]`` sections with an integer ``port`` (distinct across sections), ``size``, ``matrix``,
``distortions``, ``rotation`` (3×3 matrix, world→camera), ``translation`` (metres). Camera name ``cam_<port>``.
Rotations must be orthonormal with det +1 (tolerance 1e-4 on ``RᵀR − I``), otherwise it is an error.

Qualisys QTM (``.qca.txt``, XML): one ``<camera serial=…>`` per camera. ``<transform r11…r33 x y z>`` holds the
camera's orientation and its position in mm in the (Z-up) lab frame; the nine ``rIJ`` attributes are written
column by column, so the camera→world matrix is ``A = [[r11 r21 r31], [r12 r22 r32], [r13 r23 r33]]``, and a
Qualisys camera looks along its −z axis with y up. The OpenCV world→camera rotation is therefore
``R = diag(1, −1, −1) · Aᵀ`` and ``t = −R · position``. ``<intrinsic>`` gives focal lengths and principal point
in sensor units of 1/64 px: ``fx = focalLengthU / 64``, ``cx = centerPointU / 64 − fov_video.left`` (same for V
with ``top``); ``radialDistortion1..3`` and ``tangentalDistortion1..2`` are OpenCV's k1 k2 k3 p1 p2 (not scaled).
The image is the ``<fov_video>`` crop: ``(right − left + 1) × (bottom − top + 1)`` px. A non-zero
``viewrotation`` is refused (not supported). Camera name: the ``serial``. (Convention as in Pose2Sim's Qualisys
converter, Pagnon et al., JOSS 2022.)

Vicon (``.xcp``, XML): ``<Camera DEVICEID= SENSOR_SIZE="w h" PIXEL_ASPECT_RATIO=>`` with a
``<KeyFrames><KeyFrame>`` holding ``POSITION`` (camera centre, mm), ``ORIENTATION`` (unit quaternion ``x y z w`` of
the camera→world rotation, i.e. the camera's orientation in the world), ``FOCAL_LENGTH`` (px), ``PRINCIPAL_POINT``
(px) and ``VICON_RADIAL2 = "<model> <centre u> <centre v> k1 k2 [k3]"`` (or ``VICON_RADIAL = "k1 k2"``).
``R = Q(ORIENTATION)ᵀ``, ``t = −R · POSITION``, ``fy = FOCAL_LENGTH / PIXEL_ASPECT_RATIO``. Camera name: the
``DEVICEID`` (convention as in Pose2Sim's Vicon converter).

Plausibility (every format, errors naming the camera): image sizes whole numbers of pixels in
[``MIN_IMAGE_PX``, ``MAX_IMAGE_PX``]; ``K`` upper triangular with ``K[2] = (0, 0, 1)`` and focal lengths within
[0.05, 50] × the larger image side; distortion coefficients within ±``MAX_DISTORTION``; Rodrigues vectors of norm at
most 2π; no two cameras at the same centre (closer than 1 mm); the rig no larger than ``MAX_RIG_SPAN_M`` metres
(a larger span means the unit is wrong, e.g. mm declared as m).
"""
from __future__ import annotations

import math
import tomllib
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pipeline.importers.errors import IngestError
from pipeline.importers.files import FileRecord, decode_text, read_input

ORTHONORMAL_TOLERANCE = 1e-4
MM_THRESHOLD = 20.0
MIN_IMAGE_PX = 16
MAX_IMAGE_PX = 100_000
FOCAL_RANGE = (0.05, 50.0)        # × max(width, height)
MAX_DISTORTION = 100.0
MIN_CAMERA_SEPARATION_M = 1e-3
MAX_RIG_SPAN_M = 100.0
CALIBRATION_FORMATS = ("anipose", "caliscope", "qualisys", "vicon")


@dataclass(frozen=True)
class CameraCalibration:
    """One camera. Arrays are float64 numpy."""

    name: str                  # as written in the file (anipose ``name``, ``cam_<port>``, Qualisys serial, Vicon id)
    image_size: tuple[int, int]  # (width, height) px
    K: np.ndarray              # (3, 3) px
    dist: np.ndarray           # (5,) k1 k2 p1 p2 k3
    rvec: np.ndarray           # (3,) Rodrigues, world -> camera
    tvec: np.ndarray           # (3,) metres, world -> camera


@dataclass(frozen=True)
class Calibration:
    source: Path
    format: str                # one of CALIBRATION_FORMATS
    unit: str                  # unit of the translations in the source file: "m" | "mm"
    unit_inferred: bool
    cameras: tuple[CameraCalibration, ...]
    file: FileRecord | None = None  # provenance of the file read

    def summary(self) -> str:
        how = "inferred from magnitudes" if self.unit_inferred else "given"
        return (f"{len(self.cameras)} cameras from {self.source} ({self.format}, translation unit "
                f"{self.unit} {how}): " + ", ".join(c.name for c in self.cameras))


def _read_toml(path: Path) -> tuple[dict, FileRecord]:
    file = read_input(path, "calibration")
    text = decode_text(file, "calibration TOML")
    try:
        return tomllib.loads(text), file.record()
    except tomllib.TOMLDecodeError as error:
        raise IngestError(path, "file", f"valid TOML ({error})") from None
    except RecursionError:
        raise IngestError(path, "file", "TOML nested at most a few hundred levels deep") from None


def _array(path: Path, section: str, data: dict, key: str, shape: tuple[int, ...] | None, *, lengths=None):
    field = f"[{section}].{key}"
    if key not in data:
        raise IngestError(path, field, "present")
    try:
        value = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise IngestError(path, field, f"numbers of shape {shape or lengths}") from None
    if shape is not None and value.shape != shape:
        raise IngestError(path, field, f"shape {shape}, got {value.shape}")
    if lengths is not None and (value.ndim != 1 or len(value) not in lengths):
        raise IngestError(path, field, f"a list of {' or '.join(map(str, lengths))} numbers, got shape {value.shape}")
    if not np.all(np.isfinite(value)):
        raise IngestError(path, field, "finite numbers")
    return value


# ------------------------------------------------------------------------------------------------ plausibility
def check_image_size(path: Path, field: str, size) -> tuple[int, int]:
    size = np.asarray(size, dtype=np.float64)
    if (size.shape != (2,) or not np.all(np.isfinite(size)) or np.any(size != np.round(size))
            or np.any(size < MIN_IMAGE_PX) or np.any(size > MAX_IMAGE_PX)):
        raise IngestError(path, field, f"[width, height] in whole pixels between {MIN_IMAGE_PX} and {MAX_IMAGE_PX}, "
                                       f"got {size.tolist()}")
    return int(size[0]), int(size[1])


def check_intrinsics(path: Path, field: str, K: np.ndarray, image_size: tuple[int, int]) -> None:
    if K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0 or K[2, 2] != 1:
        raise IngestError(path, field, f"a camera matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]], got rows "
                                       f"{K[1].tolist()}, {K[2].tolist()}")
    side = max(image_size)
    low, high = FOCAL_RANGE[0] * side, FOCAL_RANGE[1] * side
    for axis, f in (("fx", K[0, 0]), ("fy", K[1, 1])):
        if not low <= f <= high:
            raise IngestError(path, field, f"focal length {axis} between {FOCAL_RANGE[0]:g} and {FOCAL_RANGE[1]:g} × "
                                           f"the image size ({low:.0f}..{high:.0f} px for {image_size[0]}×"
                                           f"{image_size[1]}), got {f:.6g} px")


def check_distortion(path: Path, field: str, dist: np.ndarray) -> None:
    if np.any(np.abs(dist) > MAX_DISTORTION):
        raise IngestError(path, field, f"distortion coefficients within ±{MAX_DISTORTION:g} (k1 k2 p1 p2 k3), got "
                                       f"{dist.tolist()}")


def check_rotation_vector(path: Path, field: str, rvec: np.ndarray) -> None:
    norm = float(np.linalg.norm(rvec))
    if norm > 2 * math.pi + 1e-6:
        raise IngestError(path, field, f"a Rodrigues vector of norm at most 2π rad, got norm {norm:.6g}")


def check_rotation_matrix(path: Path, field: str, R: np.ndarray) -> None:
    error = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if error > ORTHONORMAL_TOLERANCE or np.linalg.det(R) <= 0:
        raise IngestError(path, field, f"an orthonormal rotation matrix with det +1 "
                                       f"(max |RᵀR − I| = {error:.2g}, det = {np.linalg.det(R):.4g})")


def camera_centres(cameras) -> np.ndarray:
    """(C, 3) camera centres in the world, ``−Rᵀ t`` (units of ``tvec``)."""
    return np.stack([-Rotation.from_rotvec(c.rvec).as_matrix().T @ c.tvec for c in cameras])


def check_rig(path: Path, cameras: tuple[CameraCalibration, ...], unit: str, unit_inferred: bool) -> None:
    """No two cameras at one centre; the rig spans at most MAX_RIG_SPAN_M metres (``tvec`` already metres)."""
    if len(cameras) < 2:
        return
    centres = camera_centres(cameras)
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    for a in range(len(cameras)):
        for b in range(a + 1, len(cameras)):
            if distances[a, b] < MIN_CAMERA_SEPARATION_M:
                raise IngestError(path, "cameras", f"cameras at distinct positions, but {cameras[a].name} and "
                                                   f"{cameras[b].name} are {distances[a, b] * 1000:.3g} mm apart")
    span = float(distances.max())
    if span > MAX_RIG_SPAN_M:
        how = "inferred" if unit_inferred else "declared"
        hint = 'calibration_unit = "mm"' if unit == "m" else "a calibration in mm or m"
        raise IngestError(path, "calibration_unit", f"a rig at most {MAX_RIG_SPAN_M:g} m across, but with the "
                                                    f"{how} unit {unit!r} its cameras are {span:.4g} m apart; "
                                                    f"if the file is in millimetres set {hint}")


def check_camera(path: Path, field: str, camera: CameraCalibration) -> None:
    check_intrinsics(path, f"{field}.matrix", camera.K, camera.image_size)
    check_distortion(path, f"{field}.distortions", camera.dist)
    check_rotation_vector(path, f"{field}.rotation", camera.rvec)


def _finish(path: Path, calibration_format: str, unit: str, unit_inferred: bool, cameras: list[CameraCalibration],
            fields: list[str], file: FileRecord) -> Calibration:
    if not cameras:
        raise IngestError(path, "cameras", "at least one camera with extrinsics")
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise IngestError(path, "camera names", f"unique camera names, got {names}")
    for camera, field in zip(cameras, fields):
        check_camera(path, field, camera)
    check_rig(path, tuple(cameras), unit, unit_inferred)
    return Calibration(path, calibration_format, unit, unit_inferred, tuple(cameras), file)


def _check_unit(path: Path, unit: str) -> float:
    if unit not in ("m", "mm"):
        raise IngestError(path, "calibration_unit", f"'m' or 'mm', got {unit!r}")
    return 1e-3 if unit == "mm" else 1.0


# ------------------------------------------------------------------------------------------------ TOML formats
def _intrinsics(path: Path, section: str, data: dict) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    size = check_image_size(path, f"[{section}].size", _array(path, section, data, "size", (2,)))
    K = _array(path, section, data, "matrix", (3, 3))
    dist = _array(path, section, data, "distortions", None, lengths=(4, 5))
    return size, K, np.pad(dist, (0, 5 - len(dist)))


def _camera_sections(path: Path, data: dict) -> list[str]:
    sections = [key for key, value in data.items() if isinstance(value, dict) and "matrix" in value]
    if not sections:
        raise IngestError(path, "[cam_*]", "at least one camera section (a table with a 'matrix')")
    return sections


def infer_unit(translations: np.ndarray) -> str:
    """"mm" if the median camera-to-origin distance exceeds 20 units, else "m". ``translations`` (C, 3)."""
    return "mm" if float(np.median(np.linalg.norm(translations, axis=-1))) > MM_THRESHOLD else "m"


def read_anipose_calibration(path: str | Path, unit: str | None = None) -> Calibration:
    """Anipose / Pose2Sim calibration TOML. ``unit`` "m" | "mm" | None (infer)."""
    path = Path(path)
    data, file = _read_toml(path)
    raw = []
    for section in _camera_sections(path, data):
        cam = data[section]
        name = cam.get("name", section)
        if not isinstance(name, str) or not name.strip():
            raise IngestError(path, f"[{section}].name", f"a camera name, got {name!r}")
        size, K, dist = _intrinsics(path, section, cam)
        rvec = _array(path, section, cam, "rotation", (3,))
        tvec = _array(path, section, cam, "translation", (3,))
        raw.append((section, name, size, K, dist, rvec, tvec))
    inferred = unit is None
    if unit is None:
        unit = infer_unit(np.stack([r[6] for r in raw]))
    factor = _check_unit(path, unit)
    cameras = [CameraCalibration(n, s, K, d, r, t * factor) for _, n, s, K, d, r, t in raw]
    return _finish(path, "anipose", unit, inferred, cameras, [f"[{r[0]}]" for r in raw], file)


def _port(path: Path, section: str, cam: dict) -> int:
    port = cam.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 10_000:
        raise IngestError(path, f"[{section}].port", f"an integer camera port in 0..9999, got {port!r}")
    return port


def read_caliscope_calibration(path: str | Path, unit: str | None = None) -> Calibration:
    """Caliscope ``config.toml``; translations are metres unless ``unit`` says otherwise."""
    path = Path(path)
    data, file = _read_toml(path)
    unit = unit or "m"
    factor = _check_unit(path, unit)
    cameras, fields, sections_by_port = [], [], {}
    for section in _camera_sections(path, data):
        cam = data[section]
        if cam.get("ignore", False):
            continue
        port = _port(path, section, cam)
        if port in sections_by_port:
            raise IngestError(path, f"[{section}].port", f"a port not used by another section, but port {port} is "
                                                         f"also [{sections_by_port[port]}]")
        sections_by_port[port] = section
        size, K, dist = _intrinsics(path, section, cam)
        if "rotation" not in cam or "translation" not in cam:
            continue  # intrinsics only (not part of the extrinsic calibration)
        R = _array(path, section, cam, "rotation", (3, 3))
        check_rotation_matrix(path, f"[{section}].rotation", R)
        tvec = _array(path, section, cam, "translation", (3,)) * factor
        rvec = Rotation.from_matrix(R).as_rotvec()
        cameras.append(CameraCalibration(f"cam_{port}", size, K, dist, rvec, tvec))
        fields.append(f"[{section}]")
    return _finish(path, "caliscope", unit, False, cameras, fields, file)


# ------------------------------------------------------------------------------------------------ XML formats
def _read_xml(path: Path, what: str) -> tuple[ElementTree.Element, FileRecord]:
    file = read_input(path, "calibration")
    try:
        return ElementTree.fromstring(file.data), file.record()
    except ElementTree.ParseError as error:
        raise IngestError(path, "file", f"valid {what} XML ({error})") from None


def _numbers(path: Path, field: str, text: str | None, count: int | tuple[int, ...]) -> np.ndarray:
    counts = (count,) if isinstance(count, int) else count
    try:
        values = np.asarray([float(v) for v in (text or "").split()], dtype=np.float64)
    except ValueError:
        raise IngestError(path, field, f"{' or '.join(map(str, counts))} numbers, got {text!r}") from None
    if len(values) not in counts or not np.all(np.isfinite(values)):
        raise IngestError(path, field, f"{' or '.join(map(str, counts))} finite numbers, got {text!r}")
    return values


def _attributes(path: Path, element: ElementTree.Element, field: str, names: tuple[str, ...]) -> np.ndarray:
    return np.array([_numbers(path, f"{field}.{name}", element.get(name), 1)[0] for name in names])


QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])  # Qualisys camera: looks along −z, y up; OpenCV: +z, y down


def read_qualisys_calibration(path: str | Path, unit: str | None = None) -> Calibration:
    """Qualisys QTM ``.qca.txt``; positions are mm unless ``unit`` says otherwise."""
    path = Path(path)
    root, file = _read_xml(path, "Qualisys QTM calibration")
    unit = unit or "mm"
    factor = _check_unit(path, unit)
    cameras, fields = [], []
    for index, element in enumerate(root.iter("camera")):
        name = element.get("serial") or f"camera{index}"
        field = f"camera[serial={name}]"
        if element.get("viewrotation", "0") not in ("0", "0.0"):
            raise IngestError(path, f"{field}.viewrotation", f"0 (rotated views are not supported), got "
                                                             f"{element.get('viewrotation')!r}")
        transform, intrinsic, fov = element.find("transform"), element.find("intrinsic"), element.find("fov_video")
        for tag, child in (("transform", transform), ("intrinsic", intrinsic), ("fov_video", fov)):
            if child is None:
                raise IngestError(path, f"{field}.{tag}", "present")
        r = _attributes(path, transform, f"{field}.transform", tuple(f"r{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)))
        camera_to_world = r.reshape(3, 3).T  # written column by column
        check_rotation_matrix(path, f"{field}.transform", camera_to_world)
        position = _attributes(path, transform, f"{field}.transform", ("x", "y", "z")) * factor
        left, top, right, bottom = _attributes(path, fov, f"{field}.fov_video", ("left", "top", "right", "bottom"))
        size = check_image_size(path, f"{field}.fov_video", (right - left + 1, bottom - top + 1))
        fu, fv, cu, cv, k1, k2, k3, p1, p2 = _attributes(
            path, intrinsic, f"{field}.intrinsic",
            ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV", "radialDistortion1",
             "radialDistortion2", "radialDistortion3", "tangentalDistortion1", "tangentalDistortion2"))
        K = np.array([[fu / 64, 0.0, cu / 64 - left], [0.0, fv / 64, cv / 64 - top], [0.0, 0.0, 1.0]])
        R = QUALISYS_TO_OPENCV @ camera_to_world.T
        cameras.append(CameraCalibration(name, size, K, np.array([k1, k2, p1, p2, k3]),
                                         Rotation.from_matrix(R).as_rotvec(), -R @ position))
        fields.append(field)
    return _finish(path, "qualisys", unit, False, cameras, fields, file)


def read_vicon_calibration(path: str | Path, unit: str | None = None) -> Calibration:
    """Vicon ``.xcp``; positions are mm unless ``unit`` says otherwise."""
    path = Path(path)
    root, file = _read_xml(path, "Vicon XCP calibration")
    unit = unit or "mm"
    factor = _check_unit(path, unit)
    cameras, fields = [], []
    for index, element in enumerate(root.iter("Camera")):
        name = element.get("DEVICEID") or element.get("USERID") or f"camera{index}"
        field = f"Camera[DEVICEID={name}]"
        keyframe = element.find("KeyFrames/KeyFrame")
        if keyframe is None:
            raise IngestError(path, f"{field}.KeyFrames.KeyFrame", "present")
        size = check_image_size(path, f"{field}.SENSOR_SIZE", _numbers(path, f"{field}.SENSOR_SIZE",
                                                                        element.get("SENSOR_SIZE"), 2))
        aspect = _numbers(path, f"{field}.PIXEL_ASPECT_RATIO", element.get("PIXEL_ASPECT_RATIO", "1"), 1)[0]
        if aspect <= 0:
            raise IngestError(path, f"{field}.PIXEL_ASPECT_RATIO", f"a positive number, got {aspect}")
        quaternion = _numbers(path, f"{field}.ORIENTATION", keyframe.get("ORIENTATION"), 4)
        if abs(np.linalg.norm(quaternion) - 1) > 1e-3:
            raise IngestError(path, f"{field}.ORIENTATION", f"a unit quaternion x y z w, got norm "
                                                            f"{np.linalg.norm(quaternion):.6g}")
        position = _numbers(path, f"{field}.POSITION", keyframe.get("POSITION"), 3) * factor
        focal = _numbers(path, f"{field}.FOCAL_LENGTH", keyframe.get("FOCAL_LENGTH"), 1)[0]
        cu, cv = _numbers(path, f"{field}.PRINCIPAL_POINT", keyframe.get("PRINCIPAL_POINT"), 2)
        if keyframe.get("VICON_RADIAL2") is not None:
            tokens = keyframe.get("VICON_RADIAL2").split()
            radial = _numbers(path, f"{field}.VICON_RADIAL2", " ".join(tokens[3:]), (2, 3))
        else:
            radial = _numbers(path, f"{field}.VICON_RADIAL", keyframe.get("VICON_RADIAL", "0 0"), (2, 3))
        k1, k2, k3 = np.pad(radial, (0, 3 - len(radial)))
        R = Rotation.from_quat(quaternion).as_matrix().T  # quaternion: camera -> world
        K = np.array([[focal, 0.0, cu], [0.0, focal / aspect, cv], [0.0, 0.0, 1.0]])
        cameras.append(CameraCalibration(name, size, K, np.array([k1, k2, 0.0, 0.0, k3]),
                                         Rotation.from_matrix(R).as_rotvec(), -R @ position))
        fields.append(field)
    return _finish(path, "vicon", unit, False, cameras, fields, file)


def read_calibration(path: str | Path, calibration_format: str, unit: str | None = None) -> Calibration:
    readers = {"anipose": read_anipose_calibration, "caliscope": read_caliscope_calibration,
               "qualisys": read_qualisys_calibration, "vicon": read_vicon_calibration}
    if calibration_format not in readers:
        raise IngestError(path, "calibration_format", f"one of {', '.join(CALIBRATION_FORMATS)}, got "
                                                      f"{calibration_format!r}")
    return readers[calibration_format](path, unit)
