"""JSON for bodies that are kept or large: exact-size ``dumps``, and ``loads`` that bounds memory.

``orjson.dumps`` returns a bytes object that keeps the whole buffer it grew while encoding:
measured with ``tracemalloc``, a 667-byte row holds about 8 KB. That does not matter for a
body written once and dropped, but it does for bytes that wait: a request body waiting for a
connection or an answer (16,384 rollouts in flight held 130 MB of such buffers in the agent
alone), a queued task's row, the verify responses a run keeps for its metrics. ``dumps`` here
returns a copy of exactly the encoded length (one ``memcpy``).

``orjson.loads`` needs about 17 bytes of memory per byte of input while it parses (its parser
builds a whole document before making Python objects), the standard library's about 6 (the
objects included): a 20 MB ``/aggregate_metrics`` body of 32,768 verify responses took a
resources server from 96 MB to 317 MB. ``loads`` here uses orjson up to ``LARGE_BYTES`` and the
standard library above, with orjson's strictness (no ``NaN``/``Infinity``, valid UTF-8) and its
error type, so callers see one behaviour.

Used by ``server.http_client`` (every outgoing body, every answer read), ``server.routing`` and
``server.bodies`` (request bodies), ``rollouts.inputs`` (packed tasks) and ``rollouts.summary``
(kept verify responses).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Bodies larger than this are parsed by the standard library (see the module docstring); at
#: this size orjson's transient is about 12 MB beyond the result.
LARGE_BYTES = 1 << 20


def dumps(value: Any) -> bytes:
    """``orjson.dumps(value)``, copied into a bytes object of exactly its length."""
    return bytes(memoryview(orjson.dumps(value)))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON as ``orjson.loads`` does, in bounded memory for large documents.

    Raises:
        orjson.JSONDecodeError: (a ``json.JSONDecodeError`` and ``ValueError``) not JSON, not
            UTF-8, or a ``NaN``/``Infinity`` constant.
    """
    if len(data) <= LARGE_BYTES:
        return orjson.loads(data)
    text = data if isinstance(data, str) else bytes(data)
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise orjson.JSONDecodeError(exc.msg, exc.doc, exc.pos) from None
    except UnicodeDecodeError as exc:
        message = f"str is not valid UTF-8: {exc.reason}"
        raise orjson.JSONDecodeError(message, "", exc.start) from None
    except ValueError as exc:  # a NaN/Infinity constant
        raise orjson.JSONDecodeError(str(exc), "", 0) from None
