"""Plausibility checks of a capture's contents: pure functions on cameras and arrays.

What a well-formed file can still get wrong, and what each check looks for:

- the rig (:func:`rig_problems`): translations in centimetres or millimetres (cameras more
  than :data:`MAX_RIG_RADIUS_M` from their centroid, or closer than
  :data:`MIN_CAMERA_SPACING_M` to each other), camera-to-world matrices stored as
  ``world_2_cam`` (the cameras look away from each other; inverted, they face one point);
- intrinsics (:func:`intrinsics_problems`): normalised by the image size (focal lengths of a
  pixel or two), a principal point outside the images, an image size that differs from the
  calibration's;
- images and per-frame maps (:func:`image_stats` summarises one decoded array, the
  ``*_problem`` functions judge the summaries): grayscale / RGBA / 16-bit colour, 12-bit data in
  16-bit PNGs, colour-coded segmentation, label maps or mattes without face pixels;
- 2D landmarks: another landmark set (MediaPipe's 478-point mesh), no confidence column, another
  image resolution (:func:`landmarks_on_mask`, :func:`landmarks_outside`), a frame count that
  does not match;
- frame ids: a single frame, gaps.

Each returns :class:`Problem` s naming the file given, or the facts the validator
(:mod:`talkhead.capture.validate`) turns into problems; ingest calls :func:`calibration_problems`
on a calibration it converts. No file I/O here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..geometry.cameras import Camera, invert_rigid
from ..io import PathLike
from . import layout

# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One defect of a capture.

    Attributes:
        kind: machine-readable category, e.g. ``"missing_camera"``, ``"calibration_units"``
            (see :data:`talkhead.capture.validate.PROBLEM_KINDS`).
        path: the file or folder at fault.
        message: a sentence for a human (without the path; ``str(problem)`` appends it).
        severity: ``"error"`` (the capture cannot be used as is) or ``"warning"``.
    """

    kind: str
    path: Path
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.message} ({self.path})"


def error(kind: str, path: PathLike, message: str) -> Problem:
    """A :class:`Problem` of severity ``"error"``."""
    return Problem(kind, Path(path), message, "error")


def warning(kind: str, path: PathLike, message: str) -> Problem:
    """A :class:`Problem` of severity ``"warning"``."""
    return Problem(kind, Path(path), message, "warning")


def errors_of(problems: Iterable[Problem]) -> list[Problem]:
    """The problems of severity ``"error"``."""
    return [p for p in problems if p.severity == "error"]


def name_cameras(serials: Sequence[str]) -> str:
    """``camera A``, ``cameras A, B``, or ``N cameras (A, B, C, ...)``."""
    if len(serials) == 1:
        return f"camera {serials[0]}"
    if len(serials) <= 4:
        return f"cameras {', '.join(serials)}"
    return f"{len(serials)} cameras ({', '.join(serials[:3])}, ...)"


# --------------------------------------------------------------------------------------------
# The rig: units and orientation
# --------------------------------------------------------------------------------------------

MAX_RIG_RADIUS_M = 10.0
"""A camera farther than this from the rig's centroid is refused (a unit error)."""
MIN_CAMERA_SPACING_M = 0.05
"""Two cameras closer than this to each other are refused."""
HEAD_RIG_RADIUS_M = (0.2, 5.0)
"""Median camera-to-centroid distances a rescaled rig may have: a head rig (NeRSemble's
cameras stand about 1 m from the head) up to a body-scale dome."""
MAX_AXIS_ANGLE_DEG = 60.0
"""A camera whose optical axis points more than this away from the point the rig's axes meet
looks away from the rig."""
_UNIT_NAMES = {0.1: "decimetres", 0.01: "centimetres", 0.001: "millimetres"}


def camera_centres(cameras: Sequence[Camera]) -> np.ndarray:
    """(N, 3) camera centres in world coordinates."""
    return np.array([c.center for c in cameras], dtype=np.float64).reshape(-1, 3)


