"""A headless preview of mesh sequences: orthographic, Lambert-shaded renders (open3d's
RaycastingScene, no display), side-by-side panels sharing one camera (ground truth beside a
prediction), and an mp4 with the audio (PyAV: H.264 + AAC).

Long sequences stream: frames are read from their sources a chunk at a time (a source is
anything sliceable to (n, V, 3): an array, a memory map, :class:`PosedFlame`,
:class:`MeshFiles`), rendered and handed to the encoder one by one, so memory holds one chunk
of vertices and the encoder's few frames of look-ahead, whatever the length. Meshes without a
fixed topology (NPHM's marching cubes) are a :class:`SurfaceFiles` source, read a frame at a
time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..flame.meshes import frame_mesh_name
from ..io import PathLike, atomic_path

__all__ = [
    "CHUNK_FRAMES",
    "Camera",
    "FrameSource",
    "MeshFiles",
    "Panel",
    "PosedFlame",
    "SurfaceFiles",
    "SurfaceSource",
    "render_frames",
    "render_panels",
    "sequence_camera",
    "write_video",
]

_LIGHT = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
CHUNK_FRAMES = 64
"""Frames of vertices read from a source at a time."""


class FrameSource(Protocol):
    """A mesh sequence read in slices: ``len(source)`` frames, ``source[a:b]`` (b - a, V, 3)
    metres (rows of NaN: no mesh for that frame)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice) -> np.ndarray: ...


class SurfaceSource(Protocol):
    """A sequence of meshes each with its own faces: ``len(source)`` frames,
    ``source.mesh(t)`` vertices (V_t, 3) metres and faces (F_t, 3), or None (no mesh)."""

    def __len__(self) -> int: ...

    def mesh(self, t: int) -> tuple[np.ndarray, np.ndarray] | None: ...


@dataclass(frozen=True)
class Camera:
    """An orthographic camera looking along -z (FLAME model space: y up, the face towards
    +z): ``centre`` (2,) and ``half`` (half the side of the square it sees, metres) in x, y;
    rays start at ``z``."""

    centre: np.ndarray
    half: float
    z: float

    def rays(self, size: int) -> np.ndarray:
        """(size, size, 6) float32 rays (origin, direction), row 0 at the top."""
        u = (np.arange(size) + 0.5) / size * 2 - 1
        rays = np.zeros((size, size, 6), np.float32)
        rays[..., 0] = self.centre[0] + self.half * u[None, :]
        rays[..., 1] = self.centre[1] - self.half * u[:, None]
        rays[..., 2] = self.z
        rays[..., 5] = -1.0
        return rays


def _vertex_blocks(src: FrameSource | SurfaceSource, chunk: int) -> Iterator[np.ndarray]:
    """The vertices of a source, a chunk of frames (or one surface) at a time, (n, 3)."""
    if hasattr(src, "mesh"):
        for t in range(len(src)):
            surface = src.mesh(t)  # type: ignore[union-attr]
            if surface is not None:
                yield np.asarray(surface[0], np.float64).reshape(-1, 3)
        return
    for a in range(0, len(src), chunk):
        yield np.asarray(src[a : a + chunk], np.float64).reshape(-1, 3)  # type: ignore[index]


def sequence_camera(
    sources: Sequence[FrameSource | SurfaceSource],
    margin: float = 0.08,
    chunk: int = CHUNK_FRAMES,
) -> Camera:
    """One framing for every frame of every source: their x-y bounds plus ``margin`` (a
    fraction of their size), read a chunk at a time (NaN rows ignored).

    Raises:
        ValueError: no finite vertex in any source.
    """
    lo, hi, zmax = np.full(2, np.inf), np.full(2, -np.inf), -np.inf
    for src in sources:
        for v in _vertex_blocks(src, chunk):
            v = v[np.isfinite(v).all(axis=-1)]
            if v.size:
                lo = np.minimum(lo, v[:, :2].min(axis=0))
                hi = np.maximum(hi, v[:, :2].max(axis=0))
                zmax = max(zmax, float(v[:, 2].max()))
    if not np.isfinite(zmax):
        raise ValueError("no finite vertex to frame")
    return Camera((lo + hi) / 2, float((hi - lo).max() / 2 * (1 + margin) + 1e-6), zmax + 1.0)


