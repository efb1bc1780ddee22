"""wav2vec2 hidden states of a local model directory (FaceFormer's audio features).

FaceFormer (Fan et al. 2022) encodes speech with wav2vec 2.0 (Baevski et al. 2020;
``facebook/wav2vec2-base-960h``): a convolutional feature encoder with total stride 320 at
16 kHz (50 rows per second, each row seeing a 400-sample window) followed by a transformer;
the hidden states are then interpolated to the video rate
(:func:`talkhead.audio.features.align_to_frames`).

The model is read with ``transformers`` from a local directory only
(``from_pretrained(model_dir, local_files_only=True)``): nothing is ever downloaded. When the
directory has a ``preprocessor_config.json``, its feature extractor's input normalisation
(zero mean, unit variance per utterance when ``do_normalize``) is applied and its sampling
rate checked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelFileError
from ..io import PathLike

__all__ = [
    "CONFIG_KEY",
    "Wav2Vec2Encoder",
    "check_model_dir",
    "load_wav2vec2",
    "wav2vec2_features",
    "wav2vec2_hidden_states",
    "wav2vec2_timing",
]

log = logging.getLogger(__name__)

#: The setting that names the model directory, for messages.
CONFIG_KEY = "audio_features.wav2vec2_model"
#: Weight files transformers reads, in its order of preference.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def wav2vec2_timing(
    conv_kernel: tuple[int, ...] | list[int],
    conv_stride: tuple[int, ...] | list[int],
    sample_rate: int = 16000,
) -> tuple[float, float]:
    """Rate and first instant of the rows of a wav2vec2 convolutional feature encoder.

    Row ``m`` sees samples ``[m * S, m * S + R)`` with ``S`` the product of the strides and
    ``R = 1 + sum_l (k_l - 1) * prod_{j<l} s_j`` the receptive field; its instant is the
    window's centre, ``(m * S + (R - 1) / 2) / sample_rate``.

    Returns:
        ``(rate_hz, first_time_s)``: 50 Hz and 199.5 / 16000 s (12.47 ms) for wav2vec2-base.
    """
    stride, field = 1, 1
    for k, s in zip(conv_kernel, conv_stride, strict=True):
        field += (int(k) - 1) * stride
        stride *= int(s)
    return sample_rate / stride, (field - 1) / 2 / sample_rate


def _missing(path: Path, what: str) -> ModelFileError:
    return ModelFileError(
        f"{CONFIG_KEY}: {path}: {what} (a local copy of a wav2vec2 model is needed, e.g. the "
        "files of facebook/wav2vec2-base-960h; nothing is downloaded)"
    )


def check_model_dir(model_dir: PathLike) -> Path:
    """The model directory, checked for the files transformers needs.

    Raises:
        ModelFileError: naming the directory and the missing file: no such directory, no
            ``config.json``, a config of another model type, no weights
            (``model.safetensors`` or ``pytorch_model.bin``), or a shard an index lists that
            is not there.
    """
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise _missing(path, "no such directory")
    config = path / "config.json"
    if not config.is_file():
        raise _missing(config, "missing file config.json")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{CONFIG_KEY}: {config}: unreadable model config ({exc})") from None
    if model_type != "wav2vec2":
        raise ModelFileError(
            f"{CONFIG_KEY}: {config}: model_type is {model_type!r}, not 'wav2vec2'"
        )
    weights = next((path / n for n in WEIGHT_FILES if (path / n).is_file()), None)
    if weights is None:
        raise _missing(
            path / WEIGHT_FILES[0], "missing weights model.safetensors (or pytorch_model.bin)"
        )
    if weights.name.endswith(".index.json"):
        try:
            shards = set(json.loads(weights.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise ModelFileError(f"{CONFIG_KEY}: {weights}: unreadable index ({exc})") from None
        for shard in sorted(shards):
            if not (path / shard).is_file():
                raise _missing(
                    path / shard, f"missing weight shard {shard} listed in {weights.name}"
                )
    return path


@dataclass(frozen=True)
class Wav2Vec2Encoder:
    """A loaded wav2vec2 model and what its rows mean.

    Attributes:
        model: the ``transformers.Wav2Vec2Model``, in eval mode, on ``device``.
        device: torch device.
        extractor: the ``Wav2Vec2FeatureExtractor`` of ``preprocessor_config.json`` (its
            normalisation: zero mean, unit variance when ``do_normalize``), or None.
        sample_rate: the rate it expects (Hz).
        rate_hz: rows per second (50 for wav2vec2-base).
        first_time_s: instant of row 0 (seconds).
        n_layers: transformer layers.
        hidden_size: D.
        path: the model directory.
    """

    model: Any
    device: str
    extractor: Any
    sample_rate: int
    rate_hz: float
    first_time_s: float
    n_layers: int
    hidden_size: int
    path: Path


def load_wav2vec2(model_dir: PathLike, device: str = "cpu") -> Wav2Vec2Encoder:
    """Load a wav2vec2 model from a local directory, offline.

    Args:
        model_dir: directory with ``config.json`` and ``model.safetensors`` (or
            ``pytorch_model.bin``), optionally ``preprocessor_config.json``.
        device: torch device (``cpu``, ``cuda``).

    Raises:
        ModelFileError: a missing or incomplete directory (naming the path and the missing
            file, :func:`check_model_dir`), or files transformers cannot read.
    """
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    path = check_model_dir(model_dir)
    try:
        model = Wav2Vec2Model.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{CONFIG_KEY}: {path}: cannot load the model ({exc})") from None
    model.eval().to(torch.device(device))
    cfg = model.config
    rate, first = wav2vec2_timing(cfg.conv_kernel, cfg.conv_stride, 16000)
    extractor, sample_rate = None, 16000
    if (path / "preprocessor_config.json").is_file():
        try:
            extractor = Wav2Vec2FeatureExtractor.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelFileError(
                f"{CONFIG_KEY}: {path / 'preprocessor_config.json'}: unreadable ({exc})"
            ) from None
        sample_rate = int(getattr(extractor, "sampling_rate", 16000))
        rate, first = wav2vec2_timing(cfg.conv_kernel, cfg.conv_stride, sample_rate)
    else:
        log.info("%s has no preprocessor_config.json: audio passed without normalisation", path)
    log.info(
        "wav2vec2 from %s: %d layers, %d dims, %.1f rows/s, input normalised: %s, on %s",
        path,
        cfg.num_hidden_layers,
        cfg.hidden_size,
        rate,
        bool(getattr(extractor, "do_normalize", False)),
        device,
    )
    return Wav2Vec2Encoder(
        model=model,
        device=device,
        extractor=extractor,
        sample_rate=sample_rate,
        rate_hz=rate,
        first_time_s=first,
        n_layers=int(cfg.num_hidden_layers),
        hidden_size=int(cfg.hidden_size),
        path=path,
    )


def wav2vec2_hidden_states(
    encoder: Wav2Vec2Encoder, audio: np.ndarray, layer: int = -1
) -> np.ndarray:
    """Hidden states of one utterance.

    Args:
        encoder: from :func:`load_wav2vec2`.
        audio: (N,) mono samples at ``encoder.sample_rate``, float in [-1, 1].
        layer: 0 is the transformer's input (the projected convolutional features with the
            positional embedding), ``k`` the output of transformer layer ``k``, -1 the last
            (Python indexing over the ``n_layers + 1`` states).

    Returns:
        (M, D) float32 rows at ``encoder.rate_hz`` from ``encoder.first_time_s``; M is 0 for
        audio shorter than the encoder's receptive field (400 samples for wav2vec2-base).

    Raises:
        ConfigError: ``layer`` outside ``[-(n_layers + 1), n_layers]``
            (``audio_features.wav2vec2_layer``).
    """
    import torch

    n = encoder.n_layers
    if not -(n + 1) <= layer <= n:
        raise ConfigError(
            f"audio_features.wav2vec2_layer: must be in [{-(n + 1)}, {n}] for the {n}-layer "
            f"model {encoder.path}, got {layer}"
        )
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"audio must be (N,), got shape {x.shape}")
    field = int(round(2 * encoder.first_time_s * encoder.sample_rate)) + 1
    if x.size < field:
        return np.zeros((0, encoder.hidden_size), np.float32)
    if encoder.extractor is not None:
        x = np.asarray(
            encoder.extractor(x, sampling_rate=encoder.sample_rate, return_tensors="np")[
                "input_values"
            ][0],
            dtype=np.float32,
        )
    with torch.inference_mode():
        inputs = torch.from_numpy(np.ascontiguousarray(x))[None].to(encoder.device)
        out = encoder.model(inputs, output_hidden_states=True)
        states = out.hidden_states[layer][0]
    return states.float().cpu().numpy().astype(np.float32)


def wav2vec2_features(
    audio: np.ndarray,
    model_dir: PathLike,
    device: str = "cpu",
    layer: int = -1,
) -> np.ndarray:
    """Hidden states of a local wav2vec2 model (loads it, :func:`load_wav2vec2`, then
    :func:`wav2vec2_hidden_states`); align them to the frames with
    :func:`talkhead.audio.features.align_to_frames` at the rate and first instant
    :func:`wav2vec2_timing` gives (50 Hz, 12.47 ms for wav2vec2-base).

    Args:
        audio: (N,) mono samples at 16 kHz (the model's rate).
        model_dir: the model directory (``audio_features.wav2vec2_model``).
        device: torch device.
        layer: hidden state (see :func:`wav2vec2_hidden_states`).

    Returns:
        (M, D) float32.

    Raises:
        ModelFileError: missing or incomplete model directory, naming the path and the file.
        ConfigError: ``layer`` out of range.
    """
    return wav2vec2_hidden_states(load_wav2vec2(model_dir, device), audio, layer)
