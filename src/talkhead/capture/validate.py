"""The capture validator: checks a capture tree and reports every problem at once.

:func:`validate_capture` checks a whole tree (or one subject / sequence of it),
:func:`validate_sequence_dir` one sequence folder against a calibration file; both return
:class:`Problem` s (kind, file at fault, message, severity) that :func:`format_problems` turns
into a report. Validation decodes every image, so run it once, in the capture stage;
:func:`talkhead.capture.sequence.open_sequence` with ``validate=True`` raises
:class:`~talkhead.errors.CaptureError` listing the errors. Paths come from
:mod:`talkhead.capture.layout`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CaptureError
from ..geometry.cameras import Camera
from ..io import PathLike
from . import checks, layout, layouts
from .checks import Problem, errors_of
from .masks import ALPHA_THRESHOLD, FACE_LABELS
from .products import PRODUCTS, check_product_names, find_products, resolve_products
from .readers import (
    find_audio,
    list_frame_ids,
    read_audio_file,
    read_image_format,
    read_sequence_fps,
    thread_map,
)

__all__ = [
    "PROBLEM_KINDS",
    "Problem",
    "errors_of",
    "format_problems",
    "validate_capture",
    "validate_main",
    "validate_sequence_dir",
]

SILENCE_PEAK = 1e-4  # -80 dBFS: below ~3 LSB of 16-bit audio counts as digital silence
CLIP_LEVEL = 0.999
CLIP_FRACTION = 1e-3
LANDMARKS_OFF_IMAGE_WARN = 0.05  # fraction of confident landmarks outside the image: warning
LANDMARKS_OFF_IMAGE_ERROR = 0.25  # ... and error
LANDMARKS_ON_HEAD_MIN = 0.3  # median fraction of confident landmarks on the head mask
LANDMARKS_FACTOR_MIN = 0.8  # ... that a suggested factor must reach

# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------

#: Every kind :func:`validate_capture` reports, with what it means.
PROBLEM_KINDS: dict[str, str] = {
    "no_subjects": "the root holds no subject folder",
    "missing_subject": "the named subject folder does not exist",
    "missing_sequence": "the named sequence folder does not exist",
    "no_sequences": "a subject has no sequences/ folder or it is empty",
    "missing_calibration": "camera_params.json is missing",
    "malformed_calibration": "camera_params.json is not valid JSON or a matrix is malformed",
    "calibration_units": "the rig is not in metres (cameras > 10 m from their centre, or < 5 cm "
    "apart with the whole rig a few cm across)",
    "calibration_inverted": "world_2_cam holds camera-to-world matrices",
    "cameras_look_away": "cameras do not face the point the optical axes meet (error for half "
    "the cameras or more)",
    "cameras_coincide": "two cameras of an otherwise sized rig stand < 5 cm apart",
    "intrinsics_normalised": "intrinsics normalised by the image size (fx ~ 1, cx ~ 0.5)",
    "intrinsics_image_size": "intrinsics of another image size (principal point outside the "
    "image, or at a multiple of its centre)",
    "too_few_cameras": "a sequence with fewer than two cameras (depth needs two views)",
    "missing_video": "a calibrated camera has no video (video layouts)",
    "malformed_metadata": "sequence.json is not valid JSON or holds an invalid fps",
    "no_frames": "a sequence has no timesteps/frame_* folders",
    "single_frame": "(warning) the sequence has one frame",
    "frame_gaps": "(warning) frame ids are not consecutive",
    "empty_frame": "a frame folder holds no camera image",
    "missing_camera": "a calibrated camera has no image in some or all frames",
    "frame_count_mismatch": "a camera's images stop early or start late",
    "unknown_camera": "images of a camera the calibration does not know",
    "unreadable_image": "an image or map does not decode (truncated, corrupt, not an image)",
    "image_format_mismatch": "images of one sequence in several formats (a .jpg among .png)",
    "image_converted": "(warning) grayscale, RGBA or 16-bit images, converted on reading",
    "twelve_bit_png": "16-bit PNGs whose values never exceed 4095 (12-bit data)",
    "image_size_mismatch": "image sizes disagree with each other or with the calibration",
    "missing_mask": "a per-frame map (alpha, segmentation, depth) is missing for some images",
    "mask_size_mismatch": "a per-frame map's size differs from its image",
    "no_face_pixels": "mattes or segmentation maps without a head / face pixel (error when "
    "every camera's are empty, else a warning)",
    "segmentation_colours": "segmentation saved as colours, not label ids",
    "segmentation_coding": "(warning) segmentation read through a named colour coding",
    "segmentation_labels": "segmentation ids outside LaPa's 0-10",
    "malformed_depth": "a precomputed depth map is not a 16-bit single-channel PNG",
    "missing_landmarks": "a camera has no 2D landmark file",
    "unreadable_landmarks": "a landmark file does not load as a numeric .npy array",
    "landmarks_shape": "a landmark array is not (T, 68, 3) with T the camera's frame count",
    "landmarks_no_confidence": "(warning) (T, 68, 2) landmarks, read with confidence 1",
    "malformed_landmarks": "landmark values are non-finite or confidences outside [0, 1]",
    "landmarks_scale": "landmarks of another image size (off the head, or normalised)",
    "landmarks_out_of_image": "confident landmarks outside the image (error above 25 %, "
    "warning above 5 %)",
    "missing_audio": "(warning) a sequence has no audio file",
    "unreadable_audio": "the audio file does not decode",
    "silent_audio": "the audio is empty or digitally silent",
    "clipped_audio": "(warning) many samples at full scale",
    "audio_duration_mismatch": "(warning) the audio is much shorter than the video",
}

_err = checks.error
_warn = checks.warning


def _list_frames(frames: Sequence[int], limit: int = 8) -> str:
    names = [layout.frame_name(t) for t in frames[:limit]]
    more = f" and {len(frames) - limit} more" if len(frames) > limit else ""
    return ", ".join(names) + more


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def format_problems(
    problems: Sequence[Problem], root: PathLike | None = None, max_per_kind: int = 20
) -> str:
    """A human-readable report: errors first, grouped by kind, at most ``max_per_kind`` each.

    Args:
        problems: from :func:`validate_capture`.
        root: when given, paths are shown relative to it.
        max_per_kind: lines shown per kind before "... and N more".
    """
    if not problems:
        return "no problems found"
    n_err = len(errors_of(problems))
    n_warn = len(problems) - n_err
    lines = [f"{_plural(n_err, 'error')}, {_plural(n_warn, 'warning')}:"]
    root_path = Path(root) if root is not None else None
    for severity in ("error", "warning"):
        by_kind: dict[str, list[Problem]] = defaultdict(list)
        for p in problems:
            if p.severity == severity:
                by_kind[p.kind].append(p)
        for kind, group in by_kind.items():
            lines.append(f"{severity.upper()} {kind} ({len(group)}):")
            for p in group[:max_per_kind]:
                path = p.path
                if root_path is not None:
                    try:
                        path = p.path.relative_to(root_path) if p.path != root_path else p.path
                    except ValueError:
                        pass
                lines.append(f"  - {p.message} ({path})")
            if len(group) > max_per_kind:
                lines.append(f"  ... and {len(group) - max_per_kind} more {kind} problems")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _inspect_image(
    path: Path, decode: bool, kind: str = "images", landmarks: np.ndarray | None = None
) -> checks.ImageStats | str:
    """What the checks need of one PNG/JPEG (:class:`~talkhead.capture.checks.ImageStats`), or
    an error message.

    With ``decode`` the whole file is decoded by OpenCV (catches corrupt data inside a complete
    file) and summarised in the same pass (values, face pixels, landmarks on the mask); without,
    only the header and the end-of-file marker are read.
    """
    info = read_image_format(path)
    if isinstance(info, str):
        return info
    if not decode:
        dtype = "uint16" if info[3] == 16 else "uint8"
        return checks.ImageStats(info[0], info[1], info[2], dtype)
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})"
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        return "image data is corrupt (decoding failed)"
    h, w = img.shape[:2]
    if (w, h) != info[:2]:
        return f"decoded size {w}x{h} differs from the header's {info[0]}x{info[1]}"
    return checks.image_stats(img, kind, FACE_LABELS, ALPHA_THRESHOLD, landmarks)


@dataclass
class _Calibration:
    path: Path
    cameras: dict[str, Camera]  # the well-formed ones
    declared: set[str]  # every serial the file names (well-formed or not)
    sizes: dict[str, tuple[int, int]]
    ok: bool  # the file parsed as a calibration at all


def _check_matrix(value: Any, shape: tuple[int, int]) -> tuple[np.ndarray | None, str | None]:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None, "is not a numeric matrix"
    if m.shape != shape:
        return None, f"has shape {m.shape}, expected {shape}"
    if not np.all(np.isfinite(m)):
        return None, "contains NaN or infinite values"
    return m, None


def _check_calibration(path: PathLike) -> tuple[_Calibration, list[Problem]]:
    """Check ``camera_params.json`` camera by camera, collecting every defect, then the rig
    of its well-formed cameras (:func:`~talkhead.capture.checks.rig_problems`: units,
    orientation) and their intrinsics (normalised; the principal point is checked against the
    images, in :func:`_check_images`).

    Returns the well-formed cameras and the problems.
    """
    path = Path(path)
    calib = _Calibration(path, {}, set(), {}, False)
    if not path.is_file():
        return calib, [_err("missing_calibration", path, "calibration file is missing")]
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return calib, [
            _err("malformed_calibration", path, f"calibration is not valid JSON ({exc})")
        ]
    problems: list[Problem] = []

    def bad(msg: str) -> None:
        problems.append(_err("malformed_calibration", path, msg))

    if not isinstance(data, Mapping):
        bad("calibration must be a JSON object with 'world_2_cam' and 'intrinsics'")
        return calib, problems
    w2c = data.get("world_2_cam")
    intr = data.get("intrinsics")
    sizes = data.get("image_size") or {}
    if not isinstance(w2c, Mapping) or not w2c:
        bad("'world_2_cam' is missing or is not a mapping of camera serials to 4x4 matrices")
        w2c = {}
    if not isinstance(sizes, Mapping):
        bad("'image_size' must map camera serials to [width, height]")
        sizes = {}
    calib.ok = bool(w2c)
    calib.declared = {str(s) for s in w2c}
    per_camera_K = intr if isinstance(intr, Mapping) else None
    shared_K = None
    if intr is None:
        bad("'intrinsics' is missing (a 3x3 matrix, or one per camera serial)")
    elif per_camera_K is None:
        shared_K, why = _check_matrix(intr, (3, 3))
        if why:
            bad(f"'intrinsics' {why}")
    for serial, T in w2c.items():
        serial = str(serial)
        ok = True
        T, why = _check_matrix(T, (4, 4))
        if why:
            bad(f"world_2_cam of camera {serial} {why}")
            ok = False
        else:
            R = T[:3, :3]
            if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
                err = np.abs(R @ R.T - np.eye(3)).max()
                bad(
                    f"world_2_cam of camera {serial}: rotation is not a proper rotation "
                    f"(max |R R^T - I| = {err:.3g}, det = {np.linalg.det(R):.3g})"
                )
                ok = False
            if not np.allclose(T[3], [0, 0, 0, 1]):
                bad(
                    f"world_2_cam of camera {serial}: last row is {T[3].tolist()}, "
                    "expected [0, 0, 0, 1]"
                )
                ok = False
        K = shared_K
        if per_camera_K is not None:
            if serial not in per_camera_K:
                bad(f"camera {serial} has no intrinsics")
            else:
                K, why = _check_matrix(per_camera_K[serial], (3, 3))
                if why:
                    bad(f"intrinsics of camera {serial} {why}")
        if K is None:
            ok = False
        else:
            if K[0, 0] <= 0 or K[1, 1] <= 0:
                bad(
                    f"intrinsics of camera {serial} have a non-positive focal length "
                    f"(fx={K[0, 0]:g}, fy={K[1, 1]:g})"
                )
                ok = False
            if not np.allclose(K[2], [0, 0, 1]):
                bad(
                    f"intrinsics of camera {serial}: last row is {K[2].tolist()}, "
                    "expected [0, 0, 1]"
                )
                ok = False
        wh = (0, 0)
        if serial in sizes:
            s = sizes[serial]
            if (
                not isinstance(s, (list, tuple))
                or len(s) != 2
                or not all(
                    isinstance(v, (int, float))
                    and not isinstance(v, bool)
                    and v > 0
                    and float(v).is_integer()
                    for v in s
                )
            ):
                bad(f"image_size of camera {serial} must be [width, height] in pixels, got {s!r}")
                ok = False
            else:
                wh = (int(s[0]), int(s[1]))
                calib.sizes[serial] = wh
        if ok:
            calib.cameras[serial] = Camera(serial, K, T, wh[0], wh[1])
    cams = list(calib.cameras.values())
    problems += checks.rig_problems(cams, path)
    problems += checks.intrinsics_problems(cams, path, principal_point=False)
    return calib, problems


@dataclass
class _Scan:
    frames: list[int]
    images: dict[str, dict[int, Path]]  # serial -> frame -> file
    maps: dict[str, dict[str, dict[int, Path]]]  # map name -> serial -> frame -> file
    duplicates: list[tuple[Path, Path]]  # one camera's image twice in a frame (.png and .jpg)
    dirs: dict[str, Path]  # product -> the sequence folder or overlay holding it


def _product_dirs(
    seq_dir: Path, frames: Sequence[int], overlays: Sequence[Path], replace: Sequence[str]
) -> dict[str, Path]:
    """``{product: folder}`` for every product: where :mod:`talkhead.capture.products` finds
    it (the sequence, or an overlay), else the sequence folder (so problems name its files)."""
    if not overlays:
        return dict.fromkeys(PRODUCTS, seq_dir)
    t = frames[0] if frames else 0
    found = resolve_products(find_products([seq_dir], t), overlays, t, replace)
    return {name: found.get(name, seq_dir) for name in PRODUCTS}


def _scan_sequence(
    seq_dir: Path, overlays: Sequence[Path] = (), replace: Sequence[str] = ()
) -> _Scan:
    frames = list_frame_ids(seq_dir)
    dirs = _product_dirs(seq_dir, frames, overlays, replace)
    images: dict[str, dict[int, Path]] = defaultdict(dict)
    duplicates: list[tuple[Path, Path]] = []
    maps: dict[str, dict[str, dict[int, Path]]] = {k: defaultdict(dict) for k in layout.MAP_LAYOUT}
    map_res = {k: re.compile(rx) for k, (_, rx) in layout.MAP_LAYOUT.items()}
    for t in frames:
        folders = [(layout.images_dir(dirs["images"], t), None)] + [
            (layout.map_dir(dirs[name], t, name), name) for name in layout.MAP_LAYOUT
        ]
        for d, name in folders:
            if not d.is_dir():
                continue
            rx = layout.IMAGE_RE if name is None else map_res[name]
            with os.scandir(d) as it:
                for entry in it:
                    m = rx.fullmatch(entry.name)
                    if m and entry.is_file():
                        target = images if name is None else maps[name]
                        before = target[m.group(1)].get(t)
                        if before is not None:
                            duplicates.append(tuple(sorted((before, Path(entry.path)))))
                            if before.suffix.lower() == ".png":
                                continue  # the .png wins (it is what the others mostly are)
                        target[m.group(1)][t] = Path(entry.path)
    return _Scan(
        frames, dict(images), {k: dict(v) for k, v in maps.items()}, sorted(duplicates), dirs
    )


def _check_image_formats(scan: _Scan) -> list[Problem]:
    """One image format (extension) per sequence: a sequence is read with one extension, so a
    .jpg among .png images is a missing image to every later stage."""
    problems = [
        _err(
            "image_format_mismatch",
            b,
            f"{a.parent.parent.name} holds the same camera twice: {a.name} and {b.name}",
        )
        for a, b in scan.duplicates
    ]
    by_ext: dict[str, list[Path]] = defaultdict(list)
    for per in scan.images.values():
        for p in per.values():
            by_ext[p.suffix].append(p)
    if len(by_ext) > 1:
        common = max(by_ext, key=lambda e: len(by_ext[e]))
        n_all = sum(len(v) for v in by_ext.values())
        for ext, files in sorted(by_ext.items()):
            if ext == common:
                continue
            files.sort()
            problems.append(
                _err(
                    "image_format_mismatch",
                    files[0],
                    f"{len(files)} of {n_all} images are {ext} among {common} (e.g. "
                    f"{files[0].parent.parent.name}/{files[0].name}): a sequence is read with one "
                    f"format; save them as {common}",
                )
            )
    return problems


def _others(counts: Mapping[str, int], serial: str) -> str:
    rest = Counter(n for s, n in counts.items() if s != serial)
    n_other = sum(rest.values())
    if not n_other:
        return "no other camera has images"
    if len(rest) == 1:
        ((n, _),) = rest.items()
        return f"the other {_plural(n_other, 'camera')} {'has' if n_other == 1 else 'have'} {n}"
    parts = ", ".join(f"{k} {'has' if k == 1 else 'have'} {n}" for n, k in rest.most_common())
    return f"of the other {n_other} cameras {parts}"


def _size_str(wh: tuple[int, int]) -> str:
    return f"{wh[0]}x{wh[1]}"


def _check_frames(
    seq_dir: Path, scan: _Scan, serials: list[str], calib: _Calibration
) -> list[Problem]:
    """Missing cameras, frame-count mismatches, empty frames and unknown cameras."""
    problems: list[Problem] = []
    timesteps = layout.timesteps_dir(seq_dir)
    nonempty = sorted({t for per in scan.images.values() for t in per})
    nonempty_set = set(nonempty)
    empty = [t for t in scan.frames if t not in nonempty_set]
    if empty and nonempty:
        problems.append(
            _err(
                "empty_frame",
                layout.images_dir(seq_dir, empty[0]),
                f"{len(empty)} of {len(scan.frames)} frame folders hold no "
                f"camera image: {_list_frames(empty)}",
            )
        )
    if not nonempty:
        problems.append(
            _err(
                "no_frames",
                timesteps,
                f"none of the {len(scan.frames)} frame folders holds an image "
                "(expected images/cam_<serial>.png)",
            )
        )
        return problems
    counts = {s: len(scan.images.get(s, {})) for s in serials}
    for serial in serials:
        have = scan.images.get(serial, {})
        missing = [t for t in nonempty if t not in have]
        if not missing:
            continue
        if not have:
            problems.append(
                _err(
                    "missing_camera",
                    timesteps,
                    f"camera {serial} is calibrated but has no image in any of the "
                    f"{len(nonempty)} frames",
                )
            )
            continue
        present = sorted(have)
        idx = {t: i for i, t in enumerate(nonempty)}
        lo, hi = idx[present[0]], idx[present[-1]]
        contiguous = hi - lo + 1 == len(present)
        if contiguous:  # starts late and/or stops early: a count mismatch
            where = []
            if lo > 0:
                where.append(f"starts at {layout.frame_name(present[0])}")
            if hi < len(nonempty) - 1:
                where.append(f"stops after {layout.frame_name(present[-1])}")
            problems.append(
                _err(
                    "frame_count_mismatch",
                    timesteps,
                    f"camera {serial} has {counts[serial]} frames, {_others(counts, serial)} "
                    f"(it {' and '.join(where)})",
                )
            )
        else:
            ext = next(iter(have.values())).suffix
            first = layout.image_path(seq_dir, missing[0], serial, ext)
            problems.append(
                _err(
                    "missing_camera",
                    first,
                    f"camera {serial} has no image in {len(missing)} of {len(nonempty)} frames: "
                    f"{_list_frames(missing)}",
                )
            )
    if calib.ok:
        for serial in sorted(set(scan.images) - calib.declared):
            per = scan.images[serial]
            first = per[min(per)]
            problems.append(
                _err(
                    "unknown_camera",
                    first,
                    f"camera {serial} has images in {_plural(len(per), 'frame')} but is not in "
                    f"the calibration ({calib.path.name})",
                )
            )
    return problems


def _mode(values: Iterable[Any]) -> Any:
    return Counter(values).most_common(1)[0][0]


_Size = tuple[int, int]


@dataclass
class _Landmarks:
    """A camera's landmark file, loaded and checked: (T, 68, 3) x, y, confidence."""

    path: Path
    array: np.ndarray


