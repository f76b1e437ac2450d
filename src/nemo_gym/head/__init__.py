"""Discovery: the head server (``app``); ``client`` re-exports ``nemo_gym.server.client``."""
