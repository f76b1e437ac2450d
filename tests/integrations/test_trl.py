"""TRL's GRPOTrainer takes two steps on CPU with rollouts collected through Gym's servers.

The weather environment runs on the embedded local model (llama.cpp, SmolLM2 Q4_1) under
``RunHelper``; the trainer's model is the same SmolLM2 read from that GGUF into transformers
(fp32); ``GymWeightSync`` loads the trained weights into the model server after each of the two
steps, so the second step's rollouts are on-policy. One of the three prompts is a row whose
rollouts fail (the agent rejects its ``max_output_tokens``), so one GRPO group is two failed
rollouts: their reward must reach the trainer as ``None`` (NaN in its log, no advantage), not 0.
Checked against Gym's rows independently of the code under test: the rewards TRL logged, the
model tokens it counted (``env_mask``), and the token ids it trained on. The weather verifier
gives every finished rollout 1.0, so a second reward (shorter is better) gives GRPO an advantage
and the step a gradient.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from omegaconf import DictConfig

from nemo_gym.training.loop import policy_versions
from tests.helpers import REPO, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),  # about 4 minutes: model load, 2 x 6 rollouts, 2 updates and syncs
    # transformers 5 deprecates the name TRL still uses; not ours to fix
    pytest.mark.filterwarnings("ignore:.*gradient_checkpointing.*:FutureWarning"),
]
torch = pytest.importorskip("torch", reason="the TRL test needs the [train] extra (torch)")
trl = pytest.importorskip("trl", reason="the TRL test needs the [train] extra (trl)")
datasets = pytest.importorskip("datasets", reason="the TRL test needs trl's datasets")
engine = pytest.importorskip(
    "responses_api_models.local_model.engine", reason="needs the [local] extra"
)

AGENT = "example_single_tool_call_simple_agent"
DATA = REPO / "resources_servers/example_single_tool_call/data/example.jsonl"


def model_tokens(row: dict[str, Any]) -> tuple[list[int], list[int]]:
    """From a Gym row alone: the first model turn's prompt and the tokens the model chose."""
    turns = [i for i in row["response"]["output"] if i.get("generation_token_ids")]
    chosen: list[int] = []
    for turn in turns:
        ids = turn["generation_token_ids"]
        forced = turn.get("generation_grammar_forced") or [0] * len(ids)
        chosen += [tok for tok, f in zip(ids, forced, strict=True) if not f]
    return turns[0]["prompt_token_ids"], chosen