def _frame_landmarks(
    landmarks: Mapping[str, _Landmarks], frame_index: Mapping[int, int], serial: str, t: int
) -> np.ndarray | None:
    lmk = landmarks.get(serial)
    i = frame_index.get(t)
    if lmk is None or i is None or i >= len(lmk.array):
        return None
    return lmk.array[i]


def _check_images(
    seq_dir: Path,
    scan: _Scan,
    serials: list[str],
    calib: _Calibration,
    decode: bool,
    workers: int | None,
    landmarks: Mapping[str, _Landmarks],
) -> tuple[list[Problem], dict[str, _Size], dict[str, tuple[str, list[tuple[float, ...]]]]]:
    """Decode every image and map once; report unreadable files, sizes that disagree, formats
    converted on reading, 12-bit data, maps without face pixels, colour-coded segmentation.

    Sizes and maps are checked for ``serials`` only (unknown cameras are reported elsewhere).
    ``landmarks`` (per camera) are looked up on the mattes / segmentation in the same pass.

    Returns:
        the problems; each camera's (most common) image size; per camera the map its landmarks
        were looked up on and, per frame, the fractions of confident landmarks on its
        foreground at each factor of :data:`~talkhead.capture.checks.LANDMARK_SCALES`.
    """
    known = set(serials)
    problems: list[Problem] = []
    jobs: list[tuple[str, str, int, Path]] = [
        ("images", s, t, p) for s, per in scan.images.items() for t, p in per.items()
    ]
    for name, per_serial in scan.maps.items():
        jobs += [(name, s, t, p) for s, per in per_serial.items() for t, p in per.items()]

    alpha = scan.maps.get("alpha", {})
    frame_index = {t: i for i, t in enumerate(scan.frames)}

    def inspect(job: tuple[str, str, int, Path]) -> checks.ImageStats | str:
        name, s, t, p = job
        # landmarks go on the matte, or on the segmentation where there is no matte
        on = name == "alpha" or (name == "segmentation" and t not in alpha.get(s, {}))
        lmk = _frame_landmarks(landmarks, frame_index, s, t) if on else None
        return _inspect_image(p, decode, name, lmk)

    results = thread_map(inspect, jobs, workers)
    info: dict[tuple[str, str, int], checks.ImageStats] = {}
    for (name, s, t, p), res in zip(jobs, results, strict=True):
        if isinstance(res, str):
            what = "image" if name == "images" else f"{name} map"
            problems.append(
                _err(
                    "unreadable_image",
                    p,
                    f"{what} of camera {s}, {layout.frame_name(t)} is unreadable: {res}",
                )
            )
        else:
            info[(name, s, t)] = res
    timesteps = layout.timesteps_dir(seq_dir)
    # Sizes within each camera, across cameras, against the calibration.
    image_size: dict[tuple[str, int], tuple[int, int]] = {
        (s, t): (v.width, v.height) for (name, s, t), v in info.items() if name == "images"
    }
    cam_size: dict[str, tuple[int, int]] = {}
    for serial in sorted(known & set(scan.images)):
        sizes = {t: wh for (s, t), wh in image_size.items() if s == serial}
        if not sizes:
            continue
        mode = _mode(sizes.values())
        cam_size[serial] = mode
        odd = sorted(t for t, wh in sizes.items() if wh != mode)
        if odd:
            problems.append(
                _err(
                    "image_size_mismatch",
                    scan.images[serial][odd[0]],
                    f"camera {serial}: {len(odd)} of {len(sizes)} images differ from its usual "
                    f"{_size_str(mode)} (e.g. {_size_str(sizes[odd[0]])}): {_list_frames(odd)}",
                )
            )
    if cam_size:
        common = _mode(cam_size.values())
        n_common = sum(1 for wh in cam_size.values() if wh == common)
        for serial, wh in sorted(cam_size.items()):
            if wh != common and n_common > 1:
                problems.append(
                    _err(
                        "image_size_mismatch",
                        timesteps,
                        f"camera {serial} images are {_size_str(wh)}, "
                        f"{_plural(n_common, 'other camera')}' are {_size_str(common)}",
                    )
                )
    problems += checks.image_size_problems(calib.sizes, cam_size, calib.path)
    # the principal point against the images (where the calibration's size agrees with them)
    sized = [
        c
        for s, c in calib.cameras.items()
        if s in cam_size and calib.sizes.get(s, cam_size[s]) == cam_size[s]
    ]
    problems += checks.intrinsics_problems(sized, calib.path, cam_size, normalised=False)
    problems += _check_image_contents(scan, known, info)
    # Per-frame maps: present for every image once a sequence has any, same size, right type.
    for name, per_serial in scan.maps.items():
        if not per_serial:
            continue
        for serial in sorted(known & set(scan.images)):
            have = per_serial.get(serial, {})
            missing = sorted(t for t in scan.images[serial] if t not in have)
            if missing:
                problems.append(
                    _err(
                        "missing_mask",
                        layout.map_dir(scan.dirs[name], missing[0], name),
                        f"{name} map of camera {serial} is missing in {len(missing)} of "
                        f"{len(scan.images[serial])} frames: {_list_frames(missing)}",
                    )
                )
            wrong: list[int] = []
            wrong_size: dict[int, tuple[int, int]] = {}
            bad_depth: list[int] = []
            for t in sorted(have):
                v = info.get((name, serial, t))
                ref = image_size.get((serial, t), cam_size.get(serial))
                if v is None or ref is None:
                    continue
                if (v.width, v.height) != ref:
                    wrong.append(t)
                    wrong_size[t] = (v.width, v.height)
                if name == "depth" and (v.channels != 1 or v.dtype != "uint16"):
                    bad_depth.append(t)
            if wrong:
                ref = image_size.get((serial, wrong[0]), cam_size.get(serial))
                problems.append(
                    _err(
                        "mask_size_mismatch",
                        have[wrong[0]],
                        f"{name} map of camera {serial} is {_size_str(wrong_size[wrong[0]])} but "
                        f"its image is {_size_str(ref)} ({_plural(len(wrong), 'frame')}: "
                        f"{_list_frames(wrong)})",
                    )
                )
            if bad_depth:
                problems.append(
                    _err(
                        "malformed_depth",
                        have[bad_depth[0]],
                        f"depth maps of camera {serial} must be single-channel 16-bit PNGs "
                        f"({len(bad_depth)} frames are not): {_list_frames(bad_depth)}",
                    )
                )
    on_mask: dict[str, tuple[str, list[tuple[float, ...]]]] = {}
    for serial in landmarks:
        for name in ("alpha", "segmentation"):
            fr = [
                v.on_mask
                for (n, s, _), v in sorted(info.items())
                if n == name and s == serial and v.on_mask is not None
            ]
            if fr:
                on_mask[serial] = (name, fr)
                break
    return problems, cam_size, on_mask


