"""Exceptions raised for bad input, each naming the file and what is wrong."""

from __future__ import annotations


class TalkheadError(Exception):
    """Base class of every error talkhead raises on purpose."""


class CaptureError(TalkheadError):
    """A capture (images, calibration, audio, landmarks) is missing or malformed."""


class ModelFileError(TalkheadError):
    """A FLAME-style model file cannot be read, or holds something it must not."""


class ConfigError(TalkheadError):
    """A configuration value is invalid."""


class DepthError(TalkheadError):
    """A depth map is missing, malformed, or unusable."""


class EvaluationError(TalkheadError):
    """Ground truth missing or malformed, or predictions that cannot be compared with it."""


class StageOutputError(TalkheadError):
    """A stage's output is empty or degenerate: one of its figures is below its qc floor."""


class FittingError(TalkheadError):
    """A model cannot be aligned or fitted to a sequence: too few usable landmarks, wrong units,
    or an optimisation that diverged."""


class AudioError(TalkheadError):
    """An audio file is unreadable, silent, too short, or does not fit its video."""


class DatasetError(TalkheadError):
    """A stage output the dataset packages is missing or inconsistent, or a packaged dataset
    is malformed."""


class NphmError(TalkheadError):
    """The implicit head model cannot be trained, fitted or meshed: a checkpoint that does not
    match its config, an SDF that decodes no surface in the meshing bounds, non-finite values."""
