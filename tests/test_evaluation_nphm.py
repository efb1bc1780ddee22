"""NPHM fits against ground truth (talkhead.evaluation.nphm, evaluation.stage.run_evaluate_nphm)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import trimesh

from talkhead.errors import EvaluationError
from talkhead.evaluation.ground_truth import GroundTruth, GroundTruthWriter
from talkhead.evaluation.nphm import evaluate_nphm_fit, region_faces
from talkhead.evaluation.stage import run_evaluate_nphm
from talkhead.flame.model import save_region_masks
from talkhead.io import save_npz

MM = 1e-3
FRAMES = np.array([10, 11, 13])
UNIT = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
FACE = np.flatnonzero(UNIT.vertices[:, 2] > 0.3)  # a cap facing +z


def centre(t: int) -> np.ndarray:
    return np.array([0.001 * t, -0.002 * t, 0.5])


def radius(t: int) -> float:
    return 0.09 + 0.002 * (t - 10)


def sphere_mesh(t: int, extra: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    return UNIT.vertices * (radius(t) + extra) + centre(t), np.asarray(UNIT.faces)


@pytest.fixture
def gt(tmp_path) -> GroundTruth:
    T = len(FRAMES)
    w = GroundTruthWriter(tmp_path / "gt")
    verts = np.stack([sphere_mesh(t)[0] for t in FRAMES])
    w.meshes(verts, UNIT.faces, np.zeros((T, 68, 3)))
    zeros3 = np.zeros((T, 3))
    w.flame_params(
        {
            "shape": np.zeros(4),
            "expression": np.zeros((T, 5)),
            "rotation": zeros3,
            "translation": zeros3,
            "jaw": zeros3,
            "neck": zeros3,
            "eyes": np.zeros((T, 6)),
            "frames": FRAMES,
        }
    )
    return GroundTruth.open(tmp_path / "gt")


def test_region_faces_need_all_three_vertices() -> None:
    faces = np.array([[0, 1, 2], [1, 2, 3], [3, 4, 5]])
    assert region_faces(faces, np.array([0, 1, 2, 3]), 6).tolist() == [True, True, False]
    with pytest.raises(EvaluationError, match="head model differ"):
        region_faces(faces, np.array([0, 9]), 6)


def test_identical_meshes(gt: GroundTruth) -> None:
    meshes = [sphere_mesh(t) for t in FRAMES]
    figures, per_frame = evaluate_nphm_fit(meshes, FRAMES, gt, {"face": FACE}, None, 5000)
    assert figures["frames"] == 3
    assert figures["chamfer_l1_mm"] < 1e-3 and figures["fscore_1mm"] == 1.0
    assert figures["normal_consistency"] > 0.9999
    assert np.isnan(figures["jitter_mae"])
    assert per_frame["chamfer_l1_mm"].shape == (3,)


def test_meshes_two_millimetres_out(gt: GroundTruth) -> None:
    meshes = [sphere_mesh(t, extra=2 * MM) for t in FRAMES]
    figures, per_frame = evaluate_nphm_fit(meshes, FRAMES, gt, {"face": FACE}, None, 5000)
    np.testing.assert_allclose(per_frame["chamfer_l1_mm"], 2.0, rtol=0.03)
    np.testing.assert_allclose(per_frame["accuracy_mm"], 2.0, rtol=0.03)
    np.testing.assert_allclose(per_frame["completeness_mm"], 2.0, rtol=0.03)
    assert figures["chamfer_l1_mm"] == pytest.approx(2.0, rel=0.03)
    assert figures["fscore_1mm"] == 0.0 and figures["fscore_5mm"] == 1.0


def test_each_frame_meets_its_own_truth(gt: GroundTruth) -> None:
    # frame 11's mesh given for every frame: only the second is right
    meshes = [sphere_mesh(11)] * 3
    _, per_frame = evaluate_nphm_fit(meshes, FRAMES, gt, {"face": FACE}, None, 3000)
    assert per_frame["chamfer_l1_mm"][1] < 1e-3
    assert per_frame["chamfer_l1_mm"][0] > 1.0 and per_frame["chamfer_l1_mm"][2] > 1.0


def test_jitter_respects_frame_spacing(gt: GroundTruth) -> None:
    codes = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 2.0]])  # per frame: [1, 0], then [1, 1]
    meshes = [sphere_mesh(t) for t in FRAMES]
    figures, _ = evaluate_nphm_fit(meshes, FRAMES, gt, {"face": FACE}, codes, 1000)
    assert figures["jitter_mae"] == pytest.approx(0.75)
    assert figures["jitter_rmse"] == pytest.approx(np.sqrt(0.75))


def test_bad_input(gt: GroundTruth) -> None:
    meshes = [sphere_mesh(t) for t in FRAMES]
    with pytest.raises(EvaluationError, match="no 'face' mask"):
        evaluate_nphm_fit(meshes, FRAMES, gt, {"lips": FACE})
    with pytest.raises(EvaluationError, match=r"no ground truth for frame\(s\) \[12\]"):
        evaluate_nphm_fit(meshes, np.array([10, 11, 12]), gt, {"face": FACE})
    with pytest.raises(EvaluationError, match="2 meshes for 3 frame ids"):
        evaluate_nphm_fit(meshes[:2], FRAMES, gt, {"face": FACE})
    with pytest.raises(EvaluationError, match="expression codes have shape"):
        evaluate_nphm_fit(meshes, FRAMES, gt, {"face": FACE}, np.zeros((2, 4)))
    empty = [meshes[0], (np.zeros((0, 3)), np.zeros((0, 3), int)), meshes[2]]
    with pytest.raises(EvaluationError, match="frame 11: predicted mesh is empty"):
        evaluate_nphm_fit(empty, FRAMES, gt, {"face": FACE})


def write_fit(folder, extra: float, codes: np.ndarray) -> None:
    for t in FRAMES:
        v, f = sphere_mesh(t, extra)
        path = folder / "nphm_meshes" / f"frame_{t:05d}.ply"
        path.parent.mkdir(parents=True, exist_ok=True)
        trimesh.Trimesh(v, f, process=False).export(path)
    save_npz(folder / "codes.npz", frames=FRAMES, expression=codes)


def test_run_evaluate_nphm_writes_figures_and_frame_table(gt: GroundTruth, tmp_path) -> None:
    fit = tmp_path / "nphm" / "syn000" / "SEN-00"
    smooth = np.outer(np.arange(3), np.ones(4)) * 0.1
    rough = smooth + np.array([[0.0], [0.5], [0.0]])
    write_fit(fit, 0.0, smooth)
    write_fit(fit / "unsmoothed", 2 * MM, rough)
    masks = tmp_path / "masks.npz"
    save_region_masks(masks, {"face": FACE, "lips": FACE[:10]})
    result = run_evaluate_nphm(
        fit, masks, gt.path, fit / "evaluation.json", unsmoothed_dir=fit / "unsmoothed",
        n_samples=3000,
    )  # fmt: skip
    figures = json.loads((fit / "evaluation.json").read_text())
    without = figures.pop("without_temporal")
    assert figures == pytest.approx(result.figures)
    assert without == pytest.approx(
        {k[len("unsmoothed_") :]: v for k, v in figures.items() if k.startswith("unsmoothed_")}
    )
    assert figures["chamfer_l1_mm"] < 1e-3
    assert figures["unsmoothed_chamfer_l1_mm"] == pytest.approx(2.0, rel=0.03)
    assert figures["unsmoothed_jitter_mae"] > 3 * figures["jitter_mae"]
    assert figures["jitter_mae"] == pytest.approx((0.1 + 0.1 / 2) / 2)  # frames 10, 11, 13
    with open(fit / "evaluation_frames.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == FRAMES.tolist()
    assert list(rows[0]) == [
        "frame",
        "chamfer_l1_mm",
        "accuracy_mm",
        "completeness_mm",
        "fscore_1mm",
        "fscore_5mm",
        "normal_consistency",
        "unsmoothed_chamfer_l1_mm",
    ]
    assert [float(r["unsmoothed_chamfer_l1_mm"]) for r in rows] == pytest.approx(
        [2.0] * 3, rel=0.03
    )
    assert set(result.expressions) == {"fit", "fit without smoothing"}


def test_run_evaluate_nphm_names_a_missing_mesh(gt: GroundTruth, tmp_path) -> None:
    fit = tmp_path / "fit"
    write_fit(fit, 0.0, np.zeros((3, 2)))
    (fit / "nphm_meshes" / "frame_00011.ply").unlink()
    masks = tmp_path / "masks.npz"
    save_region_masks(masks, {"face": FACE})
    with pytest.raises(EvaluationError, match="frame_00011.ply"):
        run_evaluate_nphm(fit, masks, gt.path, fit / "evaluation.json")
    assert not (fit / "evaluation.json").exists()
