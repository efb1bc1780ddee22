"""Settings of the audio features (the ``audio_features`` config section).

The log-mel front end is MeshTalk's (Richard et al. 2021, supplement section 1.1: 80 mel bins,
FFT size 2,048, window 800 samples, hop 160 samples at 16 kHz, i.e. one row every 10 ms; the
log with a 1e-10 floor as in its public ``models/encoders.py``). wav2vec2 hidden states
(FaceFormer's audio features) come from a local model directory when one is configured.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option

__all__ = ["ALIGNMENT_MODES", "PAD_MODES", "FeatureConfig"]

#: How feature rows become one row per frame (:func:`talkhead.audio.features.align_to_frames`).
ALIGNMENT_MODES = ("interpolate", "mean")
#: What frames after the end of the audio get (see :class:`FeatureConfig`).
PAD_MODES = ("edge", "silence")


@dataclass(frozen=True)
class FeatureConfig:
    """Audio features per video frame: MeshTalk's log-mel spectrogram and, optionally, the
    hidden states of a local wav2vec2 model.

    Build from YAML with ``talkhead.config.from_mapping(FeatureConfig, data, "audio_features")``.
    """

    sample_rate: int = option(
        16000, "Sample rate (Hz) the features are computed at (MeshTalk: 16000).", minimum=1000
    )
    n_fft: int = option(2048, "FFT size of the log-mel spectrogram (samples).", minimum=16)
    win_length: int = option(
        800, "Hann window length of the log-mel spectrogram (samples).", minimum=16
    )
    hop_length: int = option(
        160, "Hop between log-mel rows (samples; 160 at 16 kHz: one row every 10 ms).", minimum=1
    )
    n_mels: int = option(80, "Mel bins of the log-mel spectrogram.", minimum=1)
    log_floor: float = option(
        1e-10,
        "Mel power floor before the natural log (log of silence: ln(1e-10) = -23.03).",
        exclusive_minimum=0,
    )
    alignment: str = option(
        "interpolate",
        "Rows per video frame: interpolate (linear, at the frame's instant t/fps) or mean "
        "(average of the rows within half a frame period of it).",
        choices=ALIGNMENT_MODES,
    )
    pad: str = option(
        "edge",
        "Video frames after the end of the audio: edge (repeat the last row) or silence "
        "(the audio is extended with digital silence first).",
        choices=PAD_MODES,
    )
    max_pad_s: float = option(
        0.5,
        "Audio shorter than the video by more than this (seconds) is an error, not padding.",
        minimum=0,
    )
    context_window_s: float = option(
        0.0,
        "Also write log-mel windows of this many seconds centred on each frame (MeshTalk: 1.0); "
        "0: off.",
        minimum=0,
    )
    wav2vec2_model: str = option(
        "",
        "Local directory of a wav2vec2 model (config.json, model.safetensors or "
        "pytorch_model.bin, optional preprocessor_config.json); empty: no wav2vec2 features.",
    )
    wav2vec2_layer: int = option(
        -1,
        "Hidden state written: 0 is the transformer's input, k the output of layer k, -1 the last.",
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        out = []
        if self.win_length > self.n_fft:
            out.append(("win_length", f"must be <= n_fft ({self.n_fft}), got {self.win_length}"))
        if self.hop_length > self.win_length:
            out.append(
                (
                    "hop_length",
                    f"must be <= win_length ({self.win_length}), got {self.hop_length}: "
                    "audio between the windows would be skipped",
                )
            )
        if self.n_mels > self.n_fft // 2 + 1:
            out.append(
                (
                    "n_mels",
                    f"must be <= n_fft // 2 + 1 ({self.n_fft // 2 + 1} frequency bins), "
                    f"got {self.n_mels}",
                )
            )
        return out