def optical_axes(cameras: Sequence[Camera]) -> np.ndarray:
    """(N, 3) unit viewing directions (camera +z) in world coordinates: ``R^T [0, 0, 1]``."""
    return np.array([c.R[2] for c in cameras], dtype=np.float64).reshape(-1, 3)


def axes_meeting_point(centres: np.ndarray, axes: np.ndarray) -> np.ndarray | None:
    """The point nearest (least squares) to every optical axis, or None when the axes are
    (nearly) parallel.

    Args:
        centres: (N, 3) camera centres; axes: (N, 3) unit viewing directions.

    Returns:
        (3,) the point, in the units of ``centres``.
    """
    P = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]  # (N, 3, 3) off-axis projectors
    A = P.sum(0)
    b = np.einsum("nij,nj->i", P, centres)
    if np.linalg.eigvalsh(A)[0] < 1e-3 * len(axes):  # axes within ~2 degrees of each other
        return None
    return np.linalg.solve(A, b)


def _unit_factor(median_radius: float, candidates: Sequence[float]) -> float:
    """The first candidate that makes ``median_radius`` a plausible rig radius, else the power
    of ten that brings it nearest to 1 m."""
    lo, hi = HEAD_RIG_RADIUS_M
    for f in candidates:
        if lo <= median_radius * f <= hi:
            return f
    return 10.0 ** round(-math.log10(max(median_radius, 1e-12)))


@dataclass(frozen=True)
class _Fault:
    severity: str
    kind: str
    message: str
    short: str  # the symptom in a few words (for the inverted-extrinsics message)


def _rig_faults(cameras: Sequence[Camera]) -> list[_Fault]:
    serials = [c.serial for c in cameras]
    n = len(cameras)
    if n < 2:
        return []
    centres = camera_centres(cameras)
    radius = np.linalg.norm(centres - centres.mean(0), axis=1)
    median_r = float(np.median(radius))
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    dist[np.diag_indices(n)] = np.inf
    i, j = np.unravel_index(np.argmin(dist), dist.shape)
    spacing = float(dist[i, j])
    faults: list[_Fault] = []
    if radius.max() > MAX_RIG_RADIUS_M:
        k = int(np.argmax(radius))
        f = _unit_factor(median_r, (0.01, 0.001, 0.1, 1e-4))
        unit = _UNIT_NAMES.get(f, f"a unit {1 / f:g}x smaller than metres")
        faults.append(
            _Fault(
                "error",
                "calibration_units",
                f"camera {serials[k]} stands {radius[k]:.3g} m from the rig's centre (more than "
                f"{MAX_RIG_RADIUS_M:g} m): translations in {unit}? x{f:g} puts the cameras "
                f"{median_r * f:.2f} m from the centre (metres expected; a head rig's cameras "
                "stand about 1 m from the head)",
                f"stand {median_r:.3g} m from their centre",
            )
        )
    elif spacing < MIN_CAMERA_SPACING_M and median_r < HEAD_RIG_RADIUS_M[0]:
        f = _unit_factor(median_r, (10.0, 100.0, 1000.0, 1e4))
        faults.append(
            _Fault(
                "error",
                "calibration_units",
                f"cameras {serials[i]} and {serials[j]} stand {spacing * 100:.2g} cm apart and "
                f"the cameras {median_r * 100:.2g} cm from their centre (at least "
                f"{MIN_CAMERA_SPACING_M * 100:g} cm apart expected): translations in a unit "
                f"{f:g}x larger than metres? x{f:g} puts the cameras {median_r * f:.2f} m from "
                "the centre (metres expected)",
                f"stand within {spacing * 100:.2g} cm of each other",
            )
        )
    elif spacing < MIN_CAMERA_SPACING_M:
        faults.append(
            _Fault(
                "error",
                "cameras_coincide",
                f"cameras {serials[i]} and {serials[j]} stand {spacing * 100:.2g} cm apart (at "
                f"least {MIN_CAMERA_SPACING_M * 100:g} cm expected): one camera calibrated twice, "
                "or a copied calibration entry?",
                f"include two ({serials[i]}, {serials[j]}) at one place",
            )
        )
    point = axes_meeting_point(centres, optical_axes(cameras))
    if point is not None and not faults:
        to_point = point - centres
        norm = np.linalg.norm(to_point, axis=1)
        cos = np.einsum("ni,ni->n", optical_axes(cameras), to_point) / np.maximum(norm, 1e-12)
        limit = math.cos(math.radians(MAX_AXIS_ANGLE_DEG))
        away = [s for s, c in zip(serials, cos, strict=True) if c < limit]
        if away:
            severity = "error" if 2 * len(away) >= n else "warning"
            faults.append(
                _Fault(
                    severity,
                    "cameras_look_away",
                    f"{name_cameras(away)} of {n} look more than {MAX_AXIS_ANGLE_DEG:g} degrees "
                    f"away from the point the cameras' optical axes meet, {_vec(point)} "
                    f"{float(np.median(norm)):.2f} m from them: extrinsics not world_2_cam, or "
                    "axes other than OpenCV's (x right, y down, z forward)?",
                    "look away from each other",
                )
            )
    return faults


