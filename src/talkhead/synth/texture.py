"""Procedural textures of the synthetic studio (skin, lips, brows, eyes, hair, backdrop).

The head's albedo is a function of the CANONICAL (rest-pose template) position of a surface
point, so the pattern sticks to the skin while the face moves: a hit point's canonical
position is the barycentric interpolation of the per-vertex canonical positions of the
triangle it hit. Evaluating the noise once per ray would be slow, so
:func:`bake_head_texture` evaluates it once per subject on a regular barycentric grid inside
every triangle (a per-face texel grid, :class:`TexelGrid`); the renderer looks texels up
with the hit's triangle id and barycentric coordinates. Grid points on a shared edge have
the same canonical position in both triangles, so the texture is continuous across edges.

All functions are vectorised numpy and deterministic given their seeds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Albedo classes of the head texture (columns of the region-weight arrays).
REGIONS: tuple[str, ...] = ("skin", "lips", "brow", "eyeball", "hair", "mouth")
_REGION_INDEX = {name: i for i, name in enumerate(REGIONS)}

# Mask name -> albedo class, in increasing priority (a later mask overrides an earlier one).
_MASK_TO_REGION: tuple[tuple[str, str], ...] = (
    ("scalp", "hair"),
    ("left_eyebrow", "brow"),
    ("right_eyebrow", "brow"),
    ("lips", "lips"),
    ("upper_lip", "lips"),
    ("lower_lip", "lips"),
    ("mouth_interior", "mouth"),
    ("left_eyeball", "eyeball"),
    ("right_eyeball", "eyeball"),
)


# --------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------

_PERM_SIZE = 4096  # lattice period of the noise (cells)


@functools.lru_cache(maxsize=512)
def _lattice(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Doubled permutation table and lattice values of one noise seed (Perlin's scheme)."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])
    perm = rng.permutation(_PERM_SIZE)
    perm2 = np.concatenate([perm, perm]).astype(np.intp)
    values = rng.random(_PERM_SIZE)[perm2]  # value of the final permutation index
    return perm2, values


def value_noise3(points: np.ndarray, frequency: float | Sequence[float], seed: int) -> np.ndarray:
    """Smooth 3D value noise in [0, 1].

    Lattice values come from a seeded permutation table (period 4096 cells per axis).

    Args:
        points: (N, 3) positions (metres).
        frequency: lattice cells per metre, a scalar or one per axis (anisotropic noise).
        seed: noise seed.

    Returns:
        (N,) float64, C1-continuous (quintic interpolation of lattice values).
    """
    perm, values = _lattice(seed)
    m = _PERM_SIZE - 1
    p = np.asarray(points, dtype=np.float64) * np.asarray(frequency, dtype=np.float64)
    base = np.floor(p)
    f = p - base
    w = f * f * f * (f * (f * 6.0 - 15.0) + 10.0)
    i = base.astype(np.int64)
    ix, iy, iz = (i[:, 0] & m, i[:, 1] & m, i[:, 2] & m)
    iy1, iz1 = (iy + 1) & m, (iz + 1) & m
    out = np.zeros(len(p))
    for dx in (0, 1):
        a = perm[(ix + dx) & m]
        wx = w[:, 0] if dx else 1.0 - w[:, 0]
        for dy in (0, 1):
            b = perm[a + (iy1 if dy else iy)]
            wxy = wx * (w[:, 1] if dy else 1.0 - w[:, 1])
            out += wxy * ((1.0 - w[:, 2]) * values[b + iz] + w[:, 2] * values[b + iz1])
    return out


def fbm3(
    points: np.ndarray,
    frequency: float | Sequence[float],
    seed: int,
    octaves: int = 4,
    lacunarity: float = 2.0,
    gain: float = 0.5,
) -> np.ndarray:
    """Fractal sum of :func:`value_noise3` octaves, normalised to about [0, 1] (mean 0.5).

    Args:
        points: (N, 3); frequency: base frequency (cells per metre, scalar or per axis).

    Returns:
        (N,) float64.
    """
    freq = np.asarray(frequency, dtype=np.float64)
    total = np.zeros(len(points))
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        total += amp * value_noise3(points, freq, seed + 7919 * k)
        norm += amp
        amp *= gain
        freq = freq * lacunarity
    return total / norm


def _contrast(x: np.ndarray, k: float) -> np.ndarray:
    """Stretch noise around 0.5 (values around [0, 1] -> clipped [0, 1])."""
    return np.clip(0.5 + (x - 0.5) * k, 0.0, 1.0)


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-row blend of colours a, b ((3,) or (N, 3)) with weights t (N,)."""
    return a + (b - a) * t[:, None]


