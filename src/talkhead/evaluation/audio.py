"""Cleaned audio against the clean speech of the ground truth: SI-SDR of the raw microphone and
of the cleaned track (Le Roux, Wisdom, Erdogan, Hershey, "SDR - half-baked or well done?",
ICASSP 2019), against the microphone's noise-free speech (the denoising figure) and against
the dry speech before the microphone.

- :func:`si_sdr_db`: scale-invariant signal-to-distortion ratio of an estimate against a
  reference;
- :func:`audio_gt_metrics`: the raw and cleaned figures and their difference;
- :func:`run_evaluate_audio`: the evaluate rule of one sequence (reads the files, writes
  ``evaluation.json``).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..audio.io import read_audio
from ..audio.prepare import mix_to_mono, remove_dc, resample
from ..errors import EvaluationError
from ..io import PathLike, save_metrics
from .ground_truth import GroundTruth

__all__ = ["audio_gt_metrics", "run_evaluate_audio", "si_sdr_db"]

log = logging.getLogger(__name__)


def si_sdr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    """SI-SDR (dB) of ``estimate`` against ``reference``, both (N,).

    Both are made zero-mean; the target is the reference scaled to best fit the estimate,
    ``a = <est, ref> / <ref, ref>``; SI-SDR = 10 log10(|a ref|^2 / |est - a ref|^2). Unchanged
    by any non-zero scaling of the estimate (and of the reference); +inf for a perfect match.

    Raises:
        EvaluationError: different lengths, or a silent reference.
    """
    est = np.asarray(estimate, dtype=np.float64).ravel()
    ref = np.asarray(reference, dtype=np.float64).ravel()
    if est.shape != ref.shape:
        raise EvaluationError(
            f"SI-SDR: estimate and reference differ in length ({est.size} vs {ref.size} samples)"
        )
    est = est - est.mean()
    ref = ref - ref.mean()
    energy = float(ref @ ref)
    if energy == 0.0:
        raise EvaluationError("SI-SDR: the reference is silent")
    target = (float(est @ ref) / energy) * ref
    noise = est - target
    t, e = float(target @ target), float(noise @ noise)
    if e == 0.0:
        return math.inf
    if t == 0.0:
        return -math.inf
    return 10.0 * math.log10(t / e)


def audio_gt_metrics(
    raw: np.ndarray,
    raw_rate: int,
    cleaned: np.ndarray,
    cleaned_rate: int,
    reference: np.ndarray,
    reference_rate: int,
    prefix: str = "",
) -> dict[str, float]:
    """SI-SDR of the raw recording and of the cleaned audio against a clean reference.

    Both are brought to the reference's rate (the raw one mixed to mono, DC removed; gain does
    not matter to SI-SDR) and cut to the shortest length.

    Args:
        raw: (N, C) or (N,) the microphone as decoded; cleaned: (M,) or (M, 1);
        reference: (K,) the clean speech; the rates in Hz.
        prefix: put before every key (e.g. ``dry_``).

    Returns:
        ``si_sdr_raw_db``, ``si_sdr_cleaned_db``, ``si_sdr_gain_db`` (cleaned - raw),
        ``n_samples`` compared, ``sample_rate``, each key with ``prefix`` before it.
    """
    ref = mix_to_mono(reference)
    x = resample(remove_dc(mix_to_mono(raw)), raw_rate, reference_rate)
    y = resample(mix_to_mono(cleaned), cleaned_rate, reference_rate)
    n = min(ref.size, x.size, y.size)
    if n == 0:
        raise EvaluationError("SI-SDR: no samples to compare")
    raw_db = si_sdr_db(x[:n], ref[:n])
    cleaned_db = si_sdr_db(y[:n], ref[:n])
    out = {
        "si_sdr_raw_db": raw_db,
        "si_sdr_cleaned_db": cleaned_db,
        "si_sdr_gain_db": cleaned_db - raw_db,
        "n_samples": int(n),
        "sample_rate": int(reference_rate),
    }
    return {prefix + k: v for k, v in out.items()}


def run_evaluate_audio(
    raw_path: PathLike | None,
    cleaned_path: PathLike,
    gt_dir: PathLike,
    evaluation_path: PathLike,
) -> dict[str, float | int | str]:
    """Evaluate a sequence's ``cleaned_audio.wav`` and its raw microphone ``raw_path`` against
    the ground truth; write ``evaluation.json``.

    Two references, two questions:

    - ``si_sdr_raw_db``, ``si_sdr_cleaned_db``, ``si_sdr_gain_db``: against the microphone's
      noise-free speech (:meth:`GroundTruth.mic_speech`: the same room reverb, low-pass and
      level as the recording): how much of the microphone's noise the chain removes, i.e.
      the denoising figure;
    - ``dry_si_sdr_raw_db``, ``dry_si_sdr_cleaned_db``, ``dry_si_sdr_gain_db``: against the dry
      speech before the microphone (:meth:`GroundTruth.clean_audio`): how close the output
      comes to the talker's voice, bounded by the reverb and band-limiting no denoiser undoes.

    ``reference`` names what the ``si_sdr_*`` keys used: ``mic_speech``, or ``dry_speech`` for
    a ground truth rendered before the noise-free microphone speech was written (logged as a
    warning; the ``si_sdr_*`` figures are then the dry ones).

    Raises:
        EvaluationError: no raw recording, the ground truth has no clean audio, or nothing to
            compare.
        AudioError: an unreadable audio file.
    """
    if raw_path is None:
        raise EvaluationError(f"{cleaned_path}: the capture has no raw audio to compare with")
    gt = GroundTruth.open(gt_dir)
    dry, dry_rate = gt.clean_audio()
    raw, raw_rate = read_audio(raw_path)
    cleaned, cleaned_rate = read_audio(cleaned_path)
    dry_metrics = audio_gt_metrics(raw, raw_rate, cleaned, cleaned_rate, dry, dry_rate)
    if gt.has_mic_speech():
        mic, mic_rate = gt.mic_speech()
        metrics: dict[str, float | int | str] = {
            "reference": "mic_speech",
            **audio_gt_metrics(raw, raw_rate, cleaned, cleaned_rate, mic, mic_rate),
        }
    else:
        log.warning(
            "%s: no noise-free microphone speech in the ground truth (rendered by an older "
            "studio); SI-SDR against the dry speech, which the room reverb and the microphone's "
            "low-pass bound: re-render the capture for the denoising figure",
            gt.path,
        )
        metrics = {"reference": "dry_speech", **dry_metrics}
    metrics.update({"dry_" + k: v for k, v in dry_metrics.items() if k.startswith("si_sdr")})
    log.info(
        "SI-SDR against the %s: raw %.2f dB, cleaned %.2f dB (%+.2f dB); against the dry speech: "
        "raw %.2f dB, cleaned %.2f dB (%+.2f dB)",
        "noise-free microphone speech" if metrics["reference"] == "mic_speech" else "dry speech",
        metrics["si_sdr_raw_db"],
        metrics["si_sdr_cleaned_db"],
        metrics["si_sdr_gain_db"],
        metrics["dry_si_sdr_raw_db"],
        metrics["dry_si_sdr_cleaned_db"],
        metrics["dry_si_sdr_gain_db"],
    )
    save_metrics(evaluation_path, metrics)
    return metrics