def _vec(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{0.0 if abs(x) < 0.005 else x:.2f}" for x in v) + ")"


def rig_problems(cameras: Sequence[Camera], path: PathLike) -> list[Problem]:
    """Units and orientation of a calibrated rig.

    Refused (errors): a camera more than :data:`MAX_RIG_RADIUS_M` from the cameras' centroid
    (translations in centimetres or millimetres: the message gives the factor that makes it a
    head rig), two cameras closer than :data:`MIN_CAMERA_SPACING_M`, half the cameras or more
    looking away (more than :data:`MAX_AXIS_ANGLE_DEG`) from the point where the optical axes
    meet, and ``world_2_cam`` matrices that are camera-to-world (as stored the rig fails one of
    those checks; inverted it passes them all). Fewer cameras looking away: a warning.

    Args:
        cameras: the rig (its ``world_2_cam`` as read from the file); fewer than two: no check.
        path: the calibration file the problems name.
    """
    faults = _rig_faults(cameras)
    if any(f.severity == "error" for f in faults):
        inverted = [replace(c, world_2_cam=invert_rigid(c.world_2_cam)) for c in cameras]
        if not _rig_faults(inverted):
            centres = camera_centres(inverted)
            point = axes_meeting_point(centres, optical_axes(inverted))
            dist = (
                ""
                if point is None
                else (
                    f" {float(np.median(np.linalg.norm(point - centres, axis=1))):.2f} m from the "
                    "point they all face"
                )
            )
            first = next(f for f in faults if f.severity == "error")
            return [
                error(
                    "calibration_inverted",
                    path,
                    f"world_2_cam holds camera-to-world matrices (cam_2_world): as stored the "
                    f"cameras {first.short}; inverted they stand{dist} (invert every 4x4 "
                    "matrix)",
                )
            ]
    return [Problem(f.kind, Path(path), f.message, f.severity) for f in faults]


# --------------------------------------------------------------------------------------------
# Intrinsics and image sizes
# --------------------------------------------------------------------------------------------

MIN_FOCAL_PX = 10.0
"""Focal lengths below this many pixels mean intrinsics normalised by the image size."""


def _size_str(wh: tuple[int, int] | None) -> str:
    return f"{wh[0]}x{wh[1]}" if wh else "unknown"