# --------------------------------------------------------------------------------------
# Subject appearance
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Palette:
    """Colours (linear-ish RGB in [0, 1]) of one subject."""

    skin: np.ndarray
    skin_red: np.ndarray
    lips: np.ndarray
    hair: np.ndarray
    brow: np.ndarray
    iris: np.ndarray
    freckle_density: float


def subject_palette(seed: int) -> Palette:
    """Draw a plausible skin tone, lip, hair and iris colour for a subject seed."""
    rng = np.random.default_rng([seed, 17])
    tone = rng.uniform(0.0, 1.0)  # 0 fair .. 1 dark
    fair = np.array([0.93, 0.76, 0.64])
    medium = np.array([0.78, 0.56, 0.40])
    dark = np.array([0.45, 0.30, 0.21])
    skin = (
        _lerp(fair, medium, np.array([min(tone * 2, 1.0)]))[0]
        if tone < 0.5
        else _lerp(medium, dark, np.array([tone * 2 - 1]))[0]
    )
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 1)
    skin_red = np.clip(skin * np.array([1.02, 0.80, 0.78]), 0, 1)
    lips = np.clip(
        0.55 * skin * np.array([0.95, 0.68, 0.68])
        + 0.45 * np.array([0.66, 0.34, 0.36]) * (1.0 - 0.45 * tone),
        0,
        1,
    )
    hairs = np.array(
        [
            [0.06, 0.045, 0.035],  # black
            [0.20, 0.12, 0.07],  # dark brown
            [0.38, 0.25, 0.14],  # brown
            [0.62, 0.48, 0.30],  # dark blond
            [0.45, 0.20, 0.10],  # auburn
            [0.55, 0.53, 0.50],  # grey
        ]
    )
    hair_p = np.array([0.3, 0.3, 0.15, 0.1, 0.08, 0.07])
    hair = hairs[rng.choice(len(hairs), p=hair_p)] * rng.uniform(0.9, 1.1)
    irises = np.array(
        [
            [0.30, 0.17, 0.07],  # brown
            [0.16, 0.09, 0.04],  # dark brown
            [0.28, 0.42, 0.58],  # blue
            [0.30, 0.40, 0.22],  # green
            [0.45, 0.35, 0.18],  # hazel
        ]
    )
    iris = irises[rng.choice(len(irises), p=[0.35, 0.25, 0.2, 0.1, 0.1])]
    freckles = float(rng.uniform(0.0, 1.0) ** 2 * (1.0 - tone))
    hair = np.clip(hair, 0, 1)
    brow = np.clip(np.minimum(hair, skin * 0.35) * 0.8 + 0.02, 0, 1)
    return Palette(skin, skin_red, lips, hair, brow, iris, freckles)


