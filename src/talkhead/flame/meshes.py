"""Fitted meshes on disk: one PLY per frame (FaceTalk's ``flame_meshes/frame_<n>.ply``, with
NeRSemble's five-digit frame numbers) and the subject's neutral template.

Written with trimesh (binary PLY, vertices and faces only); a folder of frames is written
into ``.<name>.partial`` beside it and renamed when complete, so a failed job leaves no
folder a rerun trusts.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trimesh

from ..io import PathLike, atomic_path

__all__ = ["frame_mesh_name", "save_frame_meshes", "save_mesh"]


def frame_mesh_name(frame: int) -> str:
    """``frame_<t:05d>.ply``."""
    return f"frame_{int(frame):05d}.ply"


def save_mesh(path: PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write one mesh as binary PLY, atomically.

    Args:
        vertices: (V, 3) metres.
        faces: (F, 3) int vertex indices.
    """
    mesh = trimesh.Trimesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces), process=False)
    with atomic_path(path, suffix=".ply") as tmp:
        mesh.export(tmp, file_type="ply")


def save_frame_meshes(
    out_dir: PathLike, vertices: np.ndarray, faces: np.ndarray, frames: Sequence[int]
) -> None:
    """Write ``out_dir/frame_<t:05d>.ply`` for every frame, publishing the folder at the end.

    Args:
        out_dir: the folder (replaced if it exists).
        vertices: (T, V, 3) world vertices.
        faces: (F, 3).
        frames: (T,) frame ids.
    """
    out_dir = Path(out_dir)
    if len(frames) != len(vertices):
        raise ValueError(f"{len(frames)} frame ids for {len(vertices)} meshes")
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    for t, verts in zip(frames, vertices, strict=True):
        mesh = trimesh.Trimesh(np.asarray(verts, dtype=np.float64), faces, process=False)
        mesh.export(partial / frame_mesh_name(t), file_type="ply")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
