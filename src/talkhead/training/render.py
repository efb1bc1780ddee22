"""A headless preview of mesh sequences: orthographic, Lambert-shaded renders (open3d's
RaycastingScene, no display) and an mp4 with the audio (PyAV: H.264 + AAC)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..io import PathLike, atomic_path

__all__ = ["render_frames", "write_video"]

_LIGHT = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])


def render_frames(
    vertices: np.ndarray, faces: np.ndarray, size: int = 256, margin: float = 0.08
) -> Iterable[np.ndarray]:
    """Render each frame of a mesh sequence, viewed along -z (FLAME model space: y up, the
    face towards +z), with one framing for the whole sequence.

    Args:
        vertices: (T, V, 3) metres.
        faces: (F, 3) vertex indices.
        size: image side (pixels, even for H.264).
        margin: border around the sequence's bounds, as a fraction of their size.

    Yields:
        (size, size, 3) uint8 RGB images, grey shading on black.
    """
    import open3d as o3d

    lo, hi = vertices[..., :2].min(axis=(0, 1)), vertices[..., :2].max(axis=(0, 1))
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 * (1 + margin) + 1e-6
    u = (np.arange(size) + 0.5) / size * 2 - 1
    x = centre[0] + half * u[None, :].repeat(size, 0)
    y = centre[1] - half * u[:, None].repeat(size, 1)
    z = float(vertices[..., 2].max()) + 1.0
    rays = np.zeros((size, size, 6), np.float32)
    rays[..., 0], rays[..., 1], rays[..., 2], rays[..., 5] = x, y, z, -1.0
    rays_t = o3d.core.Tensor(rays)
    tri = o3d.core.Tensor(np.asarray(faces, np.uint32))
    for frame in vertices:
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(np.asarray(frame, np.float32)), tri)
        hit = scene.cast_rays(rays_t)
        normals = hit["primitive_normals"].numpy()
        shade = np.abs(normals @ _LIGHT)
        shade[~np.isfinite(hit["t_hit"].numpy())] = 0.0
        grey = (40 + 215 * shade).clip(0, 255)
        grey[~np.isfinite(hit["t_hit"].numpy())] = 0
        yield np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def write_video(
    path: PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Path:
    """An mp4 of RGB frames (H.264, yuv420p) with mono audio (AAC), written atomically.

    Args:
        frames: (H, W, 3) uint8 images, H and W even.
        fps: frame rate.
        audio: (N,) float samples in [-1, 1], or None.
        sample_rate: of the audio (Hz).
    """
    from fractions import Fraction

    import av

    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4") as box:
            video = box.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            video.pix_fmt = "yuv420p"
            sound = None
            if audio is not None:
                sound = box.add_stream("aac", rate=sample_rate, layout="mono")
            first = True
            for image in frames:
                if first:
                    video.height, video.width = image.shape[:2]
                    first = False
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                box.mux(video.encode(frame))
            box.mux(video.encode())
            if sound is not None:
                samples = np.clip(np.asarray(audio, np.float32), -1, 1)
                chunk = 1024
                for a in range(0, samples.size, chunk):
                    block = samples[None, a : a + chunk]
                    af = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
                    af.sample_rate = sample_rate
                    af.pts = a
                    box.mux(sound.encode(af))
                box.mux(sound.encode())
    return path