def region_weights_from_masks(
    masks: Mapping[str, np.ndarray],
    n_vertices: int,
    faces: np.ndarray | None = None,
    smooth_iterations: int = 2,
    brow_dilation: int = 1,
) -> np.ndarray:
    """Per-vertex soft weights of the albedo classes :data:`REGIONS`.

    Args:
        masks: region name -> vertex indices (FLAME_masks.pkl style; unknown names ignored).
        n_vertices: V.
        faces: (F, 3) triangles; when given, the brows grow by ``brow_dilation`` rings of
            skin vertices, then the one-hot weights are smoothed over mesh neighbours
            ``smooth_iterations`` times (soft lip line, hairline and brow edges). Separate
            components (eyeballs) never bleed into the skin.

    Returns:
        (V, len(REGIONS)) float64 rows summing to 1.
    """
    cls = np.zeros(n_vertices, dtype=np.int64)  # default skin
    for mask_name, region in _MASK_TO_REGION:
        if mask_name in masks:
            cls[np.asarray(masks[mask_name], dtype=np.int64)] = _REGION_INDEX[region]
    if faces is not None:
        e = np.asarray(faces, dtype=np.int64)
        e = np.concatenate([e[:, [0, 1]], e[:, [1, 2]], e[:, [2, 0]]])
        e = np.concatenate([e, e[:, ::-1]])
        brow, skin = _REGION_INDEX["brow"], _REGION_INDEX["skin"]
        for _ in range(brow_dilation):
            grow = e[(cls[e[:, 0]] == brow) & (cls[e[:, 1]] == skin), 1]
            cls[grow] = brow
    w = np.zeros((n_vertices, len(REGIONS)))
    w[np.arange(n_vertices), cls] = 1.0
    if faces is not None and smooth_iterations > 0:
        faces = np.asarray(faces, dtype=np.int64)
        eyeball = cls == _REGION_INDEX["eyeball"]
        for _ in range(smooth_iterations):
            acc = w.copy()
            cnt = np.ones(n_vertices)
            for a, b in ((0, 1), (1, 2), (2, 0)):
                i, j = faces[:, a], faces[:, b]
                np.add.at(acc, i, w[j])
                np.add.at(acc, j, w[i])
                np.add.at(cnt, i, 1.0)
                np.add.at(cnt, j, 1.0)
            new = acc / cnt[:, None]
            new[eyeball] = w[eyeball]  # keep the eyeball crisp
            w = new
    return w / w.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class MouthFrame:
    """Where the mouth cavity opens (canonical space).

    Attributes:
        profile_x, profile_z: (K,) the cavity's frontmost z as a function of x (the lip
            line curves back towards the corners).
        center_x, center_y, height: centre and vertical extent of the cavity.
    """

    profile_x: np.ndarray
    profile_z: np.ndarray
    center_x: float
    center_y: float
    height: float

    def depth(self, points: np.ndarray) -> np.ndarray:
        """(N,) distance of (N, 3) points behind the mouth opening (along -z)."""
        return np.interp(points[:, 0], self.profile_x, self.profile_z) - points[:, 2]


def mouth_frame_from_masks(
    canonical_vertices: np.ndarray, masks: Mapping[str, np.ndarray], bins: int = 12
) -> MouthFrame | None:
    """:class:`MouthFrame` of the ``mouth_interior`` vertices (None without that mask)."""
    idx = masks.get("mouth_interior")
    if idx is None or len(idx) < 4:
        return None
    c = np.asarray(canonical_vertices)[np.asarray(idx)]
    edges = np.linspace(c[:, 0].min(), c[:, 0].max() + 1e-9, bins + 1)
    which = np.clip(np.digitize(c[:, 0], edges) - 1, 0, bins - 1)
    xs, zs = [], []
    for b in range(bins):
        sel = which == b
        if sel.any():
            xs.append(c[sel, 0].mean())
            zs.append(c[sel, 2].max())
    return MouthFrame(
        np.asarray(xs),
        np.asarray(zs),
        float(c[:, 0].mean()),
        float((c[:, 1].min() + c[:, 1].max()) / 2),
        float(max(c[:, 1].max() - c[:, 1].min(), 1e-3)),
    )