def _check_image_contents(
    scan: _Scan, known: set[str], info: Mapping[tuple[str, str, int], checks.ImageStats]
) -> list[Problem]:
    """What the decoded values say: images converted on reading, 12-bit data in 16-bit PNGs,
    segmentation in colours or outside LaPa's ids, mattes and label maps without face pixels.
    One problem per finding and sequence, naming the first file and the cameras."""
    problems: list[Problem] = []
    groups: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for (name, s, t), v in sorted(info.items()):
        if s not in known:
            continue
        if name == "images":
            note = checks.colour_format_note(v.channels, v.dtype)
            if note is not None:
                groups[("images", note)][s].append(t)
        if checks.is_twelve_bit(v.max_value, v.dtype) and name != "alpha":
            groups[(name, "12bit")][s].append(t)
        if name == "segmentation" and v.colour_coding not in (None, "grey"):
            groups[(name, v.colour_coding)][s].append(t)
        if name == "segmentation" and v.labels and max(v.labels) > checks.LAPA_MAX_LABEL:
            groups[(name, "labels")][s].append(t)

    def first_file(name: str, per: Mapping[str, list[int]]) -> Path:
        s = min(per)
        src = scan.images if name == "images" else scan.maps[name]
        return src[s][per[s][0]]

    def n_files(per: Mapping[str, list[int]]) -> int:
        return sum(len(v) for v in per.values())

    for (name, what), per in groups.items():
        cams = checks.name_cameras(sorted(per))
        path = first_file(name, per)
        n = n_files(per)
        if name == "images" and what != "12bit":
            problems.append(
                _warn("image_converted", path, f"images of {cams} ({n} files) are {what}")
            )
        elif what == "12bit":
            top = max(info[(name, s, t)].max_value or 0 for s, ts in per.items() for t in ts)
            extra = ""
            if name == "depth":
                med = np.median(
                    [info[(name, s, t)].median_value or 0 for s, ts in per.items() for t in ts]
                )
                from .depth_png import decode_depth

                d1 = float(decode_depth(np.uint16(round(med))))
                d16 = float(decode_depth(np.uint16(min(65535, round(med * 16)))))
                extra = f" (median depth {d1:.3f} m as stored, {d16:.2f} m with values x16)"
            what_files = "images" if name == "images" else f"{name} maps"
            problems.append(
                _err(
                    "twelve_bit_png",
                    path,
                    f"{what_files} of {cams} are 16-bit PNGs whose values never exceed {top} "
                    f"(<= {checks.TWELVE_BIT_MAX}): 12-bit data stored in 16 bits? scale by 16"
                    f"{extra}",
                )
            )
        elif what == "labels":
            top = max(max(info[(name, s, t)].labels or (0,)) for s, ts in per.items() for t in ts)
            problems.append(
                _err(
                    "segmentation_labels",
                    path,
                    f"segmentation maps of {cams} hold label {top} ({n} files); LaPa's ids are "
                    f"0-{checks.LAPA_MAX_LABEL} (a 0/255 mask, or another label set?)",
                )
            )
        elif what == "colours":
            problems.append(
                _err(
                    "segmentation_colours",
                    path,
                    f"segmentation maps of {cams} ({n} files) are colour images, not label ids: "
                    "their colours are neither grey levels nor PASCAL VOC's colour map; save the "
                    "LaPa ids 0-10 as single-channel 8-bit PNGs",
                )
            )
        else:
            problems.append(
                _warn(
                    "segmentation_coding",
                    path,
                    f"segmentation maps of {cams} ({n} files) are colour images in the {what}: "
                    "read as its label ids",
                )
            )
    # Mattes / label maps without a single head / face pixel.
    for name, label in (("alpha", "head"), ("segmentation", "face")):
        per_serial = scan.maps.get(name, {})
        empty, total = [], 0
        for s in sorted(known & set(per_serial)):
            stats = [info.get((name, s, t)) for t in per_serial[s]]
            fg = [v.foreground for v in stats if v is not None and v.foreground is not None]
            if not fg:
                continue
            total += 1
            if max(fg) == 0:
                empty.append(s)
        if not empty:
            continue
        stats = [info[k] for s in empty for t in per_serial[s] if (k := (name, s, t)) in info]
        top = max((v.max_value or 0 for v in stats), default=0)
        if name == "alpha":
            if top <= 1:
                hint = "saved as 0/1 instead of 0/255?"
            elif any(checks.is_twelve_bit(v.max_value, v.dtype) for v in stats):
                hint = f"16-bit PNGs whose values never exceed {top}: 12-bit data? scale by 16"
            else:
                hint = f"values never exceed {top}: stored on another scale?"
            what = f"no pixel above {ALPHA_THRESHOLD:g} of full scale"
        else:
            labels = sorted({lab for v in stats for lab in (v.labels or ())})
            hint = f"labels present: {labels}; another label set?"
            what = f"no face label ({FACE_LABELS[0]}-{FACE_LABELS[-1]})"
        all_empty = len(empty) == total
        first = per_serial[empty[0]][min(per_serial[empty[0]])]
        if all_empty:
            msg = f"{name} maps of every camera have {what} in any frame ({hint})"
        else:
            msg = (
                f"{name} maps of {checks.name_cameras(empty)} have {what} in any frame ({hint}); "
                f"{'they add' if len(empty) > 1 else 'it adds'} nothing to the {label} points"
            )
        problems.append((_err if all_empty else _warn)("no_face_pixels", first, msg))
    return problems


