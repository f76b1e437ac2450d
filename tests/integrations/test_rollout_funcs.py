"""TRL's rollout function and the SkyRL generator on hand-made rows (no servers, no trainer).

A stand-in for ``RolloutCollectionHelper`` answers each row with a hand-written rollout: a tool
call of 3 tokens (the last 2 forced by the grammar), the tool's output (2 tokens) and a final
answer of 2 tokens. Its training record is worked out by hand below; a failed rollout raises
``RolloutError`` as the real helper does. Results come back in reverse order, so the order of
the output is checked too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from nemo_gym.integrations.skyrl import FailedRolloutsError, GymGenerator
from nemo_gym.integrations.trl import gym_reward, gym_rollout_func, prompt_dataset
from nemo_gym.rollouts.trainer_api import RolloutError
from nemo_gym.training import FailedRowPolicy

TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
ROW_A: dict[str, Any] = {
    "responses_create_params": {
        "input": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [TOOL],
    },
    "expected": "cold",
}
ROW_B: dict[str, Any] = {"responses_create_params": {"input": "weather in Oslo?", "tools": [TOOL]}}
# By hand: the first prompt, then the generated and environment tokens in order.
PROMPT = [1, 2, 3]
COMPLETION = [10, 11, 12, 20, 21, 30, 31]
ENV_MASK = [1, 0, 0, 0, 0, 1, 1]  # 11, 12 forced by the grammar; 20, 21 the tool's output
LOGPROBS = [-0.1, -0.2, -0.3, 0.0, 0.0, -0.5, -0.6]


def rollout(row: dict[str, Any], reward: float) -> dict[str, Any]:
    output = [
        {
            "type": "function_call",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
            "call_id": "c1",
            "prompt_token_ids": PROMPT,
            "generation_token_ids": [10, 11, 12],
            "generation_log_probs": [-0.1, -0.2, -0.3],
            "generation_grammar_forced": [0, 1, 1],
        },
        {"type": "function_call_output", "call_id": "c1", "output": "cold"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "It is cold."}],
            "prompt_token_ids": [*PROMPT, 10, 11, 12, 20, 21],
            "generation_token_ids": [30, 31],
            "generation_log_probs": [-0.5, -0.6],
        },
    ]
    return {**row, "response": {"output": output}, "reward": reward, "_ng_status": "completed"}


class FakeHelper:
    """Answers rows with ``answer(row)`` (a row, or an exception to raise), last row first."""

    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []

    def run_examples(
        self, examples: list[dict[str, Any]], head_server_config: Any = None, semaphore: Any = None
    ) -> Iterator[Awaitable[tuple[dict[str, Any], dict[str, Any]]]]:
        self.sent = examples

        async def one(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            result = self.answer(row)
            if result.get("_ng_status") == "failed":
                raise RolloutError(result)
            return row, result

        return iter([one(row) for row in reversed(examples)])


def failed(row: dict[str, Any]) -> dict[str, Any]:
    failure = {"kind": "model_error", "message": "model answered HTTP 500", "step": 1}
    return {**row, "response": None, "reward": None, "_ng_status": "failed", "_ng_failure": failure}


class FakeTokenizer:
    eos_token_id = 2

    def apply_chat_template(
        self, messages: Any, tokenize: bool, add_generation_prompt: bool
    ) -> str:
        assert not tokenize and add_generation_prompt
        return "|".join(m["content"] for m in messages)

    def __call__(self, text: str, add_special_tokens: bool) -> dict[str, list[int]]:
        return {"input_ids": [len(word) for word in text.split()]}


@dataclass
class FakeTrainer:
    temperature: float = 0.7
    top_p: float = 0.9
    max_completion_length: int = 32
    processing_class: Any = None
    top_k: int = 0  # TRL's defaults: not applied
    min_p: float | None = None
    repetition_penalty: float = 1.0


def by_rollout(rewards: Mapping[tuple[int, int], float | None]) -> Callable[[dict[str, Any]], Any]:
    def answer(row: dict[str, Any]) -> dict[str, Any]:
        reward = rewards[(row["_ng_task_index"], row["_ng_rollout_index"])]
        return failed(row) if reward is None else rollout(row, reward)

    return answer


def test_trl_rollout_func_returns_gym_tokens_and_rewards_in_trl_order() -> None:
    func = gym_rollout_func("weather_agent", {"host": "127.0.0.1", "port": 1}, rows=[ROW_A, ROW_B])
    helper = FakeHelper(by_rollout({(0, 0): 1.0, (0, 1): 0.0, (1, 0): None, (1, 1): 0.5}))
    func.helper = helper  # type: ignore[assignment]
    dataset = prompt_dataset([ROW_A, ROW_B])
    assert dataset == [
        {"prompt": [{"role": "user", "content": "weather in Paris?"}], "gym_task_index": 0},
        {"prompt": [{"role": "user", "content": "weather in Oslo?"}], "gym_task_index": 1},
    ]
    # as a dataset library hands them back: keys another message has, filled with None
    a = [{"role": "user", "content": "weather in Paris?", "tool_call_id": None}]
    b = dataset[1]["prompt"]
    out = func([a, a, b, b], FakeTrainer(processing_class=FakeTokenizer()))

    sent = helper.sent
    assert [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in sent] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert [r["_ng_rollout_id"] for r in sent] == [
        "task-0-c1-r0",
        "task-0-c1-r1",
        "task-1-c1-r0",
        "task-1-c1-r1",
    ]
    params = sent[0]["responses_create_params"]
    assert params["return_token_id_information"] is True
    assert (params["temperature"], params["top_p"], params["max_output_tokens"]) == (0.7, 0.9, 32)
    assert sent[0]["agent_ref"] == {"type": "responses_api_agents", "name": "weather_agent"}
    assert sent[0]["expected"] == "cold" and "temperature" not in ROW_A["responses_create_params"]

    assert out["gym_reward"] == [1.0, 0.0, None, 0.5]
    assert out["gym_status"] == ["completed", "completed", "failed", "completed"]
    for i in (0, 1, 3):
        assert out["prompt_ids"][i] == PROMPT
        assert out["completion_ids"][i] == COMPLETION
        assert out["env_mask"][i] == ENV_MASK
        assert out["logprobs"][i] == pytest.approx(LOGPROBS)
    # the failed rollout: its prompt (by the trainer's tokenizer), one masked end-of-text token
    assert out["prompt_ids"][2] == [7, 2, 5]  # "weather in Oslo?" -> word lengths
    assert (out["completion_ids"][2], out["env_mask"][2], out["logprobs"][2]) == ([2], [0], [0.0])
    assert [r["_ng_rollout_id"] for r in func.last_rows] == [r["_ng_rollout_id"] for r in sent]

    assert gym_reward(completions=[None] * 4, gym_reward=out["gym_reward"]) == [1.0, 0.0, None, 0.5]
    with pytest.raises(ValueError, match="3 Gym rewards for 4 completions"):
        gym_reward(completions=[None] * 4, gym_reward=[1.0, 0.0, None])


def test_trl_rollout_func_refuses_what_it_cannot_collect_faithfully() -> None:
    head = {"host": "127.0.0.1", "port": 1}
    hot = {**ROW_A, "responses_create_params": {**ROW_A["responses_create_params"], "top_p": 0.5}}
    func = gym_rollout_func("agent", head, rows=[hot])
    with pytest.raises(ValueError, match=r"top_p is 0.5 but the trainer samples at 0.9"):
        func([dataset_prompt(hot)], FakeTrainer())
    with pytest.raises(ValueError, match="rows 0 and 1 have the same prompt"):
        gym_rollout_func("agent", head, rows=[ROW_A, {**ROW_A, "expected": "warm"}])
    func = gym_rollout_func("agent", head, rows=[ROW_A])
    with pytest.raises(ValueError, match="prompt 0 of rollout call 1 is not among the rows"):
        func([[{"role": "user", "content": "something else"}]], FakeTrainer())
    func = gym_rollout_func(None, head, rows=[ROW_A])
    with pytest.raises(ValueError, match="no agent_ref and no agent_name"):
        func([dataset_prompt(ROW_A)], FakeTrainer())
    func = gym_rollout_func("agent", head, rows=[ROW_A])
    with pytest.raises(ValueError, match="samples with top_k=50, repetition_penalty=1.1, which"):
        func([dataset_prompt(ROW_A)], FakeTrainer(top_k=50, repetition_penalty=1.1))


def dataset_prompt(row: dict[str, Any]) -> Any:
    return prompt_dataset([row])[0]["prompt"]


def test_trl_rollout_func_without_rows_and_when_every_rollout_failed() -> None:
    func = gym_rollout_func("agent", None, responses_create_params={"tools": [TOOL]})
    helper = FakeHelper(failed)
    func.helper = helper  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="all 2 rollouts of this batch failed.*HTTP 500"):
        func(["hello there", "hello there"], FakeTrainer(processing_class=FakeTokenizer()))
    assert [r["responses_create_params"]["input"] for r in helper.sent] == ["hello there"] * 2
    assert helper.sent[0]["responses_create_params"]["tools"] == [TOOL]
    assert [r["_ng_rollout_index"] for r in helper.sent] == [0, 1]
    assert helper.sent[0]["_ng_group_id"].startswith("prompt-")


@dataclass
class TrajectoryID:  # SkyRL's shape: instance id, repetition id
    instance_id: str
    repetition_id: int


def skyrl_batch() -> dict[str, Any]:
    return {
        "prompts": [ROW_A["responses_create_params"]["input"]] * 2
        + [[{"role": "user", "content": "x"}]],
        "env_classes": ["weather_agent", "weather_agent", "other_agent"],
        "env_extras": [
            {"expected": "cold", "responses_create_params": {"tools": [TOOL]}},
            {"expected": "cold", "responses_create_params": {"tools": [TOOL]}},
            {"expected": "warm"},
        ],
        "sampling_params": {"temperature": 0.6, "max_generate_length": 16},
        "trajectory_ids": [
            TrajectoryID("uid-a", 0),
            TrajectoryID("uid-a", 1),
            TrajectoryID("uid-b", 0),
        ],
    }


def test_skyrl_generator_output_has_skyrls_shape_and_gyms_tokens() -> None:
    answers = {(0, 0): 1.0, (0, 1): 0.0, (1, 0): 0.25}
    helper = FakeHelper(by_rollout(answers))
    gen = GymGenerator(None, helper=helper)  # type: ignore[arg-type]
    batch = skyrl_batch()
    out = asyncio.run(gen.generate(batch))

    sent = helper.sent
    agents = [r["agent_ref"]["name"] for r in sent]
    assert agents == ["weather_agent", "weather_agent", "other_agent"]
    assert [r["_ng_group_id"] for r in sent] == ["uid-a", "uid-a", "uid-b"]
    assert [r["_ng_rollout_id"] for r in sent] == ["uid-a_0", "uid-a_1", "uid-b_0"]
    params = sent[0]["responses_create_params"]
    assert params["input"] == [{"role": "user", "content": "weather in Paris?"}]
    assert (params["temperature"], params["top_p"], params["max_output_tokens"]) == (0.6, 1.0, 16)
    assert params["tools"] == [TOOL] and sent[2]["expected"] == "warm"

    assert out["prompt_token_ids"] == [PROMPT] * 3
    assert out["response_ids"] == [COMPLETION] * 3
    assert out["loss_masks"] == [ENV_MASK] * 3
    assert out["rollout_logprobs"] == [LOGPROBS] * 3
    assert out["rewards"] == [1.0, 0.0, 0.25]
    assert out["stop_reasons"] == ["stop"] * 3
    assert out["trajectory_ids"] is batch["trajectory_ids"]
    assert out["rollout_metrics"]["gym/failed"] == 0


def test_skyrl_generator_fails_on_failed_rollouts_unless_a_score_is_named() -> None:
    answers: dict[tuple[int, int], float | None] = {(0, 0): 1.0, (0, 1): None, (1, 0): 0.0}
    gen = GymGenerator(None, helper=FakeHelper(by_rollout(answers)))  # type: ignore[arg-type]
    with pytest.raises(FailedRolloutsError, match="1 rollouts failed.*model_error"):
        asyncio.run(gen.generate(skyrl_batch()))
    with pytest.raises(ValueError, match="needs a tokenizer"):
        GymGenerator(None, failed=FailedRowPolicy(score=0.0))
    gen = GymGenerator(
        None,
        failed=FailedRowPolicy.parse("score:-1"),
        tokenizer=FakeTokenizer(),
        helper=FakeHelper(by_rollout(answers)),  # type: ignore[arg-type]
    )
    out = asyncio.run(gen.generate(skyrl_batch()))
    assert out["rewards"] == [1.0, -1.0, 0.0]
    assert out["prompt_token_ids"][1] == [7, 2, 6]  # "weather in Paris?" -> word lengths
    assert (out["response_ids"][1], out["loss_masks"][1]) == ([2], [0])
    assert out["stop_reasons"] == ["stop", "error", "stop"]
    assert out["rollout_metrics"]["gym/failed"] == 1
    assert out["rollout_metrics"]["gym/failure_kinds"] == ["model_error"]
