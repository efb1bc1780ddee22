"""COLMAP PatchMatch stereo with known calibration (the ``colmap`` depth backend).

One frame at a time (COLMAP works on one set of views):

1. :func:`write_colmap_workspace` writes a dense workspace as COLMAP's image undistorter
   would (our cameras are already undistorted pinholes)::

       <workspace>/images/cam_<serial>.png          (background blacked out by the masks)
       <workspace>/sparse/{cameras,images,...}.bin  PINHOLE cameras, cam_from_world poses
       <workspace>/stereo/patch-match.cfg           explicit source views per reference view
       <workspace>/stereo/fusion.cfg
       <workspace>/stereo/{depth_maps,normal_maps,consistency_graphs}/

   The :class:`pycolmap.Reconstruction` is built with ``add_camera_with_trivial_rig`` and
   ``add_image_with_trivial_frame`` (:func:`colmap_reconstruction`). COLMAP puts pixel
   centres at +0.5 (the image corner is 0), talkhead at integers: the principal point is
   shifted by +0.5 on the way in; depth-map pixels line up with ours unchanged.
2. PatchMatch stereo (photometric, then geometric consistency, then filtering) runs through
   ``pycolmap.patch_match_stereo`` when pycolmap was built with CUDA (the
   ``pycolmap-cuda12`` wheel), else through a CUDA-enabled ``colmap`` binary
   (:func:`run_patch_match`) over one depth range for all views, given by the caller (the
   depth stage takes it from :func:`talkhead.depth.range.sequence_depth_range`).
3. ``stereo/{depth,normal}_maps/<image>.geometric.bin`` are read with
   :func:`read_colmap_array` and converted to our format (:func:`colmap_to_depth_frame`).

COLMAP's dense arrays (``src/colmap/mvs/mat.h``): an ASCII header ``"<width>&<height>&
<channels>&"`` followed by float32 little-endian data, one channel plane after the other,
each plane row-major (i.e. Fortran order over (width, height, channels)).

Import order: importing ``pycolmap`` before ``cv2`` makes ``cv2.imwrite``/``imencode`` of PNGs
abort the process (clashing zlib/libpng). This module always imports ``cv2`` first
(:func:`import_pycolmap`).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import check
from ..errors import ConfigError, DepthError
from ..geometry.cameras import Camera
from ..io import PathLike, atomic_path
from .config import ColmapConfig
from .io import DepthFrame, depth_frame_path, save_depth_frame, validate_depth_frame

__all__ = [
    "colmap_dense_available",
    "colmap_reconstruction",
    "colmap_to_depth_frame",
    "estimate_depth_colmap",
    "estimate_depth_colmap_sequence",
    "image_name",
    "import_pycolmap",
    "read_colmap_array",
    "read_colmap_dense_maps",
    "run_patch_match",
    "select_source_views",
    "write_colmap_array",
    "write_colmap_workspace",
]

log = logging.getLogger("talkhead.depth.colmap")

NEEDS_CUDA = (
    "COLMAP dense stereo (PatchMatch) needs CUDA: install the pycolmap-cuda12 wheel "
    "(pip install pycolmap-cuda12==4.2.1, on a host with an NVIDIA GPU) or put a COLMAP binary "
    "built with CUDA on PATH (config: depth.colmap.binary); or set depth.backend to 'torch'"
)


# --------------------------------------------------------------------------------------------
# availability
# --------------------------------------------------------------------------------------------


def import_pycolmap():
    """Import pycolmap (after cv2, see the module docstring); None when it is not installed."""
    try:
        import cv2  # noqa: F401  (must be loaded before pycolmap)
    except ImportError:  # pragma: no cover
        pass
    try:
        import pycolmap
    except ImportError:
        return None
    return pycolmap


def _binary_cuda(binary: str) -> tuple[bool, str]:
    exe = shutil.which(binary)
    if exe is None:
        return False, f"no `{binary}` binary on PATH"
    try:
        out = subprocess.run([exe, "-h"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"`{exe} -h` failed ({exc})"
    text = out.stdout + out.stderr
    if "with CUDA" in text:
        return True, f"colmap binary {exe} (built with CUDA)"
    if "without CUDA" in text:
        return False, f"colmap binary {exe} was built without CUDA"
    return False, f"colmap binary {exe} does not say it was built with CUDA"


def colmap_dense_available(binary: str = "colmap") -> tuple[bool, str]:
    """Whether COLMAP dense stereo can run here, and how (a line for the log).

    True when pycolmap was built with CUDA (``pycolmap.has_cuda``) or when ``binary`` on PATH
    reports "with CUDA" in ``colmap -h``.
    """
    pycolmap = import_pycolmap()
    reasons = []
    if pycolmap is None:
        reasons.append("pycolmap is not installed")
    elif bool(getattr(pycolmap, "has_cuda", False)):
        return True, f"pycolmap {pycolmap.__version__} (built with CUDA)"
    else:
        reasons.append(f"pycolmap {pycolmap.__version__} was built without CUDA")
    ok, why = _binary_cuda(binary)
    if ok:
        return True, why
    reasons.append(why)
    return False, "; ".join(reasons)


# --------------------------------------------------------------------------------------------
# COLMAP dense arrays
# --------------------------------------------------------------------------------------------


def read_colmap_array(path: PathLike) -> np.ndarray:
    """Read a COLMAP dense array (``*.bin`` depth, normal or consistency map).

    Returns:
        (H, W) float32 for one channel, (H, W, C) for several.

    Raises:
        DepthError: naming the file when it is missing, has a malformed header or the wrong
            amount of data.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DepthError(f"{path}: cannot read COLMAP array ({exc.strerror or exc})") from None
    fields: list[int] = []
    pos = 0
    for _ in range(3):
        end = raw.find(b"&", pos, pos + 32)
        if end < 0:
            raise DepthError(f"{path}: not a COLMAP array (header 'width&height&channels&')")
        try:
            fields.append(int(raw[pos:end].decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            raise DepthError(f"{path}: malformed COLMAP array header {raw[: end + 1]!r}") from None
        pos = end + 1
    width, height, channels = fields
    if width <= 0 or height <= 0 or channels <= 0:
        raise DepthError(f"{path}: COLMAP array has size {width}x{height}x{channels}")
    n = width * height * channels
    if len(raw) - pos != 4 * n:
        raise DepthError(
            f"{path}: COLMAP array {width}x{height}x{channels} needs {4 * n} bytes of data, "
            f"found {len(raw) - pos}"
        )
    data = np.frombuffer(raw, dtype="<f4", count=n, offset=pos).astype(np.float32)
    arr = data.reshape(channels, height, width).transpose(1, 2, 0)
    return np.ascontiguousarray(arr[..., 0] if channels == 1 else arr)


def write_colmap_array(path: PathLike, array: np.ndarray) -> None:
    """Write (H, W) or (H, W, C) float32 as a COLMAP dense array, atomically."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"COLMAP arrays are (H, W) or (H, W, C), got shape {a.shape}")
    H, W, C = a.shape
    with atomic_path(path, suffix=".bin") as tmp:
        with open(tmp, "wb") as f:
            f.write(f"{W}&{H}&{C}&".encode("ascii"))
            f.write(np.ascontiguousarray(a.transpose(2, 0, 1)).astype("<f4").tobytes())


# --------------------------------------------------------------------------------------------
# workspace
# --------------------------------------------------------------------------------------------


def image_name(camera: Camera) -> str:
    """File name of a camera's image in the workspace (``cam_<serial>.png``)."""
    return f"cam_{camera.serial}.png"


def colmap_reconstruction(cameras: Sequence[Camera], image_size: tuple[int, int] | None = None):
    """A ``pycolmap.Reconstruction`` holding our cameras (known poses, no points).

    Camera/image/rig/frame ids are 1..C in ``cameras`` order; the image names are
    :func:`image_name`.

    Args:
        cameras: the C cameras.
        image_size: (width, height) for cameras that do not know theirs.
    """
    pycolmap = import_pycolmap()
    if pycolmap is None:
        raise DepthError("the colmap depth backend needs pycolmap (pip install pycolmap)")
    rec = pycolmap.Reconstruction()
    for i, cam in enumerate(cameras, start=1):
        w, h = cam.width, cam.height
        if not (w > 0 and h > 0):
            if image_size is None:
                raise DepthError(f"camera {cam.serial} has no image size")
            w, h = image_size
        K = np.asarray(cam.K, dtype=np.float64)
        if abs(K[0, 1]) > 1e-9:
            raise DepthError(f"camera {cam.serial}: COLMAP PINHOLE cannot represent skew")
        colmap_cam = pycolmap.Camera(
            model="PINHOLE",
            width=int(w),
            height=int(h),
            params=[K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5],
            camera_id=i,
        )
        rec.add_camera_with_trivial_rig(colmap_cam)
        image = pycolmap.Image(name=image_name(cam), camera_id=i, image_id=i)
        pose = pycolmap.Rigid3d(np.asarray(cam.world_2_cam, dtype=np.float64)[:3, :4])
        rec.add_image_with_trivial_frame(image, pose)
    return rec


def select_source_views(
    cameras: Sequence[Camera],
    n: int,
    min_angle_deg: float = 2.0,
    max_angle_deg: float = 60.0,
) -> list[list[int]]:
    """Source views of every reference view: the ``n`` nearest optical axes within
    [``min_angle_deg``, ``max_angle_deg``]; if none is admissible, the nearest other view.

    Returns:
        C lists of camera indices, nearest first.
    """
    z = np.stack([np.asarray(c.world_2_cam, dtype=np.float64)[2, :3] for c in cameras])
    ang = np.degrees(np.arccos(np.clip(z @ z.T, -1.0, 1.0)))
    out = []
    for i in range(len(cameras)):
        order = [j for j in np.argsort(ang[i], kind="stable") if j != i]
        ok = [int(j) for j in order if min_angle_deg <= ang[i, j] <= max_angle_deg]
        out.append(ok[:n] if ok else [int(order[0])] if order else [])
    return out


def write_colmap_workspace(
    workspace: PathLike,
    images: np.ndarray,
    cameras: Sequence[Camera],
    masks: np.ndarray | None = None,
    config: ColmapConfig | None = None,
) -> list[str]:
    """Write a COLMAP dense workspace for one frame (see the module docstring).

    Args:
        workspace: folder to create (emptied first if it exists).
        images: (C, H, W, 3) uint8 RGB.
        cameras: the C cameras.
        masks: optional (C, H, W) bool (or alpha; > 0.5 of its range = foreground); with
            ``config.mask_images`` the background is set to black.
        config: settings (source views).

    Returns:
        The C image names, in camera order.
    """
    import cv2

    cfg = config or ColmapConfig()
    images = np.asarray(images)
    C = len(cameras)
    if images.ndim != 4 or images.shape[0] != C or images.shape[-1] != 3:
        raise DepthError(f"images must be (C={C}, H, W, 3), got shape {images.shape}")
    H, W = images.shape[1:3]
    for cam in cameras:
        if cam.width > 0 and cam.height > 0 and (cam.width, cam.height) != (W, H):
            raise DepthError(
                f"camera {cam.serial}: calibration is {cam.width}x{cam.height}, images are {W}x{H}"
            )
    m = _binary_masks(masks, (C, H, W))
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images * 255.0 if images.max() <= 1.0 else images), 0, 255)
        images = images.astype(np.uint8)

    ws = Path(workspace)
    if ws.exists():
        shutil.rmtree(ws)
    for sub in (
        "images",
        "sparse",
        "stereo/depth_maps",
        "stereo/normal_maps",
        "stereo/consistency_graphs",
    ):
        (ws / sub).mkdir(parents=True, exist_ok=True)

    names = [image_name(c) for c in cameras]
    for i, name in enumerate(names):
        img = images[i]
        if m is not None and cfg.mask_images:
            img = np.where(m[i][..., None], img, 0).astype(np.uint8)
        if not cv2.imwrite(str(ws / "images" / name), np.ascontiguousarray(img[..., ::-1])):
            raise DepthError(f"{ws / 'images' / name}: could not write image")

    rec = colmap_reconstruction(cameras, (W, H))
    rec.write(str(ws / "sparse"))

    sources = select_source_views(
        cameras, cfg.num_source_views, cfg.min_source_angle_deg, cfg.max_source_angle_deg
    )
    lines = []
    for name, src in zip(names, sources, strict=True):
        lines += [name, ", ".join(names[j] for j in src)]
    (ws / "stereo" / "patch-match.cfg").write_text("\n".join(lines) + "\n")
    (ws / "stereo" / "fusion.cfg").write_text("\n".join(names) + "\n")
    return names


