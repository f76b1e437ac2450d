"""Training on rollouts: rows to token samples (``samples``) and trainers' formats (``exports``).

Sits above ``rollouts`` (it reads the rows that package writes) and below ``cli``.
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
