"""MeshTalk's audio encoder: a window of log-mel rows per video frame to an audio code.

Supplement section 1.1 and Table 1 (Richard et al. 2021): the log-mel spectrogram (80 bins,
FFT 2,048, window 800, hop 160 at 16 kHz: one row every 10 ms), then a fully connected layer
to 128 channels, six 1-D convolutions (128 channels, kernel 5, dilations 2, 4, 6, 2, 4, 6) with
skip connections and dropout 0.2, an average pool over time and a fully connected layer to the
128-d code; leaky ReLUs throughout. Each frame gets its own window (the public code feeds 1 s
of audio centred on the frame: 100 rows), so the encoder has no notion of sequence length and
any number of frames works. :meth:`AudioEncoder.forward_track` computes the same codes from
the whole log-mel track at once (valid convolutions make each window's outputs a slice of the
track's), 25 times faster for 1-s windows at 25 fps.

Choices where the supplement is silent (from the public ``models/encoders.py``):

- the convolutions are *valid* (unpadded): with kernel 5 and those dilations a code value
  depends on 97 rows, so a 100-row window leaves 4 rows to pool; a window shorter than the
  receptive field is edge-padded (its first and last rows repeated) up to it;
- a skip is the mean of the layer's input (centre-cropped to the output length) and its
  output, ``(x + f(x)) / 2``, which keeps the scale of the activations across layers;
- dropout acts on each convolution's output.

Table 1 lists a fully connected first layer where the public code has a kernel-5 convolution;
talkhead follows the table.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...audio.feature_config import FeatureConfig
from ...audio.features import frame_times, frame_windows, log_mel, log_mel_rate
from .config import MeshTalkConfig

__all__ = ["AudioEncoder", "mel_track", "mel_windows"]


def mel_windows(
    audio: np.ndarray,
    n_frames: int,
    fps: float,
    config: MeshTalkConfig | None = None,
    features: FeatureConfig | None = None,
) -> np.ndarray:
    """The audio encoder's input for a waveform: ``config.audio_window_s`` of log-mel rows
    centred on each video frame (:func:`talkhead.audio.features.log_mel` then
    :func:`~talkhead.audio.features.frame_windows`, edge-padded at the ends).

    Args:
        audio: (N,) mono samples at ``features.sample_rate`` (16 kHz by default).
        n_frames: T, the frames to animate (a whole clip: its duration times ``fps``,
            rounded up).
        fps: video frame rate.
        config: the model's sizes (default :class:`MeshTalkConfig`).
        features: the log-mel settings (default: MeshTalk's).

    Returns:
        (T, K, n_mels) float32, ``K = round(audio_window_s * rows per second)`` (100 for 1 s).

    Raises:
        ValueError: ``features.n_mels`` differs from ``config.n_mels``, or empty audio.
    """
    cfg = config or MeshTalkConfig()
    feats = features or FeatureConfig()
    if feats.n_mels != cfg.n_mels:
        raise ValueError(
            f"audio_features.n_mels is {feats.n_mels} but the MeshTalk encoder takes {cfg.n_mels}"
        )
    rows = log_mel(audio, feats)
    return frame_windows(rows, log_mel_rate(feats), n_frames, fps, cfg.audio_window_s)


def mel_track(
    audio: np.ndarray,
    n_frames: int,
    fps: float,
    config: MeshTalkConfig | None = None,
    features: FeatureConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The input of :meth:`AudioEncoder.forward_track` for a waveform: what
    :func:`mel_windows` cuts windows from, uncut.

    Returns:
        ``(rows, centres, window)``: (M, n_mels) float32 log-mel rows, (T,) int64 the row
        nearest to each frame's instant, and K the rows per window.

    Raises:
        ValueError: as :func:`mel_windows`.
    """
    cfg = config or MeshTalkConfig()
    feats = features or FeatureConfig()
    if feats.n_mels != cfg.n_mels:
        raise ValueError(
            f"audio_features.n_mels is {feats.n_mels} but the MeshTalk encoder takes {cfg.n_mels}"
        )
    rate = log_mel_rate(feats)
    rows = log_mel(audio, feats)
    centres = np.rint(frame_times(n_frames, fps) * rate).astype(np.int64)
    return rows, centres, int(round(cfg.audio_window_s * rate))


class AudioEncoder(nn.Module):
    """Per-frame log-mel windows to audio codes (supplement 1.1, Table 1).

    Args:
        config: sizes (``n_mels``, ``audio_channels``, ``audio_kernel``, ``audio_dilations``,
            ``audio_dim``, ``dropout``, ``leaky_slope``).
    """

    def __init__(self, config: MeshTalkConfig) -> None:
        super().__init__()
        c = config.audio_channels
        self.n_mels = config.n_mels
        self.slope = config.leaky_slope
        self.receptive_field = config.audio_receptive_field
        self.project = nn.Linear(config.n_mels, c)
        self.convs = nn.ModuleList(
            nn.Conv1d(c, c, config.audio_kernel, dilation=d) for d in config.audio_dilations
        )
        self.dropout = nn.Dropout(config.dropout)
        self.code = nn.Linear(c, config.audio_dim)

    def forward(self, windows: Tensor) -> Tensor:
        """Audio codes of per-frame windows.

        Args:
            windows: (B, T, K, n_mels) log-mel rows, K rows centred on each frame (any K >= 1;
                K below the receptive field of ``1 + sum((kernel - 1) * dilation)`` rows is
                edge-padded to it).

        Returns:
            (B, T, audio_dim) codes; frame ``t``'s code depends on its window only.

        Raises:
            ValueError: ``windows`` not 4-D or not ``n_mels`` wide.
        """
        if windows.ndim != 4 or windows.shape[-1] != self.n_mels:
            raise ValueError(
                f"AudioEncoder: windows must be (B, T, K, {self.n_mels}), "
                f"got {tuple(windows.shape)}"
            )
        B, T, K, _ = windows.shape
        x = windows.reshape(B * T, K, self.n_mels)
        if K < self.receptive_field:
            short = self.receptive_field - K
            first = x[:, :1].expand(-1, short // 2, -1)
            last = x[:, -1:].expand(-1, short - short // 2, -1)
            x = torch.cat([first, x, last], dim=1)
        return self.code(self._convolve(x).mean(dim=-1)).reshape(B, T, -1)

    def _convolve(self, rows: Tensor) -> Tensor:
        """(N, L, n_mels) rows -> (N, C, L - receptive_field + 1), valid convolutions."""
        x = F.leaky_relu(self.project(rows), self.slope).transpose(1, 2)
        for conv in self.convs:
            y = self.dropout(F.leaky_relu(conv(x), self.slope))
            cut = x.shape[-1] - y.shape[-1]
            x = (x[..., cut // 2 : x.shape[-1] - (cut - cut // 2)] + y) / 2
        return x

    def forward_track(self, rows: Tensor, centres: Tensor, window: int) -> Tensor:
        """Audio codes of a whole track at once: equal to :meth:`forward` on the windows
        :func:`~talkhead.audio.features.frame_windows` cuts (``window`` rows centred on each
        frame's row, edge-padded), for ``window`` >= the receptive field, but each convolution
        runs once over the track instead of once per frame (25 times less work for 1-s
        windows at 25 fps): for long audio at inference. In training mode the dropout masks
        are shared by overlapping windows, unlike :meth:`forward`'s.

        Args:
            rows: (B, M, n_mels) log-mel rows.
            centres: (T,) int64 row nearest to each frame's instant (frame_windows' centre).
            window: K, rows per frame window.

        Returns:
            (B, T, audio_dim).

        Raises:
            ValueError: ``rows`` not (B, M, n_mels), or ``window`` below the receptive field.
        """
        if rows.ndim != 3 or rows.shape[-1] != self.n_mels or rows.shape[1] == 0:
            raise ValueError(
                f"AudioEncoder.forward_track: rows must be (B, M >= 1, {self.n_mels}), "
                f"got {tuple(rows.shape)}"
            )
        if window < self.receptive_field:
            raise ValueError(
                f"AudioEncoder.forward_track: window {window} rows is shorter than the "
                f"receptive field {self.receptive_field}"
            )
        centres = torch.as_tensor(centres, dtype=torch.long, device=rows.device)
        half = window // 2
        # edge padding so that every window is a slice: padded row i is track row i - lo
        lo = max(0, half - int(centres.min())) if centres.numel() else 0
        hi = max(0, int(centres.max()) - half + window - rows.shape[1]) if centres.numel() else 0
        padded = torch.cat(
            [rows[:, :1].expand(-1, lo, -1), rows, rows[:, -1:].expand(-1, hi, -1)], dim=1
        )
        features = self._convolve(padded)  # (B, C, M' - receptive_field + 1)
        start = centres - half + lo
        index = start[:, None] + torch.arange(window - self.receptive_field + 1, device=rows.device)
        pooled = features[..., index].mean(dim=-1)  # (B, C, T)
        return self.code(pooled.transpose(1, 2))
