"""The agent role: runs one rollout (``/run``) or one multi-step trajectory (``/v1/responses``)."""