def test_grpo_trainer_steps_on_rollouts_collected_through_gym(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nemo_gym.cli import GlobalConfigDictParserConfig, RunHelper
    from nemo_gym.integrations.trl import gym_reward, gym_rollout_func, prompt_dataset
    from nemo_gym.integrations.trl_sync import GymWeightSync

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    head_port = free_port()
    rows = [orjson.loads(line) for line in DATA.read_bytes().splitlines()[:2]]
    broken = {
        "responses_create_params": {
            "input": [{"role": "user", "content": "Is it raining in Oslo?"}],
            "max_output_tokens": "many",
        }
    }
    rows.append(broken)
    rh = RunHelper()
    rh.start(
        global_config_dict_parser_config=GlobalConfigDictParserConfig(
            dotenv_path=tmp_path / "env.yaml",
            initial_global_config_dict=DictConfig(
                {
                    "config_paths": [
                        "resources_servers/example_single_tool_call/configs/"
                        "example_single_tool_call.yaml",
                        "responses_api_models/local_model/configs/local_model.yaml",
                    ],
                    "default_host": "127.0.0.1",
                    "head_server": {"host": "127.0.0.1", "port": head_port},
                }
            ),
            skip_load_from_cli=True,
        )
    )
    try:
        gguf = engine.default_model_path()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # transformers refuses to fine-tune a model it loaded from GGUF (it counts as quantized,
        # though dequantised to fp32); the same weights in a plain model of the same config train.
        read = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = read.config
        config.quantization_config = None
        model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
        model.load_state_dict(read.state_dict())
        del read
        rollout = gym_rollout_func(AGENT, {"host": "127.0.0.1", "port": head_port}, rows=rows)
        returned: list[dict[str, list[Any]]] = []
        rows_of_call: list[list[dict[str, Any]]] = []

        def brevity(
            completion_ids: list[list[int]], gym_reward: list[float | None], **_: Any
        ) -> list[float | None]:
            # The weather verifier gives every finished rollout 1.0, so Gym's reward alone
            # leaves GRPO no advantage to learn from; this one differs within a group.
            return [
                None if g is None else -len(c) / 100
                for c, g in zip(completion_ids, gym_reward, strict=True)
            ]

        def recording_rollout(prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
            out = rollout(prompts, trainer)
            returned.append(out)
            rows_of_call.append(rollout.last_rows)
            return out

        args = trl.GRPOConfig(
            output_dir=str(tmp_path / "out"),
            use_cpu=True,
            use_vllm=False,
            max_steps=2,
            per_device_train_batch_size=6,  # 3 prompts x 2 generations
            num_generations=2,
            max_completion_length=48,
            temperature=0.8,
            learning_rate=1e-6,
            beta=0.0,
            logging_steps=1,
            report_to="none",
            save_strategy="no",
            seed=0,
        )
        trainer = trl.GRPOTrainer(
            model=model,
            processing_class=tokenizer,
            reward_funcs=[gym_reward, brevity],
            args=args,
            train_dataset=datasets.Dataset.from_list(prompt_dataset(rows)),
            rollout_func=recording_rollout,
            callbacks=[
                sync := GymWeightSync(
                    {"host": "127.0.0.1", "port": head_port}, tmp_path / "synced", keep_files=True
                )
            ],
        )
        before = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
        trainer.train()
        rh.poll()
    finally:
        rh.shutdown()

    assert trainer.state.global_step == 2 and len(returned) == 2

    # On-policy: after each step the trainer's weights were written and loaded into the model
    # server, and the second step's rollouts came from the weights of the first (the version is
    # the served file's sha256 prefix, computed here from the file itself).
    def version_of(path: Path) -> str:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    step_files = [tmp_path / "synced" / f"step-{n}.gguf" for n in (1, 2)]
    assert sync.loaded == [(1, version_of(step_files[0])), (2, version_of(step_files[1]))]
    assert policy_versions(rows_of_call[0]) == {version_of(engine.default_model_path())}
    assert policy_versions(rows_of_call[1]) == {sync.loaded[0][1]}
    assert len({version_of(engine.default_model_path()), *(v for _, v in sync.loaded)}) == 3

    logged = next(h for h in trainer.state.log_history if "loss" in h)
    assert math.isfinite(logged["loss"]) and logged["grad_norm"] > 0
    assert not torch.equal(before, model.model.layers[0].self_attn.q_proj.weight.detach())

    gym_rows = rows_of_call[0]
    assert len(gym_rows) == 6
    by_task: dict[int, list[dict[str, Any]]] = {}
    for row in gym_rows:
        by_task.setdefault(row["_ng_task_index"], []).append(row)
    assert sorted(by_task) == [0, 1, 2] and all(len(v) == 2 for v in by_task.values())
    assert all(r["_ng_status"] == "failed" and r["reward"] is None for r in by_task[2])
    assert all(r["_ng_failure"]["kind"] == "invalid_input" for r in by_task[2])
    assert all("max_output_tokens" in r["_ng_failure"]["message"] for r in by_task[2])
    # every rollout of the weather tasks finished and was verified (this verifier gives 1.0)
    assert [r["reward"] for t in (0, 1) for r in by_task[t]] == [1.0] * 4

    # The rewards TRL logged are Gym's, rollout for rollout; a failed one is NaN, not 0. (TRL
    # keeps the latest generation batch's: the second call's.)
    trl_rewards = list(trainer._logs["rewards"]["gym_reward"])
    gym_rewards = [r["reward"] for r in rows_of_call[1]]
    assert len(trl_rewards) == len(gym_rewards) == 6
    for ours, theirs in zip(gym_rewards, trl_rewards, strict=True):
        assert math.isnan(theirs) if ours is None else theirs == ours
    assert logged["rewards/gym_reward/mean"] == 1.0  # NaN-excluding mean of 1, 1, 1, 1
    brevity_logged = list(trainer._logs["rewards"]["brevity"])
    assert all(math.isnan(b) for b, g in zip(brevity_logged, gym_rewards, strict=True) if g is None)

    # What TRL trained on is Gym's token data: the first prompt, then the generated ids in
    # order (environment tokens between them), with env_mask counting the model's own tokens.
    out = returned[0]
    for i, row in enumerate(gym_rows):
        if row["reward"] is None:
            assert out["env_mask"][i] == [0] and out["logprobs"][i] == [0.0]
            continue
        prompt, chosen = model_tokens(row)
        assert out["prompt_ids"][i] == prompt
        mask = out["env_mask"][i]
        assert len(mask) == len(out["completion_ids"][i]) == len(out["logprobs"][i])
        assert [t for t, m in zip(out["completion_ids"][i], mask, strict=True) if m] == chosen
        assert 0 in mask  # the tool call's output sits between the two model turns
    chosen_counts = [sum(m) for m in out["env_mask"]]
    assert logged["completions/mean_length"] == pytest.approx(sum(chosen_counts) / 6)
