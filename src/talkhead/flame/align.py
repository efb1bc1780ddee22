"""The FLAME template aligned to a sequence's 3D landmarks: one similarity ``x -> s R x + t``.

FaceTalk supplement, section D "Flame Fitting", first paragraph (DAG step 5, ``align_flame``):

1. units: a similarity (Umeyama) on every valid (frame, landmark) pair; a scale outside
   ``align_flame.scale_range`` means the landmarks (or the model) are not in metres, and is
   reported with the likely unit instead of being fitted as a giant or tiny head;
2. a rigid transform (Procrustes) between the template landmarks and the valid landmarks;
3. pairs farther than ``align_flame.outlier_threshold`` (0.020 m) after it are outliers;
4. a similarity (Umeyama) on the inliers -> ``s``, ``R``, ``t``, the residual (mm), the inliers.

Pooling (``align_flame.pooling``):

- ``all_frames`` (default): every valid (frame, landmark) pair is one pair of the fit; a
  landmark mis-detected in some frames loses only those frames' pairs (step 3), and the noise
  of the others averages out over frames. The paper pools the valid multi-view landmarks.
- ``median``: each landmark's coordinate-wise median over the frames it is valid in (step 3:
  over its inlier frames) is one pair; robust without the per-pair test, but one pair per
  landmark, and a landmark that moves with speech (lips, jaw) is summarised by one point.

The template landmarks are the model's at zero shape, expression and pose
(``FlameLayer(model)().landmarks[0]``). :meth:`Alignment.flame_rigid` turns the similarity into
FLAME's ``scale``, ``rotation`` (about the root joint) and ``translation``
(:mod:`talkhead.flame.layer`); :func:`save_alignment` writes them with the NeRSemble-benchmark /
VHAP key names. numpy only (no torch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import check
from ..errors import FittingError
from ..geometry.rotations import matrix_to_axis_angle
from ..geometry.similarity import apply_similarity, procrustes, umeyama
from ..io import PathLike, load_json, save_json
from .config import AlignConfig

__all__ = [
    "ALIGN_SECTION",
    "AlignConfig",
    "Alignment",
    "align_template",
    "flame_rigid_from_similarity",
    "load_alignment",
    "save_alignment",
]

#: The config section of :class:`AlignConfig`, as written in YAML (named in messages).
ALIGN_SECTION = "align_flame"

#: Unit factors the units check recognises: landmarks this many times too large.
_UNITS = ((1000.0, "millimetres"), (100.0, "centimetres"))


def flame_rigid_from_similarity(
    s: float, R: np.ndarray, t: np.ndarray, root_joint: np.ndarray
) -> dict[str, np.ndarray]:
    """FLAME's rigid parameters equal to the similarity ``x -> s R x + t``.

    FLAME turns the head about the root joint's rest location ``j0`` and then scales and
    translates (:mod:`talkhead.flame.layer`): ``v = scale (R (x - j0) + j0) + translation``;
    equal to ``s R x + t`` for ``scale = s``, ``rotation = R`` and
    ``translation = t - s (j0 - R j0)``. Exact at zero shape (the root joint of the template).

    Args:
        s: scale; R: (3, 3) rotation; t: (3,) translation (metres).
        root_joint: (3,) rest location of FLAME's root joint (``model.rest_joints()[0]``).

    Returns:
        dict: ``scale`` (1,), ``rotation`` (3,) axis-angle, ``translation`` (3,).

    Raises:
        ValueError: ``root_joint`` not (3,) or not finite.
    """
    j0 = np.asarray(root_joint, dtype=np.float64)
    if j0.shape != (3,) or not np.isfinite(j0).all():
        raise ValueError(f"root_joint must be a finite (3,) point, got shape {j0.shape}")
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return {
        "scale": np.array([float(s)]),
        "rotation": matrix_to_axis_angle(R),
        "translation": t - float(s) * (j0 - R @ j0),
    }


@dataclass(frozen=True, eq=False)
class Alignment:
    """The template's alignment to a sequence's landmarks: ``x_world = scale R x + t``.

    Attributes:
        scale, R, t: the similarity on the inliers (step 4): float, (3, 3), (3,) metres.
        rigid_R, rigid_t: the rigid transform on every valid pair (step 2).
        units_scale: the scale of the similarity on every valid pair (step 1).
        valid: (T, L) bool, the pairs given.
        inliers: (T, L) bool, valid pairs within the outlier threshold after the rigid
            transform.
        frames: (T,) int frame ids.
        residual_mean_mm, residual_rms_mm: mean and RMS distance (mm) of the fitted pairs after
            the similarity (``all_frames``: the inlier pairs; ``median``: the inlier landmarks'
            medians).
        rigid_residual_mean_mm: mean distance (mm) of the same pairs after the rigid transform.
        pooling: ``all_frames`` or ``median``.
    """

    scale: float
    R: np.ndarray
    t: np.ndarray
    rigid_R: np.ndarray
    rigid_t: np.ndarray
    units_scale: float
    valid: np.ndarray
    inliers: np.ndarray
    frames: np.ndarray
    residual_mean_mm: float
    residual_rms_mm: float
    rigid_residual_mean_mm: float
    pooling: str

    @property
    def n_pairs(self) -> int:
        """Valid (frame, landmark) pairs."""
        return int(self.valid.sum())

    @property
    def n_inliers(self) -> int:
        """Inlier (frame, landmark) pairs."""
        return int(self.inliers.sum())

    @property
    def inlier_fraction(self) -> float:
        """Inlier pairs over valid pairs."""
        return self.n_inliers / self.n_pairs

    @property
    def inlier_landmarks(self) -> np.ndarray:
        """(K,) indices of the landmarks inlier in at least half the frames they are valid in."""
        n_valid = self.valid.sum(axis=0)
        n_in = self.inliers.sum(axis=0)
        return np.flatnonzero((n_valid > 0) & (2 * n_in >= n_valid))

    def transform(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) template-space points -> (..., 3) world points, ``scale R x + t``."""
        return apply_similarity(self.scale, self.R, self.t, points)

    def flame_rigid(self, root_joint: np.ndarray) -> dict[str, np.ndarray]:
        """FLAME's ``scale`` (1,), ``rotation`` (3,) and ``translation`` (3,) equal to the
        similarity (see :func:`flame_rigid_from_similarity`)."""
        return flame_rigid_from_similarity(self.scale, self.R, self.t, root_joint)


