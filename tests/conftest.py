"""Shared test set-up: JAX persistent compilation cache and numerics guards.

Database fixtures (a unique schema prefix per test session, dropped at teardown) live in
``tests/db_fixtures.py`` and are registered here as a plugin.
"""
from __future__ import annotations

import os
from pathlib import Path

# Compiled fit steps take 15-20 s each on a CPU; a persistent cache makes the second run cheap.
_CACHE_DIR = Path(os.environ.get("MMC_JAX_CACHE", Path.home() / ".cache" / "mmc" / "jax"))
_CACHE_DIR.mkdir(parents=True, exist_ok=True)

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", str(_CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

pytest_plugins = ["tests.db_fixtures"]