def intrinsics_problems(
    cameras: Sequence[Camera],
    path: PathLike,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    normalised: bool = True,
    principal_point: bool = True,
) -> list[Problem]:
    """Intrinsics that cannot be in pixels for the images they come with.

    Refused: focal lengths below :data:`MIN_FOCAL_PX` (intrinsics normalised by the image size,
    fx ~ 1 and cx ~ 0.5: a singular matrix for depth), a principal point outside the image or
    at a uniform multiple (1.5x or more, 1/1.5 or less) of the image centre (intrinsics of
    another resolution: the likely factor is given; or of a rotated image).
    Cameras with the same problem are reported together.

    Args:
        cameras: the calibrated cameras.
        path: the calibration file the problems name.
        image_sizes: ``{serial: (width, height)}`` of the images; a camera without one uses its
            calibrated size (``width``, ``height``), else only the focal length is checked.
        normalised, principal_point: run that check (both by default).
    """
    sizes = dict(image_sizes or {})
    flat: dict[str, tuple[Camera, tuple[int, int] | None]] = {}
    outside: dict[str, list[str]] = defaultdict(list)
    for cam in cameras:
        K = cam.K
        wh = sizes.get(cam.serial) or ((cam.width, cam.height) if cam.width else None)
        if max(K[0, 0], K[1, 1]) < MIN_FOCAL_PX:
            flat[cam.serial] = (cam, wh)
            continue
        if wh is None or not principal_point:
            continue
        w, h = wh
        cx, cy = float(K[0, 2]), float(K[1, 2])
        inside = -0.5 <= cx <= w - 0.5 and -0.5 <= cy <= h - 0.5
        # the principal point at a uniform multiple of the image centre: a rescaled image
        rx, ry = (cx + 0.5) / (w / 2), (cy + 0.5) / (h / 2)
        uniform = rx > 0 and ry > 0 and abs(rx - ry) < 0.1 * max(rx, ry)
        if inside and not (uniform and not 1 / 1.5 < rx < 1.5):
            continue
        where = "outside" if not inside else f"at {rx:.2g}x the centre of"
        if uniform:
            hint = (
                f"intrinsics of {rx:.2g}x larger images? scale the first two rows by {1 / rx:.2g}"
            )
        elif 0 <= cx <= h and 0 <= cy <= w:
            hint = "intrinsics of the rotated image (portrait vs landscape)?"
        else:
            hint = "intrinsics of another image size?"
        msg = f"principal point ({cx:.1f}, {cy:.1f}) lies {where} the {_size_str(wh)} image: {hint}"
        outside[msg].append(cam.serial)
    problems = []
    if flat and normalised:
        cam, wh = next(iter(flat.values()))
        K = cam.K
        example = ""
        if wh:
            example = (
                f"; for {_size_str(wh)} images that is fx={K[0, 0] * wh[0]:.0f}, "
                f"cx={K[0, 2] * wh[0]:.0f}"
            )
        problems.append(
            error(
                "intrinsics_normalised",
                path,
                f"intrinsics of {name_cameras(sorted(flat))} look normalised by the image size "
                f"(fx={K[0, 0]:.3g}, fy={K[1, 1]:.3g}, cx={K[0, 2]:.3g}, cy={K[1, 2]:.3g}; "
                "pixels expected): multiply the first row by the image width and the second by "
                f"the height{example}",
            )
        )
    for msg, serials in outside.items():
        problems.append(
            error("intrinsics_image_size", path, f"intrinsics of {name_cameras(serials)}: {msg}")
        )
    return problems


def image_size_problems(
    calibrated: Mapping[str, tuple[int, int]],
    observed: Mapping[str, tuple[int, int]],
    path: PathLike,
) -> list[Problem]:
    """The calibration's image sizes against the images' (an error, never a silent rescale).

    Cameras with the same pair of sizes are reported together; a uniform ratio is named as a
    likely rescale.

    Args:
        calibrated: ``{serial: (width, height)}`` from the calibration.
        observed: ``{serial: (width, height)}`` of the images.
        path: the calibration file the problems name.
    """
    by_pair: dict[tuple[tuple[int, int], tuple[int, int]], list[str]] = defaultdict(list)
    for serial, wh in sorted(observed.items()):
        cal = calibrated.get(serial)
        if cal and tuple(cal) != tuple(wh):
            by_pair[(tuple(wh), tuple(cal))].append(serial)
    problems = []
    for (wh, cal), group in by_pair.items():
        hint = ""
        fx, fy = cal[0] / wh[0], cal[1] / wh[1]
        if abs(fx - fy) < 1e-6 and fx != 1:
            hint = f" (images rescaled by 1/{fx:g}? scale the intrinsics and image_size)"
        elif (cal[1], cal[0]) == wh:
            hint = " (portrait vs landscape: images rotated?)"
        problems.append(
            error(
                "image_size_mismatch",
                path,
                f"{name_cameras(group)} images are {_size_str(wh)} but the calibration says "
                f"{_size_str(cal)}{hint}",
            )
        )
    return problems


