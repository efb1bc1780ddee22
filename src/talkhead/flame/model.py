"""FLAME model files: ``generic_model.pkl`` (2020/2023), landmark embeddings, region masks.

A FLAME file is a dict with the keys ``v_template`` (V, 3), ``f`` (F, 3), ``shapedirs``
(V, 3, S+E: shape columns, then expression columns), ``posedirs`` (V, 3, (J-1)*9),
``J_regressor`` (J, V; scipy sparse in FLAME's pickle), ``weights`` (V, J),
``kintree_table`` (2, J; first row the parents, ``4294967295`` for the root), ``J``,
``bs_style``, ``bs_type``. FLAME's ``shapedirs`` has 400 columns (300 shape + 100
expression); files with another split store an int ``num_shape``. The same keys in an
``.npz`` (dense ``J_regressor``) are read too. FLAME 2020 (``generic_model.pkl``) and 2023
(``flame2023.pkl``) share these keys and are read the same way. Landmark embeddings: see
:func:`load_landmark_embedding`.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ModelFileError
from ..io import PathLike, atomic_path, save_npz
from .pickle_io import load_legacy_pickle, read_pickled_npy, save_legacy_pickle

__all__ = [
    "FLAME_NUM_EXPRESSION",
    "FLAME_NUM_SHAPE",
    "LANDMARK_EMBEDDING_KEYS",
    "NUM_IBUG_LANDMARKS",
    "FlameModel",
    "describe_model",
    "format_description",
    "load_flame_model",
    "load_landmark_embedding",
    "load_region_masks",
    "model_from_arrays",
    "save_flame_model",
    "save_landmark_embedding",
    "save_region_masks",
]

log = logging.getLogger(__name__)

FLAME_NUM_SHAPE = 300
FLAME_NUM_EXPRESSION = 100
#: Keys every model file must hold.
REQUIRED_KEYS = (
    "v_template",
    "f",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
)
#: Keys written as chumpy arrays in legacy pickles (as in FLAME's own files).
DEFAULT_CHUMPY_KEYS = frozenset({"v_template", "shapedirs", "posedirs", "weights", "J"})
_ROOT_PARENT = 4294967295  # uint32(-1), what FLAME's kintree_table stores for the root


@dataclass
class FlameModel:
    """A FLAME-style head model as plain numpy arrays.

    Attributes:
        v_template: (V, 3) float64 template vertices (metres).
        faces: (F, 3) int64 triangle vertex indices.
        shapedirs: (V, 3, S) identity blendshapes.
        exprdirs: (V, 3, E) expression blendshapes.
        posedirs: (V, 3, (J-1)*9) pose correctives.
        J_regressor: (J, V) dense float64 joint regressor.
        parents: (J,) int64 parent of each joint, -1 for the root.
        lbs_weights: (V, J) skinning weights.
        lmk_faces_idx: (L,) int64 face of each landmark (68 for iBUG), or None.
        lmk_bary_coords: (L, 3) barycentric coordinates of each landmark, or None.
        masks: region name -> vertex indices (may be empty).
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    parents: np.ndarray
    lbs_weights: np.ndarray
    lmk_faces_idx: np.ndarray | None = None
    lmk_bary_coords: np.ndarray | None = None
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def num_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def num_expression(self) -> int:
        return int(self.exprdirs.shape[2])

    @property
    def num_joints(self) -> int:
        return int(self.J_regressor.shape[0])

    @property
    def num_landmarks(self) -> int:
        return 0 if self.lmk_faces_idx is None else int(self.lmk_faces_idx.shape[0])

    def rest_joints(self) -> np.ndarray:
        """(J, 3) joint locations of the template."""
        return self.J_regressor @ self.v_template

    def to_arrays(self, sparse_regressor: bool = True) -> dict[str, Any]:
        """The model under FLAME's file keys (``num_shape`` added unless the split is 300/100).

        Args:
            sparse_regressor: store ``J_regressor`` as a scipy csc matrix (as FLAME does);
                dense otherwise (for ``.npz``).
        """
        kintree = np.stack([self.parents, np.arange(self.num_joints)]).astype(np.int64)
        kintree[0, self.parents < 0] = _ROOT_PARENT
        out: dict[str, Any] = {
            "f": self.faces.astype(np.uint32),
            "v_template": self.v_template.astype(np.float64),
            "shapedirs": np.concatenate([self.shapedirs, self.exprdirs], axis=2),
            "posedirs": self.posedirs.astype(np.float64),
            "J_regressor": sp.csc_matrix(self.J_regressor)
            if sparse_regressor
            else self.J_regressor.astype(np.float64),
            "weights": self.lbs_weights.astype(np.float64),
            "kintree_table": kintree,
            "J": self.rest_joints(),
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
        if (self.num_shape, self.num_expression) != (FLAME_NUM_SHAPE, FLAME_NUM_EXPRESSION):
            out["num_shape"] = self.num_shape
        return out


# --------------------------------------------------------------------------------------
# Validation helpers


def _get(arrays: Mapping[str, Any], key: str, source: str) -> Any:
    if key not in arrays:
        raise ModelFileError(f"{source}: missing key '{key}'")
    return arrays[key]


def _float_array(value: Any, key: str, source: str, ndim: int) -> np.ndarray:
    if sp.issparse(value):
        value = value.toarray()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelFileError(f"{source}: '{key}' is not a numeric array") from None
    if arr.ndim != ndim:
        raise ModelFileError(f"{source}: '{key}' has shape {arr.shape}, expected {ndim} dims")
    if not np.all(np.isfinite(arr)):
        raise ModelFileError(f"{source}: '{key}' contains NaN or infinite values")
    return arr


def _int_array(value: Any, key: str, source: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ModelFileError(f"{source}: '{key}' must hold integers, got {arr.dtype}")
    if arr.ndim != ndim:
        raise ModelFileError(f"{source}: '{key}' has shape {arr.shape}, expected {ndim} dims")
    return arr.astype(np.int64)


def _parents_from_kintree(table: Any, num_joints: int, source: str) -> np.ndarray:
    table = np.asarray(table)
    if table.ndim != 2 or table.shape != (2, num_joints) or table.dtype.kind not in "iuf":
        raise ModelFileError(
            f"{source}: 'kintree_table' has shape {table.shape}, expected (2, {num_joints})"
        )
    raw = table.astype(np.float64)
    if not np.array_equal(raw[1], np.arange(num_joints)):
        raise ModelFileError(f"{source}: 'kintree_table' second row must be 0..{num_joints - 1}")
    parents = np.empty(num_joints, dtype=np.int64)
    if 0 <= raw[0, 0] < num_joints:
        raise ModelFileError(f"{source}: 'kintree_table' joint 0 must be the root (no parent)")
    parents[0] = -1
    for j in range(1, num_joints):
        p = raw[0, j]
        if not (0 <= p < j) or p != int(p):
            raise ModelFileError(
                f"{source}: 'kintree_table' parent of joint {j} is {p:g}; parents must precede "
                "their children"
            )
        parents[j] = int(p)
    return parents


def _split_shapedirs(
    dirs: np.ndarray, arrays: Mapping[str, Any], num_shape: int | None, source: str
) -> int:
    total = dirs.shape[2]
    stored = arrays.get("num_shape")
    if stored is not None:
        try:
            stored_arr = np.asarray(stored)
            if stored_arr.size != 1 or stored_arr.dtype.kind not in "iu":
                raise ValueError
            stored = int(stored_arr.reshape(()))
        except (TypeError, ValueError):
            raise ModelFileError(f"{source}: 'num_shape' must be a single integer") from None
        if num_shape is not None and int(num_shape) != stored:
            raise ModelFileError(
                f"{source}: file says num_shape={stored} but num_shape={num_shape} was requested"
            )
        split = stored
    elif num_shape is not None:
        split = int(num_shape)
    elif total == FLAME_NUM_SHAPE + FLAME_NUM_EXPRESSION:
        split = FLAME_NUM_SHAPE
    else:
        raise ModelFileError(
            f"{source}: 'shapedirs' has {total} columns and the file has no 'num_shape'; only "
            f"FLAME's {FLAME_NUM_SHAPE + FLAME_NUM_EXPRESSION} (= {FLAME_NUM_SHAPE} shape + "
            f"{FLAME_NUM_EXPRESSION} expression) is known, so pass num_shape"
        )
    if not 0 <= split <= total:
        raise ModelFileError(f"{source}: num_shape={split} outside [0, {total}] columns")
    return split


def check_landmarks(
    face_idx: np.ndarray, bary: np.ndarray, num_faces: int | None, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a landmark embedding: (L,) face indices, (L, 3) barycentric coordinates."""
    face_idx = _int_array(face_idx, "lmk_face_idx", source, 1)
    bary = _float_array(bary, "lmk_b_coords", source, 2)
    if bary.shape != (face_idx.shape[0], 3):
        raise ModelFileError(
            f"{source}: landmark barycentric coordinates have shape {bary.shape}, expected "
            f"({face_idx.shape[0]}, 3)"
        )
    if not np.allclose(bary.sum(axis=1), 1.0, atol=1e-3):
        raise ModelFileError(f"{source}: landmark barycentric coordinates must sum to 1 per row")
    if (
        num_faces is not None
        and face_idx.size
        and (face_idx.min() < 0 or face_idx.max() >= num_faces)
    ):
        raise ModelFileError(
            f"{source}: landmark face indices must lie in [0, {num_faces}), got "
            f"[{face_idx.min()}, {face_idx.max()}]"
        )
    return face_idx, bary


def check_masks(
    masks: Mapping[Any, Any], num_vertices: int | None, source: str
) -> dict[str, np.ndarray]:
    """Validate region masks: name -> 1-D vertex indices in ``[0, num_vertices)``."""
    if not isinstance(masks, Mapping):
        raise ModelFileError(f"{source}: region masks must be a dict of name -> vertex indices")
    out: dict[str, np.ndarray] = {}
    for name, idx in masks.items():
        arr = _int_array(np.asarray(idx).reshape(-1), f"mask '{name}'", source, 1)
        if arr.size and (arr.min() < 0 or (num_vertices is not None and arr.max() >= num_vertices)):
            raise ModelFileError(
                f"{source}: mask '{name}' has vertex indices outside [0, {num_vertices})"
            )
        out[str(name)] = arr
    return out


# --------------------------------------------------------------------------------------
# Model


def model_from_arrays(
    arrays: Mapping[str, Any], source: str = "<arrays>", num_shape: int | None = None
) -> FlameModel:
    """Build and validate a :class:`FlameModel` from a dict with FLAME's file keys.

    Raises:
        ModelFileError: naming ``source`` and the key that is missing or inconsistent.
    """
    if not isinstance(arrays, Mapping):
        raise ModelFileError(
            f"{source}: expected a dict of model arrays, got {type(arrays).__name__}"
        )
    for key in REQUIRED_KEYS:
        _get(arrays, key, source)
    v_template = _float_array(arrays["v_template"], "v_template", source, 2)
    if v_template.shape[1] != 3 or v_template.shape[0] < 1:
        raise ModelFileError(
            f"{source}: 'v_template' has shape {v_template.shape}, expected (V, 3)"
        )
    V = v_template.shape[0]
    faces = _int_array(arrays["f"], "f", source, 2)
    if faces.shape[1] != 3:
        raise ModelFileError(f"{source}: 'f' has shape {faces.shape}, expected (F, 3)")
    if faces.size and (faces.min() < 0 or faces.max() >= V):
        raise ModelFileError(
            f"{source}: 'f' indexes vertices [{faces.min()}, {faces.max()}] but the model has {V}"
        )
    dirs = _float_array(arrays["shapedirs"], "shapedirs", source, 3)
    if dirs.shape[:2] != (V, 3):
        raise ModelFileError(f"{source}: 'shapedirs' has shape {dirs.shape}, expected ({V}, 3, K)")
    split = _split_shapedirs(dirs, arrays, num_shape, source)
    J_regressor = _float_array(arrays["J_regressor"], "J_regressor", source, 2)
    if J_regressor.shape[1] != V or J_regressor.shape[0] < 1:
        raise ModelFileError(
            f"{source}: 'J_regressor' has shape {J_regressor.shape}, expected (J, {V})"
        )
    J = J_regressor.shape[0]
    weights = _float_array(arrays["weights"], "weights", source, 2)
    if weights.shape != (V, J):
        raise ModelFileError(f"{source}: 'weights' has shape {weights.shape}, expected ({V}, {J})")
    if not np.allclose(weights.sum(axis=1), 1.0, atol=1e-3):
        raise ModelFileError(f"{source}: 'weights' rows must sum to 1 (skinning weights)")
    posedirs = _float_array(arrays["posedirs"], "posedirs", source, 3)
    if posedirs.shape != (V, 3, (J - 1) * 9):
        raise ModelFileError(
            f"{source}: 'posedirs' has shape {posedirs.shape}, expected ({V}, 3, {(J - 1) * 9})"
        )
    parents = _parents_from_kintree(arrays["kintree_table"], J, source)
    return FlameModel(
        v_template=v_template,
        faces=faces,
        shapedirs=np.ascontiguousarray(dirs[:, :, :split]),
        exprdirs=np.ascontiguousarray(dirs[:, :, split:]),
        posedirs=posedirs,
        J_regressor=J_regressor,
        parents=parents,
        lbs_weights=weights,
    )


def _read_model_dict(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ModelFileError(f"{path}: model file is missing")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (ValueError, OSError, EOFError) as exc:
            raise ModelFileError(f"{path}: unreadable .npz model ({exc})") from None
    data = load_legacy_pickle(path)
    if not isinstance(data, Mapping):
        raise ModelFileError(f"{path}: expected a dict of model arrays, got {type(data).__name__}")
    return data


def load_flame_model(
    path: PathLike,
    landmarks_path: PathLike | None = None,
    masks_path: PathLike | None = None,
    num_shape: int | None = None,
) -> FlameModel:
    """Read a FLAME ``generic_model.pkl`` (or an ``.npz`` with the same keys).

    Args:
        path: the model file.
        landmarks_path: optional landmark embedding (see :func:`load_landmark_embedding`).
        masks_path: optional region masks (see :func:`load_region_masks`).
        num_shape: where shape columns end in ``shapedirs`` when the file does not say and
            does not have FLAME's 400 columns.

    Raises:
        ModelFileError: naming the file and what is missing or inconsistent.
    """
    path = Path(path)
    model = model_from_arrays(_read_model_dict(path), str(path), num_shape)
    if landmarks_path is not None:
        face_idx, bary = load_landmark_embedding(landmarks_path)
        model.lmk_faces_idx, model.lmk_bary_coords = check_landmarks(
            face_idx, bary, model.num_faces, str(landmarks_path)
        )
    if masks_path is not None:
        model.masks = check_masks(
            load_region_masks(masks_path), model.num_vertices, str(masks_path)
        )
    return model


def save_flame_model(
    path: PathLike,
    arrays_or_model: FlameModel | Mapping[str, Any],
    legacy: bool = True,
    chumpy_keys: frozenset[str] | set[str] = DEFAULT_CHUMPY_KEYS,
) -> None:
    """Write a model in FLAME's file format (atomically).

    ``.npz`` paths get an npz with FLAME's keys (dense ``J_regressor``). Other paths get a
    pickle: with ``legacy=True`` a Python-2 style one exactly like ``generic_model.pkl``
    (chumpy arrays for ``chumpy_keys``, ``scipy.sparse.csc.csc_matrix`` regressor); with
    ``legacy=False`` a modern pickle of plain numpy / scipy objects. ``num_shape`` is stored
    whenever the split is not FLAME's 300/100. The content is validated before writing.

    Args:
        path: destination.
        arrays_or_model: a :class:`FlameModel` or a dict with FLAME's keys.
        legacy: write the Python-2 / chumpy form.
        chumpy_keys: keys written as chumpy arrays in the legacy form.
    """
    path = Path(path)
    if isinstance(arrays_or_model, FlameModel):
        model = arrays_or_model
        arrays = model.to_arrays()
    else:
        arrays = dict(arrays_or_model)
        model = model_from_arrays(arrays, f"{path} (being written)")
        if "num_shape" not in arrays and (model.num_shape, model.num_expression) != (
            FLAME_NUM_SHAPE,
            FLAME_NUM_EXPRESSION,
        ):
            arrays["num_shape"] = model.num_shape
    if "num_shape" in arrays:
        arrays["num_shape"] = int(np.asarray(arrays["num_shape"]).reshape(()))
    if path.suffix == ".npz":
        dense = {k: (v.toarray() if sp.issparse(v) else np.asarray(v)) for k, v in arrays.items()}
        save_npz(path, **dense)
    elif legacy:
        if not sp.issparse(arrays["J_regressor"]):
            arrays["J_regressor"] = sp.csc_matrix(np.asarray(arrays["J_regressor"], np.float64))
        save_legacy_pickle(path, arrays, chumpy_keys=chumpy_keys)
    else:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            pickle.dump(arrays, f, protocol=4)


def describe_model(model: FlameModel) -> dict[str, Any]:
    """Counts for ``talkhead inspect-model``.

    Returns:
        dict with ``vertices``, ``faces``, ``shape``, ``expression``, ``joints``,
        ``landmarks``, ``regions`` (ints) and ``region_names`` (sorted list).
    """
    return {
        "vertices": model.num_vertices,
        "faces": model.num_faces,
        "shape": model.num_shape,
        "expression": model.num_expression,
        "joints": model.num_joints,
        "landmarks": model.num_landmarks,
        "regions": len(model.masks),
        "region_names": sorted(model.masks),
    }


def format_description(description: Mapping[str, Any]) -> str:
    """Human-readable lines of :func:`describe_model`'s dict."""
    lines = []
    for key, value in description.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value) or "-"
        lines.append(f"{key:>12}: {value}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Landmark embeddings


#: Landmarks talkhead fits: the iBUG-68 scheme of its 2D / 3D landmarks, in that order.
NUM_IBUG_LANDMARKS = 68
#: FLAME's static embedding: iBUG points 18-68 (1-based), without the 17 jaw-contour points.
NUM_STATIC_LANDMARKS = 51
#: VHAP / GaussianAvatars ``landmark_embedding_with_eyes.npy``: iBUG-68, then the two eyes.
NUM_LANDMARKS_WITH_EYES = 70
#: (face index key, barycentric key) pairs tried in this order.
LANDMARK_EMBEDDING_KEYS = (
    ("lmk_face_idx", "lmk_b_coords"),
    ("full_lmk_faces_idx", "full_lmk_bary_coords"),
)


def _read_embedding_dict(path: Path) -> Mapping[str, Any]:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                data: Any = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError) as exc:
            raise ModelFileError(f"{path}: unreadable .npz ({exc})") from None
    elif path.suffix == ".npy":
        data = read_pickled_npy(path)
    else:
        data = load_legacy_pickle(path)
    if not isinstance(data, Mapping):
        raise ModelFileError(
            f"{path}: expected a dict in the landmark embedding, got {type(data).__name__}"
        )
    return data


def _drop_batch_axis(value: Any, ndim: int) -> np.ndarray:
    """DECA stores ``full_lmk_*`` with a leading batch axis of 1: (1, L) / (1, L, 3)."""
    arr = np.asarray(value)
    return arr[0] if arr.ndim == ndim + 1 and arr.shape[0] == 1 else arr


def load_landmark_embedding(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read the iBUG-68 landmark embedding: face index and barycentric coordinates per point.

    Keys, in order of preference (the first pair present is used):

    1. ``lmk_face_idx`` (68,), ``lmk_b_coords`` (68, 3): talkhead's ``.npz``, and the
       68-point variant of RingNet / TF_FLAME's ``flame_static_embedding.pkl``;
    2. ``full_lmk_faces_idx`` (1, 68) / (68,), ``full_lmk_bary_coords`` (1, 68, 3) /
       (68, 3): DECA's and metrical-tracker's ``landmark_embedding.npy``, and VHAP /
       GaussianAvatars' ``landmark_embedding_with_eyes.npy`` with 70 points, of which the
       first 68 (iBUG-68) are kept and points 69-70 (the two eyes) dropped (logged).

    ``static_lmk_*`` (51 points, iBUG 18-68) and the yaw-dependent jaw contour
    ``dynamic_lmk_faces_idx`` (79, 17) / ``dynamic_lmk_bary_coords`` (79, 17, 3) are not
    used: talkhead fits landmarks triangulated from several views with one fixed 68-point
    embedding. In DECA's file the dynamic entries are torch tensors; they are decoded to
    arrays without torch (:mod:`.pickle_io`) so the file reads, then ignored.

    Pickles (``.pkl``, object ``.npy``) go through the restricted unpickler; ``.npz`` is
    read with ``allow_pickle=False``.

    Returns:
        face_idx: (68,) int64. bary: (68, 3) float64, rows summing to 1.

    Raises:
        ModelFileError: naming the file when it is missing, malformed, lacks both key pairs
            or does not hold 68 (or 68 + 2 eye) points; a 51-point static embedding (FLAME's
            ``flame_static_embedding.pkl``) is refused naming the missing jaw contour, and
            MediaPipe embeddings (``landmark_indices``) as not iBUG-68.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: landmark embedding file is missing")
    data = _read_embedding_dict(path)
    keys = sorted(map(str, data))
    if "landmark_indices" in data:
        raise ModelFileError(
            f"{path}: a MediaPipe landmark embedding ('landmark_indices' into MediaPipe's mesh), "
            "not iBUG-68; give a 68-point embedding ('lmk_face_idx' or 'full_lmk_faces_idx')"
        )
    pair = next((p for p in LANDMARK_EMBEDDING_KEYS if p[0] in data), None)
    if pair is None:
        if "static_lmk_faces_idx" in data:
            raise ModelFileError(
                f"{path}: has FLAME's static landmarks ('static_lmk_faces_idx') but no "
                "'full_lmk_faces_idx': the 68-point set with the 17 jaw-contour points is "
                f"missing; keys are {keys}"
            )
        raise ModelFileError(
            f"{path}: missing key 'lmk_face_idx' (or DECA's 'full_lmk_faces_idx'); keys are {keys}"
        )
    idx_key, bary_key = pair
    face_idx = _drop_batch_axis(_get(data, idx_key, source), 1)
    bary = _drop_batch_axis(_get(data, bary_key, source), 2)
    face_idx, bary = check_landmarks(face_idx, bary, None, f"{source} ('{idx_key}')")
    count = face_idx.shape[0]
    if count == NUM_STATIC_LANDMARKS:
        raise ModelFileError(
            f"{path}: '{idx_key}' has {count} points, FLAME's static embedding (iBUG 18-68): "
            "the 17 jaw-contour points (iBUG 1-17) are missing, so it cannot give the 68 "
            "talkhead fits; use a 68-point embedding (e.g. DECA's landmark_embedding.npy)"
        )
    if count == NUM_LANDMARKS_WITH_EYES:
        log.info(
            "%s: %d landmarks (iBUG-68 + 2 eyes); using the first %d, eye points dropped",
            path,
            count,
            NUM_IBUG_LANDMARKS,
        )
        face_idx, bary = face_idx[:NUM_IBUG_LANDMARKS], bary[:NUM_IBUG_LANDMARKS]
    elif count != NUM_IBUG_LANDMARKS:
        raise ModelFileError(
            f"{path}: '{idx_key}' has {count} points, expected {NUM_IBUG_LANDMARKS} (iBUG-68) "
            f"or {NUM_LANDMARKS_WITH_EYES} (68 + 2 eyes)"
        )
    return face_idx, bary


def save_landmark_embedding(path: PathLike, face_idx: np.ndarray, bary: np.ndarray) -> None:
    """Write a landmark embedding as ``.npz`` (``lmk_face_idx``, ``lmk_b_coords``)."""
    face_idx, bary = check_landmarks(face_idx, bary, None, f"{path} (being written)")
    save_npz(path, lmk_face_idx=face_idx, lmk_b_coords=bary)


# --------------------------------------------------------------------------------------
# Region masks


def load_region_masks(path: PathLike) -> dict[str, np.ndarray]:
    """Read ``FLAME_masks.pkl`` (region name -> vertex indices; latin1 pickle) or an ``.npz``.

    Raises:
        ModelFileError: naming the file when it is missing or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: region mask file is missing")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                data: Any = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError) as exc:
            raise ModelFileError(f"{path}: unreadable .npz ({exc})") from None
    else:
        data = load_legacy_pickle(path)
    return check_masks(data, None, str(path))


def save_region_masks(path: PathLike, masks: Mapping[str, np.ndarray]) -> None:
    """Write region masks as a ``FLAME_masks.pkl``-style legacy pickle (``.npz`` by suffix)."""
    masks = check_masks(masks, None, f"{path} (being written)")
    if Path(path).suffix == ".npz":
        save_npz(path, **masks)
    else:
        save_legacy_pickle(path, masks)