@dataclass(frozen=True)
class EyeFrame:
    """Rest frame of one eyeball: centre (3,) and unit forward axis (3,) in canonical space."""

    center: np.ndarray
    forward: np.ndarray


def eye_frames_from_masks(
    canonical_vertices: np.ndarray,
    masks: Mapping[str, np.ndarray],
    forward: Sequence[float] = (0.0, 0.0, 1.0),
) -> list[EyeFrame]:
    """Eyeball centres (vertex means of ``left_eyeball``/``right_eyeball``) with +z forward."""
    out = []
    fwd = np.asarray(forward, dtype=np.float64)
    for name in ("left_eyeball", "right_eyeball"):
        if name in masks and len(masks[name]):
            c = canonical_vertices[np.asarray(masks[name])].mean(axis=0)
            out.append(EyeFrame(c, fwd / np.linalg.norm(fwd)))
    return out


def head_albedo(
    points: np.ndarray,
    weights: np.ndarray,
    seed: int,
    eyes: Sequence[EyeFrame] = (),
    head_center: np.ndarray | None = None,
    mouth: MouthFrame | None = None,
) -> np.ndarray:
    """Albedo of the procedural head at canonical positions.

    Args:
        points: (N, 3) canonical (rest-pose template) positions, FLAME frame (y up, face +z).
        weights: (N, len(REGIONS)) soft class weights (see :func:`region_weights_from_masks`).
        seed: subject seed (palette and noise offsets).
        eyes: rest frames of the eyeballs (iris and pupil centred on the forward axis).
        head_center: (3,) centre of the skull (hair strands radiate from above it);
            defaults to the mean of ``points``.
        mouth: where the mouth cavity opens (shading deepens and a tongue lies behind it).

    Returns:
        (N, 3) float32 RGB in [0, 1].
    """
    p = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    n = len(p)
    pal = subject_palette(seed)
    s = int(seed) * 1000003
    out = np.zeros((n, 3))

    # ---- skin (also the base under brows and the hairline) ----
    need_skin = (w[:, 0] + w[:, 1] + w[:, 2] + w[:, 4]) > 1e-6
    if need_skin.any():
        q = p[need_skin]
        blotch = fbm3(q, 16.0, s + 1, octaves=3) - 0.5  # centimetre-scale redness
        mottle = fbm3(q, 80.0, s + 2, octaves=3) - 0.5  # millimetre-scale mottling
        fine = value_noise3(q, 450.0, s + 3) - 0.5
        pores = value_noise3(q, 1100.0, s + 4)
        # redness varies more than brightness (blood under the skin)
        col = _lerp(pal.skin, pal.skin_red, np.clip(0.3 + 1.5 * blotch + 1.2 * mottle, 0.0, 0.9))
        shade = 1.0 + 0.25 * mottle + 0.14 * fine - 0.07 * _smoothstep(0.82, 0.97, pores)
        col = col * shade[:, None]
        if pal.freckle_density > 0.15:
            fr = value_noise3(q, 700.0, s + 5)
            zone = fbm3(q, 20.0, s + 6, octaves=2)
            thr = 0.95 - 0.08 * pal.freckle_density - 0.1 * _smoothstep(0.55, 0.7, zone)
            col = _lerp(col, col * np.array([0.9, 0.8, 0.72]), _smoothstep(thr, thr + 0.03, fr))
        out[need_skin] += col * (w[need_skin, 0] + w[need_skin, 2] + w[need_skin, 4])[:, None]

    # ---- lips: rosy, a shade darker than the skin, fine vertical creases ----
    m = w[:, 1] > 1e-6
    if m.any():
        q = p[m]
        crease = value_noise3(q, (550.0, 50.0, 550.0), s + 11) - 0.5
        tone = fbm3(q, 60.0, s + 12, octaves=3) - 0.5
        col = pal.lips * (1.0 + 0.35 * tone + 0.22 * crease)[:, None]
        out[m] += col * w[m, 1][:, None]

    # ---- brows: dark hairs over skin, running sideways and slightly up ----
    m = w[:, 2] > 1e-6
    if m.any():
        q = p[m]
        ax = np.abs(q[:, 0])
        # hairs follow the brow outwards: stretch the noise along x, tilt it a little
        hp = np.stack([ax, q[:, 1] - 0.25 * ax, q[:, 2]], axis=1)
        streak = fbm3(hp, (60.0, 1300.0, 1300.0), s + 21, octaves=2)
        density = _smoothstep(0.15, 0.65, w[m, 2] + 0.35 * (fbm3(q, 150.0, s + 22, 2) - 0.5))
        hair_amt = np.clip(density * (0.55 + 0.6 * _smoothstep(0.35, 0.7, streak)), 0, 0.97)
        base = out[m] / np.maximum(w[m, 0] + w[m, 2] + w[m, 4], 1e-6)[:, None]
        brow_col = pal.brow[None, :] * (0.6 + 0.8 * streak)[:, None]
        col = _lerp(base, brow_col, hair_amt)
        out[m] += (col - base) * w[m, 2][:, None]

    # ---- hair: strands radiating from the crown ----
    m = w[:, 4] > 1e-6
    if m.any():
        q = p[m]
        c = np.asarray(head_center, dtype=np.float64) if head_center is not None else p.mean(0)
        d = q - c
        r = np.linalg.norm(d, axis=1) + 1e-9
        polar = np.arccos(np.clip(d[:, 1] / r, -1, 1))  # 0 at the crown
        azim = np.arctan2(d[:, 0], d[:, 2])
        # strands: high frequency across (azimuth), low along (polar); wrap-safe embedding
        sp = np.stack([np.cos(azim) * 2.0, np.sin(azim) * 2.0, polar * 0.25], axis=1)
        strands = fbm3(sp, (140.0, 140.0, 30.0), s + 31, octaves=3)
        clumps = fbm3(q, 30.0, s + 32, octaves=2)
        sheen = 0.6 + 0.8 * _contrast(strands, 2.2) * (0.6 + 0.4 * clumps)
        hair_col = pal.hair[None, :] * sheen[:, None] + 0.015
        ww = w[m, 4]
        # hairline: thin out where the weight falls off (skin shows through)
        cover = _smoothstep(0.25, 0.75, ww + 0.3 * (clumps - 0.5) + 0.15 * (strands - 0.5))
        base = out[m] / np.maximum(w[m, 0] + w[m, 2] + ww, 1e-6)[:, None]
        col = _lerp(base, hair_col, cover)
        out[m] += (col - base) * ww[:, None]

    # ---- mouth interior: dark red, darker deeper in, a tongue on the floor ----
    m = w[:, 5] > 1e-6
    if m.any():
        q = p[m]
        tone = fbm3(q, 150.0, s + 41, octaves=2)
        col = np.array([0.36, 0.10, 0.10]) * (0.55 + 0.7 * tone)[:, None]
        if mouth is not None:
            depth = mouth.depth(q)  # behind the lips
            rel_y = (q[:, 1] - mouth.center_y) / mouth.height
            tongue = _smoothstep(0.15, 0.3, -rel_y) * _smoothstep(0.008, 0.018, depth)
            col = _lerp(
                col, np.array([0.55, 0.22, 0.22]) * (0.8 + 0.4 * tone)[:, None], 0.85 * tongue
            )
            col *= (0.5 + 0.5 * (1.0 - _smoothstep(0.01, 0.045, depth)))[:, None]
        out[m] += col * w[m, 5][:, None]

    # ---- eyeballs: sclera, iris with radial fibres and a limbal ring, pupil ----
    m = w[:, 3] > 1e-6
    if m.any():
        q = p[m]
        if eyes:
            centers = np.stack([e.center for e in eyes])
            which = np.argmin(((q[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
            fwd = np.stack([e.forward for e in eyes])[which]
            d = q - centers[which]
        else:
            fwd = np.tile([0.0, 0.0, 1.0], (len(q), 1))
            d = q - q.mean(0)
        d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-12
        theta = np.arccos(np.clip((d * fwd).sum(1), -1, 1))
        # azimuth around the forward axis (for radial iris fibres)
        ref = np.where(np.abs(fwd[:, 1:2]) < 0.9, [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]])
        e1 = np.cross(fwd, ref)
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        e2 = np.cross(fwd, e1)
        phi = np.arctan2((d * e2).sum(1), (d * e1).sum(1))
        veins = fbm3(q, 600.0, s + 51, octaves=2)
        sclera = np.array([0.90, 0.87, 0.83]) * (0.95 + 0.08 * veins)[:, None]
        sclera = _lerp(sclera, np.array([0.78, 0.58, 0.54]), 0.4 * _smoothstep(0.9, 1.6, theta))
        fib = np.stack([np.cos(phi) * 3.0, np.sin(phi) * 3.0, theta * 2.0], axis=1)
        fibres = fbm3(fib, (40.0, 40.0, 8.0), s + 52, octaves=3)
        iris_r, pupil_r = 0.60, 0.21
        iris = pal.iris[None, :] * (0.55 + 0.9 * fibres)[:, None]
        iris = iris * (1.0 - 0.6 * _smoothstep(0.75 * iris_r, iris_r, theta))[:, None]  # limbus
        iris = _lerp(iris, pal.iris * 1.3, 0.3 * (1 - _smoothstep(pupil_r, pupil_r * 1.8, theta)))
        col = _lerp(iris, sclera, _smoothstep(iris_r - 0.03, iris_r + 0.03, theta))
        col = _lerp(
            col,
            np.array([0.02, 0.02, 0.025]),
            1.0 - _smoothstep(pupil_r - 0.02, pupil_r + 0.02, theta),
        )
        out[m] += col * w[m, 3][:, None]

    return np.clip(out, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------
# Per-face texel grids
# --------------------------------------------------------------------------------------


def barycentric_grid(resolution: int) -> np.ndarray:
    """Barycentric sample coordinates (u, v) = (i, j) / R of a triangle, i + j <= R.

    Returns:
        ((R+1)(R+2)/2, 2) float64, ordered by i then j (see :func:`grid_index`).
    """
    r = resolution
    ij = [(i, j) for i in range(r + 1) for j in range(r + 1 - i)]
    return np.asarray(ij, dtype=np.float64) / r


def grid_index(i: np.ndarray, j: np.ndarray, resolution: int) -> np.ndarray:
    """Row of sample (i, j) in :func:`barycentric_grid` (clamped into the triangle)."""
    r = resolution
    i = np.clip(i, 0, r)
    j = np.clip(j, 0, r - i)
    return i * (r + 1) - (i * (i - 1)) // 2 + j


@dataclass
class TexelGrid:
    """Albedo sampled on a barycentric grid inside each triangle.

    Attributes:
        texels: (F, (R+1)(R+2)/2, 3) float32 colours at :func:`barycentric_grid` points.
        resolution: R (grid steps per triangle edge).
    """

    texels: np.ndarray
    resolution: int

    def __call__(self, prim_ids: np.ndarray, bary: np.ndarray) -> np.ndarray:
        """Piecewise-linear lookup.

        Args:
            prim_ids: (N,) triangle ids; bary: (N, 2) open3d barycentrics (u, v) with
                p = (1-u-v) a + u b + v c.

        Returns:
            (N, 3) float32 albedo.
        """
        r = self.resolution
        x = np.clip(bary[:, 0], 0, 1) * r
        y = np.clip(bary[:, 1], 0, 1) * r
        i = np.minimum(np.floor(x).astype(np.int64), r - 1)
        j = np.minimum(np.floor(y).astype(np.int64), r - 1)
        fx, fy = x - i, y - j
        upper = fx + fy > 1.0
        # lower sub-triangle: (i,j), (i+1,j), (i,j+1); upper: (i+1,j+1), (i,j+1), (i+1,j)
        w0 = np.where(upper, fx + fy - 1.0, 1.0 - fx - fy)[:, None]
        w1 = np.where(upper, 1.0 - fy, fx)[:, None]  # corner (i+1, j)
        w2 = np.where(upper, 1.0 - fx, fy)[:, None]  # corner (i, j+1)
        t = self.texels
        c0 = t[prim_ids, grid_index(i + upper, j + upper, r)]
        c1 = t[prim_ids, grid_index(i + 1, j, r)]
        c2 = t[prim_ids, grid_index(i, j + 1, r)]
        return (c0 * w0 + c1 * w1 + c2 * w2).astype(np.float32)


def bake_texels(
    vertices: np.ndarray,
    faces: np.ndarray,
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    resolution: int,
) -> TexelGrid:
    """Evaluate ``fn(points (N,3), face_ids (N,), bary (N,3)) -> (N,3)`` on every face's grid.

    Args:
        vertices: (V, 3) canonical positions; faces: (F, 3).
        resolution: grid steps per edge.
    """
    faces = np.asarray(faces, dtype=np.int64)
    uv = barycentric_grid(resolution)
    bary = np.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)  # (S, 3)
    tri = np.asarray(vertices, dtype=np.float64)[faces]  # (F, 3, 3)
    pts = np.einsum("sk,fkd->fsd", bary, tri).reshape(-1, 3)
    fid = np.repeat(np.arange(len(faces)), len(uv))
    b = np.tile(bary, (len(faces), 1))
    col = np.asarray(fn(pts, fid, b), dtype=np.float32)
    return TexelGrid(col.reshape(len(faces), len(uv), 3), resolution)


def texel_resolution(vertices: np.ndarray, faces: np.ndarray, texel_size: float) -> int:
    """Grid steps per edge so that the median edge gets texels of about ``texel_size`` metres."""
    tri = np.asarray(vertices)[np.asarray(faces)]
    edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2)
    return int(np.clip(np.ceil(np.median(edges) / texel_size), 1, 32))


def bake_head_texture(
    canonical_vertices: np.ndarray,
    faces: np.ndarray,
    masks: Mapping[str, np.ndarray],
    seed: int,
    texel_size: float = 0.0008,
    resolution: int | None = None,
) -> TexelGrid:
    """Bake the procedural head albedo into per-face texel grids.

    Args:
        canonical_vertices: (V, 3) rest-pose template (FLAME frame, metres).
        faces: (F, 3).
        masks: region name -> vertex indices (see :func:`region_weights_from_masks`).
        seed: subject seed.
        texel_size: target texel spacing in metres (ignored when ``resolution`` is given).

    Returns:
        :class:`TexelGrid` to pass as a :class:`talkhead.synth.render.Surface` albedo.
    """
    v = np.asarray(canonical_vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    weights = region_weights_from_masks(masks, len(v), faces)
    eyes = eye_frames_from_masks(v, masks)
    mouth = mouth_frame_from_masks(v, masks)
    skull = np.asarray(masks.get("scalp", np.arange(len(v))))
    center = v[skull].mean(0) if len(skull) else v.mean(0)
    center = center - np.array([0.0, 0.03, 0.0])
    r = resolution or texel_resolution(v, faces, texel_size)

    def fn(pts: np.ndarray, fid: np.ndarray, bary: np.ndarray) -> np.ndarray:
        w = np.einsum("nk,nkr->nr", bary, weights[faces[fid]])
        return head_albedo(pts, w, seed, eyes, center, mouth)

    return bake_texels(v, faces, fn, r)


def fabric_albedo(points: np.ndarray, seed: int, color: Sequence[float]) -> np.ndarray:
    """A woven-cloth albedo at (N, 3) points (for the torso). Returns (N, 3) float32."""
    p = np.asarray(points, dtype=np.float64)
    weave = (
        value_noise3(p, (700.0, 60.0, 700.0), seed + 1) * 0.5
        + value_noise3(p, (60.0, 700.0, 60.0), seed + 2) * 0.5
    )
    folds = fbm3(p, 12.0, seed + 3, octaves=3)
    shade = 0.7 + 0.45 * folds + 0.2 * (weave - 0.5)
    return np.clip(np.asarray(color)[None, :] * shade[:, None], 0, 1).astype(np.float32)


def backdrop_image(
    seed: int,
    size: int = 512,
    texel_m: float = 0.002,
    color: Sequence[float] | None = None,
) -> np.ndarray:
    """A tileable mottled backdrop (painted plaster / muslin), (size, size, 3) float32.

    Args:
        seed: backdrop seed; size: texels per side; texel_m: metres per texel the image is
            meant to be mapped with (the noise frequencies are in cycles per metre).

    Has structure from decimetres down to millimetres so stereo on the background is posed.
    """
    rng = np.random.default_rng([seed, 29])
    if color is None:
        color = rng.choice(
            np.array(
                [
                    [0.55, 0.58, 0.60],
                    [0.50, 0.55, 0.50],
                    [0.62, 0.58, 0.52],
                    [0.45, 0.50, 0.58],
                ]
            )
        )
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    # map onto a torus in 4D-ish fashion via two circles -> 3D noise of a periodic embedding
    a = 2 * np.pi * xx.ravel() / size
    b = 2 * np.pi * yy.ravel() / size
    rad = size * texel_m / (2 * np.pi)  # circle circumference = tile size in metres
    pts = np.stack([rad * np.cos(a), rad * np.sin(a) + rad * np.cos(b), rad * np.sin(b)], axis=1)
    big = fbm3(pts, 6.0, seed + 1, octaves=3)
    mid = fbm3(pts, 60.0, seed + 2, octaves=3)
    fine = value_noise3(pts, 500.0, seed + 3)
    shade = 0.72 + 0.35 * big + 0.22 * (mid - 0.5) + 0.12 * (fine - 0.5)
    img = np.asarray(color)[None, :] * shade[:, None]
    return np.clip(img, 0, 1).reshape(size, size, 3).astype(np.float32)


@dataclass
class ImageTexture:
    """Albedo from an image with per-vertex texture coordinates (repeat wrapping).

    Attributes:
        image: (h, w, 3) float32; uvs: (V, 2) texture coordinates in image widths/heights
            (values outside [0, 1] repeat); faces: (F, 3) the mesh's triangles.
    """

    image: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray

    def __call__(self, prim_ids: np.ndarray, bary: np.ndarray) -> np.ndarray:
        tri = self.uvs[self.faces[prim_ids]]  # (N, 3, 2)
        w = np.stack([1.0 - bary[:, 0] - bary[:, 1], bary[:, 0], bary[:, 1]], axis=1)
        uv = np.einsum("nk,nkd->nd", w, tri)
        h, wd = self.image.shape[:2]
        x = np.mod(uv[:, 0], 1.0) * wd - 0.5
        y = np.mod(uv[:, 1], 1.0) * h - 0.5
        x0 = np.floor(x).astype(np.int64)
        y0 = np.floor(y).astype(np.int64)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        x0m, x1m = np.mod(x0, wd), np.mod(x0 + 1, wd)
        y0m, y1m = np.mod(y0, h), np.mod(y0 + 1, h)
        im = self.image
        top = im[y0m, x0m] * (1 - fx) + im[y0m, x1m] * fx
        bot = im[y1m, x0m] * (1 - fx) + im[y1m, x1m] * fx
        return (top * (1 - fy) + bot * fy).astype(np.float32)
