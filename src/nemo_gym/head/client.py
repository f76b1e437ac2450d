"""Compatibility: ``ServerClient`` and its helpers moved to ``nemo_gym.server.client``.

Code written against earlier Gym (and the environments' tests) imports them from here.
"""

from nemo_gym.server.client import (
    INTERNAL_RETRY,
    ServerClient,
    fetch_global_config,
    head_url,
)

__all__ = ["INTERNAL_RETRY", "ServerClient", "fetch_global_config", "head_url"]
