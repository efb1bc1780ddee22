"""Lip sync: a measure that needs no learned weights, and SyncNet's LSE-D / LSE-C.

Weight-free: the audio-visual offset and correlation between the mouth opening (distance
between the inner-lip landmarks of the head model) and the speech envelope (RMS per frame):
:func:`speech_envelope`, :func:`inner_lip_opening`, :func:`av_sync_curve`, :func:`av_offset`.

SyncNet (Chung and Zisserman, "Out of time: automated lip sync in the wild", ACCV 2016
workshops; the layer sizes of the public ``syncnet_python`` model, so that its state dict
loads): an audio stream over 13 MFCCs of 0.2 s (20 rows at 100 Hz) and a lip stream over 5
video frames of 224 x 224 crops, each to a 1024-d embedding. LSE-D and LSE-C (Prajwal et al.,
Wav2Lip, ACM MM 2020) follow ``syncnet_python``'s evaluation: for each video window the
distance to the audio windows at offsets -S..S frames, averaged over windows; LSE-D is the
smallest mean distance, LSE-C the median minus that smallest (confidence), the offset is where
the smallest lies. Weights are read from a local file only (a state dict); none are
downloaded.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError
from ..io import PathLike

__all__ = [
    "INNER_LIP_PAIRS",
    "SyncNet",
    "av_offset",
    "av_sync_curve",
    "inner_lip_opening",
    "lip_extent_opening",
    "load_syncnet",
    "lse_from_embeddings",
    "mfcc_windows",
    "speech_envelope",
    "syncnet_lse",
]

#: iBUG-68 inner-lip landmark pairs (upper, lower): 61-67, 62-66, 63-65 (0-based).
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


# ---- weight-free: mouth opening against the speech envelope ---------------------------------


def speech_envelope(
    audio: np.ndarray, sample_rate: int, fps: float, frames: np.ndarray
) -> np.ndarray:
    """The speech envelope per video frame: RMS of the samples of frame ``t``'s interval
    ``[t / fps, (t + 1) / fps)`` (zero past the end of the audio).

    Args:
        audio: (N,) mono samples; sample_rate: Hz; fps: video frame rate;
        frames: (T,) capture frame indices.

    Returns:
        (T,) RMS in the audio's unit (full scale 1).
    """
    x = np.asarray(audio, np.float64).reshape(-1)
    out = np.zeros(len(frames))
    for i, t in enumerate(np.asarray(frames)):
        a, b = int(round(t * sample_rate / fps)), int(round((t + 1) * sample_rate / fps))
        seg = x[max(a, 0) : max(b, 0)]
        out[i] = float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0
    return out


def inner_lip_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mouth opening: the mean distance of the iBUG-68 inner-lip pairs
    (:data:`INNER_LIP_PAIRS`) per frame.

    Args:
        landmarks: (T, 68, 3) (or more points, the first 68 iBUG), metres.

    Returns:
        (T,) metres.

    Raises:
        ValueError: fewer than 68 landmarks.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1] < 68:
        raise ValueError(f"inner-lip opening needs (T, 68, 3) iBUG landmarks, got {lm.shape}")
    up, lo = zip(*INNER_LIP_PAIRS, strict=True)
    return np.linalg.norm(lm[:, list(up)] - lm[:, list(lo)], axis=-1).mean(axis=1)


def lip_extent_opening(vertices: np.ndarray, lips: np.ndarray, axis: int = 1) -> np.ndarray:
    """Mouth opening of a head model without landmarks: the extent of the lip vertices along
    ``axis`` (y, up in FLAME's model space), which grows as the lips part.

    Args:
        vertices: (T, V, 3) metres; lips: (L,) lip vertex indices.

    Returns:
        (T,) metres.
    """
    v = np.asarray(vertices, np.float64)[:, np.asarray(lips, np.int64), axis]
    return v.max(axis=1) - v.min(axis=1)


def av_sync_curve(
    opening: np.ndarray, envelope: np.ndarray, max_lag: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of the mouth opening with the speech envelope at each lag.

    At lag ``k`` the pairs are ``(opening[t + k], envelope[t])``: positive ``k`` means the
    mouth follows the audio by ``k`` frames. Lags whose overlap has fewer than 3 frames, or a
    constant side, give NaN.

    Args:
        opening, envelope: (T,) per frame; max_lag: the lags -max_lag..max_lag.

    Returns:
        ``lags`` (2 max_lag + 1,) int, ``corr`` (2 max_lag + 1,) in [-1, 1] or NaN.

    Raises:
        ValueError: lengths differ.
    """
    o, e = np.asarray(opening, np.float64), np.asarray(envelope, np.float64)
    if o.shape != e.shape or o.ndim != 1:
        raise ValueError(f"av sync: opening {o.shape} and envelope {e.shape} must be (T,)")
    T = o.size
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.full(lags.size, np.nan)
    for i, k in enumerate(lags):
        a, b = o[max(k, 0) : T + min(k, 0)], e[max(-k, 0) : T - max(k, 0)]
        if a.size >= 3 and a.std() > 0 and b.std() > 0:
            corr[i] = float(np.corrcoef(a, b)[0, 1])
    return lags, corr


def av_offset(opening: np.ndarray, envelope: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The audio-visual offset: the lag (frames, as :func:`av_sync_curve`) within
    ±``max_lag`` that maximises the correlation of mouth opening and speech envelope, and that
    correlation (NaN and lag 0 when no lag has one). Identical sequences give (0, 1)."""
    lags, corr = av_sync_curve(opening, envelope, max_lag)
    if np.all(np.isnan(corr)):
        return 0, float("nan")
    i = int(np.nanargmax(corr))
    return int(lags[i]), float(corr[i])


# ---- SyncNet ---------------------------------------------------------------------------------


def lse_from_embeddings(video: np.ndarray, audio: np.ndarray, vshift: int = 15) -> dict:
    """LSE-D, LSE-C and the offset from per-window embeddings (``syncnet_python``'s
    ``calc_pdist`` and its confidence).

    For each offset ``s`` in -vshift..vshift the mean over windows ``t`` of
    ``|| video[t] - audio[t + s] ||`` (audio zero-padded at both ends, as syncnet_python does);
    LSE-D is the smallest mean, LSE-C the median of the means minus the smallest, and
    ``offset_frames`` is ``-s`` of the smallest, syncnet_python's sign: positive when the video
    lags the audio (video window ``t`` matches audio window ``t - offset``), as the lag of
    :func:`av_offset`.

    Args:
        video, audio: (N, D) embeddings of the same N windows.

    Returns:
        ``{"lse_d", "lse_c", "offset_frames"}`` (distances in embedding units).
    """
    v, a = np.asarray(video, np.float64), np.asarray(audio, np.float64)
    if v.shape != a.shape or v.ndim != 2:
        raise ValueError(f"LSE: video {v.shape} and audio {a.shape} embeddings must be (N, D)")
    N = v.shape[0]
    pad = np.concatenate([np.zeros((vshift, a.shape[1])), a, np.zeros((vshift, a.shape[1]))])
    dists = np.stack(
        [
            np.linalg.norm(v - pad[vshift + s : vshift + s + N], axis=1)
            for s in range(-vshift, vshift + 1)
        ]
    )  # (2S+1, N)
    mean = dists.mean(axis=1)
    i = int(np.argmin(mean))
    return {
        "lse_d": float(mean[i]),
        "lse_c": float(np.median(mean) - mean[i]),
        "offset_frames": int(vshift - i),
    }


def mfcc_windows(audio: np.ndarray, sample_rate: int, n_windows: int, fps: float = 25.0):
    """SyncNet's audio input: 13 MFCCs at 100 Hz (25-ms windows, 10-ms hop, 26 mel bands,
    512-point FFT: python_speech_features' defaults, computed with librosa), cut into one
    window of 0.2 s (20 rows) per video frame ``t`` starting at ``t / fps``.

    Args:
        audio: (N,) mono; sample_rate: Hz (16000 for SyncNet's weights); n_windows: windows
            (the video frames whose 5-frame window starts there); fps: video rate.

    Returns:
        (n_windows, 1, 13, 20) float32 tensor.
    """
    import librosa
    import torch

    x = np.asarray(audio, np.float32).reshape(-1)
    need = int(np.ceil((n_windows / fps + 0.2) * sample_rate)) + 400
    x = np.pad(x, (0, max(0, need - x.size)))
    cc = librosa.feature.mfcc(
        y=x,
        sr=sample_rate,
        n_mfcc=13,
        n_fft=512,
        win_length=int(0.025 * sample_rate),
        hop_length=int(0.01 * sample_rate),
        n_mels=26,
        center=False,
    )  # (13, R)
    rows_per_frame = 100.0 / fps
    out = np.stack(
        [
            cc[:, int(round(t * rows_per_frame)) : int(round(t * rows_per_frame)) + 20]
            for t in range(n_windows)
        ]
    )
    return torch.from_numpy(out[:, None].astype(np.float32))


def _syncnet_class():
    import torch.nn as nn

    class _SyncNet(nn.Module):
        """SyncNet's two streams (``syncnet_python``'s ``S``): audio (B, 1, 13, 20) MFCC
        windows and lips (B, 3, 5, 224, 224) frames in 0..255 -> (B, embed_dim) each."""

        def __init__(self, embed_dim: int = 1024) -> None:
            super().__init__()

            def c2(i, o, k, **kw):
                return [nn.Conv2d(i, o, k, **kw), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

            def c3(i, o, k, **kw):
                return [nn.Conv3d(i, o, k, **kw), nn.BatchNorm3d(o), nn.ReLU(inplace=True)]

            self.netcnnaud = nn.Sequential(
                *c2(1, 64, (3, 3), stride=(1, 1), padding=(1, 1)),
                nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
                *c2(64, 192, (3, 3), stride=(1, 1), padding=(1, 1)),
                nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
                *c2(192, 384, (3, 3), padding=(1, 1)),
                *c2(384, 256, (3, 3), padding=(1, 1)),
                *c2(256, 256, (3, 3), padding=(1, 1)),
                nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
                *c2(256, 512, (5, 4), padding=(0, 0)),
            )
            self.netfcaud = nn.Sequential(
                nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim)
            )
            self.netfclip = nn.Sequential(
                nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim)
            )
            self.netcnnlip = nn.Sequential(
                *c3(3, 96, (5, 7, 7), stride=(1, 2, 2), padding=0),
                nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
                *c3(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),
                nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(2, 2, 2), padding=(0, 1, 1)),
                *c3(256, 256, (1, 3, 3), padding=(0, 1, 1)),
                *c3(256, 256, (1, 3, 3), padding=(0, 1, 1)),
                *c3(256, 256, (1, 3, 3), padding=(0, 1, 1)),
                nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
                *c3(256, 512, (1, 6, 6), padding=0),
            )

        def forward_aud(self, x):
            return self.netfcaud(self.netcnnaud(x).flatten(1))

        def forward_lip(self, x):
            return self.netfclip(self.netcnnlip(x).flatten(1))

    return _SyncNet


def SyncNet(embed_dim: int = 1024):  # noqa: N802 (a class factory: torch is imported lazily)
    """A fresh SyncNet (random weights); see the module for its inputs."""
    return _syncnet_class()(embed_dim)


def load_syncnet(path: PathLike, device: str = "cpu"):
    """SyncNet with the weights of a LOCAL state-dict file (``torch.save(model.state_dict())``,
    e.g. ``syncnet_python``'s ``syncnet_v2.model`` re-saved as a state dict), in eval mode.

    Raises:
        ModelFileError: naming the file when it is missing, not a state dict, or of other
            layers or shapes.
    """
    from pathlib import Path

    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"{path}: SyncNet weights file is missing (models.evaluate.syncnet_weights)"
        )
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises many kinds for a bad file)
        raise ModelFileError(f"{path}: not a torch state dict ({type(exc).__name__})") from None
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: expected a SyncNet state dict, got {type(state).__name__}")
    embed = state.get("netfcaud.3.weight")
    net = SyncNet(int(embed.shape[0]) if hasattr(embed, "shape") else 1024)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:200]
        raise ModelFileError(f"{path}: not SyncNet weights ({first})") from None
    return net.to(device).eval()


def syncnet_lse(
    net,
    frames: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    fps: float = 25.0,
    vshift: int = 15,
    batch: int = 20,
) -> dict:
    """LSE-D / LSE-C of a video against its audio with SyncNet (:func:`lse_from_embeddings`).

    Args:
        net: :func:`load_syncnet`'s model.
        frames: (T, 224, 224) grey or (T, 224, 224, 3) RGB uint8 face crops (grey is repeated
            over the 3 colour channels: the FaceTalk supplement evaluates grayscale crops).
        audio: (N,) mono at ``sample_rate`` (16 kHz for syncnet_python's weights).
        fps: the video's frame rate (SyncNet's weights: 25).
        vshift: offsets searched, frames.

    Returns:
        ``{"lse_d", "lse_c", "offset_frames"}``.

    Raises:
        ValueError: fewer than 5 frames or crops not 224 x 224.
    """
    import torch

    f = np.asarray(frames)
    if f.ndim == 3:
        f = np.repeat(f[..., None], 3, axis=-1)
    if f.ndim != 4 or f.shape[1:3] != (224, 224) or f.shape[0] < 5:
        raise ValueError(f"SyncNet needs >= 5 crops of 224 x 224, got {np.asarray(frames).shape}")
    n = f.shape[0] - 4
    video = torch.from_numpy(f.astype(np.float32)).permute(3, 0, 1, 2)  # (3, T, H, W)
    mfcc = mfcc_windows(audio, sample_rate, n, fps)
    device = next(net.parameters()).device
    v_emb, a_emb = [], []
    with torch.no_grad():
        for s in range(0, n, batch):
            idx = range(s, min(s + batch, n))
            clips = torch.stack([video[:, i : i + 5] for i in idx]).to(device)
            v_emb.append(net.forward_lip(clips).cpu().numpy())
            a_emb.append(net.forward_aud(mfcc[list(idx)].to(device)).cpu().numpy())
    return lse_from_embeddings(np.concatenate(v_emb), np.concatenate(a_emb), vshift)
