"""Read and write FLAME-era pickles without chumpy, and without running foreign code.

FLAME's ``generic_model.pkl`` (and SMPL-family files of the same age) are Python-2 pickles
(read with ``encoding="latin1"``) that hold ``chumpy.ch.Ch`` arrays, a scipy sparse
``J_regressor`` pickled under the legacy module name ``scipy.sparse.csc``, and numpy
arrays reconstructed through ``numpy.core.multiarray._reconstruct``. chumpy does not import
on current Python / numpy, and unpickling arbitrary classes executes arbitrary code, so the
reader here resolves globals through an explicit allow-list (:data:`ALLOWED_GLOBALS`):

- ``chumpy.ch.Ch`` becomes a stand-in that only keeps its pickled state; chumpy pickles a
  ``Ch`` as ``NEWOBJ`` + ``BUILD`` with its ``__dict__`` (minus caches), whose ``"x"`` entry
  is the array. After loading, every stand-in is replaced by that plain ndarray.
- ``scipy.sparse.csc.csc_matrix`` / ``csr_matrix`` (legacy and ``_csc``/``_csr`` names)
  become stand-ins rebuilt as real scipy matrices from ``data``/``indices``/``indptr``.
- numpy's array, dtype and scalar reconstructors, ``copyreg._reconstructor``, ``object``,
  ``set``, ``frozenset``, ``bytes``, ``collections.OrderedDict`` and ``_codecs.encode``
  (latin-1 only) are allowed;
- ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` and
  ``torch.storage._load_from_bytes`` are replaced by decoders that return ndarrays (below).

Any other global raises :class:`talkhead.errors.ModelFileError` naming the file and the
refused ``module.name`` before it is imported or called.

torch tensors pickled inside such a file (DECA's ``landmark_embedding.npy`` holds its dynamic
contour entries as tensors) are decoded to plain ndarrays without torch, so torch's own
unpickling of storages never runs. A pickled tensor is ``torch._utils._rebuild_tensor_v2(
storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`` whose
storage is ``torch.storage._load_from_bytes(b)``: ``b`` is torch's legacy (non-zip)
``torch.save`` stream of that one storage, i.e. five consecutive pickles and the raw data:

1. the magic number ``0x1950a86a20f9469cfc6c``; 2. the protocol version ``1001``;
3. ``sys_info`` (``little_endian``, type sizes);
4. the storage as a persistent id ``('storage', torch.<Type>Storage, key, location, numel,
   None)``; 5. the list of storage keys;
6. per key: its element count as a little-endian int64, then ``numel`` elements.

Both levels are read with restricted unpicklers (the inner one resolves only
``torch.<Type>Storage`` names, as dtype markers); the tensor is rebuilt from size, stride
and offset after a bounds check and copied. Backward hooks are refused; ``requires_grad``,
the location (``cpu``/``cuda:0``) and the optional metadata dict are ignored.

The writer (:func:`save_legacy_pickle`) produces files in the same format (protocol 2,
``chumpy.ch.Ch``, ``scipy.sparse.csc.csc_matrix`` and ``numpy.core.multiarray`` names, array
data as Python-2 ``str``), so synthetic models and tests exercise exactly the path real
FLAME files take.
"""

from __future__ import annotations

import builtins
import collections
import copyreg
import functools
import io
import pickle
import struct
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ModelFileError
from ..io import PathLike, atomic_path

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray

__all__ = [
    "ALLOWED_GLOBALS",
    "RestrictedUnpickler",
    "TORCH_STORAGE_DTYPES",
    "dumps_legacy_pickle",
    "load_legacy_pickle",
    "loads_legacy_pickle",
    "read_pickled_npy",
    "save_legacy_pickle",
]


# --------------------------------------------------------------------------------------
# Stand-ins created while unpickling


class _ChStandIn:
    """Takes the place of ``chumpy.ch.Ch`` while unpickling; keeps only the pickled state."""

    __slots__ = ("state",)

    def __init__(self, *args: Any) -> None:
        self.state: Any = {"x": args[0]} if args else None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _SparseStandIn:
    """Takes the place of a scipy sparse matrix class while unpickling."""

    __slots__ = ("state",)
    fmt = "csc"

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _CscStandIn(_SparseStandIn):
    __slots__ = ()
    fmt = "csc"


class _CsrStandIn(_SparseStandIn):
    __slots__ = ()
    fmt = "csr"