MIN_CAMERAS = 2
"""Depth (multi-view stereo) needs at least two views of each frame."""


def camera_count_problems(serials: Sequence[str], path: PathLike) -> list[Problem]:
    """A sequence with fewer than :data:`MIN_CAMERAS` cameras: an error naming ``path``.

    Args:
        serials: the sequence's cameras (calibrated, or with images).
        path: the calibration file that lists them.
    """
    if len(serials) >= MIN_CAMERAS:
        return []
    have = f"camera {serials[0]}" if serials else "no camera"
    return [
        error(
            "too_few_cameras",
            path,
            f"{have} only: depth needs at least {MIN_CAMERAS} views (calibrate more cameras in "
            "this file, or list at least two in the sample sheet's cameras column)",
        )
    ]


def calibration_problems(
    cameras: Sequence[Camera],
    path: PathLike,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> list[Problem]:
    """Every check of a calibration: :func:`rig_problems`, :func:`intrinsics_problems` and,
    with ``image_sizes``, :func:`image_size_problems` against the calibrated sizes."""
    problems = rig_problems(cameras, path) + intrinsics_problems(cameras, path, image_sizes)
    if image_sizes:
        calibrated = {c.serial: (c.width, c.height) for c in cameras if c.width and c.height}
        problems += image_size_problems(calibrated, image_sizes, path)
    return problems


# --------------------------------------------------------------------------------------------
# Images and per-frame maps
# --------------------------------------------------------------------------------------------

LAPA_MAX_LABEL = 10
"""facer's LaPa labels are 0 (background) to 10 (hair)."""
TWELVE_BIT_MAX = 4095
"""A 16-bit PNG whose values never exceed this holds 12-bit data."""
LANDMARK_SCALES = (0.25, 1 / 3, 0.5, 2 / 3, 1.0, 1.5, 2.0, 3.0, 4.0)
"""Factors :func:`landmarks_on_mask` tries on landmark coordinates (1 = as stored)."""


def voc_colormap(n: int = 256) -> np.ndarray:
    """PASCAL VOC's label colour map: (n, 3) uint8 RGB of label ids 0..n-1 (the bits of the id
    spread over the three channels from the most significant bit down; 1 = (128, 0, 0))."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - j)
            c >>= 3
        cmap[i] = rgb
    return cmap


def labels_from_colour(rgb: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Label ids of a colour-coded (3-channel) segmentation, where the coding is one we can
    name.

    Args:
        rgb: (H, W, 3) uint8 RGB.

    Returns:
        ``(labels, "grey")`` when the three channels are equal (labels = the grey level);
        ``(labels, "PASCAL VOC colour map")`` when every colour is VOC's colour of a LaPa label
        (0..10); ``(None, "colours")`` otherwise (palette colours cannot be read as labels).
    """
    rgb = np.asarray(rgb)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0].copy(), "grey"
    cmap = voc_colormap(LAPA_MAX_LABEL + 1).astype(np.int64)
    keys = (cmap[:, 0] << 16) | (cmap[:, 1] << 8) | cmap[:, 2]
    px = rgb.astype(np.int64)
    pix = (px[..., 0] << 16) | (px[..., 1] << 8) | px[..., 2]
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], pix), 0, len(keys) - 1)
    ids = order[pos]
    if np.all(keys[ids] == pix):
        return ids.astype(np.uint8), "PASCAL VOC colour map"
    return None, "colours"


