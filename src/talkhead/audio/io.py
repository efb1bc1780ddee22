"""Reading any common audio file, writing 16 kHz wavs.

- :func:`read_audio`: libsndfile (soundfile) for what it decodes (wav in every PCM, float and
  ADPCM flavour, flac, Ogg Vorbis and Opus, mp3, aiff), else FFmpeg through PyAV (FLAC in Ogg,
  m4a/AAC, webm/Opus, the audio stream of an mp4/mov/mkv). Nothing is clipped: a lossy decoder
  may overshoot full scale (an mp3 of a loud recording decodes to peaks of ~1.1), and the
  preparation's limiter deals with it.
- :func:`write_audio`: an atomic wav (PCM_16 or FLOAT).

Every error is an :class:`~talkhead.errors.AudioError` of one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AudioError
from ..io import PathLike, atomic_path
from ..preprocess.audio import read_soundfile

__all__ = ["AUDIO_SUFFIXES", "read_audio", "write_audio"]

#: File name suffixes read as audio (lower case; the check ignores case).
AUDIO_SUFFIXES = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".m4a",
    ".aac",
    ".webm",
    ".mp4",
    ".mov",
    ".mkv",
    ".aiff",
    ".aif",
)


def _to_float(arr: np.ndarray) -> np.ndarray:
    """Decoded samples to float32 in [-1, 1): signed ints over 2**(bits-1), unsigned ones
    offset-binary, floats as they are."""
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        half = float(2 ** (8 * arr.dtype.itemsize - 1))
        return ((arr.astype(np.float64) - half) / half).astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        return (arr.astype(np.float64) / float(2 ** (8 * arr.dtype.itemsize - 1))).astype(
            np.float32
        )
    return arr.astype(np.float32)


def _read_pyav(path: Path) -> tuple[np.ndarray, int]:
    """(N, C) float32 and the rate of the first audio stream, decoded by FFmpeg (PyAV).

    Cut to the stream's stated duration where the container states one: AAC pads its last
    frame (up to 1023 samples past the end of the speech), which would add a video frame to
    a clip whose length is a whole number of frames.
    """
    import av

    chunks = []
    keep = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: no audio stream in this file")
            stream = container.streams.audio[0]
            sr = stream.codec_context.sample_rate or stream.rate
            if stream.duration and stream.time_base and sr:
                keep = int(round(float(stream.duration * stream.time_base) * sr))
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                n_ch = len(frame.layout.channels)
                arr = arr.T if frame.format.is_planar else arr.reshape(-1, n_ch)
                chunks.append(_to_float(arr))
                sr = frame.sample_rate or sr
    except AudioError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise AudioError(f"{path}: unreadable audio (no decoder accepts it: {exc})") from None
    if not chunks:
        raise AudioError(f"{path}: the audio stream holds 0 samples")
    audio = np.concatenate(chunks, axis=0)
    if keep and 0 < keep < len(audio):
        audio = audio[:keep]
    return audio, int(sr or 0)


def read_audio(path: PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file or a video's first audio stream.

    Args:
        path: wav (8/16/24/32-bit int, float, ADPCM), flac, ogg (Vorbis, Opus, FLAC), mp3,
            m4a/aac, webm, or a video (mp4, mov, mkv) with an audio stream; suffixes of any case.

    Returns:
        audio: (N, C) float32, full scale 1 (not clipped: lossy decoders may overshoot);
        sample rate (Hz).

    Raises:
        AudioError: one line naming the file: missing, undecodable, no audio stream, 0 samples,
            no sample rate, or NaN/infinite samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file is missing")
    got = read_soundfile(path)
    audio, sr = got if got is not None else _read_pyav(path)
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: the audio holds 0 samples")
    if sr <= 0:
        raise AudioError(f"{path}: the audio has no sample rate")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: the audio holds NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32), sr


def write_audio(
    path: PathLike, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16"
) -> Path:
    """Write mono (N,) or (N, C) float audio in [-1, 1] as a wav, atomically.

    Args:
        subtype: soundfile's ``PCM_16`` or ``FLOAT``.
    """
    import soundfile as sf

    path = Path(path)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(
            str(tmp),
            np.asarray(audio, dtype=np.float32),
            int(sample_rate),
            subtype=subtype,
            format="WAV",
        )
    return path
