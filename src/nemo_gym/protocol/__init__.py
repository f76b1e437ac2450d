"""Wire models of the Responses API as Gym uses it, built on the ``openai`` package's own types.

``items`` (input and output items, with NeMo Gym's defaults), ``responses`` (create params and
the response, dispatching items to their models), ``chat`` (Chat Completions answers and
params), ``usage`` (token usage sums), ``chat_conversion`` (Responses <-> Chat Completions) and
``shapes`` (cheap shape checks without the OpenAI types).

Neighbours: every server base validates its requests with these; ``nemo_gym.openai_utils``
re-exports them under NeMo Gym's names.
"""