def colour_format_note(channels: int, dtype: str) -> str | None:
    """How an image that is not 8-bit RGB is read (``None`` for 8-bit RGB): grayscale is
    repeated into RGB, an alpha channel is dropped (mattes come from the alpha maps only),
    16-bit is scaled to 8 bit (value / 257)."""
    notes = []
    if channels == 1:
        notes.append("grayscale (read as RGB by repeating the grey level)")
    elif channels == 2:
        notes.append("grayscale + alpha (read as RGB by repeating the grey level; alpha dropped)")
    elif channels == 4:
        notes.append("RGBA (alpha dropped: mattes come from the alpha maps only)")
    if dtype == "uint16":
        notes.append("16-bit (scaled to 8 bit, value / 257)")
    return ", ".join(notes) if notes else None


def is_twelve_bit(max_value: int | None, dtype: str) -> bool:
    """A 16-bit array whose non-zero values never exceed 4095: 12-bit data stored in 16 bits."""
    return dtype == "uint16" and max_value is not None and 0 < max_value <= TWELVE_BIT_MAX


@dataclass(frozen=True)
class ImageStats:
    """What the validator keeps of one decoded image or map (see :func:`image_stats`).

    Attributes:
        width, height, channels: as decoded; dtype: ``"uint8"`` or ``"uint16"``.
        max_value: largest value (None when only the header was read).
        foreground: alpha: pixels above the threshold; segmentation: pixels with a face label;
            depth: non-zero pixels (None when not decoded or for images).
        labels: segmentation: the label ids present (after reading a colour coding).
        colour_coding: segmentation with 3+ channels: ``"grey"``, ``"PASCAL VOC colour map"``
            or ``"colours"`` (not labels); None for single-channel maps.
        median_value: depth: median non-zero value.
        on_mask: alpha / segmentation with landmarks given: per factor of
            :data:`LANDMARK_SCALES`, the fraction of the frame's confident landmarks that land on
            the foreground (None without landmarks or foreground).
    """

    width: int
    height: int
    channels: int
    dtype: str
    max_value: int | None = None
    foreground: int | None = None
    labels: tuple[int, ...] | None = None
    colour_coding: str | None = None
    median_value: float | None = None
    on_mask: tuple[float, ...] | None = None


def landmarks_on_mask(
    mask: np.ndarray, landmarks: np.ndarray, scales: Sequence[float] = LANDMARK_SCALES
) -> tuple[float, ...] | None:
    """Fraction of confident landmarks on a foreground mask, for each factor in ``scales``.

    Args:
        mask: (H, W) bool foreground (head or face).
        landmarks: (68, 3) x, y pixels and confidence; points with confidence 0 or non-finite
            coordinates are left out.

    Returns:
        One fraction per scale (landmark coordinates multiplied by it), or None when the mask is
        empty or no landmark is confident.
    """
    lmk = np.asarray(landmarks, dtype=np.float64)
    ok = (lmk[:, 2] > 0) & np.all(np.isfinite(lmk[:, :2]), axis=1)
    if not ok.any() or not mask.any():
        return None
    h, w = mask.shape
    uv = np.rint(lmk[ok, :2][None] * np.asarray(scales, dtype=np.float64)[:, None, None])
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    flat = np.where(inside, uv[..., 1] * w + uv[..., 0], 0).astype(np.int64)  # (S, N)
    hit = inside & mask.ravel()[flat]
    return tuple(float(f) for f in hit.mean(axis=1))


