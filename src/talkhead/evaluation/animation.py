"""Metrics of generated face animation against a fitted ("true") sequence, on numpy arrays.

Three public codebases compute the lip vertex error differently (a square or not, a mean over
xyz or a norm, millimetres or metres), so every function here names its definition, its unit
and the source it follows, and the figures leave the package with the unit in their key.

- :func:`lip_vertex_error_mm`, :func:`lip_vertex_error_squared_mm2`: FaceFormer's and
  CodeTalker's lip vertex error;
- :func:`upper_face_dynamics_deviation_mm`: CodeTalker's FDD, on the displacement norm;
- :func:`diversity`: the FaceTalk supplement's diversity (section C, eq. 2);
- :func:`jitter`: mean absolute and root-mean-square adjacent-frame differences (Table 2);
- :func:`lip_surface_error_mm`: the equivalent of the lip vertex error for outputs without a
  fixed vertex order (NPHM meshes): the true lip vertices' distances to the predicted surface.

Vertices are metres in, millimetres out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..fitting.temporal import expression_jitter

__all__ = [
    "diversity",
    "jitter",
    "lip_surface_error_mm",
    "lip_vertex_error_mm",
    "lip_vertex_error_squared_mm2",
    "upper_face_dynamics_deviation_mm",
]

MM = 1000.0


def _pair(pred: np.ndarray, true: np.ndarray, idx: np.ndarray, name: str) -> np.ndarray:
    """(T, L, 3) differences of the vertices ``idx``, after checking shapes."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(
            f"{name}: prediction {pred.shape} and truth {true.shape} must be (T, V, 3)"
        )
    idx = np.asarray(idx, np.int64).reshape(-1)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= pred.shape[1]:
        raise ValueError(f"{name}: vertex indices must be non-empty and in [0, {pred.shape[1]})")
    return pred[:, idx] - true[:, idx]


def lip_vertex_error_mm(pred: np.ndarray, true: np.ndarray, lips: np.ndarray) -> float:
    """Lip vertex error: per frame the largest L2 distance over the lip vertices, averaged over
    frames (FaceFormer, Fan et al. CVPR 2022, sec. 4.2; MeshTalk's "lip error").

    Args:
        pred, true: (T, V, 3) vertices in the same vertex order, metres.
        lips: (L,) indices of the lip vertices (the head model's ``lips`` mask).

    Returns:
        Millimetres.

    Raises:
        ValueError: shapes differ or indices out of range.
    """
    d = _pair(pred, true, lips, "lip vertex error")
    return float(np.mean(np.max(np.linalg.norm(d, axis=-1), axis=1)) * MM)


def lip_vertex_error_squared_mm2(pred: np.ndarray, true: np.ndarray, lips: np.ndarray) -> float:
    """CodeTalker's lip vertex error (Xing et al. CVPR 2023, its ``test.py``): per frame the
    largest SQUARED L2 distance over the lip vertices, averaged over frames; a square, not a
    distance (CodeTalker reports it in metres squared scaled by 1e-5; here in mm^2).

    Args/raises: as :func:`lip_vertex_error_mm`.

    Returns:
        Square millimetres.
    """
    d = _pair(pred, true, lips, "lip vertex error") * MM
    return float(np.mean(np.max(np.sum(d**2, axis=-1), axis=1)))


