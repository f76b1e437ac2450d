"""The resources-server role: tools and ``verify``. See ``server`` and ``schemas``."""