def _load_landmarks(
    seq_dir: Path, serials: list[str], frames: Sequence[int]
) -> tuple[list[Problem], dict[str, _Landmarks]]:
    """Load each camera's landmark file and check its form (shape, frames, values).

    Returns the problems and the files good enough for the position checks."""
    problems: list[Problem] = []
    good: dict[str, _Landmarks] = {}
    lmk_dir = layout.landmarks_dir(seq_dir)
    if not lmk_dir.is_dir():
        return [
            _err(
                "missing_landmarks",
                lmk_dir,
                "no 2D landmarks (expected annotations/landmarks2D/cam_<serial>.npy)",
            )
        ], good
    for serial in serials:
        path = layout.landmarks_path(seq_dir, serial)
        if not path.is_file():
            problems.append(_err("missing_landmarks", path, f"camera {serial} has no landmarks"))
            continue
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            problems.append(
                _err(
                    "unreadable_landmarks",
                    path,
                    f"landmarks of camera {serial} do not load ({exc})",
                )
            )
            continue
        if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
            problems.append(
                _err(
                    "unreadable_landmarks",
                    path,
                    f"landmarks of camera {serial} are not a numeric .npy array",
                )
            )
            continue
        shape_problem = checks.landmark_shape_problem(arr.shape)
        if shape_problem is not None:
            severity, why = shape_problem
            if severity == "error":
                problems.append(
                    _err("landmarks_shape", path, f"landmarks of camera {serial} {why}")
                )
                continue
            problems.append(
                _warn("landmarks_no_confidence", path, f"landmarks of camera {serial} {why}")
            )
            arr = np.concatenate([arr, np.ones(arr.shape[:2] + (1,), arr.dtype)], axis=-1)
            arr[..., 2][~np.all(np.isfinite(arr[..., :2]), axis=-1)] = 0
        why = checks.landmark_frames_problem(arr.shape[0], frames)
        if why is not None:
            problems.append(_err("landmarks_shape", path, f"landmarks of camera {serial} {why}"))
        conf = arr[..., 2].astype(np.float64)
        xy = arr[..., :2].astype(np.float64)
        if not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1:
            third = ""
            if np.all(np.isfinite(conf)) and (conf.max() > 2 or conf.min() < -1):
                third = ": the third column looks like a coordinate (3D landmarks?)"
            problems.append(
                _err(
                    "malformed_landmarks",
                    path,
                    f"landmark confidences of camera {serial} must be finite and in [0, 1] "
                    f"(range {np.nanmin(conf):g}..{np.nanmax(conf):g}){third}",
                )
            )
            continue
        confident = conf > 0
        if np.any(confident & ~np.all(np.isfinite(xy), axis=-1)):
            problems.append(
                _err(
                    "malformed_landmarks",
                    path,
                    f"landmarks of camera {serial} have NaN/inf coordinates with "
                    "non-zero confidence",
                )
            )
            continue
        if why is None:  # positions are judged only where rows match frames
            good[serial] = _Landmarks(path, arr)
    return problems, good