def image_stats(
    img: np.ndarray,
    kind: str,
    face_labels: Sequence[int] = (),
    alpha_threshold: float = 0.5,
    landmarks: np.ndarray | None = None,
) -> ImageStats:
    """Summarise one decoded image or map for the checks (called on the validator's one decode).

    Args:
        img: (H, W) or (H, W, C) as decoded (OpenCV channel order for colour).
        kind: ``"images"``, ``"alpha"``, ``"segmentation"`` or ``"depth"``.
        face_labels: segmentation labels that count as face.
        alpha_threshold: alpha above this fraction of full scale is head.
        landmarks: (68, 3) the frame's 2D landmarks of this camera (alpha and segmentation).
    """
    h, w = img.shape[:2]
    channels = 1 if img.ndim == 2 else img.shape[2]
    dtype = str(img.dtype)
    stats: dict = dict(width=w, height=h, channels=channels, dtype=dtype)
    if img.dtype != np.uint8 or kind != "images":  # 8-bit images: nothing to learn from values
        stats["max_value"] = int(img.max()) if img.size else 0
    if kind == "alpha":
        a = img if img.ndim == 2 else img[..., 3] if channels == 4 else img[..., 0]
        full = 65535.0 if a.dtype == np.uint16 else 255.0
        fg = a > alpha_threshold * full
        stats.update(foreground=int(fg.sum()), max_value=int(a.max()) if a.size else 0)
        if landmarks is not None:
            stats["on_mask"] = landmarks_on_mask(fg, landmarks)
    elif kind == "segmentation":
        labels = img
        coding = None
        if img.ndim == 3:
            labels, coding = labels_from_colour(img[..., 2::-1][..., :3])
        stats["colour_coding"] = coding
        if labels is not None:
            counts = np.bincount(labels.ravel(), minlength=max(face_labels, default=0) + 1)
            present = np.flatnonzero(counts)
            face = int(counts[list(face_labels)].sum()) if len(face_labels) else 0
            stats.update(labels=tuple(int(v) for v in present), foreground=face)
            if landmarks is not None:
                stats["on_mask"] = landmarks_on_mask(labels > 0, landmarks)
    elif kind == "depth":
        nz = img[img > 0] if img.ndim == 2 else img[..., 0][img[..., 0] > 0]
        stats.update(
            foreground=int(nz.size), median_value=float(np.median(nz)) if nz.size else None
        )
    return ImageStats(**stats)


# --------------------------------------------------------------------------------------------
# 2D landmarks
# --------------------------------------------------------------------------------------------

N_LANDMARKS = 68
_OTHER_LANDMARK_SETS = {
    478: "MediaPipe's 478-point face mesh (with irises)",
    468: "MediaPipe's 468-point face mesh",
    98: "WFLW's 98 points",
    106: "a 106-point set",
    5: "5 face-detector keypoints",
}


