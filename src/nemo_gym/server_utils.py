"""NeMo Gym compatibility: ``ServerClient`` and the server base under their original module."""

from nemo_gym.head.client import ServerClient
from nemo_gym.server.base import BaseRunServerInstanceConfig, BaseServer, SimpleServer
from nemo_gym.server.sessions import SESSION_ID_KEY

__all__ = [
    "SESSION_ID_KEY",
    "BaseRunServerInstanceConfig",
    "BaseServer",
    "ServerClient",
    "SimpleServer",
]
