"""Compiled programs a fresh process loads instead of tracing: ``jax.export`` files beside JAX's persistent cache.

JAX's persistent compilation cache saves compiling, but its key is the lowered program, so every fresh process
still traces and lowers the function first.  For the bilevel step that is most of a fresh process's start-up
cost (measured on the 2-core machine, one 100-frame 4-camera trial: tracing 8.3 s + lowering 1.1 s, against
2.2 s to load the compiled step from the cache; the kinematics of the initialisation another 2.8 + 0.3 s).

:class:`CachedProgram` is ``eqx.filter_jit`` (arrays dynamic, every other leaf static) that also serialises the
traced program with ``jax.export`` into ``<jax_compilation_cache_dir>/exported/`` and, in a later process,
deserialises it instead of tracing.  The file's key is a SHA-256 over everything that decides the traced program:

* the source of every module of the ``compute`` package (and of the function's own file when it lies outside),
  the versions of Python, jax, jaxlib, mujoco,
  mujoco-mjx, equinox, optax and numpy (the traced code);
* the JAX settings that change tracing (64-bit mode, matmul precision, PRNG implementation, dtype and rank
  promotion) and the backend;
* the program's name, the tree structure of the arguments with all their static data (eqx/mjx static fields,
  configs, numbers, strings, the content of static numpy arrays), and each array's shape and dtype.

A static value whose content cannot be written down exactly (a function, a closure, an object of an unknown
type) makes the call not cacheable: it runs through plain ``eqx.filter_jit``, which is always correct, only
traced again in each process.  Without a compilation-cache directory nothing is written.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib
import inspect
import io
import os
import pickle
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

import equinox as eqx
import jax
import numpy as np

__all__ = ["NotFingerprintable", "CachedProgram", "SplitCall", "split_call", "static_fingerprint", "code_fingerprint",
           "function_fingerprint", "exported_directory", "exported_max_bytes", "evict_least_recently_used"]

FORMAT_VERSION = 1
"""Bumped when the file layout below changes (files of another version are never read)."""

_VERSIONED_DISTRIBUTIONS = ("jax", "jaxlib", "mujoco", "mujoco-mjx", "equinox", "optax", "numpy")
_TRACING_SETTINGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_default_prng_impl",
                     "jax_numpy_dtype_promotion", "jax_numpy_rank_promotion", "jax_threefry_partitionable")


class NotFingerprintable(TypeError):
    """A static argument whose content cannot be written down exactly (the call is then not cached on disk)."""


# ------------------------------------------------------------------------------------------------ fingerprints
def _sized(data: bytes) -> bytes:
    """``data`` preceded by its length: concatenated pieces then decode one way only (no two different sequences
    of values give the same bytes)."""
    return len(data).to_bytes(8, "little") + data


def _is_stateless_instance(value: Any) -> bool:
    """True for a non-callable object with no instance state (an empty ``__dict__``, no slots): all it means is
    its type, as with sentinels such as equinox's ``MISSING``.  Functions are excluded: their ``__dict__`` is
    empty too, but their meaning is their code and closure."""
    return (not callable(value) and not getattr(type(value), "__slots__", ())
            and getattr(value, "__dict__", None) == {})


def _encode(value: Any, out: list[bytes]) -> None:
    """Append an exact, type-tagged encoding of the static ``value`` to ``out``; raise NotFingerprintable for
    anything whose content is not plain data (functions, closures, unknown objects)."""
    kind = type(value)
    tag = _sized(f"{kind.__module__}.{kind.__qualname__}".encode())
    if value is None or isinstance(value, (bool, int, str, bytes, np.bool_, np.integer, np.floating)):
        out += [b"s", tag, _sized(repr(value).encode())]      # numpy scalars' repr round-trips exactly
    elif isinstance(value, float):
        out += [b"f", tag, _sized(value.hex().encode())]
    elif isinstance(value, enum.Enum):
        out += [b"e", tag, _sized(repr(value.value).encode())]
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            raise NotFingerprintable("numpy array of Python objects")
        array = np.ascontiguousarray(value)
        out += [b"a", _sized(array.dtype.str.encode()), _sized(repr(array.shape).encode()),
                hashlib.sha256(array.data).digest()]
    elif isinstance(value, (tuple, list)):
        out += [b"(", tag, _sized(str(len(value)).encode())]
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        out += [b"{", tag, _sized(str(len(value)).encode())]
        for name in sorted(value, key=repr):
            _encode(name, out)
            _encode(value[name], out)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        out += [b"d", tag, _sized(str(len(fields)).encode())]
        for field in fields:
            out.append(_sized(field.name.encode()))
            _encode(getattr(value, field.name), out)
    elif kind.__qualname__ == "_NumPyArrayHashWrapper" and isinstance(getattr(value, "array", None), np.ndarray):
        _encode(value.array, out)        # mujoco-mjx's hashable wrapper of a static numpy array of the Model
    elif _is_stateless_instance(value):
        out += [b"o", tag]               # a stateless sentinel (e.g. equinox's ``Missing``): its type says all
    else:
        raise NotFingerprintable(f"static value of type {kind.__module__}.{kind.__qualname__}")


def _encode_treedef(treedef: Any, out: list[bytes]) -> None:
    """Append the node types and static (auxiliary) data of every node of ``treedef``."""
    node = treedef.node_data()
    if node is None:
        out.append(b"*")
    else:
        node_type, aux = node
        children = treedef.children()
        out += [b"<", _sized(f"{node_type.__module__}.{node_type.__qualname__}".encode()),
                _sized(str(len(children)).encode())]
        _encode(aux, out)
        for child in children:
            _encode_treedef(child, out)


def _merge_leaves(treedef: Any, dynamic_mask: Sequence[bool], static_leaves: Sequence, dynamic_leaves: Sequence) -> Any:
    """The tree ``treedef`` with ``dynamic_leaves`` in order where ``dynamic_mask`` is True, else the static leaf."""
    dynamic = iter(dynamic_leaves)
    return treedef.unflatten([next(dynamic) if is_dynamic else static
                              for is_dynamic, static in zip(dynamic_mask, static_leaves)])


@dataclasses.dataclass(frozen=True)
class SplitCall:
    """The arguments of one call, flattened once: tree structure, which leaves are arrays (dynamic), the other
    leaves (static; None where dynamic) and each array's (shape, dtype) as ``jax.jit`` sees it."""
    treedef: Any
    dynamic_mask: tuple[bool, ...]
    static_leaves: tuple
    avals: tuple

    @property
    def memory_key(self) -> tuple:
        """Hashable key of the program within a process (raises TypeError for an unhashable static leaf)."""
        key = (self.treedef, self.dynamic_mask, self.static_leaves, self.avals)
        hash(key)
        return key

    def arguments(self, dynamic_leaves: Sequence) -> Any:
        """The argument tree with ``dynamic_leaves`` (arrays or tracers) in the array positions."""
        return _merge_leaves(self.treedef, self.dynamic_mask, self.static_leaves, dynamic_leaves)