def _check_landmark_positions(
    landmarks: Mapping[str, _Landmarks],
    cam_size: Mapping[str, tuple[int, int]],
    on_mask: Mapping[str, tuple[str, list[tuple[float, ...]]]],
) -> list[Problem]:
    """Landmarks in the image they belong to: not normalised, on the head (where the capture
    has mattes or segmentation), inside the image; the likely factor when they are not."""
    problems: list[Problem] = []
    scales = checks.LANDMARK_SCALES
    one = scales.index(1.0)
    med = {s: np.median(np.asarray(fr), axis=0) for s, (_, fr) in on_mask.items()}
    off = [s for s, m in med.items() if m[one] < LANDMARKS_ON_HEAD_MIN and s in cam_size]
    best = one
    if off:  # one factor for every camera whose landmarks miss the head (one resolution)
        pooled = np.mean([med[s] for s in off], axis=0)
        # of the factors that put nearly as many on the head as the best, the mildest
        near = [i for i in range(len(scales)) if pooled[i] >= pooled.max() - 0.1]
        best = min(near, key=lambda i: abs(np.log(scales[i])))
        if pooled[best] < LANDMARKS_FACTOR_MIN:
            best = one
    for serial, lmk in sorted(landmarks.items()):
        wh = cam_size.get(serial)
        if wh is None:
            continue
        path, arr = lmk.path, lmk.array
        if checks.normalised_landmarks(arr, wh):
            problems.append(
                _err(
                    "landmarks_scale",
                    path,
                    f"landmarks of camera {serial} all lie within [0, 1.5] of a {_size_str(wh)} "
                    "image: normalised coordinates? pixels expected (x times the width, y times "
                    "the height)",
                )
            )
            continue
        if serial in off:
            name, fractions = on_mask[serial]
            m = med[serial]
            hint = "landmarks of another camera or image size?"
            if best != one:
                f = scales[best]
                size = "large" if f < 1 else "small"
                hint = (
                    f"coordinates look {max(f, 1 / f):.3g}x too {size} (landmarks of "
                    f"{1 / f:.3g}x the image size?): x{f:.3g} puts {m[best]:.0%} on it"
                )
            problems.append(
                _err(
                    "landmarks_scale",
                    path,
                    f"only {m[one]:.0%} of the confident landmarks of camera {serial} lie on "
                    f"the head ({name} map, median of {len(fractions)} frames): {hint}",
                )
            )
            continue
        frac, xmax, ymax, factor = checks.landmarks_outside(arr, wh)
        if frac > LANDMARKS_OFF_IMAGE_WARN:
            hint = "computed at another resolution?"
            if factor is not None:
                hint = f"computed for images at least {1 / factor:.3g}x larger?"
            severity = _err if frac > LANDMARKS_OFF_IMAGE_ERROR else _warn
            problems.append(
                severity(
                    "landmarks_out_of_image",
                    path,
                    f"{100 * frac:.0f}% of confident landmarks of camera {serial} lie outside its "
                    f"{_size_str(wh)} image (x up to {xmax:.0f}, y up to {ymax:.0f}): {hint}",
                )
            )
    return problems


