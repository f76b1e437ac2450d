"""A GRPO update of a transformers causal LM on token samples (torch, CPU or GPU).

Each :class:`~nemo_gym.training.samples.TokenSample` is one rollout; rollouts of one task share a
``group_id``. The advantage of a rollout is its reward minus its group's mean, divided by the
group's standard deviation (groups whose rewards are all equal teach nothing and are skipped).
The loss on every token the model sampled (``loss_mask`` 1) is PPO's clipped surrogate against
the log-probability recorded when it was sampled (temperature applied, as the sampler drew it):

    ratio = exp(logp_now - logp_recorded)
    loss  = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)

averaged over all such tokens of the batch. The current log-probs are computed with the same
temperature, from the model's logits of the previous position. ``epochs`` passes over the
batch, ``minibatch`` rollouts per optimiser step.

Needs torch (the ``[train]`` extra). Neighbours: ``samples.py`` (rows to samples),
``convert.py`` (weights to GGUF), ``loop.py`` (the whole cycle).
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from nemo_gym.training import extra
from nemo_gym.training.samples import TokenSample

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GrpoSettings:
    """How to update: optimiser, clipping, passes over the batch."""

    learning_rate: float = 2e-5
    clip_eps: float = 0.2
    epochs: int = 1
    minibatch: int = 8  # rollouts per optimiser step
    temperature: float = 1.0  # the sampling temperature the log-probs were recorded at
    max_grad_norm: float = 1.0
    seed: int = 0


@dataclass
class UpdateStats:
    """What one update did."""

    samples: int  # rollouts with a non-zero advantage, trained on
    skipped_groups: int  # groups whose rewards were all equal
    steps: int  # optimiser steps
    tokens: int  # tokens forwarded (all positions, every epoch)
    trained_tokens: int  # loss-masked tokens, every epoch
    mean_loss: float
    clipped_fraction: float  # of trained tokens whose ratio left [1 - eps, 1 + eps]
    mean_abs_log_ratio_start: float  # |logp_now - logp_recorded| before the first step
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def advantages(samples: list[TokenSample]) -> tuple[list[tuple[TokenSample, float]], int]:
    """(sample, advantage) of every rollout whose group's rewards differ; and how many groups
    were skipped because they did not."""
    groups: dict[str, list[TokenSample]] = defaultdict(list)
    for sample in samples:
        groups[sample.group_id].append(sample)
    out: list[tuple[TokenSample, float]] = []
    skipped = 0
    for members in groups.values():
        rewards = [s.reward for s in members]
        spread = statistics.pstdev(rewards) if len(rewards) > 1 else 0.0
        if spread == 0.0:
            skipped += 1
            continue
        mean = statistics.fmean(rewards)
        out += [(s, (s.reward - mean) / spread) for s in members]
    return out, skipped


def clipped_loss(
    new_lp: Any, old_lp: Any, advantage: Any, mask: Any, eps: float
) -> tuple[Any, Any, Any]:
    """Summed clipped surrogate over masked tokens, the number clipped, and |log ratio| sum."""
    torch = extra.torch()

    log_ratio = (new_lp - old_lp) * mask
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantage
    clipped = torch.clamp(ratio, 1.0 - eps, 1.0 + eps) * advantage
    loss = -(torch.minimum(unclipped, clipped) * mask).sum()
    n_clipped = (((ratio < 1.0 - eps) | (ratio > 1.0 + eps)).float() * mask).sum()
    return loss, n_clipped, log_ratio.abs().sum()


def token_log_probs(model: Any, input_ids: list[int], temperature: float, mask: Any) -> Any:
    """log p(input_ids[t] | input_ids[:t]) at temperature, where ``mask`` is 1 (0 elsewhere).

    The output projection (49k rows for SmolLM2) is applied only to the positions that predict
    a masked token, which saves most of its cost on long prompts.
    """
    torch = extra.torch()

    ids = torch.tensor([input_ids])
    hidden = model.model(ids).last_hidden_state[0]
    where = torch.nonzero(mask[1:]).flatten()  # token t is predicted at position t - 1
    logits = model.lm_head(hidden[where]).float() / temperature
    picked = torch.log_softmax(logits, dim=-1).gather(1, ids[0, where + 1, None])[:, 0]
    return torch.zeros(len(input_ids)).index_put((where + 1,), picked)


def grpo_update(
    model: Any, optimizer: Any, samples: list[TokenSample], settings: GrpoSettings
) -> UpdateStats:
    """One GRPO update of ``model`` on ``samples`` (see the module docstring)."""
    torch = extra.torch()

    started = time.monotonic()
    weighted, skipped = advantages(samples)
    trained = sum(sum(s.loss_mask) for s, _ in weighted)
    stats = UpdateStats(len(weighted), skipped, 0, 0, 0, 0.0, 0.0, 0.0)
    if not weighted or not trained:
        stats.seconds = time.monotonic() - started
        return stats
    rng = random.Random(settings.seed)
    model.train()
    losses, clipped_total, first_pass_ratio = 0.0, 0.0, 0.0
    for epoch in range(settings.epochs):
        order = list(weighted)
        rng.shuffle(order)
        for start in range(0, len(order), settings.minibatch):
            batch = order[start : start + settings.minibatch]
            denominator = sum(sum(s.loss_mask) for s, _ in batch) or 1
            optimizer.zero_grad(set_to_none=True)
            for sample, advantage in batch:
                mask = torch.tensor(sample.loss_mask, dtype=torch.float32)
                old = torch.tensor(sample.log_probs, dtype=torch.float32)
                new = token_log_probs(model, sample.input_ids, settings.temperature, mask)
                loss, n_clipped, abs_ratio = clipped_loss(
                    new, old, torch.tensor(advantage), mask, settings.clip_eps
                )
                (loss / denominator).backward()
                losses += loss.item()
                clipped_total += n_clipped.item()
                if epoch == 0 and start == 0:
                    first_pass_ratio += abs_ratio.item()
                stats.tokens += len(sample.input_ids)
                stats.trained_tokens += int(mask.sum())
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            stats.steps += 1
            if epoch == 0 and start == 0:
                first_batch_tokens = sum(sum(s.loss_mask) for s, _ in batch) or 1
                stats.mean_abs_log_ratio_start = first_pass_ratio / first_batch_tokens
    model.eval()
    stats.mean_loss = losses / stats.trained_tokens
    stats.clipped_fraction = clipped_total / stats.trained_tokens
    stats.seconds = time.monotonic() - started
    logger.info(
        "GRPO: %d rollouts (%d groups skipped), %d steps, %d tokens in %.1f s",
        stats.samples,
        stats.skipped_groups,
        stats.steps,
        stats.tokens,
        stats.seconds,
    )
    return stats
