"""JSON encoding for bytes that are kept: exact-size copies of ``orjson.dumps``.

``orjson.dumps`` returns a bytes object that keeps the whole buffer it grew while encoding:
measured with ``tracemalloc``, a 667-byte row holds about 8 KB. That does not matter for a
body written once and dropped, but it does for bytes that wait: a request body waiting for a
connection or an answer (16,384 rollouts in flight held 130 MB of such buffers in the agent
alone), a queued task's row, the verify responses a run keeps for its metrics. ``dumps`` here
returns a copy of exactly the encoded length (one ``memcpy``).

Used by ``server.http_client`` (every outgoing body), ``rollouts.inputs`` (packed tasks) and
``rollouts.summary`` (kept verify responses).
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """``orjson.dumps(value)``, copied into a bytes object of exactly its length."""
    return bytes(memoryview(orjson.dumps(value)))
