"""Process-wide JAX set-up of every computing command: XLA:CPU options and the persistent compilation cache.

Both must be in place before the first JAX computation of the process: XLA reads ``XLA_FLAGS`` once, when its
backend starts, and the compile-cache settings apply to what is compiled afterwards.
"""
from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from pipeline.importers.errors import IngestError

__all__ = ["XLA_CPU_OPTIONS", "DEFAULT_CACHE_MAX_MB", "xla_flags_with_options", "configure_xla_flags",
           "cache_max_bytes", "record_missing_access_times", "configure_jax"]

XLA_CPU_OPTIONS: dict[str, str] = {"xla_cpu_experimental_ynn_fusion_type": "individual_dot"}
"""XLA:CPU options set unless ``XLA_FLAGS`` already names them.

``xla_cpu_experimental_ynn_fusion_type=individual_dot``: hand XLA's YNNPACK library single matrix products only,
not its fused elementwise and reduction graphs.  Measured on the 2-core machine (ms per bilevel step, same
process, steps compiled once): 10 walks x 10 s with 8 cameras and 87 markers 73 -> 35; one 100-frame trial with
4 cameras and 26 keypoints 5.3 -> 4.3.  With YNNPACK off entirely: 37 and 6.3 (its matrix products are faster
than XLA's own for the trajectory networks).  The reductions over the camera axis in the gradient of the
projection took ~45 % of the larger step through YNNPACK.
"""

_OPTION_JAXLIB_VERSIONS = ((0, 10), (0, 11))
"""[first, last) jaxlib minor versions known to accept :data:`XLA_CPU_OPTIONS`.  XLA aborts the process on an
option it does not know, and these are experimental options that a later release may drop; outside this range
none is set (fits stay correct, only slower)."""


def _jaxlib_version() -> tuple[int, int] | None:
    try:
        major, minor = metadata.version("jaxlib").split(".")[:2]
        return int(major), int(minor)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def xla_flags_with_options(existing: str, options: dict[str, str] = XLA_CPU_OPTIONS) -> str:
    """``existing`` XLA_FLAGS text plus ``--name=value`` for each of ``options`` it does not already set."""
    present = {token.lstrip("-").split("=", 1)[0] for token in existing.split()}
    added = [f"--{name}={value}" for name, value in options.items() if name not in present]
    return " ".join([existing.strip(), *added]).strip()


def configure_xla_flags() -> str:
    """Set :data:`XLA_CPU_OPTIONS` in this process's ``XLA_FLAGS`` (when the installed jaxlib is one known to
    accept them; options the user already set are kept) and return the value.  Child processes inherit it."""
    version = _jaxlib_version()
    existing = os.environ.get("XLA_FLAGS", "")
    if version is None or not _OPTION_JAXLIB_VERSIONS[0] <= version < _OPTION_JAXLIB_VERSIONS[1]:
        return existing
    value = xla_flags_with_options(existing)
    os.environ["XLA_FLAGS"] = value
    return value


DEFAULT_CACHE_MAX_MB = 2048
"""Default cap, MB, of each of the two stores of the compile cache (JAX's compiled programs, and the exported
traced programs in ``exported/``).  Measured on the 2-core machine: after the whole test suite (dozens of shape
buckets) the cache held 38 MB of compiled and 7 MB of exported programs; one bilevel step is ~1.5 MB compiled and
~0.3 MB exported.  So the cap only removes what earlier code versions left (every change of the traced code
keys every program anew)."""


def cache_max_bytes(environ: dict[str, str] | None = None) -> int:
    """The cap of each compile-cache store in bytes from ``MMC_JAX_CACHE_MAX_MB`` (a positive number of MB, or
    -1 for no cap; default :data:`DEFAULT_CACHE_MAX_MB`).  Raises IngestError (one line, exit 2) otherwise."""
    text = (os.environ if environ is None else environ).get("MMC_JAX_CACHE_MAX_MB", str(DEFAULT_CACHE_MAX_MB))
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = float("nan")
    if megabytes == -1:
        return -1
    if not megabytes > 0 or megabytes == float("inf"):
        raise IngestError("environment", "MMC_JAX_CACHE_MAX_MB",
                          f"{text!r}: expected a positive number of MB, or -1 for no cap")
    return int(megabytes * 2**20)


def record_missing_access_times(cache_dir: Path, lock_timeout_s: float = 10.0) -> int:
    """Give every compiled program of JAX's cache in ``cache_dir`` the access-time file its size cap needs;
    returns how many were missing.

    With a cap JAX writes ``<key>-atime`` (the time of last use: 8 bytes, nanoseconds, little-endian) beside each
    ``<key>-cache`` file and orders eviction by it; a cache file without one makes every later write fail
    ("Error writing persistent compilation cache entry": the program is then compiled again in every process).
    Files written without a cap (by an installation before the cap, or a process with ``MMC_JAX_CACHE_MAX_MB=-1``)
    have none: they get their modification time, under the lock JAX itself takes (``.lockfile``)."""
    import filelock

    missing = 0
    try:
        with filelock.FileLock(str(cache_dir / ".lockfile"), timeout=lock_timeout_s):
            for cache_file in cache_dir.glob("*-cache"):
                access_file = cache_file.with_name(cache_file.name.removesuffix("-cache") + "-atime")
                if not access_file.exists():
                    access_file.write_bytes(cache_file.stat().st_mtime_ns.to_bytes(8, "little"))
                    missing += 1
    except (filelock.Timeout, OSError):   # a busy or read-only cache: JAX warns per failed write, fits run on
        pass
    return missing


def configure_jax() -> Path:
    """:func:`configure_xla_flags`, then JAX's persistent compilation cache in ``$MMC_JAX_CACHE`` (default
    ``~/.cache/mmc/jax``), each of its two stores kept under :func:`cache_max_bytes` by removing the least
    recently used programs first; returns the cache directory."""
    configure_xla_flags()
    max_bytes = cache_max_bytes()
    cache_dir = Path(os.environ.get("MMC_JAX_CACHE", Path.home() / ".cache" / "mmc" / "jax")).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    # JAX evicts its own files (least recently read first, under a file lock: the filelock package); the
    # exported programs read the same setting (compute.program_cache.exported_max_bytes)
    if max_bytes != -1:
        record_missing_access_times(cache_dir)
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    # 0.2 s, not JAX's 1 s: a fresh process otherwise recompiles the sub-second programs of every fit (network
    # initialisation 0.8 s, evaluation helpers), where loading one from the cache takes tens of milliseconds
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return cache_dir
