"""Undistortion and downscaling of a camera's images, once, at ingest (OpenCV).

A camera with OpenCV distortion (5 or 8 terms) is resampled onto the pinhole camera with the
same intrinsics K and image size (``cv2.initUndistortRectifyMap`` with ``newCameraMatrix=K``),
so later stages see ``distortion=None``. Downscaling by a factor f resamples with area
averaging (``cv2.INTER_AREA``) to round(W / f) x round(H / f) and scales K with the image:
pixel centres sit at integers, so a new pixel u' covers old pixels around
``(u' + 0.5) * W / W' - 0.5``, i.e. ``fx' = fx * W' / W``, ``cx' = (cx + 0.5) * W' / W - 0.5``.
One :class:`Resampler` per camera holds the maps, built once and applied to every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..geometry.cameras import Camera


def scaled_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """(3, 3) intrinsics of an image resized by (sx, sy) = (W'/W, H'/H), integer pixel centres."""
    K2 = np.array(K, dtype=np.float64)
    K2[0, 0] *= sx
    K2[0, 1] *= sx
    K2[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K2[1, 1] *= sy
    K2[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K2


def output_size(width: int, height: int, downscale: float) -> tuple[int, int]:
    """(width, height) after downscaling by ``downscale`` (rounded, at least 1 pixel)."""
    return max(1, round(width / downscale)), max(1, round(height / downscale))


@dataclass
class Resampler:
    """Undistort (when the camera has distortion) and downscale one camera's images.

    Attributes:
        camera: the calibrated camera (its width and height are the input image size).
        downscale: factor >= 1 (1: keep the size).
        out_camera: the camera of the output images (undistorted, scaled intrinsics,
            ``distortion=None``, output size).
    """

    camera: Camera
    downscale: float = 1.0
    out_camera: Camera = field(init=False)
    _maps: tuple[np.ndarray, np.ndarray] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        import cv2

        cam = self.camera
        if not (cam.width and cam.height):
            raise ValueError(f"camera {cam.serial}: image size unknown")
        if self.downscale < 1:
            raise ValueError(f"downscale must be >= 1, got {self.downscale}")
        if cam.has_distortion:
            self._maps = cv2.initUndistortRectifyMap(
                cam.K, cam.distortion, None, cam.K, (cam.width, cam.height), cv2.CV_32FC1
            )
        w, h = output_size(cam.width, cam.height, self.downscale)
        K = scaled_intrinsics(cam.K, w / cam.width, h / cam.height)
        self.out_camera = replace(cam, K=K, width=w, height=h, distortion=None)

    @property
    def identity(self) -> bool:
        """Whether images pass through unchanged."""
        return self._maps is None and (self.out_camera.width, self.out_camera.height) == (
            self.camera.width,
            self.camera.height,
        )

    def __call__(self, image: np.ndarray, nearest: bool = False) -> np.ndarray:
        """Resample one image (H, W[, C]) of the camera's size.

        Args:
            image: uint8/uint16/float image of the camera's input size.
            nearest: nearest-neighbour sampling (label maps, depth), else bilinear undistortion
                and area-averaged downscaling.

        Returns:
            The image at the output size, same dtype and channels.
        """
        import cv2

        if self._maps is not None:
            image = cv2.remap(
                image,
                self._maps[0],
                self._maps[1],
                cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
            )
        size = (self.out_camera.width, self.out_camera.height)
        if image.shape[1::-1] != size:
            image = cv2.resize(
                image, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
            )
        return image

    def points(self, uv: np.ndarray) -> np.ndarray:
        """Move (N, 2) pixel coordinates of the input images to the output images."""
        import cv2

        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        if self.camera.has_distortion:
            uv = cv2.undistortPoints(
                uv[:, None, :], self.camera.K, self.camera.distortion, P=self.camera.K
            )[:, 0, :]
        sx = self.out_camera.width / self.camera.width
        sy = self.out_camera.height / self.camera.height
        return np.stack([(uv[:, 0] + 0.5) * sx - 0.5, (uv[:, 1] + 0.5) * sy - 0.5], axis=-1)


def distort_image(image: np.ndarray, camera: Camera) -> np.ndarray:
    """The image a camera with ``camera.distortion`` would record of the pinhole ``image``
    (the inverse of undistortion; for tests and synthetic captures).

    Args:
        image: (H, W[, C]) pinhole image of the camera's intrinsics and size.
        camera: with ``distortion`` set.

    Returns:
        The distorted image, same size and dtype.
    """
    import cv2

    h, w = image.shape[:2]
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    uv = np.stack([u.ravel(), v.ravel()], axis=-1)[:, None, :]
    # for each distorted pixel, where it comes from in the pinhole image
    und = cv2.undistortPoints(uv, camera.K, camera.distortion, P=camera.K)[:, 0, :]
    mx = und[:, 0].reshape(h, w).astype(np.float32)
    my = und[:, 1].reshape(h, w).astype(np.float32)
    return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
