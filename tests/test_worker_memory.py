"""A worker keeps its compiled programs between rounds until its memory maps crowd the kernel's limit."""
from __future__ import annotations

import sys

import jax
import pytest

from pipeline.populate import memory_map_fraction, release_compiled_programs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory maps are read from /proc (Linux)")
def test_compiled_programs_stay_until_the_memory_maps_pass_the_threshold():
    double = jax.jit(lambda x: 2.0 * x)
    double(1.0)
    assert double._cache_size() == 1
    fraction = memory_map_fraction()
    assert fraction is not None and 0.0 < fraction < 1.0
    assert release_compiled_programs(threshold=1.0) is False  # below the threshold: kept for the next round
    assert double._cache_size() == 1
    assert release_compiled_programs(threshold=fraction / 2) is True  # past it: dropped
    assert double._cache_size() == 0
