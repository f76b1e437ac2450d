"""Gym: RL environments for LLMs and verified rollout collection.

The package is split by role: ``config`` (merging YAML, env.yaml and the command line),
``server`` (the shared FastAPI/uvicorn base every server is built on), ``head`` (discovery),
``protocol`` (Responses API wire models), ``rollouts`` (collection), ``cli`` (the ``ng_*``
commands) and ``testing`` (doubles such as a fake OpenAI endpoint). The modules named
``base_*``, ``global_config``, ``server_utils`` and ``openai_utils`` re-export from these so that
environments written for NeMo Gym keep importing what they expect.

Importing this package has no side effects beyond installing a ``NullHandler`` on its logger.
"""

import logging

from nemo_gym._version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__"]
