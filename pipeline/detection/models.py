"""The BlazePose model files: installed once from the MediaPipe wheel on PyPI, then read offline.

The default detector runs Google's BlazePose GHUM 3D models (Bazarevsky et al. 2020, "BlazePose: On-device
Real-time Body Pose tracking", arXiv:2006.10204): ``pose_detection.tflite`` (person detector, 224 × 224 input)
and ``pose_landmark_full.tflite`` (33 landmarks, 256 × 256 input), both Apache-2.0. They ship inside the
``mediapipe`` wheel on PyPI, but that package pins ``numpy<2`` and its own jax, which our stack cannot take. So
the wheel is only *downloaded* (``pip download --no-deps``, never installed), the two ``.tflite`` files are
extracted into a cache folder and checked against the SHA-256 recorded here, and ``ai-edge-litert`` runs them.

``install_blazepose_models()`` is idempotent (files already present with the right checksums are left alone)
and is the only function that touches the network; detection calls ``installed_blazepose_models()``, which
never downloads and fails with the install command when the files are missing.

    python -m pipeline.detection.models            # install (or verify) the model files
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MEDIAPIPE_VERSION = "0.10.21"
# The .tflite files are identical in every platform's wheel; one fixed platform makes the download independent
# of the machine that installs (the wheel is unpacked, never imported).
WHEEL_PLATFORM = "manylinux_2_28_x86_64"
WHEEL_PYTHON = "3.11"

# Path inside the wheel → SHA-256 of the file (measured on mediapipe 0.10.21).
MODEL_FILES = {
    "mediapipe/modules/pose_detection/pose_detection.tflite":
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "mediapipe/modules/pose_landmark/pose_landmark_full.tflite":
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
INSTALL_COMMAND = "python -m pipeline.detection.models"


class ModelFilesMissing(FileNotFoundError):
    """The model files are not installed (or do not match their recorded checksums)."""


@dataclass(frozen=True)
class BlazePoseModelFiles:
    """Paths of the two installed model files and their SHA-256 hex digests."""

    detector: Path
    landmarks: Path
    detector_sha256: str
    landmarks_sha256: str

    @property
    def checksum(self) -> str:
        """One SHA-256 over both files' digests: what a stored detection records as the model identity."""
        return hashlib.sha256(f"{self.detector_sha256}\n{self.landmarks_sha256}".encode()).hexdigest()


def default_model_dir() -> Path:
    """``$MMC_MODEL_DIR`` when set, else ``~/.cache/mmc/models``; BlazePose files go into ``blazepose-<version>``."""
    root = Path(os.environ["MMC_MODEL_DIR"]) if os.environ.get("MMC_MODEL_DIR") else Path.home() / ".cache/mmc/models"
    return root / f"blazepose-mediapipe-{MEDIAPIPE_VERSION}"


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _target(model_dir: Path, wheel_path: str) -> Path:
    return model_dir / Path(wheel_path).name


def _files(model_dir: Path) -> BlazePoseModelFiles:
    (det_path, det_sha), (lmk_path, lmk_sha) = MODEL_FILES.items()
    return BlazePoseModelFiles(_target(model_dir, det_path), _target(model_dir, lmk_path), det_sha, lmk_sha)


def _problems(model_dir: Path) -> list[str]:
    """What is wrong with the installed files (empty when both exist with the recorded checksums)."""
    problems = []
    for wheel_path, expected in MODEL_FILES.items():
        target = _target(model_dir, wheel_path)
        if not target.is_file():
            problems.append(f"{target} is missing")
        elif (actual := sha256_of(target)) != expected:
            problems.append(f"{target} has SHA-256 {actual}, expected {expected}")
    return problems


def installed_blazepose_models(model_dir: Path | None = None) -> BlazePoseModelFiles:
    """The installed model files, checked; never downloads.

    Raises:
        ModelFilesMissing: naming each missing or mismatching file and the command that installs them.
    """
    model_dir = default_model_dir() if model_dir is None else model_dir
    if problems := _problems(model_dir):
        raise ModelFilesMissing(f"BlazePose model files not installed: {'; '.join(problems)}. "
                                f"Install them once with `{INSTALL_COMMAND}`.")
    return _files(model_dir)


def _download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--only-binary=:all:", "--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON,
         "--dest", str(dest), f"mediapipe=={MEDIAPIPE_VERSION}"],
        check=True)
    wheels = sorted(dest.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"pip download of mediapipe=={MEDIAPIPE_VERSION} left {len(wheels)} wheels in {dest}")
    return wheels[0]


def extract_models(wheel: Path, model_dir: Path) -> BlazePoseModelFiles:
    """Copy the two ``.tflite`` files out of a MediaPipe wheel into ``model_dir`` and verify their SHA-256.

    A file is written under a temporary name and renamed only once its checksum matches, so an interrupted or
    wrong install never leaves a file that passes for a good one.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for wheel_path, expected in MODEL_FILES.items():
            target = _target(model_dir, wheel_path)
            partial = target.with_suffix(".partial")
            partial.write_bytes(archive.read(wheel_path))
            if (actual := sha256_of(partial)) != expected:
                partial.unlink()
                raise RuntimeError(f"{wheel.name}:{wheel_path} has SHA-256 {actual}, expected {expected}")
            partial.replace(target)
    return installed_blazepose_models(model_dir)


def install_blazepose_models(model_dir: Path | None = None, wheel: Path | None = None) -> BlazePoseModelFiles:
    """Install the BlazePose model files (idempotent; offline once installed).

    Args:
        model_dir: where to put them (default: ``default_model_dir()``).
        wheel: an already downloaded ``mediapipe-0.10.21-*.whl`` to extract from (no network then); default:
            download it from PyPI with ``pip download --no-deps`` into a temporary folder, deleted afterwards.
    """
    model_dir = default_model_dir() if model_dir is None else model_dir
    if not _problems(model_dir):
        return _files(model_dir)
    if wheel is not None:
        return extract_models(wheel, model_dir)
    with tempfile.TemporaryDirectory(prefix="mmc-mediapipe-wheel-") as tmp:
        return extract_models(_download_wheel(Path(tmp)), model_dir)


def main() -> int:
    files = install_blazepose_models()
    print(f"BlazePose model files installed and verified:\n  {files.detector}\n  {files.landmarks}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