def split_call(args: Any) -> tuple[SplitCall, list]:
    """(:class:`SplitCall`, the array leaves) of ``args``; arrays are what ``eqx.is_array`` accepts, as in
    ``eqx.filter_jit``.  Raises NotFingerprintable for arrays of JAX's extended dtypes (typed PRNG keys)."""
    leaves, treedef = jax.tree.flatten(args)
    mask = tuple(eqx.is_array(leaf) for leaf in leaves)
    dynamic = [leaf for leaf, is_dynamic in zip(leaves, mask) if is_dynamic]
    static = tuple(None if is_dynamic else leaf for leaf, is_dynamic in zip(leaves, mask))
    return SplitCall(treedef, mask, static, tuple(_aval(leaf) for leaf in dynamic)), dynamic


def static_fingerprint(call: SplitCall) -> str:
    """SHA-256 (hex) of a call's tree structure with its static data, its static leaves and its arrays'
    (shape, dtype).  Raises NotFingerprintable when a static value cannot be encoded exactly."""
    parts: list[bytes] = []
    _encode_treedef(call.treedef, parts)
    _encode(list(call.dynamic_mask), parts)
    _encode([leaf for leaf, is_dynamic in zip(call.static_leaves, call.dynamic_mask) if not is_dynamic], parts)
    _encode([(tuple(shape), str(dtype)) for shape, dtype in call.avals], parts)
    return hashlib.sha256(b"".join(parts)).hexdigest()


