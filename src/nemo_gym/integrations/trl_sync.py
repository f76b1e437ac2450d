"""Keeping Gym's embedded model on-policy while TRL trains: new weights after each step.

``GRPOTrainer(..., rollout_func=gym_rollout_func(...), callbacks=[GymWeightSync(head)])``: the
rollouts come from Gym's ``local_model`` (llama.cpp, a GGUF file), the update happens in the
trainer's transformers model. Without a sync every rollout after the first step would be sampled
from the initial weights (off-policy, with log-probs of the wrong model). After every
``every_n_steps`` optimizer steps this callback writes the trainer's model as an F16 GGUF with the
served GGUF's tokenizer and metadata (``nemo_gym.training.convert.write_gguf``) and posts it to
the model server's ``/load_weights``; the rollouts of the next step then carry the new
``policy.version`` (the file's sha256 prefix), which :attr:`GymWeightSync.loaded` records.

Only for llama-architecture models served by ``local_model`` (what ``write_gguf`` supports);
``/load_weights`` answers only loopback callers, so trainer and model server share a host.
Needs the ``[train]`` extra; imported only by code that uses it. Neighbours: ``trl.py`` (the
rollout function), ``nemo_gym.training.loop`` (Gym's own loop, which reloads the same way).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nemo_gym.integrations.batch import run_sync
from nemo_gym.server.client import ServerClient
from nemo_gym.training import extra

logger = logging.getLogger(__name__)


class WeightSync:
    """Loads the trained weights into Gym's model server; :func:`GymWeightSync` makes it a
    ``transformers`` callback.

    Args:
        head_server_config: where Gym's head server is (``host`` and ``port``).
        output_dir: where the GGUF files are written (``step-<n>.gguf``).
        model_server: the model server's instance name (default ``policy_model``).
        every_n_steps: sync after every this many optimizer steps.
        keep_files: keep every step's GGUF (default: only the one being served).
        template: the GGUF whose tokenizer and metadata are copied (default: the shipped
            SmolLM2 GGUF that ``local_model`` serves by default).
    """

    def __init__(
        self,
        head_server_config: Mapping[str, Any],
        output_dir: str | Path,
        *,
        model_server: str = "policy_model",
        every_n_steps: int = 1,
        keep_files: bool = False,
        template: str | Path | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, not {every_n_steps}")
        client = ServerClient.load_from_global_config(head_server_config)
        self.model_url = client.base_url(model_server)
        self.output_dir = Path(output_dir)
        self.every_n_steps = every_n_steps
        self.keep_files = keep_files
        self.template = Path(template) if template is not None else None
        self.timeout_s = timeout_s
        #: ``(global step, policy version the server reported)`` for every sync.
        self.loaded: list[tuple[int, str]] = []
        self._served: Path | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """After an optimizer step: write and load the weights when a sync is due."""
        step = int(state.global_step)
        model = kwargs.get("model")
        if model is None or step % self.every_n_steps:
            return
        if not getattr(state, "is_world_process_zero", True):
            return
        self.sync(model, step)

    def sync(self, model: Any, step: int) -> str:
        """Write ``model`` as ``step-<step>.gguf``, load it into the server; return its version."""
        from nemo_gym.training.convert import shipped_gguf, write_gguf
        from nemo_gym.training.loop import load_weights

        template = self.template or shipped_gguf()
        path = write_gguf(model, template, self.output_dir / f"step-{step}.gguf")
        version = run_sync(lambda: load_weights(self.model_url, path, self.timeout_s))
        if self._served is not None and not self.keep_files and self._served != path:
            self._served.unlink(missing_ok=True)
        self._served = path
        self.loaded.append((step, version))
        logger.info("step %d: %s loads %s (policy %s)", step, self.model_url, path, version)
        return version


@functools.cache
def _callback_class() -> type[WeightSync]:
    base = extra.transformers().TrainerCallback  # the [train] extra, imported on first use
    return type("GymWeightSync", (WeightSync, base), {"__doc__": WeightSync.__doc__})


def GymWeightSync(
    head_server_config: Mapping[str, Any], output_dir: str | Path, **kwargs: Any
) -> WeightSync:
    """A ``transformers.TrainerCallback`` that keeps ``local_model`` on-policy (see
    :class:`WeightSync` for the arguments). transformers is imported here, not with the module.
    """
    return _callback_class()(head_server_config, output_dir, **kwargs)
