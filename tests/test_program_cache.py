"""Traced programs stored with jax.export and loaded instead of tracing (compute.program_cache)."""
from __future__ import annotations

import dataclasses
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mujoco.mjx._src.dataclasses import _NumPyArrayHashWrapper

from compute.kinematics import load_body_model
from compute.program_cache import CachedProgram, NotFingerprintable, split_call, static_fingerprint


@dataclasses.dataclass(frozen=True)
class Settings:
    gain: float
    labels: tuple[str, ...] = ("a", "b")


class Layer(eqx.Module):
    """Arrays (dynamic) and a static field, as the fit's modules have."""
    weight: jax.Array
    activation: str = eqx.field(static=True)
    scale: float = eqx.field(static=True)


def fingerprint(*args) -> str:
    return static_fingerprint(split_call(args)[0])


def layer(scale: float = 2.0, activation: str = "tanh") -> Layer:
    return Layer(weight=jnp.arange(6.0).reshape(2, 3), activation=activation, scale=scale)


def test_the_fingerprint_changes_with_every_static_value_and_array_shape():
    base = fingerprint(layer(), Settings(0.5), np.ones(4, np.float32))
    assert fingerprint(layer(), Settings(0.5), np.zeros(4, np.float32)) == base     # array values are dynamic
    changed = [fingerprint(layer(scale=2.0 + 1e-15), Settings(0.5), np.ones(4, np.float32)),
               fingerprint(layer(activation="relu"), Settings(0.5), np.ones(4, np.float32)),
               fingerprint(layer(), Settings(0.5, ("a", "c")), np.ones(4, np.float32)),
               fingerprint(layer(), Settings(0.5), np.ones(5, np.float32)),
               fingerprint(layer(), Settings(0.5), np.ones(4, np.int32)),
               fingerprint(layer(), 0.5, np.ones(4, np.float32)),
               fingerprint(Settings(0.5), layer(), np.ones(4, np.float32))]
    assert len({base, *changed}) == 1 + len(changed)


def test_static_numpy_arrays_of_the_mjx_model_enter_by_content():
    wrapped = [_NumPyArrayHashWrapper(np.array(v)) for v in ([0, 1, 2], [0, 1, 2], [0, 1, 3], [0.0, 1.0, 2.0])]
    keys = [fingerprint(Settings(1.0, ()), (w,)) for w in wrapped]
    assert keys[0] == keys[1] and len(set(keys)) == 3
    # two loads of one body model are one program; another marker set is another
    assert fingerprint(load_body_model("HALPE26")) == fingerprint(load_body_model("HALPE26"))
    assert fingerprint(load_body_model("HALPE26")) != fingerprint(load_body_model("COCO17"))


def test_functions_and_unknown_objects_cannot_be_fingerprinted():
    for value in (lambda x: x, object(), Settings(1.0, (jnp.sin,)), {"nested": [print]}):
        with pytest.raises(NotFingerprintable):
            fingerprint(value)


def scaled_layer(module: Layer, x: jax.Array, settings: Settings, traces: list) -> tuple[Layer, jax.Array]:
    traces.append(1)                        # runs only while JAX traces the function
    y = jnp.tanh(module.weight @ x) * module.scale * settings.gain
    return eqx.tree_at(lambda m: m.weight, module, module.weight * settings.gain), y


def test_a_second_program_loads_the_stored_one_instead_of_tracing(tmp_path):
    traces: list = []
    x = np.linspace(0.0, 1.0, 3, dtype=np.float32)
    expected_module, expected = eqx.filter_jit(scaled_layer)(layer(), x, Settings(0.5), [])
    first = CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)
    module, y = first(layer(), x, Settings(0.5))
    first(layer(), x + 1, Settings(0.5))
    assert len(traces) == 1 and len(list(tmp_path.glob("layer-*.jaxexport"))) == 1
    # a new program object (as in a fresh process) reads the file: no trace, the same results and output tree
    second = CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)
    module2, y2 = second(layer(), x, Settings(0.5))
    assert len(traces) == 1
    for got_module, got in ((module, y), (module2, y2)):
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        np.testing.assert_allclose(got_module.weight, expected_module.weight, rtol=1e-6)
        assert (got_module.activation, got_module.scale) == ("tanh", 2.0)
        assert jax.tree.structure(got_module) == jax.tree.structure(expected_module)
    # another static value is another program: traced and stored apart
    _, y3 = second(layer(), x, Settings(0.25))
    assert len(traces) == 2 and len(list(tmp_path.glob("layer-*.jaxexport"))) == 2
    np.testing.assert_allclose(y3, expected / 2, rtol=1e-6)


