"""A ray-cast multi-view renderer for triangle meshes (open3d ``RaycastingScene``, CPU).

One ray per pixel centre gives the geometry outputs (z-depth, camera-frame normal, LaPa
label, triangle id) exactly at integer pixel coordinates, so that
``talkhead.cameras.unproject(uv, depth)`` lands on the mesh. Colour and coverage (alpha)
average ``supersample**2`` rays per pixel (anti-aliasing).

Shading is view-independent: Lambertian with a few fixed directional lights plus ambient
(lights are fixed in the world, so a surface point has the same colour in every camera;
multi-view photometric consistency holds up to the optional per-camera gain and sensor
noise).

A :class:`RenderScene` holds several :class:`Surface` objects (the head, a backdrop, a
torso); one of them is the *target* whose coverage, depth, normals, labels and triangle
ids are reported. The others only appear in the colour image and occlude.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..geometry.cameras import Camera

# FLAME-style mask name -> LaPa label, in increasing priority (later masks override).
# "left"/"right" are the subject's (FLAME's left_* regions lie at +x).
_MASK_TO_LAPA: tuple[tuple[str, int], ...] = (
    ("face", 1),
    ("forehead", 1),
    ("left_eye_region", 1),
    ("right_eye_region", 1),
    ("scalp", 10),
    ("nose", 6),
    ("right_eyebrow", 2),
    ("left_eyebrow", 3),
    ("lips", 7),
    ("upper_lip", 7),
    ("lower_lip", 9),
    ("mouth_interior", 8),
    ("right_eyeball", 4),
    ("left_eyeball", 5),
    ("neck", 0),
    ("boundary", 0),
    ("left_ear", 0),
    ("right_ear", 0),
)

Albedo = Callable[[np.ndarray, np.ndarray], np.ndarray] | np.ndarray | Sequence[float]


def vertex_labels_from_masks(masks: Mapping[str, np.ndarray], n_vertices: int) -> np.ndarray:
    """Per-vertex LaPa labels from FLAME-style region masks.

    Args:
        masks: region name -> vertex indices (names as in FLAME_masks.pkl; unknown ignored).
        n_vertices: V.

    Returns:
        (V,) uint8 labels (see :data:`talkhead.capture.masks.LAPA_LABELS`); vertices in no
        known mask get 0.
        Ears, neck and the boundary ring are 0; lips without an upper/lower split get 7.
    """
    labels = np.zeros(n_vertices, dtype=np.uint8)
    for name, label in _MASK_TO_LAPA:
        if name in masks:
            labels[np.asarray(masks[name], dtype=np.int64)] = label
    return labels


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        vertices: (V, 3); faces: (F, 3) counter-clockwise seen from outside.

    Returns:
        (V, 3) float64 (zero rows for unreferenced vertices).
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)


@dataclass
class Surface:
    """A triangle mesh and its appearance.

    Attributes:
        vertices: (V, 3) world positions (metres).
        faces: (F, 3) vertex indices.
        albedo: a callable ``(prim_ids (N,), bary (N, 2)) -> (N, 3)`` (e.g. a
            :class:`talkhead.synth.texture.TexelGrid`), per-vertex colours (V, 3), or one
            colour (3,); values in [0, 1].
        labels: (V,) uint8 LaPa labels per vertex (only used for the target surface).
        smooth: interpolate vertex normals (else flat face normals).
    """

    vertices: np.ndarray
    faces: np.ndarray
    albedo: Albedo = (0.7, 0.7, 0.7)
    labels: np.ndarray | None = None
    smooth: bool = True


@dataclass(frozen=True)
class Lighting:
    """Directional lights fixed in the world plus ambient.

    Attributes:
        directions: (K, 3) unit vectors from the surface towards each light (world frame).
        intensities: (K,) scalar intensities.
        ambient: ambient term.
    """

    directions: np.ndarray = field(
        default_factory=lambda: _unit(
            np.array(
                [
                    [0.45, 0.55, 0.85],  # key: upper front, subject's left
                    [-0.7, 0.15, 0.6],  # fill: subject's right
                    [0.0, 0.9, -0.4],  # top/back rim
                    [0.0, -0.6, 0.8],  # bounce from below
                ]
            )
        )
    )
    intensities: np.ndarray = field(default_factory=lambda: np.array([0.62, 0.30, 0.18, 0.12]))
    ambient: float = 0.30

    def irradiance(self, normals: np.ndarray) -> np.ndarray:
        """(N,) Lambertian irradiance for (N, 3) unit world normals."""
        out = np.full(len(normals), float(self.ambient))
        for d, k in zip(self.directions, self.intensities, strict=True):
            cos = _rows_times(normals, d[:, None])[:, 0]
            out += k * np.maximum(cos, 0.0, out=cos)
        return out


def _rows_times(x: np.ndarray, M: np.ndarray) -> np.ndarray:
    """(..., 3) @ (3, k) with elementwise products.

    Avoids BLAS for these skinny products: multi-threaded BLAS calls are slow and erratic
    on a loaded machine (and this runs beside other jobs).
    """
    M = np.asarray(M, dtype=np.float64)
    return x[..., 0:1] * M[0] + x[..., 1:2] * M[1] + x[..., 2:3] * M[2]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@dataclass
class Hits:
    """Ray hits (N rays). ``surface`` is -1 for a miss.

    Attributes:
        t: (N,) hit parameter in units of the ray direction's length (inf for a miss).
        surface: (N,) index of the hit surface; prim: (N,) triangle id in that surface;
        bary: (N, 2) open3d barycentrics (u, v): p = (1-u-v) a + u b + v c.
    """

    t: np.ndarray
    surface: np.ndarray
    prim: np.ndarray
    bary: np.ndarray


class RenderScene:
    """Surfaces in a ray-casting acceleration structure.

    Args:
        surfaces: the meshes; ``target`` indexes the one whose coverage/depth is reported.
        nthreads: threads of the ray caster (0 = all).
    """

    def __init__(self, surfaces: Sequence[Surface], target: int = 0, nthreads: int = 0):
        import open3d as o3d

        self.surfaces = list(surfaces)
        self.target = int(target)
        self.nthreads = int(nthreads)
        self._scene = o3d.t.geometry.RaycastingScene()
        gids = []
        self._normals: list[np.ndarray] = []
        self._face_normals: list[np.ndarray] = []
        for s in self.surfaces:
            v = np.ascontiguousarray(s.vertices, dtype=np.float32)
            f = np.ascontiguousarray(s.faces, dtype=np.uint32)
            gids.append(self._scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f)))
            v64 = np.asarray(s.vertices, dtype=np.float64)
            f64 = np.asarray(s.faces, dtype=np.int64)
            fn = np.cross(v64[f64[:, 1]] - v64[f64[:, 0]], v64[f64[:, 2]] - v64[f64[:, 0]])
            self._face_normals.append(_unit(fn + 1e-30))
            self._normals.append(vertex_normals(v64, f64) if s.smooth else None)
        self._gid_to_surface = np.full(max(gids) + 2, -1, dtype=np.int64)
        self._gid_to_surface[np.asarray(gids)] = np.arange(len(gids))
        # open3d builds the BVH lazily on the first query: do it now, so that threads can
        # then cast rays concurrently (queries on a built scene are thread-safe)
        probe = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 1.0]], dtype=np.float32)
        self._scene.cast_rays(o3d.core.Tensor(probe), nthreads=1)

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> Hits:
        """Cast rays.

        Args:
            origins: (N, 3) or (3,); directions: (N, 3) (not necessarily unit).
        """
        d = np.asarray(directions, dtype=np.float32).reshape(-1, 3)
        o = np.broadcast_to(np.asarray(origins, dtype=np.float32), d.shape)
        rays = np.ascontiguousarray(np.concatenate([o, d], axis=1))
        import open3d as o3d

        out = self._scene.cast_rays(o3d.core.Tensor(rays), nthreads=self.nthreads)
        gid = out["geometry_ids"].numpy().astype(np.int64)
        miss = gid == self._scene.INVALID_ID
        surface = np.where(miss, -1, self._gid_to_surface[np.where(miss, 0, gid)])
        return Hits(
            t=out["t_hit"].numpy().astype(np.float64),
            surface=surface,
            prim=np.where(miss, 0, out["primitive_ids"].numpy().astype(np.int64)),
            bary=out["primitive_uvs"].numpy().astype(np.float64),
        )

    def normals(self, hits: Hits, directions: np.ndarray) -> np.ndarray:
        """(N, 3) unit world normals at hits, oriented against the ray (zeros for misses)."""
        d = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
        n = np.zeros((len(hits.t), 3))
        for k, s in enumerate(self.surfaces):
            m = hits.surface == k
            if not m.any():
                continue
            prim = hits.prim[m]
            geo = self._face_normals[k][prim]
            if s.smooth:
                w = _bary3(hits.bary[m])
                tri = np.asarray(s.faces, dtype=np.int64)[prim]
                nk = np.einsum("nk,nkd->nd", w, self._normals[k][tri])
                nk = _unit(nk + 1e-30)
            else:
                nk = geo
            flip = (geo * d[m]).sum(1) > 0  # back side of the triangle faces the camera
            nk[flip] *= -1.0
            n[m] = nk
        return n

    def albedo(self, hits: Hits) -> np.ndarray:
        """(N, 3) float32 albedo at hits (zeros for misses)."""
        out = np.zeros((len(hits.t), 3), dtype=np.float32)
        for k, s in enumerate(self.surfaces):
            m = hits.surface == k
            if not m.any():
                continue
            out[m] = _eval_albedo(s, hits.prim[m], hits.bary[m])
        return out

    def target_labels(self, hits: Hits) -> np.ndarray:
        """(N,) uint8 LaPa label of the target surface's nearest vertex (0 elsewhere)."""
        out = np.zeros(len(hits.t), dtype=np.uint8)
        s = self.surfaces[self.target]
        m = hits.surface == self.target
        if s.labels is None or not m.any():
            return out
        w = _bary3(hits.bary[m])
        tri = np.asarray(s.faces, dtype=np.int64)[hits.prim[m]]
        nearest = tri[np.arange(len(tri)), np.argmax(w, axis=1)]
        out[m] = np.asarray(s.labels, dtype=np.uint8)[nearest]
        return out


