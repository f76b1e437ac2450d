"""Environment folders: naming one from ``+entrypoint=`` and creating a new one from templates.

Used by ``ng_init_resources_server`` (``create``) and ``ng_test`` (``entrypoint``).
"""
