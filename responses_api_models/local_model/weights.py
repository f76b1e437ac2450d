"""New weights while serving: which ``LlamaPool`` answers a request, and the swap to a new one.

``app.py`` takes a lease on the current pool for the whole of a request (every sampling attempt
and the policy version it reports), so a request that started before a swap finishes on the
weights it started on. :meth:`PoolSwitch.load` builds the new pool in a worker thread (the event
loop keeps serving meanwhile), checks that it speaks the same tokens, then makes it current; the
old pool is closed when its last lease ends. The ``POST /load_weights`` body and answer are
defined here too. Neighbours: ``engine.py`` (the pool itself), ``app.py`` (the route).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from responses_api_models.local_model.engine import LlamaPool

logger = logging.getLogger(__name__)


class LoadWeightsRequest(BaseModel):
    """``POST /load_weights``: serve another GGUF file from now on."""

    model_config = ConfigDict(extra="forbid")

    model_path: str = Field(description="A GGUF file with the served model's vocabulary.")


class PolicyInfo(BaseModel):
    name: str
    version: str


class LoadWeightsResponse(BaseModel):
    policy: PolicyInfo
    previous_version: str
    model_path: str
    load_s: float


class WeightsError(ValueError):
    """New weights that cannot replace the current ones, and why."""


class PoolSwitch:
    """The pool serving new requests, and the swap to another weights file."""

    def __init__(self, pool: LlamaPool) -> None:
        self.current = pool
        self._loading = asyncio.Lock()

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[LlamaPool]:
        """The current pool, kept open until the block ends even if a swap happens meanwhile."""
        pool = self.current
        pool.users += 1
        try:
            yield pool
        finally:
            pool.users -= 1
            if pool is not self.current and pool.users == 0 and not pool.closed:
                pool.close()
                logger.info("closed the previous weights %s", pool.version)

    async def load(self, path: Path) -> tuple[LlamaPool, LlamaPool]:
        """Load ``path`` with the current pool's settings and make it current.

        Returns:
            (previous pool, new pool).

        Raises:
            WeightsError: the file is missing, llama.cpp cannot load it, or its vocabulary
                differs from the current model's (prompts are tokenised once, by the model
                that started serving).
        """
        async with self._loading:  # one load at a time; serving goes on
            old = self.current
            new = LlamaPool(
                path, n_instances=old.n_instances, n_threads=old.n_threads, n_ctx=old.n_ctx
            )
            await asyncio.to_thread(_load, new)
            if new.pieces != old.pieces or new.end_ids != old.end_ids:
                new.close()
                raise WeightsError(
                    f"{path}: its vocabulary differs from the served model's "
                    f"({len(new.pieces)} tokens against {len(old.pieces)})"
                )
            self.current = new
            if old.users == 0:
                old.close()
            logger.info("weights %s -> %s (%s)", old.version, new.version, path)
            return old, new


def _load(pool: LlamaPool) -> None:
    """Load ``pool`` (in a worker thread), as a :class:`WeightsError` when it cannot be."""
    if not pool.model_path.is_file():
        raise WeightsError(f"{pool.model_path}: no such GGUF file")
    try:
        pool.load()
    except (ValueError, RuntimeError) as exc:  # llama-cpp-python's load failures
        pool.close()
        raise WeightsError(f"{pool.model_path}: llama.cpp cannot load it ({exc})") from None
