"""Shared test set-up: JAX persistent compilation cache and numerics guards.

Database fixtures (a unique schema prefix per test session, dropped at teardown) live in
``tests/db_fixtures.py`` and are registered here as a plugin.
"""
from __future__ import annotations

import gc
from pathlib import Path

import pytest

# Compiled fit steps take 15-20 s each on a CPU; a persistent cache makes the second run cheap.  The same XLA
# options and cache as the mmc commands, set before any test starts JAX's backend.
from pipeline.jax_setup import configure_jax  # noqa: E402

configure_jax()

import jax  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

pytest_plugins = ["tests.db_fixtures"]


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Free every compiled XLA program after each test module.

    XLA:CPU keeps each loaded executable memory-mapped (a fit step is ~3,000 mappings); the whole suite in one
    process would pass the kernel's vm.max_map_count (65,530) and die in LLVM with "Cannot allocate memory".
    Recompiling in the next module is cheap thanks to the persistent compilation cache.
    """
    yield
    jax.clear_caches()
    gc.collect()