def _shade(frame: np.ndarray, faces: Any, rays: Any) -> np.ndarray:  # faces: an o3d Tensor
    """(size, size) uint8 grey of one mesh (black where no face is hit; all black for a frame
    of NaN)."""
    import open3d as o3d

    size = int(rays.shape[0])
    if not np.isfinite(frame).all():
        return np.zeros((size, size), np.uint8)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(frame, np.float32)), faces)
    hit = scene.cast_rays(rays)
    miss = ~np.isfinite(hit["t_hit"].numpy())
    shade = np.abs(hit["primitive_normals"].numpy() @ _LIGHT)
    grey = (40 + 215 * shade).clip(0, 255)
    grey[miss] = 0
    return grey.astype(np.uint8)


def render_frames(
    vertices: FrameSource,
    faces: np.ndarray,
    size: int = 256,
    margin: float = 0.08,
    chunk: int = CHUNK_FRAMES,
) -> Iterator[np.ndarray]:
    """Render each frame of a mesh sequence, viewed along -z, with one framing for the whole
    sequence (:func:`sequence_camera`), reading ``chunk`` frames at a time.

    Args:
        vertices: (T, V, 3) metres (any :class:`FrameSource`).
        faces: (F, 3) vertex indices.
        size: image side (pixels, even for H.264).
        margin: border around the sequence's bounds, as a fraction of their size.

    Yields:
        (size, size, 3) uint8 RGB images, grey shading on black.
    """
    yield from render_panels([Panel(vertices, faces)], size, margin, chunk)


@dataclass(frozen=True)
class Panel:
    """One panel of a side-by-side video: a mesh sequence and its faces (or, with ``faces``
    None, a :class:`SurfaceSource` whose meshes carry their own), a label drawn at the top
    left (empty: none) and the text drawn on its frames without a mesh."""

    vertices: FrameSource | SurfaceSource
    faces: np.ndarray | None
    label: str = ""
    missing: str = "no mesh"


def _label(image: np.ndarray, text: str, row: int) -> None:
    """Draw ``text`` on ``image`` (in place), white on a dark band, at pixel row ``row``."""
    import cv2

    if not text:
        return
    scale = max(0.3, image.shape[0] / 640)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = row + h + 4
    image[row : y + base + 2, : w + 8] //= 3
    cv2.putText(
        image, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )


def render_panels(
    panels: Sequence[Panel],
    size: int = 256,
    margin: float = 0.08,
    chunk: int = CHUNK_FRAMES,
    camera: Camera | None = None,
) -> Iterator[np.ndarray]:
    """Render mesh sequences side by side with one camera (the framing of all of them), a
    frame at a time: each source is read ``chunk`` frames at a time and nothing else of it is
    kept, so memory does not grow with the length.

    Args:
        panels: the sequences, left to right; the video has as many frames as the longest
            (a shorter one's missing frames are drawn as without a mesh).
        size: each panel's side (pixels, even for H.264).
        margin: border around the bounds, as a fraction of their size.
        chunk: frames read from a source at a time.
        camera: the framing (default: :func:`sequence_camera` of every panel's source).

    Yields:
        (size, size * len(panels), 3) uint8 RGB images: grey shading on black, each panel's
        label at its top left and, on frames without its mesh, its ``missing`` text.

    Raises:
        ValueError: no panel, or no finite vertex in any of them.
    """
    import open3d as o3d

    if not panels:
        raise ValueError("no panel to render")
    if camera is None:
        camera = sequence_camera([p.vertices for p in panels], margin, chunk)
    rays = o3d.core.Tensor(camera.rays(size))
    tris = [
        None if p.faces is None else o3d.core.Tensor(np.asarray(p.faces, np.uint32)) for p in panels
    ]
    T = max(len(p.vertices) for p in panels)
    for a in range(0, T, chunk):
        b = min(a + chunk, T)
        blocks = [
            np.asarray(p.vertices[a:b])  # type: ignore[index]
            if p.faces is not None and a < len(p.vertices)
            else None
            for p in panels
        ]
        for i in range(b - a):
            image = np.zeros((size, size * len(panels), 3), np.uint8)
            for k, (panel, block) in enumerate(zip(panels, blocks, strict=True)):
                view = image[:, k * size : (k + 1) * size]
                if panel.faces is None:
                    surface = panel.vertices.mesh(a + i) if a + i < len(panel.vertices) else None  # type: ignore[union-attr]
                    frame, faces = (None, None) if surface is None else surface
                    if faces is not None:
                        faces = o3d.core.Tensor(np.asarray(faces, np.uint32))
                else:
                    frame = block[i] if block is not None and i < len(block) else None
                    faces = tris[k]
                if frame is not None and len(frame) and np.isfinite(frame).all():
                    view[...] = _shade(frame, faces, rays)[..., None]
                else:
                    _label(view, panel.missing, size // 2)
                _label(view, panel.label, 0)
            yield image
        del blocks


class PosedFlame:
    """A :class:`FrameSource` of FLAME parameters posed on demand (a slice at a time), on the
    frames of a video: frame ``t`` of the video is the parameters' row whose ``frames`` id is
    ``t``; frames the parameters lack are NaN.

    Args:
        layer: a :class:`talkhead.flame.layer.FlameLayer` of the head model the fit used.
        params: FLAME parameters (:func:`talkhead.flame.params.load_flame_params`).
        n_frames: the video's length (default: the last frame id + 1).
        space: ``world`` (as fitted) or ``model`` (head rotation and translation 0, scale 1:
            the frame audio-driven models predict in).
    """

    def __init__(
        self,
        layer: Any,
        params: dict[str, np.ndarray],
        n_frames: int | None = None,
        space: str = "model",
    ) -> None:
        if space not in ("world", "model"):
            raise ValueError(f"space must be 'world' or 'model', got {space!r}")
        frames = np.asarray(params["frames"], np.int64)
        if space == "model":
            n = len(frames)
            params = {
                **params,
                "rotation": np.zeros((n, 3), np.float32),
                "translation": np.zeros((n, 3), np.float32),
                "scale": np.ones((n, 1), np.float32),
            }
        self.layer, self.params = layer, params
        self.n_frames = int(frames.max()) + 1 if n_frames is None else int(n_frames)
        self.row = np.full(max(self.n_frames, 0), -1, np.int64)
        keep = (frames >= 0) & (frames < self.n_frames)
        self.row[frames[keep]] = np.nonzero(keep)[0]

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, index: slice) -> np.ndarray:
        rows = self.row[index]
        out = np.full((len(rows), self.layer.num_vertices, 3), np.nan, np.float32)
        have = rows >= 0
        if have.any():
            posed = self.layer.pose_params(self.params, rows[have]).vertices
            out[have] = posed.float().numpy()
        return out


class MeshFiles:
    """A :class:`FrameSource` of one mesh file per frame (``frame_<t:05d>.ply``, read when
    sliced); a missing file is a frame of NaN.

    Args:
        folder: the meshes' folder.
        n_frames: the sequence's length.
        n_vertices: vertices per mesh.
    """

    def __init__(self, folder: PathLike, n_frames: int, n_vertices: int) -> None:
        self.folder, self.n_frames, self.n_vertices = Path(folder), int(n_frames), int(n_vertices)

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, index: slice) -> np.ndarray:
        import trimesh

        ts = range(self.n_frames)[index]
        out = np.full((len(ts), self.n_vertices, 3), np.nan, np.float32)
        for i, t in enumerate(ts):
            path = self.folder / f"frame_{t:05d}.ply"
            if path.is_file():
                mesh = trimesh.load(str(path), process=False, force="mesh")
                out[i] = np.asarray(mesh.vertices, np.float32)
        return out


