"""The rig: joints, skinning weights, the joint regressor and the pose correctives.

Five joints in FLAME's order, root, neck, jaw, left eye, right eye (parents -1, 0, 1, 1, 1).
The jaw's weight is harmonic across the cheeks with a sharp cut at the lips' slit; root and
neck share the rest along the neck; the eyeballs are rigid. Metres, the head frame of
:mod:`.constants`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .constants import NECK_BOTTOM_Y
from .falloff import gauss, smoothstep
from .template import Template

JOINT_NAMES = ("root", "neck", "jaw", "left_eye", "right_eye")
PARENTS = np.array([-1, 0, 1, 1, 1])
JAW_JOINT = np.array([0.0, -0.002, 0.004])  # midpoint of the temporomandibular joints
NECK_JOINT = np.array([0.0, -0.070, -0.018])
ROOT_JOINT = np.array([0.0, -0.092, -0.020])


def _edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges (E, 2) of faces (F, 3), smaller index first."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.sort(e, axis=1)
    return np.unique(e, axis=0)


def _harmonic(
    n: int, edges: np.ndarray, fixed: np.ndarray, values: np.ndarray, active: np.ndarray
) -> np.ndarray:
    """Harmonic interpolation (uniform graph Laplacian) of ``values`` given at ``fixed``
    over the ``active`` vertices; inactive vertices get 0."""
    from scipy.sparse.linalg import spsolve

    keep = active[edges[:, 0]] & active[edges[:, 1]]
    e = edges[keep]
    A = sp.coo_matrix(
        (np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n)
    ).tocsr()
    Lap = sp.diags(np.asarray(A.sum(axis=1)).ravel()) - A
    is_fixed = np.zeros(n, dtype=bool)
    is_fixed[fixed] = True
    free = np.where(active & ~is_fixed)[0]
    x = np.zeros(n)
    x[fixed] = values
    rhs = -Lap[free][:, fixed] @ values
    x[free] = spsolve(Lap[free][:, free].tocsc(), rhs)
    return np.clip(x, 0.0, 1.0)


def _jaw_plane_distance(p: np.ndarray, mouth_y: float, mouth_z: float) -> np.ndarray:
    """Signed distance (x ignored) to the plane through the jaw joint and the mouth line;
    negative below (the jaw side)."""
    d = np.array([0.0, mouth_y - JAW_JOINT[1], mouth_z - JAW_JOINT[2]])
    n = np.array([0.0, d[2], -d[1]]) / np.hypot(d[1], d[2])
    return (p - JAW_JOINT) @ n


def skinning_weights(g: Template, mirror: np.ndarray) -> np.ndarray:
    """(V, 5) smooth weights: jaw under the mouth (harmonic across the cheeks, a sharp cut
    at the slit), root/neck along the neck, eyeballs rigid."""
    V = len(g.vertices)
    P = g.vertices
    skin = g.skin
    mid = g.loop[np.argmin(np.abs(P[g.loop, 0]))]
    sd = _jaw_plane_distance(P, P[mid, 1], P[mid, 2])
    active = np.ones(V, dtype=bool)
    active[np.concatenate(g.eyeballs)] = False
    is_neck = np.zeros(V, dtype=bool)
    is_neck[: g.n_skin] = skin.is_neck
    one = np.zeros(V, dtype=bool)
    zero = np.zeros(V, dtype=bool)
    ps = P[: g.n_skin]
    one[: g.n_skin] = (
        (sd[: g.n_skin] < -0.014)
        & (ps[:, 2] > 0.0)
        & (ps[:, 1] > -0.088)
        & (np.abs(ps[:, 0]) < 0.045)
        & ~skin.is_neck
    )
    ear = (np.abs(ps[:, 0]) > 0.060) & (ps[:, 2] < 0.012) & (ps[:, 1] > -0.045)
    zero[: g.n_skin] = (sd[: g.n_skin] > 0.006) | (ps[:, 2] < -0.035) | ear
    zero[: g.n_skin] |= skin.row >= skin.n_head_rows + 2
    one[skin.mouth_lower[1:-1]] = True
    zero[skin.mouth_upper[1:-1]] = True
    deep = g.cavity_ring >= 2
    one[g.cavity[deep & (g.cavity_side < 0)]] = True
    zero[g.cavity[deep & (g.cavity_side > 0)]] = True
    zero &= ~one
    fixed = np.where((one | zero) & active)[0]
    jaw = _harmonic(V, _edges(g.faces), fixed, one[fixed].astype(np.float64), active)
    jaw = 0.5 * (jaw + jaw[mirror])  # the triangulation is not quite symmetric
    t_neck = smoothstep(NECK_BOTTOM_Y + 0.004, -0.065, P[:, 1])
    w = np.zeros((V, 5))
    w[:, 2] = jaw
    w[:, 1] = (1.0 - jaw) * t_neck
    w[:, 0] = (1.0 - jaw) * (1.0 - t_neck)
    for j, idx in ((3, g.eyeballs[0]), (4, g.eyeballs[1])):
        w[idx] = 0.0
        w[idx, j] = 1.0
    return w


def _convex_regressor_row(
    P: np.ndarray, candidates: np.ndarray, mirror: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Sparse convex weights (V,) over ``candidates`` and their mirrors whose weighted mean
    is ``target`` (x = 0): non-negative least squares with a heavily weighted sum row."""
    from scipy.optimize import nnls

    cand = candidates
    pairs = 0.5 * (P[cand] + P[mirror[cand]])
    lam = 10.0
    A = np.vstack([pairs[:, 1:].T, lam * np.ones(len(cand))])
    b = np.r_[target[1:], lam]
    w, _ = nnls(A, b)
    w /= w.sum()
    row = np.zeros(len(P))
    np.add.at(row, cand, 0.5 * w)
    np.add.at(row, mirror[cand], 0.5 * w)
    return row


