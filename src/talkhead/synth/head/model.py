"""The head model: build it as a FLAME-style dict, pose it, write it as FLAME's files.

:func:`build_head_model` assembles the template (:mod:`.template`), the blendshapes
(:mod:`.blendshapes`), the rig (:mod:`.rig`) and the annotations (:mod:`.annotations`)
under FLAME's keys; :func:`write_head_model` writes the three files a FLAME loader reads;
:func:`pose_head` deforms one frame through the package's linear blend skinning
(:func:`talkhead.flame.lbs.lbs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ...io import PathLike
from .annotations import landmarks, masks
from .blendshapes import (
    EXPRESSION_NAMES,
    expression_meaningful,
    expression_random,
    shape_meaningful,
    shape_random,
)
from .rig import PARENTS, joint_regressor, pose_correctives, skinning_weights
from .sdf import head_sdf, sdf_normals
from .template import build_template, mirror_index


def build_head_model(
    seed: int = 0, n_shape: int = 50, n_expression: int = 50, detail: float = 1.0
) -> dict:
    """Build the procedural head as a FLAME-style model dict (deterministic in ``seed``).

    Args:
        seed: seeds the random identity and expression components (the template, the
            meaningful components, joints, weights, landmarks and masks do not depend on it).
        n_shape: S, identity components; the first ones are :data:`SHAPE_NAMES`.
        n_expression: E >= 5, expression components; the first ones are
            :data:`EXPRESSION_NAMES`.
        detail: density of the skin grid (1.0: about 6k vertices).

    Returns:
        dict with FLAME's keys: ``v_template`` (V, 3), ``f`` (F, 3) uint32, ``shapedirs``
        (V, 3, S+E), ``posedirs`` (V, 3, 36), ``J_regressor`` (5, V) scipy csc,
        ``weights`` (V, 5), ``kintree_table`` (2, 5) uint32, ``J`` (5, 3), ``num_shape``
        (int S); plus ``lmk_face_idx`` (68,), ``lmk_b_coords`` (68, 3) and ``masks``
        {region: vertex indices}.
    """
    if n_shape < 0 or n_expression < len(EXPRESSION_NAMES):
        raise ValueError(
            f"need n_shape >= 0 and n_expression >= {len(EXPRESSION_NAMES)}, "
            f"got {n_shape}, {n_expression}"
        )
    if not 0.3 <= detail <= 3.0:
        raise ValueError(f"detail must be in [0.3, 3], got {detail}")
    rng = np.random.default_rng(seed)
    g = build_template(detail)
    P = g.vertices
    mirror = mirror_index(P)
    normals = np.zeros_like(P)
    normals[: g.n_skin] = sdf_normals(P[: g.n_skin], head_sdf)

    shapes = shape_meaningful(g, normals)[:n_shape]
    shapes += shape_random(
        g, n_shape - len(shapes), np.random.default_rng(rng.integers(2**63)), mirror
    )
    exprs = expression_meaningful(g)
    exprs += expression_random(
        g, n_expression - len(exprs), np.random.default_rng(rng.integers(2**63)), mirror
    )
    dirs = np.stack(shapes + exprs, axis=2) if shapes + exprs else np.zeros((len(P), 3, 0))

    weights = skinning_weights(g, mirror)
    J_reg = joint_regressor(g, mirror)
    kintree = np.array([PARENTS, np.arange(5)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    lmk_face_idx, lmk_b = landmarks(g)
    return {
        "v_template": P.astype(np.float64),
        "f": g.faces.astype(np.uint32),
        "shapedirs": dirs.astype(np.float64),
        "posedirs": pose_correctives(g, weights),
        "J_regressor": J_reg,
        "weights": weights,
        "kintree_table": kintree.astype(np.uint32),
        "J": np.asarray(J_reg @ P),
        "num_shape": int(n_shape),
        "lmk_face_idx": lmk_face_idx,
        "lmk_b_coords": lmk_b,
        "masks": masks(g),
    }


def pose_head(
    model: Mapping,
    shape: np.ndarray | None = None,
    expression: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
    neck: np.ndarray | None = None,
    jaw: np.ndarray | None = None,
    eyes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Deform the model for one frame (for previews and checks).

    Runs :func:`talkhead.flame.lbs.lbs` in float64 on the CPU (imports torch): shape and
    expression coefficients are zero-padded to the model's S and E (``shapedirs`` holds the
    shape columns, then the expression columns from ``num_shape`` on), missing poses are zero.

    Args:
        model: dict from :func:`build_head_model`.
        shape: (S',) S' <= S; expression: (E',) E' <= E; rotation, neck, jaw: (3,)
            axis-angle (radians); eyes: (6,) left then right eye axis-angle.

    Returns:
        vertices (V, 3) and landmarks (68, 3), metres.

    Raises:
        ValueError: if ``shape`` or ``expression`` has more coefficients than the model.
    """
    import torch

    from ...flame.lbs import lbs

    S = int(model["num_shape"])
    dirs = np.asarray(model["shapedirs"], dtype=np.float64)
    E = dirs.shape[2] - S
    betas = np.zeros(S + E)
    for name, val, start, size in (("shape", shape, 0, S), ("expression", expression, S, E)):
        if val is None:
            continue
        val = np.asarray(val, dtype=np.float64).ravel()
        if len(val) > size:
            raise ValueError(f"{name} has {len(val)} coefficients, the model has {size}")
        betas[start : start + len(val)] = val
    pose = np.zeros((len(PARENTS), 3))
    for j, val in ((0, rotation), (1, neck), (2, jaw)):
        if val is not None:
            pose[j] = val
    if eyes is not None:
        pose[3:] = np.asarray(eyes).reshape(2, 3)
    J_regressor = model["J_regressor"]
    J_regressor = J_regressor.toarray() if sp.issparse(J_regressor) else J_regressor

    def f64(a: object) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64))

    verts, _ = lbs(
        betas=f64(betas)[None],
        pose=f64(pose).reshape(1, -1),
        v_template=f64(model["v_template"]),
        shapedirs=f64(dirs),
        posedirs=f64(model["posedirs"]),
        J_regressor=f64(J_regressor),
        parents=[int(p) for p in PARENTS],
        lbs_weights=f64(model["weights"]),
    )
    out = verts[0].numpy()
    tri = np.asarray(model["f"]).astype(np.int64)[np.asarray(model["lmk_face_idx"])]
    lmk = np.einsum("lkc,lk->lc", out[tri], np.asarray(model["lmk_b_coords"]))
    return out, lmk


def write_head_model(out_dir: PathLike, model: Mapping) -> dict[str, Path]:
    """Write ``generic_model.pkl`` (FLAME's Python-2 / chumpy-style pickle),
    ``landmark_embedding.npz`` and ``FLAME_masks.pkl`` into ``out_dir`` (atomically).

    Returns:
        {"model": path, "landmarks": path, "masks": path}.
    """
    from ...flame.model import save_flame_model, save_landmark_embedding, save_region_masks

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = (
        "v_template",
        "f",
        "shapedirs",
        "posedirs",
        "J_regressor",
        "weights",
        "kintree_table",
        "J",
        "num_shape",
    )
    paths = {
        "model": out / "generic_model.pkl",
        "landmarks": out / "landmark_embedding.npz",
        "masks": out / "FLAME_masks.pkl",
    }
    save_flame_model(paths["model"], {k: model[k] for k in keys}, legacy=True)
    save_landmark_embedding(paths["landmarks"], model["lmk_face_idx"], model["lmk_b_coords"])
    save_region_masks(paths["masks"], model["masks"])
    return paths