def test_a_function_as_static_argument_runs_unstored(tmp_path):
    program = CachedProgram(lambda f, x: f(x), "apply", tmp_path)
    np.testing.assert_allclose(program(jnp.sin, np.float32(0.5)), np.sin(np.float32(0.5)), rtol=1e-6)
    assert not list(tmp_path.iterdir())


def test_a_damaged_file_is_traced_again_and_replaced(tmp_path):
    traces: list = []
    x = np.ones(3, np.float32)
    CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)(layer(), x, Settings(0.5))
    (path,) = tmp_path.glob("layer-*.jaxexport")
    path.write_bytes(b"not a program")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, y = CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)(layer(), x, Settings(0.5))
    assert len(traces) == 2 and any("unreadable exported program" in str(w.message) for w in caught)
    np.testing.assert_allclose(y, np.tanh(np.array([3.0, 12.0])) * 2.0 * 0.5, rtol=1e-6)
    _, y = CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)(layer(), x, Settings(0.5))
    assert len(traces) == 2                 # the replacement file is whole


def test_without_a_cache_directory_nothing_is_written(tmp_path, monkeypatch):
    import compute.program_cache as program_cache

    monkeypatch.setattr(program_cache, "exported_directory", lambda: None)
    traces: list = []
    program = CachedProgram(lambda *a: scaled_layer(*a, traces), "layer")
    _, y = program(layer(), np.ones(3, np.float32), Settings(0.5))
    np.testing.assert_allclose(y, np.tanh(np.array([3.0, 12.0])) * 2.0 * 0.5, rtol=1e-6)
    assert traces == [1] and not list(tmp_path.iterdir())


def test_the_least_recently_used_programs_go_first_once_the_folder_exceeds_its_cap(tmp_path, monkeypatch):
    import os

    import compute.program_cache as program_cache

    traces: list = []
    x = np.ones(3, np.float32)
    for age_s, gain in ((300, 0.5), (200, 0.25), (100, 0.125)):     # three programs, written 300/200/100 s ago
        CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)(layer(), x, Settings(gain))
        newest = max(tmp_path.glob("layer-*.jaxexport"), key=lambda p: p.stat().st_mtime_ns)
        os.utime(newest, (newest.stat().st_atime - age_s, newest.stat().st_mtime - age_s))
    files = {p.stat().st_mtime: p for p in tmp_path.glob("layer-*.jaxexport")}
    oldest, middle, newer = (files[t] for t in sorted(files))
    size = oldest.stat().st_size
    # loading the oldest program marks it used: it is now the most recent
    CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)(layer(), x, Settings(0.5))
    assert len(traces) == 3 and oldest.stat().st_mtime > newer.stat().st_mtime
    # a fourth program, with room for three: the least recently used one (middle) goes, the new one stays
    monkeypatch.setattr(program_cache, "exported_max_bytes", lambda: int(3.5 * size))
    CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)(layer(), x, Settings(2.0))
    remaining = set(tmp_path.glob("layer-*.jaxexport"))
    assert len(traces) == 4 and len(remaining) == 3 and middle not in remaining and {oldest, newer} <= remaining
    # no cap: nothing goes; a cap below one file keeps the file just written
    assert program_cache.evict_least_recently_used(tmp_path, None) == []
    monkeypatch.setattr(program_cache, "exported_max_bytes", lambda: 1)
    CachedProgram(lambda *a: scaled_layer(*a, traces), "layer", tmp_path)(layer(), x, Settings(4.0))
    (kept,) = tmp_path.glob("layer-*.jaxexport")
    assert kept not in remaining
