"""Videos of mesh sequences (talkhead.training.render, talkhead.training.held_out): frame count
and sound, one camera for the side-by-side panels, streaming a chunk at a time, and the
held-out comparison of a trained model."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest
import torch

from talkhead.training.render import (
    MeshFiles,
    Panel,
    PosedFlame,
    render_panels,
    write_video,
)

torch.set_num_threads(1)


def sphere(T: int, shift: float = 0.0):
    """(T, V, 3) an icosphere of radius 0.1 m breathing over time, and its faces."""
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    v = np.asarray(mesh.vertices, np.float32)
    scale = 1 + 0.2 * np.sin(np.arange(T) / 5.0)[:, None, None]
    verts = (v[None] * scale).astype(np.float32)
    verts[..., 0] += shift
    return verts, np.asarray(mesh.faces)


class Recording:
    """A frame source that records the slices asked of it and keeps weak references to the
    blocks it handed out."""

    def __init__(self, verts: np.ndarray) -> None:
        self.verts = verts
        self.asked: list[tuple[int, int]] = []
        self.blocks: list[tuple[int, weakref.ref]] = []

    def __len__(self) -> int:
        return len(self.verts)

    def __getitem__(self, index: slice) -> np.ndarray:
        a, b, _ = index.indices(len(self.verts))
        self.asked.append((a, b))
        block = np.array(self.verts[index])  # a fresh array, as a file or a pose would give
        self.blocks.append((a, weakref.ref(block)))
        return block


def decode(path):
    import av

    with av.open(str(path)) as box:
        kinds = {s.type for s in box.streams}
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    with av.open(str(path)) as box:
        audio = sum(f.samples for f in box.decode(audio=0)) if "audio" in kinds else 0
        rate = box.streams.audio[0].rate if "audio" in kinds else 0
    return kinds, frames, audio, rate


def test_video_has_seconds_times_fps_frames_and_the_sound(tmp_path):
    fps, seconds, rate = 25.0, 2.0, 16000
    verts, faces = sphere(int(seconds * fps))
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.3 * np.sin(2 * np.pi * 220 * t)
    panels = [Panel(verts, faces, "truth"), Panel(verts + 0.01, faces, "prediction")]
    path = write_video(
        tmp_path / "v.mp4", render_panels(panels, size=64, chunk=8), fps, audio, rate
    )
    kinds, frames, n_audio, got_rate = decode(path)
    assert kinds == {"video", "audio"}
    assert len(frames) == seconds * fps
    assert frames[0].shape == (64, 128, 3)
    assert got_rate == rate and abs(n_audio - audio.size) <= 1024 + 2048  # AAC padding


def test_panels_share_one_camera():
    verts, faces = sphere(3)
    same = list(render_panels([Panel(verts, faces), Panel(verts, faces)], size=48))
    assert np.array_equal(same[1][:, :48], same[1][:, 48:])
    assert same[1][:, :48].max() > 0  # something is drawn
    # a label is drawn at the top of its own panel only
    labelled = next(render_panels([Panel(verts, faces), Panel(verts, faces, "LABEL")], 48))
    assert np.array_equal(labelled[:, :48], same[0][:, :48])
    assert not np.array_equal(labelled[:12, 48:], same[0][:12, 48:])
    # the right sphere moved 5 cm to the right: in the shared framing it is drawn further right
    moved = list(render_panels([Panel(verts, faces), Panel(verts + [0.05, 0, 0], faces)], 48))
    left, right = moved[0][:, :48, 0] > 0, moved[0][:, 48:, 0] > 0
    cols = np.arange(48)
    assert (cols * right.sum(0)).sum() / right.sum() > (cols * left.sum(0)).sum() / left.sum() + 5


def test_renderer_reads_a_chunk_at_a_time_and_keeps_none_behind():
    verts, faces = sphere(40)
    src = Recording(verts)
    frames = render_panels([Panel(src, faces)], size=32, chunk=8)
    first = next(frames)
    assert first.shape == (32, 32, 3)
    assert all(b - a <= 8 for a, b in src.asked)
    n_bounds = 5  # the framing pass reads every chunk once, then the first chunk is read
    assert src.asked[:n_bounds] == [(a, a + 8) for a in range(0, 40, 8)]
    assert src.asked[n_bounds:] == [(0, 8)]
    for t, _ in enumerate(frames, start=1):
        gc.collect()
        render_asks = src.asked[n_bounds:]
        # when frame t is out, the source was asked nothing beyond t's chunk
        assert max(b for _, b in render_asks) <= (t // 8 + 1) * 8
        # and no block of an earlier chunk is still alive
        alive = [a for a, ref in src.blocks if ref() is not None]
        assert all(a >= (t // 8) * 8 for a in alive), (t, alive)
    assert t == 39


def test_frames_without_a_mesh_are_drawn_empty_with_the_note():
    verts, faces = sphere(4)
    verts[2] = np.nan
    frames = list(render_panels([Panel(verts, faces, missing="no fit")], size=64))
    assert frames[1].max() > 0
    mid = frames[2][50:, :, 0]  # under the note drawn at mid-height: nothing
    assert mid.max() == 0 and frames[2][32:50].max() > 0 and frames[2][:32].max() == 0


# ---- the held-out comparison -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 30-vertex head, a packaged dataset of two subjects and a FaceFormer trained 10 steps
    on it (the training tests' set-up)."""
    from test_dataset import outputs_of, small_model, write_stage_outputs

    from talkhead.dataset.stage import run_dataset_stage
    from talkhead.flame import FlameLayer, save_flame_model
    from talkhead.training.train import train_model

    folder = tmp_path_factory.mktemp("held_out")
    save_flame_model(folder / "generic_model.pkl", small_model())
    layer = FlameLayer.from_file(folder / "generic_model.pkl")
    results = folder / "results"
    pairs = [("p001", "A"), ("p002", "A")]
    for i, (s, q) in enumerate(pairs):
        write_stage_outputs(results, layer, s, q, T=16, seed=i)
    root = results / "dataset"
    split = folder / "splits_in.json"
    split.write_text(json.dumps({"train": ["p001"], "test": ["p002"]}))
    run_dataset_stage(
        outputs_of(results, pairs), root, {"include_nphm": False, "splits_file": str(split)}
    )
    models = {
        "training": {"steps": 10, "batch_size": 2, "window_frames": 8, "window_stride": 4},
        "faceformer": {"latent_dim": 16, "n_heads": 2, "ff_dim": 32},
    }
    out = folder / "faceformer"
    train_model(root, "faceformer", out, models, flame_model=folder / "generic_model.pkl")
    return {"root": root, "model": out / "model.ckpt", "head": folder / "generic_model.pkl"}