def _check_audio(seq_dir: Path, video_duration: float | None) -> list[Problem]:
    path = find_audio(seq_dir)
    if path is None:
        return [
            _warn(
                "missing_audio",
                layout.audio_dir(seq_dir),
                f"no audio file ({layout.AUDIO_STEM}.wav, .flac or .ogg): depth and points run "
                "without it, the audio stages need one",
            )
        ]
    try:
        audio, sr = read_audio_file(path)
    except CaptureError as exc:
        return [_err("unreadable_audio", path, str(exc).removeprefix(f"{path}: "))]
    if audio.size == 0:
        return [_err("silent_audio", path, "audio file holds no samples")]
    problems = []
    peak = float(np.max(np.abs(audio)))
    if not np.isfinite(peak):
        return [_err("unreadable_audio", path, "audio holds NaN or infinite samples")]
    if peak < SILENCE_PEAK:
        level = "all zero" if peak == 0 else f"peak {20 * math.log10(peak):.0f} dBFS"
        problems.append(
            _err(
                "silent_audio",
                path,
                f"audio is digitally silent ({level}, {audio.size / sr:.2f} s)",
            )
        )
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    if clipped > CLIP_FRACTION:
        problems.append(
            _warn(
                "clipped_audio",
                path,
                f"{100 * clipped:.2f}% of samples are at full scale (clipped)",
            )
        )
    duration = audio.size / sr
    if video_duration and duration < 0.9 * video_duration - 0.1:
        problems.append(
            _warn(
                "audio_duration_mismatch",
                path,
                f"audio lasts {duration:.2f} s, the video {video_duration:.2f} s",
            )
        )
    return problems


