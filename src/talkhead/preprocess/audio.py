"""The capture's microphone track from an audio file (wav, flac, mp3, ogg, m4a, ...) or from a
video's audio stream, shifted by an offset.

- :func:`read_audio_any`: libsndfile (soundfile) first, PyAV (FFmpeg) for what it cannot read
  (mp3 on old libsndfile, m4a/aac, the audio stream of an mp4/mov/mkv);
- :func:`apply_offset`: a positive offset skips the first seconds, a negative one pads with
  silence (the recording started after the cameras).

Every error is a :class:`~talkhead.errors.CaptureError` of one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CaptureError
from ..io import PathLike

__all__ = ["apply_offset", "read_audio_any", "read_soundfile"]


def read_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    """(N, channels) float32 and the rate through libsndfile, None when it cannot read it."""
    import soundfile as sf

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError):  # LibsndfileError is a RuntimeError
        return None
    return audio, int(sr)


def _read_pyav(path: Path) -> tuple[np.ndarray, int]:
    """(N, channels) float32 and the rate of the first audio stream, decoded by PyAV."""
    try:
        import av
    except ImportError as exc:
        raise CaptureError(f"{path}: cannot read this audio without PyAV ({exc})") from None
    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if not streams:
                raise CaptureError(f"{path}: no audio stream")
            stream = streams[0]
            chunks = []
            sr = stream.rate or stream.codec_context.sample_rate
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                fmt = frame.format
                if fmt.is_planar:
                    arr = arr.T  # (channels, n) -> (n, channels)
                else:
                    arr = arr.reshape(-1, len(frame.layout.channels))
                if np.issubdtype(arr.dtype, np.unsignedinteger):  # u8: offset binary
                    half = (np.iinfo(arr.dtype).max + 1) / 2.0
                    arr = (arr.astype(np.float32) - half) / half
                elif np.issubdtype(arr.dtype, np.integer):
                    arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
                chunks.append(arr.astype(np.float32))
                sr = frame.sample_rate or sr
    except CaptureError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise CaptureError(f"{path}: unreadable audio ({exc})") from None
    if not chunks:
        raise CaptureError(f"{path}: audio stream has 0 samples")
    return np.concatenate(chunks, axis=0), int(sr)


def read_audio_any(path: PathLike) -> tuple[np.ndarray, int]:
    """Audio of a file or of a video's first audio stream.

    Args:
        path: an audio file (wav, flac, ogg, mp3, m4a, aiff, ...) or a video with an audio
            stream (mp4, mov, mkv, ...).

    Returns:
        audio: (N, channels) float32 in [-1, 1]; sample rate (Hz).

    Raises:
        CaptureError: the file is missing or unreadable, has no audio stream, or 0 samples
            (one line naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{path}: audio file is missing")
    got = read_soundfile(path)
    audio, sr = got if got is not None else _read_pyav(path)
    if audio.shape[0] == 0:
        raise CaptureError(f"{path}: audio has 0 samples")
    if sr <= 0:
        raise CaptureError(f"{path}: audio has no sample rate")
    return np.clip(audio, -1.0, 1.0), sr


def apply_offset(audio: np.ndarray, sample_rate: int, offset_s: float) -> np.ndarray:
    """Shift audio so that it starts with the first video frame.

    Args:
        audio: (N, channels) samples.
        sample_rate: Hz.
        offset_s: seconds; positive skips the first ``offset_s`` seconds, negative prepends
            ``-offset_s`` seconds of silence.

    Returns:
        (N', channels) float32 (empty when the offset skips everything).
    """
    n = int(round(abs(offset_s) * sample_rate))
    a = np.asarray(audio, dtype=np.float32)
    if offset_s > 0:
        return a[n:]
    if offset_s < 0:
        return np.concatenate([np.zeros((n, a.shape[1]), np.float32), a], axis=0)
    return a