def landmark_shape_problem(shape: tuple[int, ...]) -> tuple[str, str] | None:
    """What is wrong with a landmark array's shape (frames aside), or None for (T, 68, 3).

    Returns:
        ``("warning", why)`` for (T, 68, 2) (no confidence column: read with confidence 1 where
        the coordinates are finite); ``("error", why)`` for anything else, naming a known
        landmark set ((T, 478, 3) is MediaPipe's face mesh; iBUG-68 is expected).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3 and shape[1:] == (N_LANDMARKS, 3):
        return None
    if len(shape) == 3 and shape[1:] == (N_LANDMARKS, 2):
        return (
            "warning",
            f"have shape {shape}: no confidence column, read with confidence 1 (0 where a "
            "point is NaN)",
        )
    if len(shape) == 2 and shape[0] == N_LANDMARKS and shape[1] in (2, 3):
        return "error", f"have shape {shape}, one frame without a frame axis: expected (T, 68, 3)"
    if len(shape) == 3 and shape[1] in _OTHER_LANDMARK_SETS:
        return (
            "error",
            f"have shape {shape}: {_OTHER_LANDMARK_SETS[shape[1]]}, not the iBUG-68 points "
            "expected, (T, 68, 3) x, y, confidence",
        )
    return "error", f"have shape {shape}, expected (T, 68, 3) x, y, confidence"


def landmark_frames_problem(n_rows: int, frame_ids: Sequence[int]) -> str | None:
    """Why a landmark array of ``n_rows`` frames does not fit the sequence's frames (None when
    it does): rows follow the frame folders in order, so with gaps in the frame ids a file with
    one row per id (first to last, or from 0) is named as such."""
    n = len(frame_ids)
    if n_rows == n or n == 0:
        return None
    msg = f"have {n_rows} frames, the sequence has {n}"
    first, last = frame_ids[0], frame_ids[-1]
    if n_rows == last - first + 1 and n_rows != n:
        msg += (
            f" (one row per frame id {first}-{last}? the frame ids have gaps and rows must "
            "follow the frame folders)"
        )
    elif n_rows == last + 1:
        msg += f" (one row per frame id from 0 to {last}? rows must follow the frame folders)"
    return msg


def landmarks_outside(
    landmarks: np.ndarray, size: tuple[int, int]
) -> tuple[float, float, float, float | None]:
    """Where a camera's confident landmarks lie against its image.

    Args:
        landmarks: (T, 68, 3) x, y pixels, confidence.
        size: (width, height) of the images.

    Returns:
        (fraction outside the image, largest x, largest y, the largest factor of
        :data:`LANDMARK_SCALES` below 1 that brings 95 % inside, or None).
    """
    lmk = np.asarray(landmarks, dtype=np.float64).reshape(-1, 3)
    ok = (lmk[:, 2] > 0) & np.all(np.isfinite(lmk[:, :2]), axis=1)
    if not ok.any():
        return 0.0, 0.0, 0.0, None
    pts = lmk[ok, :2]
    w, h = size

    def frac_out(p: np.ndarray) -> float:
        out = (p[:, 0] < -0.5) | (p[:, 0] > w - 0.5) | (p[:, 1] < -0.5) | (p[:, 1] > h - 0.5)
        return float(out.mean())

    factor = None
    for s in sorted((s for s in LANDMARK_SCALES if s < 1), reverse=True):
        if frac_out(pts * s) <= 0.05:
            factor = s
            break
    return frac_out(pts), float(pts[:, 0].max()), float(pts[:, 1].max()), factor


def normalised_landmarks(landmarks: np.ndarray, size: tuple[int, int]) -> bool:
    """Every confident landmark within [0, 1.5] in an image larger than 16 pixels: normalised
    coordinates, not pixels."""
    lmk = np.asarray(landmarks, dtype=np.float64).reshape(-1, 3)
    ok = (lmk[:, 2] > 0) & np.all(np.isfinite(lmk[:, :2]), axis=1)
    if not ok.any() or min(size) <= 16:
        return False
    pts = lmk[ok, :2]
    return bool(np.all((pts >= -0.5) & (pts <= 1.5)))


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def frame_ids_problems(frame_ids: Sequence[int], path: PathLike) -> list[Problem]:
    """A single frame, or gaps in the frame ids: accepted, and said (warnings).

    Args:
        frame_ids: ascending frame ids of the sequence.
        path: the folder holding the frame folders.
    """
    ids = list(frame_ids)
    if len(ids) == 1:
        return [
            warning(
                "single_frame",
                path,
                f"the sequence has a single frame ({layout.frame_name(ids[0])}): depth and points "
                "run on it, nothing over time can",
            )
        ]
    if len(ids) < 2:
        return []
    steps = np.diff(ids)
    step = int(np.min(steps))
    if np.all(steps == step) and step == 1:
        return []
    missing = sorted(set(range(ids[0], ids[-1] + 1, step)) - set(ids)) if step else []
    if np.all(steps == step):
        what = f"ids step by {step}"
    else:
        shown = ", ".join(str(t) for t in missing[:8]) + (" ..." if len(missing) > 8 else "")
        what = f"{len(missing)} ids missing between {ids[0]} and {ids[-1]} ({shown})"
    return [
        warning(
            "frame_gaps",
            path,
            f"frame ids have gaps: {len(ids)} frames, {what}; frames are used in id order "
            "and landmark rows follow the frame folders",
        )
    ]