def code_fingerprint() -> str:
    """SHA-256 (hex) of the traced code: every ``*.py`` of the ``compute`` package and Python's and the JAX
    stack's versions (read once per process), with the JAX settings that change tracing and the backend."""
    digest = hashlib.sha256(_source_and_versions_fingerprint().encode())
    for setting in _TRACING_SETTINGS:
        digest.update(f"{setting}={getattr(jax.config, setting, None)!r};".encode())
    digest.update(f"backend={jax.default_backend()}".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _source_and_versions_fingerprint() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _VERSIONED_DISTRIBUTIONS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name}={version};".encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def function_fingerprint(fn: Callable) -> str:
    """``module.qualname`` of ``fn`` (unwrapped), plus the SHA-256 of its source file when that lies outside the
    ``compute`` package (whose files :func:`code_fingerprint` already covers).  Raises NotFingerprintable when
    the source cannot be found (a built-in or generated function)."""
    function = inspect.unwrap(fn)
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        source = None
    if source is None or not Path(source).is_file():
        raise NotFingerprintable(f"no source file for {fn!r}")
    name = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
    path = Path(source).resolve()
    if Path(__file__).resolve().parent in path.parents:
        return name
    return f"{name}:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def exported_directory() -> Path | None:
    """``<jax_compilation_cache_dir>/exported`` when JAX's persistent cache is configured, else None."""
    cache_dir = jax.config.jax_compilation_cache_dir
    return Path(cache_dir) / "exported" if cache_dir else None


def exported_max_bytes() -> int | None:
    """The size cap of the exported programs' folder, bytes: JAX's own cap of its persistent cache
    (``jax_compilation_cache_max_size``), which the exported folder keeps separately; None when unlimited (-1)."""
    cap = int(jax.config.jax_compilation_cache_max_size)
    return None if cap < 0 else cap


def evict_least_recently_used(directory: Path, max_bytes: int | None, keep: Path | None = None) -> list[Path]:
    """Delete ``*.jaxexport`` files of ``directory``, least recently used first (modification time: a load
    touches its file), until their total size is at most ``max_bytes``; never ``keep`` (the file just written).
    Returns the deleted paths.  Without a cap nothing is deleted.

    Every change of the traced code or of a JAX-stack version gives every program a new key, so without this
    the files of earlier versions would stay forever.  A file deleted while another process reads it is traced
    again there (a load that fails is not an error)."""
    if max_bytes is None:
        return []
    entries = []
    for path in directory.glob("*.jaxexport"):
        try:
            stat = path.stat()
        except FileNotFoundError:              # deleted meanwhile by another process
            continue
        entries.append((stat.st_mtime, path, stat.st_size))
    total = sum(size for _, _, size in entries)
    deleted = []
    for _, path, size in sorted(entries, key=lambda entry: entry[0]):
        if total <= max_bytes:
            break
        if keep is not None and path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        deleted.append(path)
    return deleted


# ------------------------------------------------------------------------------------------------- programs
@dataclasses.dataclass(frozen=True)
class _LoadedProgram:
    """A program ready to run: the compiled exported call (array leaves in, array leaves out) and the output's
    tree structure with its static leaves."""
    call: Callable
    out_treedef: Any
    out_dynamic_mask: tuple[bool, ...]
    out_static_leaves: tuple

    def outputs(self, dynamic_leaves: Sequence) -> Any:
        """The output tree with ``dynamic_leaves`` in its array positions."""
        return _merge_leaves(self.out_treedef, self.out_dynamic_mask, self.out_static_leaves, dynamic_leaves)