def _binary_masks(masks: np.ndarray | None, shape: tuple[int, int, int]) -> np.ndarray | None:
    if masks is None:
        return None
    m = np.asarray(masks)
    if m.shape != shape:
        raise DepthError(f"masks have shape {m.shape}, the images need {shape}")
    if m.dtype == bool:
        return m
    if m.dtype == np.uint8:
        return m > 127
    return m > 0.5


# --------------------------------------------------------------------------------------------
# running PatchMatch
# --------------------------------------------------------------------------------------------


def run_patch_match(
    workspace: PathLike,
    depth_range: tuple[float, float],
    config: ColmapConfig | None = None,
    backend: str | None = None,
) -> str:
    """Run COLMAP PatchMatch stereo on a workspace written by :func:`write_colmap_workspace`.

    Args:
        workspace: the dense workspace.
        depth_range: (min, max) metres.
        config: PatchMatch settings.
        backend: "pycolmap" or "binary"; None = the first that has CUDA.

    Returns:
        A line saying which COLMAP ran.

    Raises:
        DepthError: no CUDA-enabled COLMAP here (saying what to install), or PatchMatch failed.
    """
    cfg = config or ColmapConfig()
    pycolmap = import_pycolmap()
    if backend is None:
        ok, why = colmap_dense_available(cfg.binary)
        if not ok:
            raise DepthError(f"{NEEDS_CUDA} (here: {why})")
        backend = "pycolmap" if pycolmap is not None and pycolmap.has_cuda else "binary"
    opts = cfg.patch_match_options()
    opts["depth_min"], opts["depth_max"] = float(depth_range[0]), float(depth_range[1])
    ws = str(workspace)
    if backend == "pycolmap":
        if pycolmap is None:
            raise DepthError(f"{NEEDS_CUDA} (here: pycolmap is not installed)")
        options = pycolmap.PatchMatchOptions()
        for key, value in opts.items():
            setattr(options, key, value)
        try:
            pycolmap.patch_match_stereo(ws, options=options)
        except (ValueError, RuntimeError) as exc:
            msg = str(exc)
            if "CUDA" in msg:
                raise DepthError(f"{NEEDS_CUDA} (pycolmap: {msg.strip()})") from None
            raise DepthError(f"{ws}: COLMAP PatchMatch failed: {msg.strip()}") from None
        return f"pycolmap {pycolmap.__version__}"
    if backend != "binary":
        raise ConfigError(f"colmap: unknown PatchMatch backend {backend!r}")
    exe = shutil.which(cfg.binary)
    if exe is None:
        raise DepthError(f"{NEEDS_CUDA} (here: no `{cfg.binary}` binary on PATH)")
    cmd = [exe, "patch_match_stereo", "--workspace_path", ws, "--workspace_format", "COLMAP"]
    for key, value in opts.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        cmd += [f"--PatchMatchStereo.{key}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        if "CUDA" in tail and ("requires" in tail or "not available" in tail):
            raise DepthError(f"{NEEDS_CUDA} (colmap binary: {tail})")
        raise DepthError(f"{ws}: `colmap patch_match_stereo` failed ({proc.returncode}):\n{tail}")
    return f"colmap binary {exe}"


# --------------------------------------------------------------------------------------------
# reading the results
# --------------------------------------------------------------------------------------------


def read_colmap_dense_maps(
    workspace: PathLike, names: Sequence[str], kind: str = "geometric"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read ``stereo/{depth,normal}_maps/<name>.<kind>.bin`` of every image.

    Returns:
        depth maps [(h, w)] and normal maps [(h, w, 3)] (COLMAP's size, which is the image
        size unless ``max_image_size`` shrank it).

    Raises:
        DepthError: a map is missing (PatchMatch produced nothing for that view) or malformed.
    """
    ws = Path(workspace) / "stereo"
    depths, normals = [], []
    for name in names:
        dpath = ws / "depth_maps" / f"{name}.{kind}.bin"
        npath = ws / "normal_maps" / f"{name}.{kind}.bin"
        if not dpath.is_file():
            raise DepthError(f"{dpath}: COLMAP produced no {kind} depth map for {name}")
        d = read_colmap_array(dpath)
        n = read_colmap_array(npath)
        if d.ndim != 2 or n.shape != (*d.shape, 3):
            raise DepthError(f"{dpath}: depth {d.shape} and normal {n.shape} maps do not match")
        depths.append(d)
        normals.append(n)
    return depths, normals


def colmap_to_depth_frame(
    depth_maps: Sequence[np.ndarray],
    normal_maps: Sequence[np.ndarray],
    cameras: Sequence[Camera],
    masks: np.ndarray | None = None,
    image_size: tuple[int, int] | None = None,
    source: str = "colmap",
) -> DepthFrame:
    """Convert COLMAP depth/normal maps to our format.

    Depth <= 0 or non-finite becomes 0 (invalid); maps smaller than the images (COLMAP's
    ``max_image_size``) are resized with nearest neighbour. Normals (camera frame) are
    normalised and flipped to face the camera (``n . ray < 0``); the confidence is 1 where the
    depth is valid (COLMAP's filter already removed the rest); the masks zero everything
    outside the foreground.

    Args:
        depth_maps: C maps (h, w); normal_maps: C maps (h, w, 3).
        cameras: the C cameras.
        masks: optional (C, H, W) foreground masks.
        image_size: (W, H) of the output; default the cameras' size, else the maps' size.
    """
    import cv2

    C = len(cameras)
    if len(depth_maps) != C or len(normal_maps) != C:
        raise DepthError(f"{source}: {len(depth_maps)} depth maps for {C} cameras")
    if image_size is None:
        sizes = {(c.width, c.height) for c in cameras}
        known = len(sizes) == 1 and min(next(iter(sizes))) > 0
        image_size = next(iter(sizes)) if known else depth_maps[0].shape[1::-1]
    W, H = int(image_size[0]), int(image_size[1])
    m = _binary_masks(masks, (C, H, W))

    depth = np.zeros((C, H, W), np.float32)
    normal = np.zeros((C, H, W, 3), np.float32)
    for i, (d, n, cam) in enumerate(zip(depth_maps, normal_maps, cameras, strict=True)):
        d = np.asarray(d, dtype=np.float32)
        n = np.asarray(n, dtype=np.float32)
        if d.shape != (H, W):
            d = cv2.resize(d, (W, H), interpolation=cv2.INTER_NEAREST)
            n = cv2.resize(n, (W, H), interpolation=cv2.INTER_NEAREST)
        with np.errstate(invalid="ignore"):
            norm = np.linalg.norm(n, axis=-1)
            ok = np.isfinite(d) & (d > 0) & np.isfinite(norm) & (norm > 1e-6)
        if m is not None:
            ok &= m[i]
        n = np.where(ok[..., None], n / np.where(ok, norm, 1.0)[..., None], 0.0)
        u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
        Kinv = np.linalg.inv(np.asarray(cam.K, dtype=np.float64))
        rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ Kinv.T
        flip = np.einsum("hwc,hwc->hw", n, rays) > 0
        n[flip] *= -1.0
        depth[i] = np.where(ok, d, 0.0)
        normal[i] = n
    confidence = (depth > 0).astype(np.float32)
    return validate_depth_frame(depth, normal, confidence, [c.serial for c in cameras], source)


# --------------------------------------------------------------------------------------------
# the backend
# --------------------------------------------------------------------------------------------


def _check_depth_range(depth_range) -> tuple[float, float]:
    """(near, far) as floats; DepthError unless finite with 0 < near < far."""
    try:
        near, far = (float(x) for x in np.asarray(depth_range, dtype=np.float64).reshape(2))
    except (TypeError, ValueError):
        raise DepthError(f"colmap: depth_range must be (near, far), got {depth_range!r}") from None
    if not (np.isfinite(near) and np.isfinite(far) and 0 < near < far):
        raise DepthError(f"colmap: depth_range needs 0 < near < far, got ({near}, {far})")
    return near, far


def estimate_depth_colmap(
    images: np.ndarray,
    cameras: Sequence[Camera],
    masks: np.ndarray | None,
    workdir: PathLike,
    depth_range: tuple[float, float],
    config: ColmapConfig | None = None,
) -> DepthFrame:
    """Depth and normals of one frame with COLMAP PatchMatch stereo (needs CUDA).

    Args:
        images: (C, H, W, 3) uint8 RGB of one frame.
        cameras: the C cameras (known calibration).
        masks: optional (C, H, W) foreground masks (bool or alpha).
        workdir: scratch folder for the COLMAP workspace.
        depth_range: (near, far) z-depth in metres searched in every view (e.g. the union of
            :func:`talkhead.depth.range.depth_range_from_points`'s per-view ranges).
        config: settings.

    Raises:
        DepthError: an invalid depth range, COLMAP cannot run dense stereo here (saying what
            to install), or PatchMatch failed.
    """
    depth_range = _check_depth_range(depth_range)
    cfg = config or ColmapConfig()
    check(cfg, "depth.colmap")
    ok, why = colmap_dense_available(cfg.binary)
    if not ok:
        raise DepthError(f"{NEEDS_CUDA} (here: {why})")
    ws = Path(workdir)
    try:
        names = write_colmap_workspace(ws, images, cameras, masks, cfg)
        ran = run_patch_match(ws, depth_range, cfg)
        log.info(
            "PatchMatch (%s) on %d views, depth range %.3f-%.3f m", ran, len(cameras), *depth_range
        )
        kind = "geometric" if cfg.geom_consistency else "photometric"
        dmaps, nmaps = read_colmap_dense_maps(ws, names, kind)
        H, W = np.asarray(images).shape[1:3]
        return colmap_to_depth_frame(dmaps, nmaps, cameras, masks, (W, H), source=str(ws))
    finally:
        if not cfg.keep_workspace and ws.exists():
            shutil.rmtree(ws, ignore_errors=True)


def estimate_depth_colmap_sequence(
    frames: Iterable[int],
    load_frame: Callable[[int], tuple[np.ndarray, np.ndarray | None]],
    cameras: Sequence[Camera],
    out_dir: PathLike,
    workdir: PathLike,
    depth_range: tuple[float, float],
    config: ColmapConfig | None = None,
) -> dict[str, Any]:
    """Run :func:`estimate_depth_colmap` frame by frame and write ``frame_<t>.npz`` files.

    Args:
        frames: frame ids ``t``.
        load_frame: ``t -> (images (C, H, W, 3), masks (C, H, W) | None)`` in ``cameras`` order.
        cameras: the C cameras.
        out_dir: where the depth files go (:func:`depth_frame_path`).
        workdir: scratch folder (one sub-folder per frame, deleted unless kept).
        depth_range: (near, far) metres searched in every view of every frame.
        config: settings.

    Returns:
        ``{"backend": which COLMAP ran, "frames": n, "valid_fraction": [per frame]}``.
    """
    depth_range = _check_depth_range(depth_range)
    cfg = config or ColmapConfig()
    ok, why = colmap_dense_available(cfg.binary)
    if not ok:
        raise DepthError(f"{NEEDS_CUDA} (here: {why})")
    log.info("depth backend colmap: %s", why)
    fractions = []
    n = 0
    for t in frames:
        images, masks = load_frame(t)
        frame = estimate_depth_colmap(
            images, cameras, masks, Path(workdir) / f"frame_{int(t):05d}", depth_range, cfg
        )
        save_depth_frame(
            depth_frame_path(out_dir, t), frame.depth, frame.normal, frame.confidence, frame.serials
        )
        fractions.append(float((frame.depth > 0).mean()))
        n += 1
    return {"backend": why, "frames": n, "valid_fraction": fractions}
