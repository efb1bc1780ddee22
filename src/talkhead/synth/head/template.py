"""The rest-pose template: the cast skin, the mouth cavity and the eyeballs, in one mesh.

The mouth cavity is a tube of rings behind the lips' slit that opens up and down behind
the lips and narrows towards the throat, closed by a cap vertex; the eyeballs are UV
spheres. :class:`Template` keeps what the rig, the blendshapes and the annotations need to
deform and label the mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import EYE_CENTER, EYE_RADIUS
from .grid import SkinGrid, build_grid, straighten_mouth
from .sdf import head_sdf
from .skin import cast_skin, lip_relief, open_eyes


def _uv_sphere(
    center: np.ndarray, radius: float, n_lat: int, n_lon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sphere with its poles on the z axis (front pole first): vertices (V, 3), faces (F, 3)
    counter-clockwise seen from outside."""
    lat = np.linspace(0.0, np.pi, n_lat + 2)[1:-1]  # polar angle from +z
    lon = np.linspace(0.0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack(
        [
            np.sin(lat)[:, None] * np.cos(lon)[None, :],
            np.sin(lat)[:, None] * np.sin(lon)[None, :],
            np.repeat(np.cos(lat)[:, None], n_lon, axis=1),
        ],
        axis=-1,
    ).reshape(-1, 3)
    v = np.concatenate([[[0.0, 0.0, 1.0]], ring, [[0.0, 0.0, -1.0]]]) * radius + center
    idx = 1 + np.arange(n_lat * n_lon).reshape(n_lat, n_lon)
    nxt = np.roll(np.arange(n_lon), -1)
    faces = [np.stack([np.zeros(n_lon, dtype=np.int64), idx[0], idx[0, nxt]], axis=1)]
    for i in range(n_lat - 1):
        a, b, c, d = idx[i], idx[i, nxt], idx[i + 1], idx[i + 1, nxt]
        faces += [np.stack([a, c, b], axis=1), np.stack([b, c, d], axis=1)]
    last = len(v) - 1
    faces.append(np.stack([np.full(n_lon, last), idx[-1, nxt], idx[-1]], axis=1))
    f = np.concatenate(faces)
    # orient outwards
    cr = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    if np.einsum("ij,ij->", cr, v[f[:, 0]] - center) < 0:
        f = f[:, ::-1]
    return v, f


# depth behind the lips, half-height, lateral scale of the cavity's rings
CAVITY_RINGS = np.array(
    [
        [0.0025, 0.0020, 0.97],
        [0.0060, 0.0050, 0.93],
        [0.0110, 0.0085, 0.88],
        [0.0180, 0.0105, 0.80],
        [0.0260, 0.0100, 0.66],
        [0.0340, 0.0070, 0.46],
    ]
)


def _mouth_loop(skin: SkinGrid) -> tuple[np.ndarray, np.ndarray]:
    """The slit's boundary loop (right corner, upper edge, left corner, lower edge back) and
    the side of each of its vertices (+1 upper lip, -1 lower lip, 0 corners)."""
    up, lo = skin.mouth_upper, skin.mouth_lower
    loop = np.concatenate([up, lo[1:-1][::-1]])
    side = np.concatenate([[0.0], np.ones(len(up) - 2), [0.0], -np.ones(len(lo) - 2)])
    return loop, side


def _cavity(P_loop: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner mouth: rings of vertices behind the slit loop, closed by a cap vertex; the
    rings open up and down behind the lips and narrow towards the throat.

    Args:
        P_loop: (L, 3) loop positions. side: (L,) +1 / -1 / 0.

    Returns:
        vertices (K*L+1, 3) ring by ring then the cap, ring of each new vertex (1..K, K+1
        for the cap) and side of each new vertex.
    """
    L = len(P_loop)
    centre = P_loop.mean(axis=0)
    half_w = np.abs(P_loop[:, 0]).max()
    q = np.clip(1.0 - (P_loop[:, 0] / half_w) ** 2, 0.0, 1.0) ** 0.5
    verts, ring, sides = [], [], []
    for k, (depth, height, lateral) in enumerate(CAVITY_RINGS, start=1):
        v = P_loop.copy()
        v[:, 0] = centre[0] + (P_loop[:, 0] - centre[0]) * lateral
        v[:, 1] = P_loop[:, 1] + side * height * (0.35 + 0.65 * q)
        v[:, 2] = P_loop[:, 2] - depth - 0.004 * (1.0 - q) * (k > 1)
        verts.append(v)
        ring.append(np.full(L, k))
        sides.append(side)
    cap = centre + np.array([0.0, 0.0, -CAVITY_RINGS[-1, 0] - 0.006])
    verts = np.concatenate(verts + [cap[None]])
    ring = np.concatenate(ring + [[len(CAVITY_RINGS) + 1]])
    sides = np.concatenate(sides + [[0.0]])
    return verts, ring, sides


def _cavity_faces(loop: np.ndarray, first: int, n_rings: int) -> np.ndarray:
    """Faces joining the loop to the cavity rings and the cap (orientation fixed later)."""
    L = len(loop)
    rings = [loop] + [first + k * L + np.arange(L) for k in range(n_rings)]
    cap = first + n_rings * L
    nxt = np.roll(np.arange(L), -1)
    faces = []
    for a_ring, b_ring in zip(rings[:-1], rings[1:], strict=True):
        a, b, c, d = a_ring, a_ring[nxt], b_ring, b_ring[nxt]
        faces += [np.stack([a, c, b], axis=1), np.stack([b, c, d], axis=1)]
    last = rings[-1]
    faces.append(np.stack([last, np.full(L, cap), last[nxt]], axis=1))
    return np.concatenate(faces)


def _orient_like(faces: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Flip ``faces`` if they traverse the edges they share with ``reference`` in the same
    direction (consistent orientation needs opposite directions)."""
    ref = set(
        map(
            tuple,
            np.concatenate(
                [reference[:, [0, 1]], reference[:, [1, 2]], reference[:, [2, 0]]]
            ).tolist(),
        )
    )
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist()
    same = sum(1 for a, b in e if (a, b) in ref)
    opposite = sum(1 for a, b in e if (b, a) in ref)
    return faces[:, ::-1].copy() if same > opposite else faces


@dataclass
class Template:
    """The rest-pose template and everything needed to deform it."""

    skin: SkinGrid
    theta: np.ndarray  # (N,) ray elevations with the eyes open
    relief: np.ndarray  # (N,) lip relief
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    n_skin: int
    cavity: np.ndarray  # (Nc,) vertex indices of the mouth cavity (rings >= 1 and cap)
    cavity_ring: np.ndarray  # (Nc,)
    cavity_side: np.ndarray  # (Nc,)
    loop: np.ndarray  # (L,) slit loop (skin vertices)
    loop_side: np.ndarray
    eyeballs: tuple[np.ndarray, np.ndarray]  # (left, right) vertex indices


def build_template(detail: float) -> Template:
    """Build the rest mesh at grid density ``detail``: skin cast with the eyes open, then the
    mouth cavity, then the left and the right eyeball (vertices in that order)."""
    sdf = head_sdf
    skin = build_grid(detail)
    straighten_mouth(skin, sdf)
    theta = open_eyes(skin, skin.theta)
    relief = lip_relief(skin, skin.theta0, skin.phi)
    P = cast_skin(skin, theta, skin.phi, sdf, relief)
    faces = [skin.faces]
    n_skin = len(P)
    loop, loop_side = _mouth_loop(skin)
    cav_v, cav_ring, cav_side = _cavity(P[loop], loop_side)
    cav_f = _orient_like(_cavity_faces(loop, n_skin, len(CAVITY_RINGS)), skin.faces)
    faces.append(cav_f)
    verts = [P, cav_v]
    cavity = n_skin + np.arange(len(cav_v))
    start = n_skin + len(cav_v)
    eyeballs = []
    n_lat, n_lon = max(int(round(8 * detail)), 5), 2 * max(int(round(7 * detail)), 4)
    for sgn in (1.0, -1.0):
        ev, ef = _uv_sphere(EYE_CENTER * [sgn, 1.0, 1.0], EYE_RADIUS, n_lat, n_lon)
        verts.append(ev)
        faces.append(ef + start)
        eyeballs.append(start + np.arange(len(ev)))
        start += len(ev)
    return Template(
        skin=skin,
        theta=theta,
        relief=relief,
        vertices=np.concatenate(verts),
        faces=np.concatenate(faces),
        n_skin=n_skin,
        cavity=cavity,
        cavity_ring=cav_ring,
        cavity_side=cav_side,
        loop=loop,
        loop_side=loop_side,
        eyeballs=(eyeballs[0], eyeballs[1]),
    )


def mirror_index(P: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror image across x = 0 (the template is symmetric)."""
    from scipy.spatial import cKDTree

    d, idx = cKDTree(P).query(P * [-1.0, 1.0, 1.0])
    if d.max() > 1e-6:
        raise AssertionError(f"template is not mirror symmetric ({d.max():.2e} m)")
    return idx