def _codecs_encode_latin1(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to what pickle protocol 2 uses for bytes (latin-1)."""
    enc = encoding if isinstance(encoding, str) else ""
    normalized = enc.lower().replace("-", "").replace("_", "")
    if not isinstance(obj, str) or normalized not in ("latin1", "iso88591", "l1"):
        raise pickle.UnpicklingError(
            f"_codecs.encode is only allowed on str with latin1 encoding, got {encoding!r}"
        )
    return obj.encode("latin1", errors)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """Safe equivalent of ``numpy.core.numeric._frombuffer`` (pickle protocol 5 arrays)."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("_frombuffer needs a plain (non-object) numpy dtype")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()


# --------------------------------------------------------------------------------------
# torch tensors decoded without torch

#: ``torch.<name>`` storage classes -> numpy dtype of their elements.
TORCH_STORAGE_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in (
        ("DoubleStorage", "f8"),
        ("FloatStorage", "f4"),
        ("HalfStorage", "f2"),
        ("LongStorage", "i8"),
        ("IntStorage", "i4"),
        ("ShortStorage", "i2"),
        ("CharStorage", "i1"),
        ("ByteStorage", "u1"),
        ("BoolStorage", "?"),
        ("ComplexFloatStorage", "c8"),
        ("ComplexDoubleStorage", "c16"),
    )
}
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


class _TorchStorageType:
    """Marker for ``torch.<name>Storage`` in the inner stream (not callable)."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = TORCH_STORAGE_DTYPES[name]


class _TorchStorageRef:
    """Persistent-id placeholder of one storage, filled after the raw data is read."""

    __slots__ = ("dtype", "key", "numel")

    def __init__(self, key: str, dtype: np.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


class _TorchStorage:
    """A torch storage decoded to a flat ndarray (only :func:`_rebuild_tensor` takes it)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _plain_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise pickle.UnpicklingError(f"expected an int in a torch tensor, got {value!r}")
    return int(value)


class _TorchStorageUnpickler(pickle.Unpickler):
    """Reads one pickle of torch's legacy stream: storage names only, storages as refs."""

    def __init__(self, file: io.BytesIO, source: str) -> None:
        super().__init__(file, encoding="latin1", fix_imports=True)
        self.source = source
        self.refs: dict[str, _TorchStorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in TORCH_STORAGE_DTYPES:
            return _TorchStorageType(name)
        raise ModelFileError(
            f"{self.source}: refused to unpickle '{module}.{name}' inside a torch storage "
            "(only torch.<Type>Storage names are allowed there; the file may be corrupt or "
            "malicious)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and pid[0] == "storage"
            and isinstance(pid[1], _TorchStorageType)
            and isinstance(pid[2], str)
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id in a torch storage: {pid!r}")
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("torch storage views (pre-1.0 files) are not supported")
        key, numel = pid[2], _plain_int(pid[4])
        if numel < 0:
            raise pickle.UnpicklingError(f"torch storage with {numel} elements")
        ref = self.refs.setdefault(key, _TorchStorageRef(key, pid[1].dtype, numel))
        if (ref.dtype, ref.numel) != (pid[1].dtype, numel):
            raise pickle.UnpicklingError(f"torch storage {key!r} declared twice differently")
        return ref


def _load_torch_storage(data: Any, source: str = "<bytes>") -> _TorchStorage:
    """Stand-in for ``torch.storage._load_from_bytes``: decode a legacy ``torch.save`` stream
    of one storage (layout in the module docstring) into a flat ndarray, without torch."""
    if isinstance(data, str):  # a Python-2 str read with encoding="latin1"
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("torch storage payload is not bytes")
    if bytes(data[:4]) == b"PK\x03\x04":
        raise ModelFileError(
            f"{source}: torch storage in zip form inside a pickle is not supported (torch "
            "pickles storages in its legacy form; re-save the tensors as numpy arrays)"
        )
    f = io.BytesIO(bytes(data))

    def header() -> Any:
        return _TorchStorageUnpickler(f, source).load()

    if header() != _TORCH_LEGACY_MAGIC or header() != _TORCH_LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("torch storage without torch's legacy magic number")
    sys_info = header()
    if not isinstance(sys_info, Mapping):
        raise pickle.UnpicklingError("torch storage without its sys_info")
    order = "<" if sys_info.get("little_endian", True) else ">"
    inner = _TorchStorageUnpickler(f, source)
    result = inner.load()
    keys = header()
    if not isinstance(keys, list) or set(keys) != set(inner.refs) or len(set(keys)) != len(keys):
        raise pickle.UnpicklingError("torch storage keys do not match the storages pickled")
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        ref = inner.refs[key]
        count = f.read(8)
        if len(count) != 8 or struct.unpack("<q", count)[0] != ref.numel:
            raise pickle.UnpicklingError(f"torch storage {key!r}: element count mismatch")
        nbytes = ref.numel * ref.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise pickle.UnpicklingError(f"torch storage {key!r} is truncated")
        arrays[key] = np.frombuffer(raw, ref.dtype.newbyteorder(order)).astype(ref.dtype)
    if not isinstance(result, _TorchStorageRef):
        raise pickle.UnpicklingError("torch storage stream does not hold a storage")
    return _TorchStorage(arrays[result.key])


def _rebuild_tensor(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> np.ndarray:
    """Stand-in for ``torch._utils._rebuild_tensor_v2`` (and v1): the tensor as an ndarray.

    Returns:
        a C-contiguous copy of shape ``size`` with the storage's dtype.
    """
    if not isinstance(storage, _TorchStorage):
        raise pickle.UnpicklingError("torch tensor without a decodable storage")
    if backward_hooks:
        raise pickle.UnpicklingError("torch tensor with backward hooks")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)):
        raise pickle.UnpicklingError("torch tensor size/stride are not tuples")
    shape = tuple(_plain_int(s) for s in size)
    steps = tuple(_plain_int(s) for s in stride)
    offset = _plain_int(storage_offset)
    flat = storage.array
    if len(shape) != len(steps) or min((offset, *shape, *steps)) < 0:
        raise pickle.UnpicklingError(f"torch tensor with size {shape} and stride {steps}")
    if 0 in shape:
        return np.empty(shape, dtype=flat.dtype)
    last = offset + sum((n - 1) * st for n, st in zip(shape, steps, strict=True))
    if last >= flat.size:
        raise pickle.UnpicklingError(
            f"torch tensor of size {shape} reaches element {last} of a {flat.size}-element storage"
        )
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=shape, strides=tuple(st * flat.itemsize for st in steps)
    )
    return np.array(view, copy=True, order="C")


