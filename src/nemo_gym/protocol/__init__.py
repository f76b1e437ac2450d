"""Wire models of the Responses API as Gym uses it, built on the ``openai`` package's own types.

Neighbours: every server base validates its requests with these; ``nemo_gym.openai_utils``
re-exports them under NeMo Gym's names.
"""