def _bary3(uv: np.ndarray) -> np.ndarray:
    return np.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)


def _eval_albedo(s: Surface, prim: np.ndarray, bary: np.ndarray) -> np.ndarray:
    if callable(s.albedo):
        return np.asarray(s.albedo(prim, bary), dtype=np.float32)
    a = np.asarray(s.albedo, dtype=np.float32)
    if a.ndim == 1:
        return np.broadcast_to(a, (len(prim), 3))
    tri = np.asarray(s.faces, dtype=np.int64)[prim]
    return np.einsum("nk,nkd->nd", _bary3(bary), a[tri]).astype(np.float32)


_RAY_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _cached_rays(camera: Camera, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """(origin, (H*W*S, 3) directions) of :func:`camera_rays`, memoised per camera."""
    key = (
        camera.serial,
        camera.width,
        camera.height,
        supersample,
        np.asarray(camera.K).tobytes(),
        np.asarray(camera.world_2_cam).tobytes(),
    )
    if key not in _RAY_CACHE:
        if len(_RAY_CACHE) > 64:
            _RAY_CACHE.clear()
        offs = None if supersample <= 1 else supersample_offsets(supersample)
        o, d = camera_rays(camera, offs)
        _RAY_CACHE[key] = (o, np.ascontiguousarray(d.reshape(-1, 3), dtype=np.float32))
    return _RAY_CACHE[key]


def camera_rays(camera: Camera, offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World rays through pixel centres (plus sub-pixel offsets).

    Args:
        camera: with ``width`` and ``height`` set.
        offsets: (S, 2) sub-pixel offsets in pixels (default: one ray at the centre).

    Returns:
        origin (3,) camera centre; directions (H, W, S, 3) world directions scaled so that
        their camera-frame z component is 1 (the hit parameter ``t`` is then z-depth).
    """
    if not camera.width or not camera.height:
        raise ValueError(f"camera {camera.serial} has no image size")
    offs = np.zeros((1, 2)) if offsets is None else np.asarray(offsets, dtype=np.float64)
    u, v = np.meshgrid(
        np.arange(camera.width, dtype=np.float64), np.arange(camera.height, dtype=np.float64)
    )
    uv = np.stack([u, v], axis=-1)[:, :, None, :] + offs[None, None]  # (H, W, S, 2)
    Kinv = np.linalg.inv(camera.K)
    d_cam = _rows_times(np.concatenate([uv, np.ones_like(uv[..., :1])], axis=-1), Kinv.T)
    d_cam /= d_cam[..., 2:3]
    return camera.center, _rows_times(d_cam, camera.R)  # R^T d for row vectors


def supersample_offsets(n: int) -> np.ndarray:
    """(n*n, 2) sub-pixel offsets of a regular n x n grid centred on the pixel centre."""
    g = (np.arange(n) + 0.5) / n - 0.5
    x, y = np.meshgrid(g, g)
    return np.stack([x.ravel(), y.ravel()], axis=1)


def _edge_pixels(surface: np.ndarray, t: np.ndarray, rel_depth: float = 0.01) -> np.ndarray:
    """(H, W) bool: pixels whose 8-neighbourhood hits another surface or jumps in depth."""
    H, W = surface.shape
    sp = np.pad(surface, 1, mode="edge")
    tp = np.pad(np.where(np.isfinite(t), t, 1e9), 1, mode="edge")
    t0 = tp[1:-1, 1:-1]
    edge = np.zeros((H, W), dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            s_n = sp[1 + dy : H + 1 + dy, 1 + dx : W + 1 + dx]
            t_n = tp[1 + dy : H + 1 + dy, 1 + dx : W + 1 + dx]
            edge |= (s_n != surface) | (np.abs(t_n - t0) > rel_depth * np.minimum(t_n, t0))
    return edge


def _shade(
    scene: RenderScene,
    hits: Hits,
    directions: np.ndarray,
    lighting: Lighting,
    background: np.ndarray,
    normals: np.ndarray | None = None,
) -> np.ndarray:
    """(N, 3) shaded colour of hits (background for misses)."""
    hit = hits.surface >= 0
    col = np.empty((len(hits.t), 3))
    col[:] = background
    if hit.any():
        n = scene.normals(hits, directions) if normals is None else normals
        col[hit] = scene.albedo(hits)[hit] * lighting.irradiance(n[hit])[:, None]
    return col


@dataclass
class Backdrop:
    """Static surfaces pre-rendered for one camera, composited behind a dynamic scene.

    Attributes:
        supersample: n of the n x n sub-pixel rays (must match :func:`render_view`'s).
        t: (H*W,) hit parameter (z-depth) of the centre rays, inf for a miss.
        color: (H*W, 3) shaded colour of the centre rays.
        t_sub, color_sub: the same for the (H*W*n*n,) sub-pixel rays (None when n = 1).
    """

    supersample: int
    t: np.ndarray
    color: np.ndarray
    t_sub: np.ndarray | None = None
    color_sub: np.ndarray | None = None


def prerender_backdrop(
    scene: RenderScene,
    camera: Camera,
    lighting: Lighting | None = None,
    supersample: int = 2,
    background: Sequence[float] = (0.0, 0.0, 0.0),
) -> Backdrop:
    """Render the static part of a set once per camera (see ``backdrop`` of render_view)."""
    lighting = lighting or Lighting()
    bg = np.asarray(background, dtype=np.float64)
    origin, d_c = _cached_rays(camera, 1)
    h = scene.cast(origin, d_c)
    out = Backdrop(supersample, h.t, _shade(scene, h, d_c, lighting, bg).astype(np.float32))
    if supersample > 1:
        _, d_s = _cached_rays(camera, supersample)
        hs = scene.cast(origin, d_s)
        out.t_sub = hs.t
        out.color_sub = _shade(scene, hs, d_s, lighting, bg).astype(np.float32)
    return out


def _composite(
    scene: RenderScene,
    hits: Hits,
    directions: np.ndarray,
    lighting: Lighting,
    background: np.ndarray,
    bd_t: np.ndarray | None,
    bd_color: np.ndarray | None,
    normals: np.ndarray | None = None,
) -> np.ndarray:
    """Shade hits; where a pre-rendered backdrop is nearer, take its colour (hits updated)."""
    if bd_t is None:
        return _shade(scene, hits, directions, lighting, background, normals)
    behind = bd_t < hits.t
    hits.surface[behind] = -1
    hits.t[behind] = bd_t[behind]
    col = _shade(scene, hits, directions, lighting, background, normals)
    col[behind] = bd_color[behind]
    return col


def render_view(
    scene: RenderScene,
    camera: Camera,
    lighting: Lighting | None = None,
    supersample: int = 2,
    adaptive: bool = True,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    gain: float | Sequence[float] = 1.0,
    noise_sigma: float = 0.0,
    rng: np.random.Generator | None = None,
    backdrop: Backdrop | None = None,
) -> dict[str, np.ndarray]:
    """Render one camera.

    Args:
        scene: surfaces; its target is the head.
        camera: with image size.
        lighting: defaults to :class:`Lighting()`.
        supersample: n for n x n colour/alpha rays per pixel (1 = centre ray only).
        adaptive: supersample only pixels at silhouettes and depth jumps (where a neighbour
            hits another surface or lies > 1 % deeper); elsewhere colour is the centre ray's
            and coverage is 0 or 1. Coverage is the same as with full supersampling for
            silhouettes smoother than a pixel.
        background: colour of rays that hit nothing.
        gain: camera gain (scalar or RGB) applied to the shaded image.
        noise_sigma: Gaussian sensor noise, in 8-bit levels (needs ``rng`` when > 0).
        backdrop: static surfaces pre-rendered for this camera with
            :func:`prerender_backdrop` (same lighting and supersampling); they show and
            occlude wherever they are nearer than ``scene``. Rendering a moving head in
            front of a static set this way shades the set once instead of every frame.

    Returns:
        dict with ``rgb`` (H, W, 3) uint8, ``alpha`` (H, W) uint8 coverage of the target,
        ``depth`` (H, W) float32 z-depth of the target at pixel centres (0 = not the target),
        ``normal`` (H, W, 3) float32 camera-frame unit normals of the target facing the
        camera (0 elsewhere), ``labels`` (H, W) uint8 LaPa labels, ``face_ids`` (H, W) int32
        target triangle ids (-1 elsewhere).
    """
    lighting = lighting or Lighting()
    bg = np.asarray(background, dtype=np.float64)
    H, W = camera.height, camera.width
    if backdrop is not None:
        if backdrop.t.shape != (H * W,) or (
            supersample > 1 and (backdrop.supersample != supersample or backdrop.t_sub is None)
        ):
            raise ValueError("backdrop was pre-rendered for another camera size or supersample")
    origin, d_c = _cached_rays(camera, 1)
    hc = scene.cast(origin, d_c)
    n_world = scene.normals(hc, d_c)
    col = _composite(
        scene,
        hc,
        d_c,
        lighting,
        bg,
        None if backdrop is None else backdrop.t,
        None if backdrop is None else backdrop.color,
        n_world,
    )
    on = hc.surface == scene.target
    depth = np.where(on, hc.t, 0.0).astype(np.float32)
    normal = np.where(on[:, None], _rows_times(n_world, camera.R.T), 0.0).astype(np.float32)
    labels = scene.target_labels(hc)
    face_ids = np.where(on, hc.prim, -1).astype(np.int32)

    alpha = on.astype(np.float64)
    if supersample > 1:
        S = supersample * supersample
        _, d_s = _cached_rays(camera, supersample)
        if adaptive:
            sel = np.flatnonzero(_edge_pixels(hc.surface.reshape(H, W), hc.t.reshape(H, W)))
        else:
            sel = np.arange(H * W)
        if len(sel):
            rows = (sel[:, None] * S + np.arange(S)).ravel()
            d_sel = d_s[rows]
            hs = scene.cast(origin, d_sel)
            cs = _composite(
                scene,
                hs,
                d_sel,
                lighting,
                bg,
                None if backdrop is None else backdrop.t_sub[rows],
                None if backdrop is None else backdrop.color_sub[rows],
            )
            col[sel] = cs.reshape(-1, S, 3).mean(axis=1)
            alpha[sel] = (hs.surface == scene.target).reshape(-1, S).mean(axis=1)
    return {
        "rgb": _sensor(col.reshape(H, W, 3), gain, noise_sigma, rng),
        "alpha": np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8).reshape(H, W),
        "depth": depth.reshape(H, W),
        "normal": normal.reshape(H, W, 3),
        "labels": labels.reshape(H, W),
        "face_ids": face_ids.reshape(H, W),
    }


def _sensor(
    colour: np.ndarray,
    gain: float | Sequence[float],
    noise_sigma: float,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """(H, W, 3) uint8 of (H, W, 3) shaded colour in [0, 1]: camera gain, Gaussian sensor noise
    (8-bit levels), rounding and clipping."""
    img = colour * np.asarray(gain, dtype=np.float64) * 255.0
    if noise_sigma > 0:
        if rng is None:
            raise ValueError("noise_sigma > 0 needs an rng")
        img = img + rng.normal(0.0, noise_sigma, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_plate(
    camera: Camera,
    backdrop: Backdrop,
    adaptive: bool = True,
    gain: float | Sequence[float] = 1.0,
    noise_sigma: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The empty-set plate of one camera: what :func:`render_view` records with ``backdrop``
    when nothing stands in front of it (no ray is cast; the pre-rendered colours are used).

    Pixels where the set's depth jumps are averaged over the backdrop's sub-pixel rays, as
    :func:`render_view` does (``adaptive``; else every pixel is), so that the plate equals a
    frame's pixels away from the head up to sensor noise.

    Args:
        camera: with image size; backdrop: :func:`prerender_backdrop` of the static set for it.
        gain, noise_sigma, rng: as for :func:`render_view`.

    Returns:
        (H, W, 3) uint8 RGB.

    Raises:
        ValueError: the backdrop was pre-rendered for another image size, or noise without rng.
    """
    H, W = camera.height, camera.width
    if backdrop.t.shape != (H * W,):
        raise ValueError("backdrop was pre-rendered for another camera size")
    col = backdrop.color.astype(np.float64)
    n = backdrop.supersample
    if n > 1 and backdrop.color_sub is not None:
        if adaptive:
            nothing = np.full((H, W), -1, dtype=np.int64)
            sel = np.flatnonzero(_edge_pixels(nothing, backdrop.t.reshape(H, W)))
        else:
            sel = np.arange(H * W)
        sub = backdrop.color_sub.reshape(H * W, n * n, 3)[sel].astype(np.float64)
        col[sel] = sub.mean(axis=1)
    return _sensor(col.reshape(H, W, 3), gain, noise_sigma, rng)


def render_views(
    scene: RenderScene,
    cameras: Sequence[Camera],
    gains: Sequence[float | Sequence[float]] | None = None,
    backdrops: Sequence[Backdrop] | None = None,
    **kwargs,
) -> dict[str, np.ndarray]:
    """:func:`render_view` for every camera, stacked along a leading camera axis (C, ...).

    Args:
        gains: one gain per camera (scalar or RGB), or None.
        backdrops: one pre-rendered backdrop per camera, or None.
        kwargs: the other arguments of :func:`render_view`.
    """
    views = []
    for i, cam in enumerate(cameras):
        views.append(
            render_view(
                scene,
                cam,
                gain=1.0 if gains is None else gains[i],
                backdrop=None if backdrops is None else backdrops[i],
                **kwargs,
            )
        )
    return {k: np.stack([v[k] for v in views]) for k in views[0]}


# --------------------------------------------------------------------------------------
# Landmarks
# --------------------------------------------------------------------------------------


def visible_points(
    scene: RenderScene, camera: Camera, points: np.ndarray, tolerance: float = 0.002
) -> np.ndarray:
    """Whether each point is seen by the camera (nothing in the scene lies in front of it).

    Args:
        points: (N, 3) world points (typically on the target surface).
        tolerance: metres; a hit closer than ``distance - tolerance`` occludes.

    Returns:
        (N,) bool.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    c = camera.center
    d = p - c
    hits = scene.cast(c, d)  # t = 1 at the point
    dist = np.linalg.norm(d, axis=1)
    in_front = _rows_times(d, camera.R[2][:, None])[:, 0] > 0
    return in_front & ((hits.surface < 0) | (hits.t * dist > dist - tolerance))


def project_landmarks(
    landmarks3d: np.ndarray,
    cameras: Sequence[Camera],
    scenes: Sequence[RenderScene] | RenderScene | None = None,
    rng: np.random.Generator | None = None,
    noise_px: float = 0.0,
    outlier_prob: float = 0.0,
    outlier_px: float = 25.0,
    occluded_guess_prob: float = 0.0,
    confidence: tuple[float, float] = (0.75, 1.0),
    guess_confidence: tuple[float, float] = (0.05, 0.3),
    tolerance: float = 0.002,
    visible: np.ndarray | None = None,
) -> np.ndarray:
    """Simulate a 2D landmark detector on every camera.

    A visible landmark is its projection plus Gaussian pixel noise, with confidence drawn
    from ``confidence``; with probability ``outlier_prob`` it is displaced by a gross error
    of about ``outlier_px`` (uniform direction, confidence still high, like real detector
    failures). An occluded landmark (a ray test against the scene) or one outside the image
    has confidence 0, unless with probability ``occluded_guess_prob`` the detector
    "hallucinates" it: then it is reported near its projection with twice the noise and a
    low confidence drawn from ``guess_confidence``.

    Args:
        landmarks3d: (T, L, 3) world positions.
        cameras: C cameras (with image sizes for the in-image test).
        scenes: one scene per frame (T), one for all frames, or None (no occlusion test).
        rng: random generator (needed when any noise/outlier/guess probability is > 0).
        visible: (C, T, L) bool visibility computed beforehand (e.g. with
            :func:`visible_points` while rendering); replaces the ray test of ``scenes``.

    Returns:
        (C, T, L, 3) float32: x, y (pixels), confidence in [0, 1].
    """
    lm = np.asarray(landmarks3d, dtype=np.float64)
    T, L, _ = lm.shape
    C = len(cameras)
    if rng is None:
        if noise_px > 0 or outlier_prob > 0 or occluded_guess_prob > 0:
            raise ValueError("project_landmarks needs an rng for noise and outliers")
        rng = np.random.default_rng(0)
    out = np.zeros((C, T, L, 3), dtype=np.float64)
    for ci, cam in enumerate(cameras):
        uv, z = cam.project(lm)  # (T, L, 2), (T, L)
        in_image = z > 0
        if cam.width and cam.height:
            in_image &= (uv[..., 0] >= -0.5) & (uv[..., 0] <= cam.width - 0.5)
            in_image &= (uv[..., 1] >= -0.5) & (uv[..., 1] <= cam.height - 0.5)
        vis = in_image.copy()
        if visible is not None:
            vis &= np.asarray(visible[ci], dtype=bool)
        elif scenes is not None:
            for t in range(T):
                sc = scenes if isinstance(scenes, RenderScene) else scenes[t]
                vis[t] &= visible_points(sc, cam, lm[t], tolerance)
        noise = rng.normal(0.0, 1.0, (T, L, 2))
        is_out = rng.random((T, L)) < outlier_prob
        ang = rng.uniform(0, 2 * np.pi, (T, L))
        mag = outlier_px * rng.uniform(0.6, 1.6, (T, L))
        guess = (~vis) & (rng.random((T, L)) < occluded_guess_prob) & in_image
        conf = rng.uniform(*confidence, (T, L))
        gconf = rng.uniform(*guess_confidence, (T, L))
        xy = uv + noise * noise_px * np.where(guess, 2.0, 1.0)[..., None]
        shift = np.stack([np.cos(ang), np.sin(ang)], -1) * mag[..., None]
        xy = np.where((is_out & vis)[..., None], xy + shift, xy)
        c = np.where(vis, conf, np.where(guess, gconf, 0.0))
        xy = np.where((c > 0)[..., None], xy, 0.0)
        out[ci, ..., :2] = xy
        out[ci, ..., 2] = c
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------
# Simple meshes (test objects, backdrop, torso)
# --------------------------------------------------------------------------------------


def uv_sphere(
    radius: float | Sequence[float] = 1.0,
    n_lat: int = 64,
    n_lon: int = 128,
    center: Sequence[float] = (0.0, 0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """A closed UV sphere (or axis-aligned ellipsoid when ``radius`` has 3 values).

    Returns:
        vertices (V, 3) float64, faces (F, 3) int64, outward (counter-clockwise) winding.
    """
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (3,))
    th = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    T, P = np.meshgrid(th, ph, indexing="ij")
    ring = np.stack([np.sin(T) * np.sin(P), np.cos(T), np.sin(T) * np.cos(P)], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * r + np.asarray(center)
    faces = []
    nr = n_lat - 1
    idx = lambda i, j: 1 + i * n_lon + (j % n_lon)  # noqa: E731
    for j in range(n_lon):
        faces.append([0, idx(0, j), idx(0, j + 1)])
        faces.append([len(v) - 1, idx(nr - 1, j + 1), idx(nr - 1, j)])
    for i in range(nr - 1):
        for j in range(n_lon):
            a, b, c, d = idx(i, j), idx(i, j + 1), idx(i + 1, j), idx(i + 1, j + 1)
            faces.append([a, c, b])
            faces.append([b, c, d])
    f = np.asarray(faces, dtype=np.int64)
    # ensure outward winding
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    if ((fn * (v[f].mean(1) - np.asarray(center))).sum(1) < 0).mean() > 0.5:
        f = f[:, ::-1].copy()
    return v, f


def box_mesh(
    size: Sequence[float], center: Sequence[float] = (0.0, 0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An axis-aligned box with outward faces, 4 vertices per side (flat shading friendly).

    Returns:
        vertices (24, 3), faces (12, 3), uvs (24, 2) per-side coordinates in metres.
    """
    hx, hy, hz = np.asarray(size, dtype=np.float64) / 2
    c = np.asarray(center, dtype=np.float64)
    verts, faces, uvs = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_ax, v_ax = [a for a in range(3) if a != axis]
            h = np.array([hx, hy, hz])
            quad = []
            for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis] = sign * h[axis]
                p[u_ax] = su * h[u_ax]
                p[v_ax] = sv * h[v_ax]
                quad.append(p)
                uvs.append([su * h[u_ax], sv * h[v_ax]])
            base = len(verts)
            verts.extend(quad)
            tri = [[base, base + 1, base + 2], [base, base + 2, base + 3]]
            q = np.asarray(quad)
            n = np.cross(q[1] - q[0], q[2] - q[0])
            if n[axis] * sign < 0:
                tri = [t[::-1] for t in tri]
            faces.extend(tri)
    return np.asarray(verts) + c, np.asarray(faces, dtype=np.int64), np.asarray(uvs)