def _legacy_and_modern(names: Iterable[str], attr: str, obj: Any) -> dict[tuple[str, str], Any]:
    return {(module, attr): obj for module in names}


#: (module, name) -> object handed to the unpickler. Nothing else is ever resolved.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("chumpy.ch", "Ch"): _ChStandIn,
    ("chumpy", "Ch"): _ChStandIn,
    **_legacy_and_modern(("scipy.sparse.csc", "scipy.sparse._csc"), "csc_matrix", _CscStandIn),
    **_legacy_and_modern(("scipy.sparse.csr", "scipy.sparse._csr"), "csr_matrix", _CsrStandIn),
    ("scipy.sparse._csc", "csc_array"): _CscStandIn,
    ("scipy.sparse._csr", "csr_array"): _CsrStandIn,
    **_legacy_and_modern(
        ("numpy.core.multiarray", "numpy._core.multiarray"),
        "_reconstruct",
        _np_multiarray._reconstruct,
    ),
    **_legacy_and_modern(
        ("numpy.core.multiarray", "numpy._core.multiarray"), "scalar", _np_multiarray.scalar
    ),
    **_legacy_and_modern(("numpy.core.numeric", "numpy._core.numeric"), "_frombuffer", _frombuffer),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("_codecs", "encode"): _codecs_encode_latin1,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_torch_storage,
    **{
        (module, name): getattr(builtins, name)
        for module in ("__builtin__", "builtins")
        for name in ("object", "set", "frozenset", "bytes")
    },
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves globals only through :data:`ALLOWED_GLOBALS`.

    Args:
        file: binary file object.
        source: name of the file, used in error messages.
    """

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, source: str) -> None:
        super().__init__(file, encoding="latin1", fix_imports=True)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        obj = ALLOWED_GLOBALS.get((module, name))
        if obj is None:
            raise ModelFileError(
                f"{self.source}: refused to unpickle '{module}.{name}' (not an allowed FLAME "
                "model class; the file may be corrupt or malicious)"
            )
        if obj is _load_torch_storage:
            return functools.partial(_load_torch_storage, source=self.source)
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise ModelFileError(f"{self.source}: persistent ids are not allowed in model pickles")


# --------------------------------------------------------------------------------------
# Reading


def _sparse_from_state(stand_in: _SparseStandIn, source: str) -> sp.spmatrix:
    state = stand_in.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], Mapping):
        state = state[1]  # (dict, slots) form
    if not isinstance(state, Mapping):
        raise ModelFileError(f"{source}: sparse matrix has no readable state")
    try:
        shape = state.get("_shape", state.get("shape"))
        data = np.asarray(_convert(state["data"], source))
        indices = np.asarray(_convert(state["indices"], source))
        indptr = np.asarray(_convert(state["indptr"], source))
        cls = sp.csc_matrix if stand_in.fmt == "csc" else sp.csr_matrix
        return cls((data, indices, indptr), shape=tuple(int(s) for s in shape))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: malformed sparse {stand_in.fmt} matrix ({exc})") from None


def _ch_to_array(stand_in: _ChStandIn, source: str) -> np.ndarray:
    state = stand_in.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], Mapping):
        state = state[1]
    if not isinstance(state, Mapping) or "x" not in state:
        raise ModelFileError(f"{source}: chumpy array without its 'x' value")
    value = _convert(state["x"], source)
    if sp.issparse(value):
        value = value.toarray()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: chumpy array 'x' is not numeric ({exc})") from None


_PLAIN_TYPES = (str, bytes, int, float, bool, complex, type(None), set, frozenset)


def _convert(obj: Any, source: str) -> Any:
    """Recursively replace stand-ins by ndarrays / scipy matrices."""
    if isinstance(obj, _ChStandIn):
        return _ch_to_array(obj, source)
    if isinstance(obj, _SparseStandIn):
        return _sparse_from_state(obj, source)
    if isinstance(obj, dict):
        return {k: _convert(v, source) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_convert(v, source) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_convert(v, source) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        out = np.empty(obj.shape, dtype=object)
        for idx in np.ndindex(obj.shape):
            out[idx] = _convert(obj[idx], source)
        return out
    if type(obj) not in _PLAIN_TYPES and not isinstance(obj, (np.ndarray, np.generic, np.dtype)):
        raise ModelFileError(f"{source}: unexpected object of type {type(obj).__name__}")
    return obj


def loads_legacy_pickle(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with the restricted unpickler and convert stand-ins.

    Args:
        data: the pickle bytes.
        source: name used in error messages.

    Returns:
        The unpickled object: chumpy arrays become ndarrays, sparse matrices stay scipy
        sparse (csc or csr).

    Raises:
        ModelFileError: naming ``source`` for a refused global or an unreadable pickle.
    """
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), source).load()
    except ModelFileError:
        raise
    except Exception as exc:  # anything raised while decoding means a bad file
        raise ModelFileError(
            f"{source}: not a readable model pickle ({type(exc).__name__}: {exc})"
        ) from None
    return _convert(obj, source)


