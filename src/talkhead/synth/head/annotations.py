"""Annotations of the template: the iBUG-68 landmark embedding and FLAME-style region masks.

Landmarks are (face index, barycentric coordinates) on the skin: the lid and lip contours
on the slits' edges, the brows and the outer lip contour on grid curves, the face contour
and the nose found by casting rays. Masks are vertex-index arrays named as in
``FLAME_masks.pkl`` (:data:`MASK_NAMES`).
"""

from __future__ import annotations

import numpy as np

from .constants import EYE_CENTER, MOUTH_CORNER_AZIMUTH, MOUTH_ELEVATION, RAY_ORIGIN
from .layout import brow_arch, brow_half_width, ray_dirs, vermilion
from .sdf import cast_rays, ear_sdf, head_sdf, nose_sdf
from .template import Template

MASK_NAMES = (
    "face",
    "lips",
    "upper_lip",
    "lower_lip",
    "mouth_interior",
    "nose",
    "forehead",
    "left_eye_region",
    "right_eye_region",
    "left_eyeball",
    "right_eyeball",
    "left_eyebrow",
    "right_eyebrow",
    "scalp",
    "neck",
    "left_ear",
    "right_ear",
    "boundary",
)


def _param_faces(g: Template) -> np.ndarray:
    """Skin faces with all corners on head rows and not across the back seam."""
    sk = g.skin
    f = sk.faces
    ok = ~sk.is_neck[f].any(axis=1)
    ok &= ~(f == sk.pole).any(axis=1)
    ph = sk.phi[f]
    ok &= (ph.max(axis=1) - ph.min(axis=1)) < np.pi
    return np.where(ok)[0]


def _locate(uv_tri: np.ndarray, point: np.ndarray) -> tuple[int, np.ndarray]:
    """Triangle (index into uv_tri (F, 3, 2)) containing a 2D point and its barycentrics."""
    a, b, c = uv_tri[:, 0], uv_tri[:, 1], uv_tri[:, 2]
    v0, v1, v2 = b - a, c - a, point[None] - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-18, 1e-18, den)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    bary = np.stack([1.0 - l1 - l2, l1, l2], axis=1)
    score = bary.min(axis=1)
    i = int(np.argmax(score))
    if score[i] < -1e-6:
        raise AssertionError("landmark outside the parameter domain")  # pragma: no cover
    return i, np.clip(bary[i], 0.0, 1.0) / np.clip(bary[i], 0.0, 1.0).sum()


def _edge_point(
    faces: np.ndarray, n_faces: int, chain: np.ndarray, u: float
) -> tuple[int, np.ndarray]:
    """Face and barycentrics of the point at fraction u of a vertex chain (by vertex index,
    so that the two edges of a slit, which share their columns, get matching points), on a
    face among the first ``n_faces`` that holds the chain's segment."""
    x = u * (len(chain) - 1)
    k = int(np.clip(np.floor(x), 0, len(chain) - 2))
    t = float(x - k)
    a, b = chain[k], chain[k + 1]
    f = faces[:n_faces]
    hit = np.where((f == a).any(axis=1) & (f == b).any(axis=1))[0]
    fi = int(hit[0])
    bary = np.zeros(3)
    bary[np.where(f[fi] == a)[0][0]] = 1.0 - t
    bary[np.where(f[fi] == b)[0][0]] = t
    return fi, bary