def test_held_out_video_shows_the_fit_beside_the_prediction(trained, tmp_path):
    from talkhead.dataset import layout
    from talkhead.flame import FlameLayer, load_flame_params
    from talkhead.training.held_out import animate_held_out

    video = tmp_path / "held_out.mp4"
    summary = animate_held_out(
        trained["model"], trained["root"], trained["head"], tmp_path / "out", video, size=32
    )
    assert summary["sequence"] == "p002_A" and summary["split"] == "test"
    kinds, frames, n_audio, _ = decode(video)
    assert kinds == {"video", "audio"}
    assert len(frames) == summary["frames"] == round(summary["seconds"] * summary["fps"])
    assert frames[0].shape == (32, 64, 3)
    assert summary["fitted_frames_shown"] == 16
    # the left panel is the fit: the posed parameters of the test sequence, model space
    layer = FlameLayer.from_file(trained["head"])
    params = load_flame_params(
        layout.flame_params_path(layout.sequence_dir(trained["root"], "p002_A"))
    )
    truth = PosedFlame(layer, params, summary["frames"], "model")
    t = int(params["frames"][3])
    posed = truth[t : t + 1][0]
    ref = (
        layer.pose_params(
            {
                **params,
                "rotation": 0 * params["rotation"],
                "translation": 0 * params["translation"],
                "scale": 1 + 0 * params["scale"],
            },
            np.array([3]),
        )
        .vertices[0]
        .numpy()
    )
    assert np.allclose(posed, ref, atol=1e-6)
    # the right panel is the prediction's meshes
    pred = MeshFiles(
        tmp_path / "out" / "sample_00" / "meshes", summary["frames"], layer.num_vertices
    )
    assert np.isfinite(pred[0:2]).all()


def test_posed_flame_maps_video_frames_to_fitted_rows(trained):
    from talkhead.dataset import layout
    from talkhead.flame import FlameLayer, load_flame_params

    layer = FlameLayer.from_file(trained["head"])
    params = load_flame_params(
        layout.flame_params_path(layout.sequence_dir(trained["root"], "p001_A"))
    )
    frames = np.asarray(params["frames"])
    per_frame = {k for k, v in params.items() if np.ndim(v) and len(v) == len(frames)} - {"shape"}
    keep = {k: np.asarray(v)[::2] if k in per_frame else v for k, v in params.items()}
    src = PosedFlame(layer, keep, int(frames.max()) + 3, "world")
    block = src[0 : len(src)]
    have = np.isfinite(block).all(axis=(1, 2))
    assert set(np.nonzero(have)[0]) == set(frames[::2].tolist())
    world = layer.pose_params(params, np.array([2])).vertices[0].numpy()
    assert np.allclose(block[frames[2]], world, atol=1e-6)


def test_surface_files_hold_each_mesh_until_the_next(tmp_path):
    """Meshes with their own faces (NPHM's marching cubes) decoded every 3rd frame: the video
    shows each until the next; without hold the frames between have no mesh."""
    import trimesh

    from talkhead.training.render import SurfaceFiles

    verts, faces = sphere(9)
    small = trimesh.creation.icosphere(subdivisions=1, radius=0.1)  # another topology
    for t in (0, 3, 6):
        v, f = (verts[t], faces) if t != 3 else (np.asarray(small.vertices) * 1.5, small.faces)
        trimesh.Trimesh(v, f, process=False).export(tmp_path / f"frame_{t:05d}.ply")
    held = SurfaceFiles(tmp_path, 9)
    assert list(held.frames) == [0, 3, 6] and len(held) == 9
    assert held.mesh(2)[0].shape == verts[0].shape and held.mesh(4)[1].shape == small.faces.shape
    assert held.mesh(9) is None and held.mesh(-1) is None
    images = list(render_panels([Panel(held, None, missing="none")], size=48))
    assert len(images) == 9
    for t in range(9):
        assert np.array_equal(images[t], images[t - t % 3])
    assert not np.array_equal(images[0], images[3]) and not np.array_equal(images[3], images[6])
    # the same mesh drawn from an array with its faces gives the same image
    array = next(render_panels([Panel(verts[:1], faces)], size=48, camera=None))
    only_first = SurfaceFiles(tmp_path, 1)
    assert np.array_equal(next(render_panels([Panel(only_first, None)], size=48)), array)
    gaps = SurfaceFiles(tmp_path, 9, hold=False)
    strict = list(render_panels([Panel(gaps, None, "", "gap")], size=64))
    assert strict[1][50:].max() == 0 and strict[1][32:50].max() > 0  # the note, no mesh
    assert strict[3][50:].max() > 0