def load_legacy_pickle(path: PathLike) -> Any:
    """Read a FLAME-era pickle file (see :func:`loads_legacy_pickle`)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: file is missing")
    return loads_legacy_pickle(path.read_bytes(), str(path))


def read_pickled_npy(path: PathLike) -> Any:
    """Read an ``.npy`` file that may hold a pickled object (DECA's ``landmark_embedding.npy``).

    The header is parsed with :mod:`numpy.lib.format`; an object array's pickle is decoded
    by the restricted unpickler (``np.load(allow_pickle=True)`` is never used). A 0-d
    object array (e.g. a dict saved with ``np.save``) is returned as the object itself.
    torch tensors inside (DECA's ``dynamic_lmk_faces_idx`` / ``dynamic_lmk_bary_coords``)
    come back as ndarrays of the tensor's dtype and shape, decoded without torch.

    Raises:
        ModelFileError: naming the file when it is missing, not an .npy, or holds refused
            content.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: file is missing")
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                shape, _, dtype = fmt._read_array_header(f, version)
        except (ValueError, OSError) as exc:
            raise ModelFileError(f"{path}: not a valid .npy file ({exc})") from None
        if not dtype.hasobject:
            try:
                return np.load(path, allow_pickle=False)
            except ValueError as exc:
                raise ModelFileError(f"{path}: unreadable .npy ({exc})") from None
        payload = f.read()
    obj = loads_legacy_pickle(payload, str(path))
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == ():
        return obj.item()
    if isinstance(obj, np.ndarray) and obj.shape != tuple(shape):
        raise ModelFileError(f"{path}: pickled array has shape {obj.shape}, header says {shape}")
    return obj


# --------------------------------------------------------------------------------------
# Writing


class _ChWriter:
    """Pickles as a ``chumpy.ch.Ch`` holding ``x`` (the state chumpy's ``__setstate__`` needs)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float64)

    def __reduce_ex__(self, protocol: Any) -> tuple:
        state = {
            "x": self.x,
            "_dirty_vars": set(),
            "_itr": None,
            "_depends_on_deps": {},
            "_make_dense": False,
            "_make_sparse": False,
        }
        return copyreg.__newobj__, (type(self),), state


class _CscWriter:
    """Pickles as a legacy ``scipy.sparse.csc.csc_matrix`` (state: the matrix ``__dict__``)."""

    def __init__(self, matrix: sp.spmatrix) -> None:
        self.m = sp.csc_matrix(matrix)
        self.m.sort_indices()

    def __reduce_ex__(self, protocol: Any) -> tuple:
        state = {
            "_shape": tuple(int(s) for s in self.m.shape),
            "maxprint": 50,
            "indices": np.asarray(self.m.indices, dtype=np.int32),
            "indptr": np.asarray(self.m.indptr, dtype=np.int32),
            "data": np.asarray(self.m.data, dtype=np.float64),
        }
        return copyreg.__newobj__, (type(self),), state


class _CsrWriter(_CscWriter):
    def __init__(self, matrix: sp.spmatrix) -> None:
        self.m = sp.csr_matrix(matrix)
        self.m.sort_indices()


#: object -> (module, name) written into the file (Python-2 era names).
_LEGACY_NAMES: dict[Any, tuple[str, str]] = {
    _ChWriter: ("chumpy.ch", "Ch"),
    _CscWriter: ("scipy.sparse.csc", "csc_matrix"),
    _CsrWriter: ("scipy.sparse.csr", "csr_matrix"),
    _np_multiarray._reconstruct: ("numpy.core.multiarray", "_reconstruct"),
    _np_multiarray.scalar: ("numpy.core.multiarray", "scalar"),
    np.ndarray: ("numpy", "ndarray"),
    np.dtype: ("numpy", "dtype"),
}


class _LegacyPickler(pickle._Pickler):
    """Pure-Python pickler that writes the legacy global names of :data:`_LEGACY_NAMES`."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_global(self, obj: Any, name: str | None = None) -> None:
        try:
            legacy = _LEGACY_NAMES.get(obj)
        except TypeError:  # unhashable
            legacy = None
        if legacy is None:
            super().save_global(obj, name)
            return
        module, qualname = legacy
        self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[types.FunctionType] = save_global

    def save_bytes(self, obj: bytes) -> None:
        """Bytes as a Python-2 ``str`` (SHORT_BINSTRING / BINSTRING), as FLAME's files hold
        array data; read back with ``encoding="latin1"`` they become str, which numpy's
        array ``__setstate__`` accepts."""
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        elif n < 2**31:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        else:
            raise pickle.PicklingError("arrays of 2 GiB or more do not fit a protocol-2 pickle")
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _prepare(obj: Any, chumpy_keys: frozenset[str]) -> Any:
    """Wrap values for the legacy writer (arrays under ``chumpy_keys`` -> Ch, sparse -> csc)."""
    if sp.issparse(obj):
        return _CsrWriter(obj) if obj.format == "csr" else _CscWriter(obj)
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if key in chumpy_keys and not sp.issparse(value):
                out[key] = _ChWriter(np.asarray(value))
            else:
                out[key] = _prepare(value, chumpy_keys)
        return out
    if isinstance(obj, list):
        return [_prepare(v, chumpy_keys) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_prepare(v, chumpy_keys) for v in obj)
    if isinstance(obj, np.ndarray) and not obj.flags.c_contiguous and not obj.flags.f_contiguous:
        return np.ascontiguousarray(obj)
    return obj


def dumps_legacy_pickle(obj: Any, chumpy_keys: Iterable[str] = ()) -> bytes:
    """Serialise ``obj`` as a Python-2 style (protocol 2) FLAME pickle.

    Args:
        obj: usually a dict of arrays. Values of dict keys listed in ``chumpy_keys`` are
            written as ``chumpy.ch.Ch`` objects (float64); scipy sparse matrices as
            ``scipy.sparse.csc.csc_matrix`` (csr stays ``scipy.sparse.csr.csr_matrix``);
            numpy arrays through ``numpy.core.multiarray._reconstruct``.
        chumpy_keys: dict keys whose values become chumpy arrays.
    """
    buf = io.BytesIO()
    _LegacyPickler(buf, protocol=2, fix_imports=True).dump(_prepare(obj, frozenset(chumpy_keys)))
    return buf.getvalue()


def save_legacy_pickle(path: PathLike, obj: Any, chumpy_keys: Iterable[str] = ()) -> None:
    """Write :func:`dumps_legacy_pickle` output to ``path`` atomically."""
    data = dumps_legacy_pickle(obj, chumpy_keys)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
