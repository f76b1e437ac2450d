"""Gym: RL environments for LLMs and verified rollout collection.

The package is split by role: ``config`` (merging YAML, env.yaml and the command line),
``server`` (the shared FastAPI/uvicorn base every server is built on), ``head`` (discovery),
``protocol`` (Responses API wire models), ``rollouts`` (collection), ``cli`` (the ``ng_*``
commands) and ``testing`` (doubles such as a fake OpenAI endpoint). The modules named
``base_*``, ``config_types``, ``global_config``, ``server_utils``, ``openai_utils``,
``reward_profile`` and ``judge`` re-export from these (or implement, where Gym has no
equivalent) what environments written for NeMo Gym import. ``nemo_gym.authoring`` is the public
surface for writing an environment, an agent or a model server: the servers in this repository
import Gym only from it and from those compatibility modules.

``PARENT_DIR`` (the project root), ``CACHE_DIR`` and ``RESULTS_DIR`` are resolved when read.
Importing this package has no side effects beyond installing a ``NullHandler`` on its logger.
"""

import logging
from pathlib import Path

from nemo_gym._version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["CACHE_DIR", "PARENT_DIR", "RESULTS_DIR", "__version__"]


def __getattr__(name: str) -> Path:
    """``PARENT_DIR``, ``CACHE_DIR`` and ``RESULTS_DIR`` (see ``nemo_gym.global_config``)."""
    if name in ("PARENT_DIR", "CACHE_DIR", "RESULTS_DIR"):
        from nemo_gym import global_config

        return getattr(global_config, name)  # type: ignore[no-any-return]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