def _aval(leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, canonical dtype) of an array leaf, as ``jax.jit`` would see it (float64 -> float32 without x64).
    Raises NotFingerprintable for JAX's extended dtypes (typed PRNG keys), which a plain dtype cannot name."""
    return tuple(leaf.shape), _canonical_dtype(leaf.dtype, jax.config.jax_enable_x64)


@functools.lru_cache(maxsize=64)
def _canonical_dtype(dtype: np.dtype, enable_x64: bool) -> np.dtype:
    """Cached per (dtype, 64-bit mode): looked up for every array leaf of every call (~100 per call of the fit
    step; uncached this doubled the wrapper's cost per call)."""
    if jax.dtypes.issubdtype(dtype, jax.dtypes.extended):
        raise NotFingerprintable(f"array of extended dtype {dtype}")
    return jax.dtypes.canonicalize_dtype(dtype)


def _sentinel_location(value: Any) -> tuple[str, str] | None:
    """(module, attribute) naming ``value`` when it is a stateless singleton of its defining module (such as
    equinox's ``MISSING``, compared by identity), else None."""
    if not _is_stateless_instance(value):
        return None
    kind = type(value)
    module = sys.modules.get(kind.__module__)
    for attribute, candidate in vars(module).items() if module is not None else ():
        if candidate is value:
            return kind.__module__, attribute
    return None


class _SentinelPickler(pickle.Pickler):
    """Pickles module-level stateless singletons by name, so that unpickling gives the live object back (a
    copy would fail the library's identity checks: equinox's ``MISSING`` in the output's tree structure)."""

    def persistent_id(self, obj: Any) -> tuple[str, str] | None:
        return _sentinel_location(obj)


class _SentinelUnpickler(pickle.Unpickler):
    def persistent_load(self, pid: tuple[str, str]) -> Any:
        module, attribute = pid
        return getattr(importlib.import_module(module), attribute)


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _SentinelPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def _loads(payload: bytes) -> Any:
    return _SentinelUnpickler(io.BytesIO(payload)).load()


def _touch(path: Path) -> None:
    """Mark ``path`` as used now (its modification time orders :func:`evict_least_recently_used`)."""
    try:
        os.utime(path)
    except OSError:                              # read-only cache or evicted meanwhile: only the order suffers
        pass