# ---------------------------------------------------------------------------------------------
# The alignment


def _check_inputs(
    template_landmarks: np.ndarray, landmarks: np.ndarray, valid: np.ndarray, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tmpl = np.asarray(template_landmarks, dtype=np.float64)
    lmk = np.asarray(landmarks, dtype=np.float64)
    valid = np.asarray(valid)
    if tmpl.ndim != 2 or tmpl.shape[1] != 3:
        raise FittingError(f"template landmarks must be (L, 3), got {tmpl.shape}")
    if lmk.ndim != 3 or lmk.shape[2] != 3:
        raise FittingError(f"{source}: 3D landmarks must be (T, L, 3), got {lmk.shape}")
    if lmk.shape[1] != tmpl.shape[0]:
        raise FittingError(
            f"{source}: {lmk.shape[1]} landmarks per frame, the model's landmark embedding has "
            f"{tmpl.shape[0]}: landmark embedding and 2D landmark detector do not match"
        )
    if valid.shape != lmk.shape[:2] or valid.dtype != bool:
        raise FittingError(
            f"{source}: landmark validity must be a bool (T, L) = {lmk.shape[:2]} mask, got "
            f"{valid.dtype} {valid.shape}"
        )
    if not np.isfinite(tmpl).all():
        raise FittingError("template landmarks are not finite (NaN or inf)")
    bad = valid & ~np.isfinite(lmk).all(axis=2)
    if bad.any():
        f, k = np.argwhere(bad)[0]
        raise FittingError(
            f"{source}: {int(bad.sum())} landmarks marked valid are NaN or inf (first: frame "
            f"index {f}, landmark {k}): the points stage wrote inconsistent landmarks3d_valid"
        )
    return tmpl, lmk, valid


def _units_problem(s: float, scale_range: Sequence[float], source: str) -> str:
    lo, hi = scale_range
    head = (
        f"{source}: the 3D landmarks are {s:.4g} times the size of the FLAME template's "
        f"(outside {ALIGN_SECTION}.scale_range {list(scale_range)})"
    )
    for factor, unit in _UNITS:
        if lo <= s / factor <= hi:
            return (
                f"{head}: they look to be in {unit} against the metre-scale model; give the "
                f"capture's calibration (camera translations) in metres, or divide the "
                f"landmarks by {factor:g}"
            )
        if lo <= s * factor <= hi:
            return (
                f"{head}: the model (flame.model) looks to be in {unit} against landmarks in "
                f"metres; use a model in metres"
            )
    return (
        f"{head}: landmarks and model are not both in metres, or the landmarks are not this "
        "model's (check the capture's calibration units and flame.landmark_embedding)"
    )


def _pairs(
    tmpl: np.ndarray, lmk: np.ndarray, mask: np.ndarray, pooling: str
) -> tuple[np.ndarray, np.ndarray]:
    """Source (template) and target (landmark) points of the pairs in ``mask``."""
    if pooling == "median":
        keep = np.flatnonzero(mask.any(axis=0))
        med = [np.median(lmk[mask[:, k], k], axis=0) for k in keep]
        return tmpl[keep], np.array(med, dtype=np.float64).reshape(-1, 3)
    f, k = np.nonzero(mask)
    return tmpl[k], lmk[f, k]


def _fit(what: str, source: str, fn: Callable[..., Any], *args: np.ndarray) -> Any:
    """``fn(*args)`` (a fit of :mod:`talkhead.geometry.similarity`), its ValueError (collinear
    or coincident landmarks) as a :class:`FittingError` naming ``what``."""
    try:
        return fn(*args)
    except ValueError as e:
        raise FittingError(f"{source}: {what} is not determined: {e}") from None


def align_template(
    template_landmarks: np.ndarray,
    landmarks: np.ndarray,
    valid: np.ndarray,
    config: AlignConfig | None = None,
    frames: Sequence[int] | np.ndarray | None = None,
    source: str = "the sequence",
) -> Alignment:
    """Align the FLAME template to a sequence's 3D landmarks (see the module docstring).

    Args:
        template_landmarks: (L, 3) the model's landmarks at zero shape, expression and pose
            (metres).
        landmarks: (T, L, 3) the sequence's fused 3D landmarks (metres).
        valid: (T, L) bool, which landmarks are valid; invalid entries may hold anything.
        config: the ``align_flame`` settings (None: the defaults).
        frames: (T,) frame ids (None: 0 .. T-1), kept in the result.
        source: the sequence (its file) as named in messages.

    Returns:
        :class:`Alignment`.

    Raises:
        ConfigError: ``config`` breaks its constraints (named as ``align_flame.<key>``).
        FittingError: shapes that do not match (T, L) / L, NaN or inf in a valid landmark,
            no valid landmark at all, a similarity scale outside ``scale_range`` (with the
            likely unit), fewer than ``min_landmarks`` distinct inlier landmarks, collinear
            landmarks.
    """
    config = check(config or AlignConfig(), ALIGN_SECTION)
    tmpl, lmk, valid = _check_inputs(template_landmarks, landmarks, valid, source)
    T, L = valid.shape
    frame_ids = np.arange(T) if frames is None else np.asarray(frames, dtype=np.int64)
    if frame_ids.shape != (T,):
        raise FittingError(f"{source}: {frame_ids.shape[0]} frame ids for {T} frames")
    if not valid.any():
        raise FittingError(
            f"{source}: no valid 3D landmark in any of its {T} frames: the 2D landmarks were "
            "not lifted (see the points stage's landmark figures, backproject.landmark_min_views "
            "and backproject.landmark_min_conf)"
        )
    # (1) units: a similarity on every valid pair
    src, dst = _pairs(tmpl, lmk, valid, config.pooling)
    units_scale, _, _ = _fit("the similarity on all valid landmarks", source, umeyama, src, dst)
    lo, hi = config.scale_range
    if not lo <= units_scale <= hi:
        raise FittingError(_units_problem(units_scale, config.scale_range, source))
    # (2) rigid transform on the valid pairs
    R0, t0 = _fit("the rigid transform on all valid landmarks", source, procrustes, src, dst)
    # (3) outliers: every valid pair's distance after the rigid transform
    placed = tmpl @ R0.T + t0  # (L, 3)
    with np.errstate(invalid="ignore", over="ignore"):
        dist = np.linalg.norm(lmk - placed[None], axis=2)  # (T, L); NaN where not valid
    inliers = valid & (np.where(valid, dist, np.inf) <= config.outlier_threshold)
    n_landmarks = int(inliers.any(axis=0).sum())
    if n_landmarks < config.min_landmarks:
        raise FittingError(
            f"{source}: {n_landmarks} of {int(valid.any(axis=0).sum())} landmarks lie within "
            f"{ALIGN_SECTION}.outlier_threshold ({config.outlier_threshold:g} m) of the rigidly "
            f"aligned template, {ALIGN_SECTION}.min_landmarks = {config.min_landmarks} needed: "
            f"landmarks of another embedding, a head {units_scale:.3g} times the template's "
            "size (the rigid step does not scale), or a threshold too tight for this capture"
        )
    # (4) similarity on the inliers
    src_in, dst_in = _pairs(tmpl, lmk, inliers, config.pooling)
    s, R, t = _fit("the similarity on the inlier landmarks", source, umeyama, src_in, dst_in)
    res = np.linalg.norm(apply_similarity(s, R, t, src_in) - dst_in, axis=1)
    rigid_res = np.linalg.norm(src_in @ R0.T + t0 - dst_in, axis=1)
    return Alignment(
        scale=float(s),
        R=R,
        t=t,
        rigid_R=R0,
        rigid_t=t0,
        units_scale=float(units_scale),
        valid=valid.copy(),
        inliers=inliers,
        frames=frame_ids,
        residual_mean_mm=float(res.mean() * 1000.0),
        residual_rms_mm=float(np.sqrt(np.mean(res**2)) * 1000.0),
        rigid_residual_mean_mm=float(rigid_res.mean() * 1000.0),
        pooling=config.pooling,
    )


# ---------------------------------------------------------------------------------------------
# The file


def _mask_rows(mask: np.ndarray) -> list[str]:
    return ["".join("1" if v else "0" for v in row) for row in mask]


def _mask_from_rows(rows: Any, key: str, path: Path) -> np.ndarray:
    if not isinstance(rows, list) or not all(
        isinstance(r, str) and set(r) <= {"0", "1"} for r in rows
    ):
        raise FittingError(f"{path}: '{key}' must be a list of 0/1 strings, one per frame")
    if len({len(r) for r in rows}) > 1:
        raise FittingError(f"{path}: the rows of '{key}' differ in length")
    return np.array([[c == "1" for c in r] for r in rows], dtype=bool).reshape(len(rows), -1)


def alignment_record(alignment: Alignment, root_joint: np.ndarray) -> dict[str, Any]:
    """The alignment as the plain mapping :func:`save_alignment` writes (see there)."""
    a = alignment
    flame = a.flame_rigid(root_joint)
    return {
        "scale": flame["scale"],
        "rotation": flame["rotation"],
        "rotation_matrices": a.R,
        "translation": flame["translation"],
        "root_joint": np.asarray(root_joint, dtype=np.float64),
        "similarity": {"s": a.scale, "R": a.R, "t": a.t},
        "rigid": {"R": a.rigid_R, "t": a.rigid_t},
        "units_scale": a.units_scale,
        "inlier_landmarks": a.inlier_landmarks,
        "inlier_fraction": a.inlier_fraction,
        "n_pairs": a.n_pairs,
        "n_inliers": a.n_inliers,
        "residual_mean_mm": a.residual_mean_mm,
        "residual_rms_mm": a.residual_rms_mm,
        "rigid_residual_mean_mm": a.rigid_residual_mean_mm,
        "pooling": a.pooling,
        "frames": a.frames,
        "valid_mask": _mask_rows(a.valid),
        "inlier_mask": _mask_rows(a.inliers),
    }


def save_alignment(path: PathLike, alignment: Alignment, root_joint: np.ndarray) -> None:
    """Write the alignment as JSON, atomically.

    Keys (NeRSemble-benchmark / VHAP names for the FLAME parameters):

    - ``scale`` [1], ``rotation`` [3] (axis-angle about the root joint), ``translation`` [3]
      (metres), ``rotation_matrices`` [3][3]: FLAME's rigid parameters
      (:meth:`Alignment.flame_rigid`), with ``root_joint`` [3] they were computed for;
    - ``similarity`` {``s``, ``R``, ``t``}: ``x_world = s R x_template + t``; ``rigid``
      {``R``, ``t``} (step 2); ``units_scale`` (step 1);
    - ``inlier_landmarks`` (indices inlier in at least half the frames they are valid in),
      ``inlier_fraction``, ``n_pairs``, ``n_inliers``, ``residual_mean_mm``,
      ``residual_rms_mm``, ``rigid_residual_mean_mm``, ``pooling``, ``frames``;
    - ``valid_mask``, ``inlier_mask``: one string of 0/1 per frame, one character per landmark.
    """
    save_json(path, alignment_record(alignment, root_joint))


_KEYS = (
    "scale",
    "rotation",
    "rotation_matrices",
    "translation",
    "root_joint",
    "similarity",
    "rigid",
    "units_scale",
    "residual_mean_mm",
    "residual_rms_mm",
    "rigid_residual_mean_mm",
    "pooling",
    "frames",
    "valid_mask",
    "inlier_mask",
)


def _array(data: Mapping[str, Any], key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    try:
        a = np.asarray(data[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise FittingError(f"{path}: '{key}' missing or not numeric") from None
    if a.shape != shape or not np.isfinite(a).all():
        raise FittingError(f"{path}: '{key}' must be finite with shape {list(shape)}")
    return a


def load_alignment(path: PathLike) -> Alignment:
    """Read a file written by :func:`save_alignment`.

    The FLAME parameters in the file are checked against the similarity (the file's
    ``root_joint``), so a hand-edited file that says two things is refused.

    Raises:
        FittingError: naming the file and the key that is missing, malformed or inconsistent.
    """
    path = Path(path)
    try:
        data = load_json(path)
    except (OSError, ValueError) as e:
        raise FittingError(f"{path}: not a readable alignment file ({e})") from None
    if not isinstance(data, dict):
        raise FittingError(f"{path}: expected a JSON object")
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise FittingError(f"{path}: missing keys {missing} (not written by save_alignment?)")
    sim, rig = data["similarity"], data["rigid"]
    if not isinstance(sim, dict) or not isinstance(rig, dict):
        raise FittingError(f"{path}: 'similarity' and 'rigid' must be objects")
    s = float(_array(sim, "s", (), path))
    R = _array(sim, "R", (3, 3), path)
    t = _array(sim, "t", (3,), path)
    valid = _mask_from_rows(data["valid_mask"], "valid_mask", path)
    inliers = _mask_from_rows(data["inlier_mask"], "inlier_mask", path)
    frames = np.asarray(data["frames"], dtype=np.int64)
    if inliers.shape != valid.shape or frames.shape != (valid.shape[0],):
        raise FittingError(
            f"{path}: 'valid_mask' {valid.shape}, 'inlier_mask' {inliers.shape} and 'frames' "
            f"{frames.shape} do not agree"
        )
    if (inliers & ~valid).any():
        raise FittingError(f"{path}: 'inlier_mask' marks pairs that 'valid_mask' does not")
    flame = flame_rigid_from_similarity(s, R, t, _array(data, "root_joint", (3,), path))
    stored = {
        "scale": _array(data, "scale", (1,), path),
        "rotation": _array(data, "rotation", (3,), path),
        "translation": _array(data, "translation", (3,), path),
    }
    for key, value in stored.items():
        if not np.allclose(value, flame[key], atol=1e-9, rtol=1e-9):
            raise FittingError(f"{path}: '{key}' disagrees with 'similarity' and 'root_joint'")
    if not np.allclose(_array(data, "rotation_matrices", (3, 3), path), R, rtol=0, atol=1e-12):
        raise FittingError(f"{path}: 'rotation_matrices' disagrees with 'similarity'.R")
    pooling = data["pooling"]
    if pooling not in ("all_frames", "median"):
        raise FittingError(f"{path}: 'pooling' must be all_frames or median, got {pooling!r}")
    return Alignment(
        scale=s,
        R=R,
        t=t,
        rigid_R=_array(rig, "R", (3, 3), path),
        rigid_t=_array(rig, "t", (3,), path),
        units_scale=float(_array(data, "units_scale", (), path)),
        valid=valid,
        inliers=inliers,
        frames=frames,
        residual_mean_mm=float(_array(data, "residual_mean_mm", (), path)),
        residual_rms_mm=float(_array(data, "residual_rms_mm", (), path)),
        rigid_residual_mean_mm=float(_array(data, "rigid_residual_mean_mm", (), path)),
        pooling=pooling,
    )