class SurfaceFiles:
    """A :class:`SurfaceSource` of one mesh file per frame, each with its own faces
    (``frame_<t:05d>.ply``, NPHM's marching cubes), read when asked. A frame without a file
    shows the latest earlier mesh when ``hold`` (meshes decoded every few frames, shown as a
    step animation), else no mesh.

    Args:
        folder: the meshes' folder.
        n_frames: the sequence's length.
        hold: keep showing the last mesh until the next file.
    """

    def __init__(self, folder: PathLike, n_frames: int, hold: bool = True) -> None:
        self.folder, self.n_frames, self.hold = Path(folder), int(n_frames), bool(hold)
        present = []
        for path in self.folder.glob("frame_*.ply") if self.folder.is_dir() else []:
            stem = path.stem.removeprefix("frame_")
            if stem.isdigit() and int(stem) < self.n_frames:
                present.append(int(stem))
        self.frames = np.array(sorted(present), np.int64)
        """Frames with a mesh file (listed when the source is made)."""
        self._cached: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return self.n_frames

    def mesh(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        import trimesh

        if not 0 <= t < self.n_frames:
            return None
        i = int(np.searchsorted(self.frames, t, side="right")) - 1
        if i < 0 or (not self.hold and self.frames[i] != t):
            return None
        s = int(self.frames[i])
        if self._cached is None or self._cached[0] != s:
            path = self.folder / frame_mesh_name(s)
            mesh = trimesh.load(str(path), process=False, force="mesh")
            verts = np.asarray(mesh.vertices, np.float32)
            self._cached = (s, (verts, np.asarray(mesh.faces, np.int64)))
        return self._cached[1]


def write_video(
    path: PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Path:
    """An mp4 of RGB frames (H.264, yuv420p) with mono audio (AAC), written atomically.

    Frames are encoded as they come (the iterable is consumed one frame at a time, nothing is
    stacked), and the audio up to each frame's end is encoded after it, so the streams are
    interleaved; the index is at the front (``faststart``) for browsers.

    Args:
        frames: (H, W, 3) uint8 images, H and W even, all the same size.
        fps: frame rate.
        audio: (N,) float samples in [-1, 1], or None.
        sample_rate: of the audio (Hz).

    Raises:
        ValueError: no frame.
    """
    from fractions import Fraction

    import av

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    samples = None if audio is None else np.clip(np.asarray(audio, np.float32).ravel(), -1, 1)
    block = 1024  # AAC frame size
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as box:
            video = box.add_stream("libx264", rate=rate)
            video.pix_fmt = "yuv420p"
            sound = None
            if samples is not None:
                sound = box.add_stream("aac", rate=sample_rate, layout="mono")
            sent = 0  # audio samples encoded so far

            def audio_until(end: int) -> int:
                a = sent
                while sound is not None and a + block <= end:
                    af = av.AudioFrame.from_ndarray(
                        samples[None, a : a + block], format="fltp", layout="mono"
                    )
                    af.sample_rate = sample_rate
                    af.pts = a
                    box.mux(sound.encode(af))
                    a += block
                return a

            n = 0
            for image in frames:
                if n == 0:
                    video.height, video.width = image.shape[:2]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                box.mux(video.encode(frame))
                n += 1
                if samples is not None:
                    sent = audio_until(min(samples.size, int(n / rate * sample_rate)))
            if n == 0:
                raise ValueError(f"{path}: no frame to write")
            box.mux(video.encode())
            if samples is not None and sound is not None:
                sent = audio_until(samples.size)
                if sent < samples.size:  # the last, partial block
                    af = av.AudioFrame.from_ndarray(
                        samples[None, sent:], format="fltp", layout="mono"
                    )
                    af.sample_rate = sample_rate
                    af.pts = sent
                    box.mux(sound.encode(af))
                box.mux(sound.encode())
    return path
