"""Stage runners on the shared tiny synthetic-studio sequence (conftest.py): depth backends,
back-projection, and the evaluate runners that measure them against ground truth."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from talkhead.capture.depth_png import write_nersemble_depth_png
from talkhead.capture.sequence import open_sequence
from talkhead.config import from_mapping
from talkhead.depth.io import depth_frame_path, load_depth_frame
from talkhead.depth.stage import resolve_backend, run_depth_stage
from talkhead.errors import ConfigError, DepthError, EvaluationError
from talkhead.evaluation.depth import depth_metrics
from talkhead.evaluation.ground_truth import GroundTruth
from talkhead.evaluation.stage import (
    evaluate_depth,
    face_masks_of,
    run_evaluate_depth,
    run_evaluate_points,
)
from talkhead.geometry.mesh_distance import point_to_mesh_distance
from talkhead.io import load_json
from talkhead.points.io import load_points
from talkhead.points.stage import run_backproject_stage
from talkhead.synth.config import StudioConfig
from talkhead.synth.studio import render_sequence, write_head_model_for

SUBJECT, SEQUENCE = "syn000", "SEN-00"


def depth_error_per_camera(seq, depth_dir, gt) -> dict[str, dict[str, float]]:
    """Depth accuracy of each camera over the sequence, in its face mask: the stage's map
    labelled ``serial`` against the true map of ``serial``."""
    masks = face_masks_of(seq)
    out = {}
    for s in seq.serials:
        pred, true, mask = [], [], []
        for t in seq.frame_ids:
            frame, truth = load_depth_frame(depth_frame_path(depth_dir, t)), gt.depth_frame(t)
            pred.append(frame.depth[frame.index(s)])
            true.append(truth.depth[truth.index(s)])
            mask.append(masks(t, [s])[0])
        out[s] = depth_metrics(np.stack(pred), np.stack(true), np.stack(mask))
    return out


@pytest.fixture(scope="module", autouse=True)
def tiny_studio_is_left_unchanged(tiny_studio):
    """No test of this module writes into the shared recording (they copy it first)."""

    def snapshot():
        return {
            p: (p.stat().st_size, p.stat().st_mtime_ns)
            for p in tiny_studio.root.rglob("*")
            if p.is_file()
        }

    before = snapshot()
    yield
    assert snapshot() == before


def test_true_depth_back_projects_onto_the_true_mesh(tiny_studio, tmp_path):
    seq, gt = tiny_studio.open(validate=True), GroundTruth.open(tiny_studio.gt_dir)
    settings = {"min_depth": 0.0, "max_depth": 1.4, "voxel_size": 0.0}
    metrics = run_backproject_stage(
        seq, gt.path / "depth", tmp_path / "points.npz", tmp_path / "metrics.json", settings
    )
    assert not any(k.startswith(("points_to_mesh", "landmarks3d_")) for k in metrics)
    data = load_points(tmp_path / "points.npz")
    verts, faces = gt.vertices(), gt.faces()
    for i, t in enumerate(data["frames"]):
        pts = data["points"][data["frame_offsets"][i] : data["frame_offsets"][i + 1]]
        assert len(pts) > 500
        assert point_to_mesh_distance(pts, verts[t], faces).max() < 1e-4  # 0.1 mm
    evaluation = run_evaluate_points(tmp_path / "points.npz", gt.path, tmp_path / "eval.json")
    assert evaluation["points_to_mesh_p90_mm"] < 0.1
    # Landmarks lifted from true depth: only the 2D detector noise is left.
    assert evaluation["landmarks3d_median_err_mm"] < 6.0
    assert load_json(tmp_path / "eval.json") == pytest.approx(evaluation, nan_ok=True)
    assert load_json(tmp_path / "metrics.json")["frames"] == seq.n_frames


def test_points_evaluation_sees_a_known_offset(tiny_studio, tmp_path):
    """Points moved 2 mm along z are 2 mm from the true mesh where the surface faces z: the
    median distance grows from ~0 to between 0.5 and 2 mm, landmarks exactly by 2 mm."""
    seq, gt = tiny_studio.open(), GroundTruth.open(tiny_studio.gt_dir)
    settings = {"voxel_size": 0.0}
    run_backproject_stage(seq, gt.path / "depth", tmp_path / "p.npz", tmp_path / "m.json", settings)
    exact = run_evaluate_points(tmp_path / "p.npz", gt.path, tmp_path / "e0.json")
    data = dict(load_points(tmp_path / "p.npz"))
    data["points"] = data["points"] + np.float32([0, 0, 0.002])
    data["landmarks3d"] = gt.landmarks3d()[data["frames"]] + np.float32([0, 0, 0.002])
    data["landmarks3d_valid"] = np.ones_like(data["landmarks3d_valid"])
    np.savez(tmp_path / "moved.npz", **data)
    moved = run_evaluate_points(tmp_path / "moved.npz", gt.path, tmp_path / "e1.json")
    assert exact["points_to_mesh_median_mm"] < 0.05
    assert 0.5 < moved["points_to_mesh_median_mm"] <= 2.0 + 1e-3
    assert moved["landmarks3d_median_err_mm"] == pytest.approx(2.0, abs=1e-3)


def test_precomputed_backend_reads_nersemble_pngs(tiny_studio, tmp_path):
    shutil.copytree(tiny_studio.capture_root, tmp_path / "capture")
    seq = open_sequence(tmp_path / "capture", SUBJECT, SEQUENCE, validate=False)
    gt = GroundTruth.open(tiny_studio.gt_dir)
    for t in seq.frame_ids:
        true = gt.depth_frame(t)
        for s in seq.serials:
            write_nersemble_depth_png(seq.precomputed_depth_path(t, s), true.depth[true.index(s)])
    seq = open_sequence(tmp_path / "capture", SUBJECT, SEQUENCE, validate=False)
    assert seq.has_precomputed_depth
    metrics = run_depth_stage(seq, tmp_path / "frames", {"backend": "precomputed"}, tmp_path / "m")
    assert metrics["backend"] == "precomputed" and metrics["face_valid_fraction"] > 0.99
    evaluation = evaluate_depth(seq.frame_ids, tmp_path / "frames", gt, face_masks_of(seq))
    # 16 bit over 2 m quantises depth to 0.03 mm.
    assert evaluation["depth_median_abs_err_mm"] < 0.03
    assert evaluation["valid_fraction"] > 0.99
    frame = load_depth_frame(depth_frame_path(tmp_path / "frames", seq.frame_ids[0]))
    assert frame.serials == tuple(seq.serials)


def test_auto_backend_takes_colmap_when_dense_stereo_can_run():
    asked = []

    def available(binary):
        asked.append(binary)
        return True, "pycolmap built with CUDA"

    backend, why = resolve_backend("auto", "/opt/colmap/bin/colmap", colmap_available=available)
    assert backend == "colmap"
    assert asked == ["/opt/colmap/bin/colmap"]  # the configured binary is the one checked
    assert why.startswith("auto:") and "pycolmap built with CUDA" in why


def test_auto_backend_falls_back_to_torch_and_says_why():
    def unavailable(binary):
        return False, f"no `{binary}` binary on PATH"

    backend, why = resolve_backend("auto", "colmap", colmap_available=unavailable)
    assert backend == "torch"
    assert "unavailable" in why and "no `colmap` binary on PATH" in why


def test_explicit_backends_do_not_look_for_colmap():
    def forbidden(binary):
        raise AssertionError("availability must not be checked for an explicit backend")

    for name in ("torch", "colmap", "precomputed"):
        assert resolve_backend(name, colmap_available=forbidden) == (
            name,
            f"depth.backend is {name!r}",
        )
    with pytest.raises(ConfigError, match="depth.backend"):
        resolve_backend("patchmatch", colmap_available=forbidden)


def test_auto_backend_by_default_asks_this_machine():
    """Without an injected check, ``auto`` follows the real availability function."""
    from talkhead.depth.colmap import colmap_dense_available

    backend, _ = resolve_backend("auto")
    assert backend == ("colmap" if colmap_dense_available()[0] else "torch")


def test_colmap_backend_without_cuda_is_a_clear_error(tiny_studio, tmp_path):
    from talkhead.depth.colmap import colmap_dense_available

    if colmap_dense_available()[0]:
        pytest.skip("COLMAP dense stereo is available here")
    with pytest.raises(DepthError, match="CUDA"):
        run_depth_stage(tiny_studio.open(), tmp_path / "f", {"backend": "colmap"}, tmp_path / "m")


def test_torch_backend_then_its_evaluation(tiny_studio, tmp_path, caplog):
    """The depth stage writes its own figures only; the evaluate runner adds the ground truth
    ones in evaluation.json and an error view whose pixels agree with them."""
    seq = tiny_studio.open()
    settings = {"backend": "torch", "torch": {"n_planes": 32}}
    with caplog.at_level(logging.INFO, logger="talkhead"):
        metrics = run_depth_stage(
            seq, tmp_path / "f", settings, tmp_path / "m.json", progress=False
        )
    assert "depth backend: torch" in caplog.text
    assert "triangulated 2D landmarks" in caplog.text
    assert len(list((tmp_path / "f").glob("frame_*.npz"))) == seq.n_frames
    assert metrics["backend"] == "torch" and metrics["device"] in ("cpu", "cuda")
    assert 0.3 < metrics["face_valid_fraction"] <= 1.0
    assert not any("err" in k for k in load_json(tmp_path / "m.json"))

    evaluation, view = run_evaluate_depth(
        seq, tmp_path / "f", tiny_studio.gt_dir, tmp_path / "evaluation.json", n_cameras=2
    )
    assert load_json(tmp_path / "evaluation.json") == pytest.approx(evaluation)
    assert 0 < evaluation["depth_median_abs_err_mm"] < 5.0
    # Each camera's maps are that camera's (measured: 1.2-2.6 mm median per camera; a frame
    # saved with its serials in another order gives 10-13 mm on the swapped cameras).
    per_camera = depth_error_per_camera(seq, tmp_path / "f", GroundTruth.open(tiny_studio.gt_dir))
    assert set(per_camera) == set(seq.serials)
    for serial, figures in per_camera.items():
        assert figures["depth_median_abs_err_mm"] < 4.0, serial
        assert figures["depth_outliers_5mm_fraction"] < 0.4, serial
        assert figures["valid_fraction"] > 0.15, serial
    assert view.t == seq.frame_ids[seq.n_frames // 2] and len(view.serials) == 2
    assert view.error_mm.shape == (2, seq.height, seq.width)
    shown = view.error_mm[np.isfinite(view.error_mm)]
    assert shown.size > 100 and (shown >= 0).all()
    assert not (np.isfinite(view.error_mm) & view.missing).any()


def test_evaluation_refuses_missing_ground_truth(tiny_studio, tmp_path):
    with pytest.raises(EvaluationError, match="ground-truth folder is missing"):
        run_evaluate_points(tmp_path / "p.npz", tmp_path / "nowhere", tmp_path / "e.json")
    gt = tmp_path / "gt"
    shutil.copytree(tiny_studio.gt_dir, gt)
    (gt / "faces.npy").unlink()
    with pytest.raises(EvaluationError, match="faces.npy"):
        GroundTruth.open(gt).faces()


@pytest.mark.slow
def test_default_capture_meets_the_depth_targets(tmp_path):
    """The shipped defaults (config/config.yaml) on 5 frames of the default synthetic capture:
    median depth error <= 1.5 mm with >= 90 % of face pixels valid (measured: 0.24 mm, 91.8 %).
    """
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "config/config.yaml").read_text())
    synthetic = {**config["synthetic"], "duration_s": 0.2}
    cfg = from_mapping(StudioConfig, synthetic, "synthetic")
    model = write_head_model_for(cfg, tmp_path / "head" / "generic_model.pkl")
    render_sequence(
        model, tmp_path / "capture", tmp_path / "gt", SUBJECT, SEQUENCE, cfg, progress=False
    )
    seq = open_sequence(tmp_path / "capture", SUBJECT, SEQUENCE, validate=False)
    assert (seq.n_cameras, seq.width, seq.height, seq.n_frames) == (8, 256, 320, 5)
    labels = tuple(config["face_mask"]["labels"])
    run_depth_stage(
        seq,
        tmp_path / "depth",
        config["depth"],
        tmp_path / "metrics.json",
        face_mask=config["face_mask"],
        progress=False,
    )
    gt = GroundTruth.open(tmp_path / "gt" / SUBJECT / SEQUENCE)
    evaluation = evaluate_depth(seq.frame_ids, tmp_path / "depth", gt, face_masks_of(seq, labels))
    assert evaluation["depth_median_abs_err_mm"] <= 1.5
    assert evaluation["valid_fraction"] >= 0.90
    assert evaluation["depth_outliers_5mm_fraction"] < 0.03