def _check_sequence(
    seq_dir: Path,
    calib: _Calibration,
    fps: float,
    decode: bool,
    workers: int | None,
    overlays: Sequence[Path] = (),
    replace: Sequence[str] = (),
) -> list[Problem]:
    problems: list[Problem] = []
    seq_fps, why = read_sequence_fps(seq_dir, fps)
    if why is not None:
        problems.append(_err("malformed_metadata", layout.sequence_file(seq_dir), why))
    scan = _scan_sequence(seq_dir, overlays, replace)
    if not scan.frames:
        problems.append(
            _err(
                "no_frames",
                layout.timesteps_dir(seq_dir),
                "no frame folders (expected timesteps/frame_<t:05d>/images/)",
            )
        )
        problems += _check_audio(scan.dirs["audio"], None)
        return problems
    serials = sorted(calib.declared) if calib.ok else sorted(scan.images)
    problems += checks.camera_count_problems(serials, calib.path)
    problems += checks.frame_ids_problems(scan.frames, layout.timesteps_dir(seq_dir))
    problems += _check_frames(scan.dirs["images"], scan, serials, calib)
    problems += _check_image_formats(scan)
    n_frames = {s: len(scan.images.get(s, {})) for s in serials}
    n_video = max(n_frames.values(), default=0)
    lmk_serials = [s for s in serials if n_frames.get(s)]
    lmk_problems, landmarks = _load_landmarks(scan.dirs["landmarks"], lmk_serials, scan.frames)
    img_problems, cam_size, on_mask = _check_images(
        scan.dirs["images"], scan, serials, calib, decode, workers, landmarks
    )
    problems += img_problems
    problems += lmk_problems
    problems += _check_landmark_positions(landmarks, cam_size, on_mask)
    problems += _check_audio(scan.dirs["audio"], n_video / seq_fps if n_video else None)
    return problems


def _subdirs(path: Path) -> list[str]:
    return sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def validate_capture(
    root: PathLike,
    subject: str | None = None,
    sequence: str | None = None,
    fps: float = 25.0,
    decode: bool = True,
    workers: int | None = None,
    overlays: Sequence[PathLike] = (),
    replace: Sequence[str] = (),
    layout_name: str = "auto",
    notes: list[str] | None = None,
) -> list[Problem]:
    """Check a capture tree and return every problem found (an empty list when it is usable).

    Checks, per subject: the calibration (readable JSON, 4x4 proper-rotation extrinsics, 3x3
    intrinsics with positive focal lengths for every camera, image sizes) and what its numbers
    say (:mod:`talkhead.capture.checks`: a rig in metres, cameras facing each other, intrinsics
    in pixels); per sequence: frame folders (a single frame or gaps in the ids are warnings),
    every calibrated camera in every frame, cameras' frame counts, one image format, every
    image decoding (``decode=False``: header and end-of-file marker only, much faster), image
    sizes against each other and the calibration, the principal point against the images,
    cameras not in the calibration, alpha / segmentation / depth maps (present for all images
    once present for some, same size as their image, with head / face pixels, label ids in
    LaPa's set, no 12-bit data in 16 bits), images that are read converted (warnings),
    landmark arrays ((T, 68, 3) with T the frame count; (T, 68, 2) is a warning) and their
    positions (on the head and in the image: another resolution is named with its factor),
    and the audio (a missing file is a warning; present: decodable, not silent; clipping and
    a too-short recording are warnings). Each image is decoded once.

    Args:
        root: the capture root (holding subject folders).
        subject, sequence: restrict to one subject / one sequence of it.
        fps: frame rate assumed where a sequence has no sequence.json.
        decode: decode every image and map fully.
        workers: decoding threads (default up to 8).
        overlays: folders (talkhead layout) holding products the sequence lacks, checked where
            :mod:`talkhead.capture.products` finds them (one subject and sequence only).
        replace: products taken from the overlays first.
        layout_name: the capture layout (:data:`talkhead.capture.layouts.LAYOUTS`), or
            ``"auto"``: detected per sequence (:func:`~talkhead.capture.layouts.detect_layout`).
            talkhead trees are checked as above; NeRSemble trees (v1 in place, v2 and the
            benchmark kit's videos) for what needs no decoding: the calibration (found where
            :func:`~talkhead.capture.layouts.open_source` looks), two cameras or more, every
            calibrated camera's video or images, no uncalibrated camera; their frames are
            checked after ingest. v2's ``sequences/BACKGROUND`` is not a sequence.
        notes: when given, one line per sequence whose frames were not checked is appended.

    Raises:
        ValueError: overlays without a subject and a sequence, an unknown product in
            ``replace``, or an unknown layout.
    """
    root = Path(root)
    overlay_dirs = tuple(Path(o) for o in overlays)
    replace = check_product_names(replace, "product to replace")
    if layout_name != "auto" and layout_name not in layouts.LAYOUTS:
        raise ValueError(f"unknown layout {layout_name!r}; expected auto or {layouts.LAYOUTS}")
    if overlay_dirs and (subject is None or sequence is None):
        raise ValueError("overlays belong to one sequence: give subject and sequence")
    if not root.is_dir():
        return [_err("no_subjects", root, f"capture root {root} does not exist")]
    if subject is not None:
        subject_dir = layout.subject_dir(root, subject)
        if not subject_dir.is_dir():
            return [_err("missing_subject", subject_dir, f"subject {subject} does not exist")]
        subjects = [subject]
    else:
        subjects = [
            s
            for s in _subdirs(root)
            if layout.calibration_path(layout.subject_dir(root, s)).exists()
            or layouts.kit_calibration_path(layout.subject_dir(root, s)).exists()
            or layout.sequences_dir(layout.subject_dir(root, s)).is_dir()
        ]
        if not subjects:
            return [
                _err(
                    "no_subjects",
                    root,
                    "no subject folder (expected <subject>/camera_params.json or "
                    "<subject>/calibration/camera_params.json, and <subject>/sequences/)",
                )
            ]
    problems: list[Problem] = []
    calibs: dict[Path, _Calibration] = {}

    def calibration(path: Path) -> _Calibration:
        """Each calibration file checked once, its problems reported once."""
        if path not in calibs:
            calibs[path], calib_problems = _check_calibration(path)
            problems.extend(calib_problems)
        return calibs[path]

    for subj in subjects:
        subj_dir = layout.subject_dir(root, subj)
        seq_root = layout.sequences_dir(subj_dir)
        if sequence is not None:
            seq_dir = layout.sequence_dir(root, subj, sequence)
            if not seq_dir.is_dir():
                calibration(_default_calibration(subj_dir))
                problems.append(_missing_sequence(seq_dir, subj, sequence))
                continue
            sequences = [sequence]
        else:
            sequences = [
                q
                for q in (_subdirs(seq_root) if seq_root.is_dir() else [])
                if q != layouts.V2_BACKGROUND_SEQUENCE
            ]
            if not sequences:
                calibration(_default_calibration(subj_dir))
                problems.append(_err("no_sequences", seq_root, f"subject {subj} has no sequences"))
        for seq in sequences:
            seq_dir = layout.sequence_dir(root, subj, seq)
            found = layout_name
            if found == "auto":
                try:
                    found = layouts.detect_layout(root, subj, seq)
                except CaptureError:
                    found = "talkhead"  # no frames of any layout: reported as talkhead's
            calib = calibration(_source_calibration(found, subj_dir, seq_dir))
            if found == "talkhead":
                problems += _check_sequence(
                    seq_dir, calib, fps, decode, workers, overlay_dirs, replace
                )
                continue
            problems += _check_source_sequence(found, root, subj, seq, calib)
            if notes is not None:
                notes.append(
                    f"{seq_dir}: {found} layout: calibration and camera "
                    f"{'videos' if found in layouts.VIDEO_LAYOUTS else 'images'} checked; "
                    "the frames are checked after ingest (the workflow's validate_capture)"
                )
    return problems