def joint_regressor(g: Template, mirror: np.ndarray) -> sp.csc_matrix:
    """(5, V) sparse convex joint regressor."""
    P = g.vertices
    V = len(P)
    skin = np.arange(g.n_skin)
    rows = []
    for target in (ROOT_JOINT, NECK_JOINT):
        near = skin[np.abs(P[skin, 1] - target[1]) < 0.012]
        rows.append(_convex_regressor_row(P, near, mirror, target))
    tmj = skin[
        (np.abs(P[skin, 0]) > 0.045)
        & (np.linalg.norm((P[skin] - [0.0, JAW_JOINT[1], JAW_JOINT[2]])[:, 1:], axis=1) < 0.03)
    ]
    rows.append(_convex_regressor_row(P, tmj, mirror, JAW_JOINT))
    for idx in g.eyeballs:
        r = np.zeros(V)
        r[idx] = 1.0 / len(idx)
        rows.append(r)
    return sp.csc_matrix(np.stack(rows))


def pose_correctives(g: Template, weights: np.ndarray) -> np.ndarray:
    """(V, 3, 36) posedirs: opening the jaw draws the cheeks in and stretches the chin
    (on the sin(angle) entry of the jaw's rotation); zero for the other joints."""
    P = g.vertices
    V = len(P)
    pd = np.zeros((V, 3, 4 * 9))
    w = weights[:, 2]
    band = 4.0 * w * (1.0 - w)
    side = smoothstep(0.015, 0.035, np.abs(P[:, 0]))
    d = np.zeros((V, 3))
    d[:, 0] = -0.005 * np.sign(P[:, 0]) * band * side
    d[:, 1] = -0.003 * w * gauss(P, np.array([0.0, -0.075, 0.08]), 0.02)
    d[np.concatenate(g.eyeballs)] = 0.0
    pd[:, :, 9 + 7] = d  # joint 2 (jaw), entry R[2, 1] - 0 = sin(angle about x)
    return pd
