"""Training on rollouts: rows to token samples (``samples``) and trainers' formats (``exports``).

With the ``[train]`` extra (torch, transformers, gguf), also: ``convert`` (weights between GGUF
and transformers), ``grpo`` (a GRPO update), ``loop`` and ``report`` (the closed training loop).
Those are imported by name only (``from nemo_gym.training.loop import ...``), never from here,
so the core install does not need them. Sits above ``rollouts`` and below ``cli``.
"""

from nemo_gym.training.exports import FORMATS, ExportFormat, ExportReport, export, read_rollouts
from nemo_gym.training.samples import (
    FailedRowPolicy,
    SampleError,
    TokenSample,
    build_sample,
)

__all__ = [
    "FORMATS",
    "ExportFormat",
    "ExportReport",
    "FailedRowPolicy",
    "SampleError",
    "TokenSample",
    "build_sample",
    "export",
    "read_rollouts",
]