def _default_calibration(subject_dir: Path) -> Path:
    """The subject's calibration file: talkhead's / v1's place, else the download kits'."""
    path = layout.calibration_path(subject_dir)
    kit = layouts.kit_calibration_path(subject_dir)
    return kit if not path.is_file() and kit.is_file() else path


def _source_calibration(found: str, subject_dir: Path, seq_dir: Path) -> Path:
    """The calibration file :func:`talkhead.capture.layouts.open_source` reads for a layout."""
    if found in layouts.VIDEO_LAYOUTS:
        kit = layouts.kit_calibration_path(subject_dir)
        path = layout.calibration_path(subject_dir)
        return path if not kit.is_file() and path.is_file() else kit
    if found == "talkhead" and layout.sequence_calibration_file(seq_dir).is_file():
        return layout.sequence_calibration_file(seq_dir)
    return _default_calibration(subject_dir)


def _check_source_sequence(
    found: str, root: Path, subject: str, sequence: str, calib: _Calibration
) -> list[Problem]:
    """What can be checked of a NeRSemble sequence without decoding: at least two cameras,
    every calibrated camera has a video (v2, benchmark) or images in every frame folder (v1),
    and no images of uncalibrated cameras."""
    seq_dir = layout.sequence_dir(root, subject, sequence)
    serials = sorted(calib.declared)
    problems = checks.camera_count_problems(serials, calib.path)
    if not calib.ok:
        return problems
    if found in layouts.VIDEO_LAYOUTS:
        folder = seq_dir / layouts.VIDEO_DIR
        have = {p.name for p in folder.glob("cam_*.mp4")} if folder.is_dir() else set()
        missing = [s for s in serials if layouts.video_path(seq_dir, s).name not in have]
        if missing:
            problems.append(
                _err(
                    "missing_video",
                    folder,
                    f"no video of calibrated camera(s) {', '.join(missing)} "
                    f"(expected {layouts.VIDEO_FILE.format(serial='<serial>')})",
                )
            )
        known = {layouts.video_path(seq_dir, s).name for s in serials}
        unknown = sorted(have - known)
        if unknown:
            problems.append(
                _err(
                    "unknown_camera",
                    folder,
                    f"videos of cameras {calib.path} does not calibrate: {', '.join(unknown)}",
                )
            )
        return problems
    try:
        src = layouts.open_source(root, subject, sequence, found)
    except CaptureError as exc:
        return [*problems, _err("no_frames", seq_dir, str(exc))]
    by_camera: dict[str, list[int]] = defaultdict(list)
    for t in src.frame_ids:
        for s in serials:
            if not Path(src.image_path(t, s)).is_file():
                by_camera[s].append(t)
    for s, frames in sorted(by_camera.items()):
        problems.append(
            _err(
                "missing_camera",
                Path(src.image_path(frames[0], s)).parent,
                f"camera {s} has no image in {_plural(len(frames), 'frame')} "
                f"({_list_frames(frames)})",
            )
        )
    return problems


def validate_sequence_dir(
    sequence_dir: PathLike,
    calibration: PathLike | None = None,
    fps: float = 25.0,
    decode: bool = True,
    workers: int | None = None,
    overlays: Sequence[PathLike] = (),
    replace: Sequence[str] = (),
) -> list[Problem]:
    """Check one sequence folder and its calibration file; every problem found.

    The checks of :func:`validate_capture` for one sequence, with the calibration given as a
    file (as a workflow job declares it) instead of found under the subject folder. Products
    are checked where the reader finds them (:mod:`talkhead.capture.products`): in the
    sequence, else in the first overlay holding them (overlays first for ``replace``), so an
    ingested sequence plus the preprocess stage's overlay folders is checked as one.

    Args:
        sequence_dir: ``<root>/<subject>/sequences/<sequence>``.
        calibration: the subject's ``camera_params.json`` (default: the layout's,
            ``<root>/<subject>/camera_params.json``).
        fps, decode, workers: as for :func:`validate_capture`.
        overlays: sequence folders (talkhead layout) holding products the sequence lacks.
        replace: products taken from the overlays first.

    Raises:
        CaptureError: ``sequence_dir`` is not ``<root>/<subject>/sequences/<sequence>``.
        ValueError: an unknown product in ``replace``.
    """
    seq_dir = Path(sequence_dir)
    overlay_dirs = tuple(Path(o) for o in overlays)
    replace = check_product_names(replace, "product to replace")
    root, subject, sequence = layout.split_sequence_dir(seq_dir)
    if calibration is None:
        calibration = layout.calibration_path(layout.subject_dir(root, subject))
    calib, problems = _check_calibration(calibration)
    if not seq_dir.is_dir():
        return [*problems, _missing_sequence(seq_dir, subject, sequence)]
    return problems + _check_sequence(seq_dir, calib, fps, decode, workers, overlay_dirs, replace)


def _missing_sequence(seq_dir: Path, subject: str, sequence: str) -> Problem:
    return _err(
        "missing_sequence", seq_dir, f"sequence {sequence} of subject {subject} does not exist"
    )


def validate_main(
    root: PathLike,
    subject: str | None = None,
    sequence: str | None = None,
    fps: float = 25.0,
    decode: bool = True,
    workers: int | None = None,
    layout_name: str = "auto",
) -> int:
    """Validate, print the report (and a line per sequence whose frames are checked after
    ingest), and return an exit code (0: no errors, 1: errors)."""
    notes: list[str] = []
    problems = validate_capture(
        root,
        subject,
        sequence,
        fps=fps,
        decode=decode,
        workers=workers,
        layout_name=layout_name,
        notes=notes,
    )
    for line in notes:
        print(line)
    where = Path(root) / (subject or "")
    if sequence:
        where = where / layout.SEQUENCES_DIR / sequence
    if problems:
        print(f"{where}: " + format_problems(problems, root=root))
    else:
        print(f"{where}: capture OK")
    return 1 if errors_of(problems) else 0
