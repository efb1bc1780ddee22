"""Sizes of the MeshTalk model (Richard et al. 2021, supplement sections 1.1-1.5).

The defaults are the paper's full scale; :func:`demo_config` gives small sizes that train in
seconds on a CPU (tests, the embedded capture's smoke run). Where the paper is silent the
public code (``facebookresearch/meshtalk``) supplies the number, and the field's doc says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...config import option

__all__ = ["MeshTalkConfig", "demo_config"]


@dataclass(frozen=True)
class MeshTalkConfig:
    """Sizes of MeshTalk's audio encoder, expression encoder, fusion, decoder and context model.

    Build from YAML with ``talkhead.config.from_mapping(MeshTalkConfig, data, "<key>")``.
    """

    n_mels: int = option(80, "Mel bins of the audio encoder's input (supplement 1.1).", minimum=1)
    audio_window_s: float = option(
        1.0,
        "Seconds of log-mel rows fed to the audio encoder per frame, centred on it (1 s: "
        "100 rows at the 10 ms hop, as the public code).",
        exclusive_minimum=0,
    )
    audio_channels: int = option(
        128, "Channels of the audio encoder's convolutions (supplement Table 1).", minimum=1
    )
    audio_kernel: int = option(
        5, "Kernel size of the audio encoder's convolutions (Table 1).", minimum=1
    )
    audio_dilations: tuple[int, ...] = option(
        (2, 4, 6, 2, 4, 6),
        "Dilations of the audio encoder's convolutions, one per layer (Table 1).",
        minimum=1,
        min_items=1,
    )
    audio_dim: int = option(
        128,
        "Size of the audio code, the encoder's last fully connected layer (Table 1).",
        minimum=1,
    )
    dropout: float = option(
        0.2, "Dropout probability in the audio encoder (supplement 1.1).", minimum=0, maximum=1
    )
    expression_hidden: tuple[int, ...] = option(
        (256, 128),
        "Widths of the expression encoder's fully connected layers (supplement 1.2).",
        minimum=1,
        min_items=1,
    )
    expression_lstm: int = option(
        128, "Hidden units of the expression encoder's LSTM (supplement 1.2).", minimum=1
    )
    expression_dim: int = option(
        128, "Size of the expression code, a projection of the LSTM output (1.2).", minimum=1
    )
    fusion_hidden: int = option(
        256,
        "Width of the fusion model's two hidden layers (not in the paper; the public code's).",
        minimum=1,
    )
    heads: int = option(
        64,
        "Categorical heads H of the latent code (paper 64; the public code trains 16).",
        minimum=1,
    )
    categories: int = option(
        128, "Categories C per head (supplement 1.3: 128, the code too).", minimum=2
    )
    gumbel_tau: float = option(
        1.0,
        "Temperature of the Gumbel softmax in stage 1 (the public code's 1).",
        exclusive_minimum=0,
    )
    template_hidden: tuple[int, ...] = option(
        (512, 256, 128),
        "Widths of the decoder's three template layers, the last is the 128 of supplement 1.4 "
        "(512 and 256: the public code's).",
        minimum=1,
        min_items=1,
    )
    decoder_lstm: int = option(
        128, "Hidden units of each of the decoder's LSTMs (supplement 1.4).", minimum=1
    )
    decoder_lstm_layers: int = option(2, "LSTM layers of the decoder (supplement 1.4).", minimum=1)
    context_channels: int = option(
        64, "Channels per head of the context model's layers (supplement 1.5).", minimum=1
    )
    context_kernel: int = option(
        2, "Temporal kernel size of the context model's layers (supplement 1.5).", minimum=1
    )
    context_dilations: tuple[int, ...] = option(
        (1, 2, 4, 8),
        "Temporal dilations of the context model's layers, one per layer (supplement 1.5).",
        minimum=1,
        min_items=1,
    )
    leaky_slope: float = option(
        0.2, "Negative slope of every leaky ReLU (the public code's 0.2).", minimum=0
    )

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field rules, as ``(field, message)`` pairs."""
        rows = round(self.audio_window_s * 100)
        if rows < self.audio_receptive_field:
            return [
                (
                    "audio_window_s",
                    f"gives {rows} log-mel rows (at 100 rows/s), fewer than the audio encoder's "
                    f"receptive field of {self.audio_receptive_field} rows (audio_kernel, "
                    "audio_dilations)",
                )
            ]
        return []

    @property
    def audio_receptive_field(self) -> int:
        """Log-mel rows one audio-code value depends on: ``1 + sum((k - 1) * d)`` (97)."""
        return 1 + sum((self.audio_kernel - 1) * d for d in self.audio_dilations)

    @property
    def context_receptive_field(self) -> int:
        """Frames a context-model prediction depends on, the current one included: 1, plus 1
        for the embedding's previous frame, plus ``(k - 1) * d + 1`` per layer (21 for kernel 2,
        dilations 1/2/4/8)."""
        return 2 + sum((self.context_kernel - 1) * d + 1 for d in self.context_dilations)


def demo_config(**changes: object) -> MeshTalkConfig:
    """Small sizes for CPU tests and smoke runs (the same architecture, narrower): heads 4,
    categories 16, 32-wide layers, an audio encoder of 2 layers on 0.2-s windows.

    Args:
        changes: fields to override.
    """
    small = MeshTalkConfig(
        audio_window_s=0.2,
        audio_channels=32,
        audio_kernel=3,
        audio_dilations=(2, 4),
        audio_dim=32,
        expression_hidden=(64, 32),
        expression_lstm=32,
        expression_dim=32,
        fusion_hidden=64,
        heads=4,
        categories=16,
        template_hidden=(64, 48, 32),
        decoder_lstm=32,
        context_channels=8,
    )
    return dataclasses.replace(small, **changes)