def landmarks(g: Template) -> tuple[np.ndarray, np.ndarray]:
    """iBUG-68 embedding: face indices (68,) and barycentric coordinates (68, 3)."""
    deg = np.deg2rad
    sk = g.skin
    P = g.vertices
    pf = _param_faces(g)
    F = sk.faces[pf]
    uv0 = np.stack([sk.phi, sk.theta0], axis=1)[F]  # grid parameter
    uv = np.stack([sk.phi, sk.theta], axis=1)[F]  # ray direction (before the eyes open)
    n_skin_faces = len(sk.faces)
    out: list[tuple[int, np.ndarray]] = []

    def grid(phi: float, theta0: float) -> None:
        i, b = _locate(uv0, np.array([phi, theta0]))
        out.append((int(pf[i]), b))

    rays: list[tuple[int, float, float]] = []  # (slot, azimuth, height), cast together

    def ray_to(phi: float, y: float) -> None:
        """The skin point seen from the ray origin at azimuth phi and height y."""
        rays.append((len(out), phi, y))
        out.append((-1, np.zeros(3)))

    # 0-16 face contour, subject's right (-x) to left, through the chin
    for i in range(17):
        s = i / 8.0 - 1.0
        ray_to(deg(74.0) * s, 0.016 - 0.101 * (1.0 - abs(s) ** 1.7))
    # 17-21 right brow (outer -> inner), 22-26 left brow (inner -> outer)
    for p in deg(np.array([-49.0, -40.0, -31.0, -22.0, -13.5, 13.5, 22.0, 31.0, 40.0, 49.0])):
        grid(p, float(brow_arch(np.array(p))))
    # 27-30 nose bridge (nasion -> tip), 31-35 nose base (right -> left)
    tip = P[sk.grid[:, sk.grid.shape[1] // 2 - 1]]
    tip_y = float(tip[np.argmax(tip[:, 2]), 1])
    top_y = EYE_CENTER[1] + 0.001
    for k in range(4):
        ray_to(0.0, top_y + (tip_y - top_y) * k / 3.0)
    for p, y in zip(
        deg(np.array([-10.5, -5.0, 0.0, 5.0, 10.5])),
        (-0.0185, -0.022, -0.025, -0.022, -0.0185),
        strict=True,
    ):
        ray_to(float(p), y)
    # 36-47 eyes on the lid edges; chains run inner -> outer canthus
    n_f = n_skin_faces
    for i, order in ((1, "right"), (0, "left")):
        up, lo = sk.eye_upper[i], sk.eye_lower[i]
        if order == "right":  # 36 outer, 37 38 upper, 39 inner, 40 41 lower
            spec = [(up, 1.0), (up, 2 / 3), (up, 1 / 3), (up, 0.0), (lo, 1 / 3), (lo, 2 / 3)]
        else:  # 42 inner, 43 44 upper, 45 outer, 46 47 lower
            spec = [(up, 0.0), (up, 1 / 3), (up, 2 / 3), (up, 1.0), (lo, 2 / 3), (lo, 1 / 3)]
        out += [_edge_point(g.faces, n_f, ch, u) for ch, u in spec]
    # 48-59 outer lip contour: corners just outside the slit, vermilion borders
    pmc = MOUTH_CORNER_AZIMUTH
    eps = 1e-7
    grid(-pmc - deg(1.2), MOUTH_ELEVATION + eps)
    for f in (-0.62, -0.28, 0.0, 0.28, 0.62):
        grid(f * pmc, MOUTH_ELEVATION + float(vermilion(np.array(f * pmc))[0]))
    grid(pmc + deg(1.2), MOUTH_ELEVATION + eps)
    for f in (0.62, 0.30, 0.0, -0.30, -0.62):
        grid(f * pmc, MOUTH_ELEVATION - float(vermilion(np.array(f * pmc))[1]))
    # 60-67 inner lip contour on the slit edges (chains run right -> left corner)
    up, lo = sk.mouth_upper, sk.mouth_lower
    spec = [
        (up, 0.0),
        (up, 0.25),
        (up, 0.5),
        (up, 0.75),
        (up, 1.0),
        (lo, 0.75),
        (lo, 0.5),
        (lo, 0.25),
    ]
    out += [_edge_point(g.faces, n_f, ch, u) for ch, u in spec]
    phis = np.array([r[1] for r in rays])
    want = np.array([r[2] for r in rays])

    def first_down(ts: np.ndarray) -> np.ndarray:
        """(n_rays,) elevation among ts (n_rays, T), descending, where the hits first come
        down to the wanted height (the frontmost such point: the chin, not under it)."""
        d = ray_dirs(ts, phis[:, None]).reshape(-1, 3)
        t = cast_rays(np.broadcast_to(RAY_ORIGIN, d.shape), d, head_sdf, 0.03, 0.2)
        ys = (RAY_ORIGIN[1] + t * d[:, 1]).reshape(ts.shape)
        below = np.nan_to_num(ys, nan=np.inf) <= want[:, None]
        k = np.where(
            below.any(axis=1),
            np.argmax(below, axis=1),
            np.nanargmin(np.abs(ys - want[:, None]), axis=1),
        )
        return ts[np.arange(len(ts)), k]

    coarse = first_down(np.broadcast_to(np.linspace(deg(60.0), deg(-80.0), 141), (len(rays), 141)))
    fine = first_down(coarse[:, None] + np.linspace(deg(1.0), deg(-1.0), 41)[None, :])
    for (slot, phi, _), theta in zip(rays, fine, strict=True):
        i, b = _locate(uv, np.array([phi, theta]))
        out[slot] = (int(pf[i]), b)
    face_idx = np.array([o[0] for o in out], dtype=np.int64)
    bary = np.stack([o[1] for o in out])
    return face_idx, bary


def _hairline(phi: np.ndarray) -> np.ndarray:
    """Height (y) of the hairline around the head at azimuth phi."""
    return np.interp(
        np.abs(np.rad2deg(phi)),
        [0, 30, 48, 62, 74, 82, 92, 110, 125, 140, 180],
        [0.098, 0.092, 0.082, 0.072, 0.050, 0.030, 0.040, 0.038, 0.00, -0.045, -0.055],
    )


def masks(g: Template) -> dict[str, np.ndarray]:
    """FLAME_masks-style regions (vertex indices). Disjoint leaves: face skin, eyebrows,
    nose, lips, eyeballs, mouth interior, scalp, ears, neck; ``face`` contains the brows,
    nose, lips, eye regions and forehead; ``boundary`` lies in ``neck``."""
    deg = np.deg2rad
    sk = g.skin
    n = g.n_skin
    ps = g.vertices[:n]
    a = ps.copy()
    a[:, 0] = np.abs(a[:, 0])  # mirrored onto the subject's left
    head = ~sk.is_neck
    th0, ph = sk.theta0, sk.phi
    dt = th0 - MOUTH_ELEVATION

    ears = (ear_sdf(a) < 0.003) & (a[:, 0] > 0.058) & (ps[:, 2] < 0.02)
    jaw_line = -0.066 - 0.36 * np.clip(ps[:, 2], 0.0, None)
    neck = (sk.is_neck | (ps[:, 1] < jaw_line)) & ~ears
    neck[sk.pole] = False
    scalp = (ps[:, 1] > _hairline(ph)) & ~ears & ~neck
    scalp[sk.pole] = True
    scalp &= ~((ps[:, 1] < 0.0) & (ps[:, 2] > -0.04))  # no hair on the jaw
    face = ~ears & ~neck & ~scalp

    h_up, h_lo = vermilion(ph)
    within = np.abs(ph) <= MOUTH_CORNER_AZIMUTH * 1.04
    upper_lip = head & within & (sk.lip_side >= 0) & (dt >= -1e-9) & (dt <= h_up + deg(0.3))
    lower_lip = head & within & (sk.lip_side < 0) & (dt <= 1e-9) & (-dt <= h_lo + deg(0.3))
    upper_lip[sk.mouth_upper] = True
    lower_lip[sk.mouth_lower[1:-1]] = True
    lower_lip &= ~upper_lip

    nose = face & (nose_sdf(a) < 0.0012) & (ps[:, 1] > -0.0235) & ~upper_lip

    brow_c = brow_arch(ph)
    inbrow = (
        (np.abs(th0 - brow_c) <= brow_half_width(ph) + 1e-9)
        & (np.abs(ph) > deg(10.0))
        & (np.abs(ph) < deg(53.0))
        & head
        & face
        & ~nose
    )
    eye_region = []
    for sgn in (1.0, -1.0):
        r = np.linalg.norm(ps - EYE_CENTER * [sgn, 1.0, 1.0], axis=1)
        eye_region.append(face & (r < 0.024) & ~nose & (np.sign(ps[:, 0]) == sgn))
    forehead = face & head & (th0 > brow_c + brow_half_width(ph)) & (np.abs(ph) < deg(60.0))

    boundary = np.zeros(n, dtype=bool)
    boundary[sk.grid[-1]] = True
    boundary[sk.cap] = True

    def idx(m: np.ndarray) -> np.ndarray:
        return np.where(m)[0].astype(np.int64)

    out = {
        "face": idx(face),
        "lips": idx(upper_lip | lower_lip),
        "upper_lip": idx(upper_lip),
        "lower_lip": idx(lower_lip),
        "mouth_interior": g.cavity.astype(np.int64),
        "nose": idx(nose),
        "forehead": idx(forehead),
        "left_eye_region": idx(eye_region[0]),
        "right_eye_region": idx(eye_region[1]),
        "left_eyeball": g.eyeballs[0].astype(np.int64),
        "right_eyeball": g.eyeballs[1].astype(np.int64),
        "left_eyebrow": idx(inbrow & (ps[:, 0] > 0)),
        "right_eyebrow": idx(inbrow & (ps[:, 0] < 0)),
        "scalp": idx(scalp),
        "neck": idx(neck),
        "left_ear": idx(ears & (ps[:, 0] > 0)),
        "right_ear": idx(ears & (ps[:, 0] < 0)),
        "boundary": idx(boundary),
    }
    return out
