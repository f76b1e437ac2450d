"""The ``[train]`` extra's modules, imported on first use, with an error that names the extra.

``convert``, ``grpo`` and ``loop`` get torch, transformers and gguf through these functions, so
importing them (or anything in Gym) never needs the extra; using them without it says what to
install.
"""

from __future__ import annotations

from types import ModuleType

from nemo_gym.core.errors import GymError

HINT = "install the training extra: pip install 'nemo-gym[train]'"


class MissingExtraError(GymError, ImportError):
    """A module of the ``[train]`` extra is not installed."""


def torch() -> ModuleType:
    try:
        import torch as module
    except ImportError as exc:  # the [train] extra
        raise MissingExtraError(f"torch is not installed ({exc}); {HINT}") from None
    return module


def transformers() -> ModuleType:
    try:
        import transformers as module
    except ImportError as exc:  # the [train] extra
        raise MissingExtraError(f"transformers is not installed ({exc}); {HINT}") from None
    return module


def gguf() -> ModuleType:
    try:
        import gguf as module
    except ImportError as exc:  # the [train] extra
        raise MissingExtraError(f"gguf is not installed ({exc}); {HINT}") from None
    return module