def _write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file in the same folder (readers never see half a file,
    two processes writing the same key both leave a whole one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CachedProgram:
    """``eqx.filter_jit(fn)`` whose traced program is kept as a ``jax.export`` file keyed by a fingerprint (see
    the module docstring), so that a fresh process deserialises it instead of tracing ``fn``.

    Calls whose static data cannot be fingerprinted, and all calls when JAX's persistent compilation cache is
    not configured, go through ``eqx.filter_jit(fn)`` unchanged.  Within a process, programs are kept in memory
    per (tree structure, static data, shapes), as ``jax.jit`` keeps its own.
    """

    def __init__(self, fn: Callable, name: str, directory: Path | None = None, max_programs: int | None = None):
        """fn: the function (arrays dynamic, every other leaf static); name: the file-name prefix, also part of
        the key; directory: where the files go (default: :func:`exported_directory` at each call);
        max_programs: raise RuntimeError when a call needs more distinct programs than this (traced or loaded:
        a recompile guard that still holds when the programs come from files)."""
        self.fn = fn
        self.name = name
        self.directory = directory
        self.max_programs = max_programs
        self._jitted = eqx.filter_jit(fn)
        self._programs: dict[Any, _LoadedProgram] = {}
        self._unstorable: set = set()        # memory keys whose static data cannot be fingerprinted

    @property
    def program_count(self) -> int:
        """Distinct programs (traced or loaded) this object has run through the stored path in this process."""
        return len(self._programs)

    def __call__(self, *args: Any) -> Any:
        directory = self.directory or exported_directory()
        if directory is None:
            return self._jitted(*args)
        try:
            call, dynamic = split_call(args)
            memory_key = call.memory_key
        except (NotFingerprintable, TypeError):   # TypeError: an unhashable static leaf
            return self._jitted(*args)
        program = self._programs.get(memory_key)
        if program is None:
            if memory_key in self._unstorable:
                return self._jitted(*args)
            if self.max_programs is not None and len(self._programs) >= self.max_programs:
                raise RuntimeError(f"{self.name}: a call needs program {len(self._programs) + 1}, more than "
                                   f"max_programs={self.max_programs} (new shapes or static values)")
            try:
                key = hashlib.sha256(f"{FORMAT_VERSION}:{self.name}:{code_fingerprint()}:"
                                     f"{function_fingerprint(self.fn)}:{static_fingerprint(call)}".encode())
            except NotFingerprintable:
                self._unstorable.add(memory_key)
                return self._jitted(*args)
            program = self._load_or_export(directory / f"{self.name}-{key.hexdigest()}.jaxexport", call)
            self._programs[memory_key] = program
        return program.outputs(program.call(*dynamic))

    def _load_or_export(self, path: Path, call: SplitCall) -> _LoadedProgram:
        """The program stored at ``path``; traced, exported and stored there when absent or unreadable."""
        if path.exists():
            try:
                stored = _loads(path.read_bytes())
                if stored["format"] == FORMAT_VERSION:
                    exported = jax.export.deserialize(bytearray(stored["exported"]))
                    _touch(path)
                    return _LoadedProgram(self._compiled_call(exported), stored["out_treedef"],
                                          stored["out_dynamic_mask"], stored["out_static_leaves"])
            except FileNotFoundError:           # evicted by another process between exists() and the read
                pass
            except Exception as error:          # a damaged or foreign file: trace again and replace it
                warnings.warn(f"{path}: unreadable exported program ({type(error).__name__}: {error}); tracing "
                              "it again", RuntimeWarning, stacklevel=3)
        outputs: dict[str, Any] = {}

        def flat_program(*dynamic_leaves):   # renamed below: JAX's logs and profiles then name the program
            out_call, out_dynamic = split_call(self.fn(*call.arguments(dynamic_leaves)))
            outputs.update(out_treedef=out_call.treedef, out_dynamic_mask=out_call.dynamic_mask,
                           out_static_leaves=out_call.static_leaves)
            return out_dynamic

        flat_program.__name__ = flat_program.__qualname__ = self.name
        exported = jax.export.export(jax.jit(flat_program))(*[jax.ShapeDtypeStruct(shape, dtype)
                                                              for shape, dtype in call.avals])
        try:
            _write_atomically(path, _dumps(dict(format=FORMAT_VERSION, exported=bytes(exported.serialize()),
                                                **outputs)))
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as error:
            warnings.warn(f"{path}: exported program not stored ({type(error).__name__}: {error})",
                          RuntimeWarning, stacklevel=3)
        try:
            evict_least_recently_used(path.parent, exported_max_bytes(), keep=path)
        except OSError as error:
            warnings.warn(f"{path.parent}: least recently used exported programs not removed ({error})",
                          RuntimeWarning, stacklevel=3)
        # run the exported program itself, so that a cold process compiles one program, not two
        return _LoadedProgram(self._compiled_call(exported), **outputs)

    def _compiled_call(self, exported: jax.export.Exported) -> Callable:
        """``jax.jit`` of the exported program's call, named like the program (``jit(<name>)`` in JAX's logs)."""
        def call(*flat_leaves):
            return exported.call(*flat_leaves)

        call.__name__ = call.__qualname__ = self.name
        return jax.jit(call)



# Read the sources now, at import (with the compute modules the traced functions come from), not at the first
# store: a source file edited while a process runs would otherwise key that process's old program as the new code.
_source_and_versions_fingerprint()
