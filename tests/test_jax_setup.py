"""The process-wide XLA:CPU options of the mmc commands (pipeline.jax_setup)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from pipeline.jax_setup import XLA_CPU_OPTIONS, xla_flags_with_options

# A reduction over a broadcast axis, as in the gradient of the projection into every camera of a rig: XLA:CPU
# hands it to YNNPACK unless the options are set.
_PROGRAM = textwrap.dedent("""
    import sys
    if sys.argv[1] == "configure":
        from pipeline.jax_setup import configure_xla_flags
        configure_xla_flags()
    import jax, jax.numpy as jnp
    def loss(points, weights):
        return jnp.sum(jnp.sin(weights[:, None, :] * points[None]) ** 2)
    text = jax.jit(jax.grad(loss)).lower(jnp.ones((640, 87)), jnp.ones((8, 87))).compile().as_text()
    print("library fusion" if "__ynn_fusion" in text else "no library fusion")
""")


def test_options_are_added_and_a_users_own_setting_is_kept():
    option = next(iter(XLA_CPU_OPTIONS))
    assert xla_flags_with_options("") == f"--{option}={XLA_CPU_OPTIONS[option]}"
    assert xla_flags_with_options("--xla_force_host_platform_device_count=2").split() == [
        "--xla_force_host_platform_device_count=2", f"--{option}={XLA_CPU_OPTIONS[option]}"]
    own = f"--{option}=dot --xla_force_host_platform_device_count=2"
    assert xla_flags_with_options(own) == own


def test_the_options_change_what_xla_compiles_in_a_fresh_process():
    """Without the options XLA:CPU compiles the camera-axis reduction as a YNNPACK fusion (the slow path the
    options exist to avoid); with them, as its own loop.  The test session itself runs with them set."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    results = {mode: subprocess.run([sys.executable, "-c", _PROGRAM, mode], env=env, capture_output=True,
                                    text=True, check=True).stdout.strip().splitlines()[-1]
               for mode in ("plain", "configure")}
    assert results == {"plain": "library fusion", "configure": "no library fusion"}
    assert all(f"--{name}=" in os.environ["XLA_FLAGS"] for name in XLA_CPU_OPTIONS)


def test_the_cache_cap_is_read_from_the_environment_and_a_bad_value_is_refused():
    import pytest

    from pipeline.importers.errors import IngestError
    from pipeline.jax_setup import DEFAULT_CACHE_MAX_MB, cache_max_bytes

    assert cache_max_bytes({}) == DEFAULT_CACHE_MAX_MB * 2**20
    assert cache_max_bytes({"MMC_JAX_CACHE_MAX_MB": "512"}) == 512 * 2**20
    assert cache_max_bytes({"MMC_JAX_CACHE_MAX_MB": "-1"}) == -1
    for bad in ("0", "-5", "lots", "inf", "nan"):
        with pytest.raises(IngestError, match=f"MMC_JAX_CACHE_MAX_MB: '{bad}': expected a positive number"):
            cache_max_bytes({"MMC_JAX_CACHE_MAX_MB": bad})
    # refused before the command starts: a database that does not exist is not created (nor a task added)
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "--prefix", "never_created_cache_cap",
                             "populate", "--restrict", "subject_id=none"],
                            env={**os.environ, "MMC_JAX_CACHE_MAX_MB": "lots"}, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: environment: MMC_JAX_CACHE_MAX_MB: 'lots': expected a positive number of MB, or -1 for no cap"]
    from pipeline.db import open_existing_database

    assert open_existing_database("never_created_cache_cap") is None


_CACHED_PROGRAM = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("error")            # a failed cache write warns: make it fail the process
    from pipeline.jax_setup import configure_jax
    configure_jax()
    import jax, jax.numpy as jnp
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    power = float(sys.argv[1])
    print(jax.jit(lambda x: jnp.sum(x ** power))(jnp.arange(4.0)))
""")


def test_programs_cached_without_a_cap_do_not_break_the_cache_once_capped(tmp_path):
    """A cache written with no cap (an installation before the cap) holds no access-time files; JAX's capped
    cache fails every later write without them.  configure_jax records them, so the capped process stores its
    programs."""
    env = {**os.environ, "MMC_JAX_CACHE": str(tmp_path)}
    subprocess.run([sys.executable, "-c", _CACHED_PROGRAM, "2"], env={**env, "MMC_JAX_CACHE_MAX_MB": "-1"},
                   check=True, capture_output=True, text=True)
    uncapped = sorted(tmp_path.glob("*-cache"))
    assert uncapped and not list(tmp_path.glob("*-atime"))
    result = subprocess.run([sys.executable, "-c", _CACHED_PROGRAM, "3"], env={**env, "MMC_JAX_CACHE_MAX_MB": "64"},
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "36.0", result.stderr[-2000:]
    capped = sorted(tmp_path.glob("*-cache"))
    assert len(capped) > len(uncapped)
    assert {p.name.removesuffix("-cache") for p in capped} == {p.name.removesuffix("-atime")
                                                                for p in tmp_path.glob("*-atime")}