def upper_face_dynamics_deviation_mm(
    pred: np.ndarray, true: np.ndarray, template: np.ndarray, upper: np.ndarray
) -> float:
    """Upper-face dynamics deviation (FDD): per upper-face vertex the temporal standard
    deviation of its displacement from the template (the L2 norm of ``vertex - template``),
    truth minus prediction, averaged over the vertices. Signed: positive when the prediction's
    upper face moves less than the truth's. CodeTalker (Xing et al. CVPR 2023, sec. 4.1)
    takes the std of the squared norm (metres squared); here the norm itself, in millimetres.

    Args:
        pred, true: (T, V, 3) metres; template: (V, 3) the subject's neutral face, metres;
        upper: (U,) indices of the upper face (forehead, eye regions, eyebrows).

    Returns:
        Millimetres.

    Raises:
        ValueError: shapes differ or indices out of range.
    """
    _pair(pred, true, upper, "FDD")
    idx = np.asarray(upper, np.int64).reshape(-1)
    tmpl = np.asarray(template, np.float64)[idx]

    def dynamics(v: np.ndarray) -> np.ndarray:
        return np.std(np.linalg.norm(np.asarray(v, np.float64)[:, idx] - tmpl, axis=-1), axis=0)

    return float(np.mean(dynamics(true) - dynamics(pred)) * MM)


def diversity(samples: np.ndarray) -> float:
    """Diversity of K samples drawn for the same audio (the FaceTalk supplement, section C,
    eq. 2): the L2 distance between two samples' expression codes, averaged over frames, then
    averaged over the ordered pairs of different samples. Eq. 2 as printed divides the sum
    over pairs by K rather than K (K - 1); the two agree for K = 2, and this mean does not
    grow with K. Average it over the test audio for the figure of eq. 2.

    Args:
        samples: (K, T, E) codes (K >= 2), in the model's expression space.

    Returns:
        Code units (NPHM or FLAME expression codes, as given).

    Raises:
        ValueError: not (K, T, E) with K >= 2.
    """
    s = np.asarray(samples, np.float64)
    if s.ndim != 3 or s.shape[0] < 2:
        raise ValueError(f"diversity: expected (K, T, E) samples with K >= 2, got {s.shape}")
    K = s.shape[0]
    dist = np.linalg.norm(s[:, None] - s[None], axis=-1).mean(axis=-1)  # (K, K)
    return float(dist.sum() / (K * (K - 1)))


def jitter(sequence: np.ndarray, frame_ids: np.ndarray | None = None) -> dict[str, float]:
    """Jitter: ``mae = mean |x_{t+1} - x_t|`` and ``rmse = sqrt(mean (x_{t+1} - x_t)^2)``
    over frames and components (the FaceTalk supplement's Table 2;
    :func:`talkhead.fitting.temporal.expression_jitter`).

    Args:
        sequence: (T, ...) per-frame codes or vertices (flattened per frame);
        frame_ids: (T,) capture frame indices (a gap counts as its length), or None.

    Returns:
        ``{"mae", "rmse"}`` in the sequence's unit per frame (NaN for fewer than 2 frames).
    """
    x = np.asarray(sequence, np.float64)
    return expression_jitter(x.reshape(x.shape[0], -1), frame_ids)


def lip_surface_error_mm(
    true_lips: np.ndarray, meshes: Sequence[tuple[np.ndarray, np.ndarray]]
) -> float:
    """The lip vertex error for outputs without a fixed vertex order (NPHM meshes by marching
    cubes): per frame the largest distance from a true lip vertex to the predicted SURFACE,
    averaged over frames. A lower bound of :func:`lip_vertex_error_mm` on the same meshes
    (a point's distance to a surface is at most its distance to the corresponding vertex).

    Args:
        true_lips: (T, L, 3) the fitted lip vertices, metres.
        meshes: T pairs ``(vertices (N, 3) metres, faces (F, 3))`` in the same space.

    Returns:
        Millimetres.

    Raises:
        ValueError: the frame counts differ.
    """
    from ..geometry.mesh_distance import point_to_mesh_distance

    lips = np.asarray(true_lips, np.float64)
    if lips.ndim != 3 or len(meshes) != lips.shape[0]:
        raise ValueError(
            f"lip surface error: {len(meshes)} meshes for true lips of shape {lips.shape}"
        )
    worst = [point_to_mesh_distance(p, v, f).max() for p, (v, f) in zip(lips, meshes, strict=True)]
    return float(np.mean(worst) * MM)
