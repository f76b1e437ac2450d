"""The GRPO update's pieces against hand-computed values, and one update on a tiny model."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="torch is missing: install the [train] extra")
transformers = pytest.importorskip("transformers", reason="install the [train] extra")

from nemo_gym.training.grpo import (  # noqa: E402
    GrpoSettings,
    advantages,
    clipped_loss,
    grpo_update,
    token_log_probs,
)
from nemo_gym.training.samples import TokenSample  # noqa: E402

pytestmark = pytest.mark.train


def sample(group: str, reward: float, ids: list[int] | None = None) -> TokenSample:
    ids = ids or [1, 2, 3, 4]
    return TokenSample(
        input_ids=ids,
        loss_mask=[0, 0, 1, 1],
        log_probs=[0.0, 0.0, -1.0, -2.0],
        turn_spans=[(2, 4)],
        prompt_length=2,
        reward=reward,
        group_id=group,
        rollout_id=f"{group}-{reward}",
        num_model_turns=1,
    )


def tiny_model() -> object:
    config = transformers.LlamaConfig(
        vocab_size=16, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config)


def test_advantages_are_normalised_within_groups() -> None:
    # group a: rewards 1, 0 -> mean 0.5, population sd 0.5 -> +1, -1
    # group b: rewards 1, 1 -> sd 0: skipped
    # group c: 1, 0, 0 -> mean 1/3, sd sqrt(2)/3 -> (2/3)/(sqrt(2)/3) = sqrt(2), -1/sqrt(2)
    out, skipped = advantages(
        [sample("a", 1), sample("a", 0), sample("b", 1), sample("b", 1)]
        + [sample("c", 1), sample("c", 0), sample("c", 0)]
    )
    assert skipped == 1
    got = [(s.group_id, s.reward, round(a, 6)) for s, a in out]
    r2 = round(math.sqrt(2), 6)
    assert got == [
        ("a", 1, 1.0), ("a", 0, -1.0),
        ("c", 1, r2), ("c", 0, round(-1 / math.sqrt(2), 6)), ("c", 0, round(-1 / math.sqrt(2), 6)),
    ]  # fmt: skip


def test_clipped_loss_by_hand() -> None:
    # ratios exp(0.5)=1.6487 (clipped to 1.2), exp(-0.1)=0.9048, a masked token ignored
    new = torch.tensor([0.5, -0.1, 3.0])
    old = torch.zeros(3)
    mask = torch.tensor([1.0, 1.0, 0.0])
    loss, n_clipped, abs_ratio = clipped_loss(new, old, torch.tensor(2.0), mask, 0.2)
    # A = 2 > 0: min(r*A, clip(r)*A) = min(3.2974, 2.4) = 2.4 and min(1.8097, 1.8097) = 1.8097
    assert loss.item() == pytest.approx(-(2.4 + 2 * math.exp(-0.1)), abs=1e-5)
    assert n_clipped.item() == 1.0
    assert abs_ratio.item() == pytest.approx(0.6)
    # A = -1: min(-1.6487, -1.2) = -1.6487 (unclipped: the pessimistic side), -0.9048
    loss, _, _ = clipped_loss(new, old, torch.tensor(-1.0), mask, 0.2)
    assert loss.item() == pytest.approx(math.exp(0.5) + math.exp(-0.1), abs=1e-5)


def test_token_log_probs_match_the_full_forward_pass() -> None:
    model = tiny_model()
    ids = [3, 7, 1, 9, 4, 4, 2]
    mask = torch.tensor([0, 0, 0, 1, 1, 0, 1], dtype=torch.float32)
    with torch.no_grad():
        ours = token_log_probs(model, ids, 0.7, mask)
        logits = model(torch.tensor([ids])).logits[0]  # type: ignore[operator]
        full = torch.log_softmax(logits.double() / 0.7, -1)
    for t in range(len(ids)):
        expected = full[t - 1, ids[t]].item() if mask[t] else 0.0
        assert ours[t].item() == pytest.approx(expected, abs=1e-5), t


def test_an_update_raises_the_advantaged_rollouts_log_probs() -> None:
    model = tiny_model()
    good, bad = [1, 2, 3, 4], [1, 2, 5, 6]
    samples = [sample("g", 1.0, good), sample("g", 0.0, bad)]
    mask = torch.tensor([0, 0, 1, 1], dtype=torch.float32)
    with torch.no_grad():
        before = [token_log_probs(model, ids, 1.0, mask).sum().item() for ids in (good, bad)]
    for s, ids in zip(samples, (good, bad), strict=True):  # record the current log-probs
        with torch.no_grad():
            s.log_probs = token_log_probs(model, ids, 1.0, mask).tolist()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)  # type: ignore[attr-defined]
    stats = grpo_update(model, optimizer, samples, GrpoSettings(minibatch=2, clip_eps=10.0))
    with torch.no_grad():
        after = [token_log_probs(model, ids, 1.0, mask).sum().item() for ids in (good, bad)]
    assert (stats.samples, stats.steps, stats.tokens, stats.trained_tokens) == (2, 1, 8, 4)
    assert stats.mean_abs_log_ratio_start == pytest.approx(0.0, abs=1e-6)
    assert after[0] > before[0] and after[1] < before[1]
