"""ng_test, ng_test_all and ng_prepare_data on a project written the way NeMo Gym's are.

The environment's tests import ``from app import ...`` and a ``utils.py`` beside it, and one is
``async`` with no marker (NeMo Gym's repository runs pytest-asyncio in auto mode); the folders
have no ``__init__.py``. Everything runs through the real commands in subprocesses, in a tmp
project (``NEMO_GYM_ROOT``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, Proc

pytestmark = pytest.mark.e2e
MODEL_CONFIG = REPO / "responses_api_models" / "openai_model" / "configs" / "openai_model.yaml"

APP = '''
from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from utils import count_words, final_text


class WordCountConfig(BaseResourcesServerConfig):
    pass


class WordCountVerifyRequest(BaseVerifyRequest):
    expected_words: int


class WordCountServer(SimpleResourcesServer):
    config: WordCountConfig

    async def verify(self, body: WordCountVerifyRequest) -> BaseVerifyResponse:
        words = count_words(final_text(body.response))
        reward = 1.0 if words == body.expected_words else 0.0
        return BaseVerifyResponse(**body.model_dump(), reward=reward)
'''
UTILS = '''
def count_words(text):
    return len(text.split())


def final_text(response):
    return " ".join(
        c.text for item in response.output if item.type == "message" for c in item.content
    )
'''
TESTS = '''
from unittest.mock import MagicMock

from app import WordCountConfig, WordCountServer, WordCountVerifyRequest
from nemo_gym.server_utils import ServerClient
from utils import count_words


def test_count_words():
    assert count_words("one two  three") == 3


async def test_verify_rewards_the_right_count():
    server = WordCountServer(
        config=WordCountConfig(name="wc"), server_client=MagicMock(spec=ServerClient)
    )
    message = {
        "type": "message", "id": "m", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": "red green blue", "annotations": []}],
    }
    response = {
        "id": "r", "object": "response", "created_at": 0, "model": "m", "output": [message],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
    }
    row = {"responses_create_params": {"input": "3 colours"}, "expected_words": 3}
    result = await server.verify(WordCountVerifyRequest(**row, response=response))
    assert result.reward == 1.0
'''
CONFIG = f'''
config_paths: [{MODEL_CONFIG}]
word_count_resources_server:
  resources_servers:
    word_count:
      entrypoint: app.py
      domain: rlhf
word_count_simple_agent:
  responses_api_agents:
    simple_agent:
      entrypoint: app.py
      resources_server: {{type: resources_servers, name: word_count_resources_server}}
      model_server: {{type: responses_api_models, name: policy_model}}
      datasets:
        - name: train
          type: train
          jsonl_fpath: resources_servers/word_count/data/train.jsonl
          license: Apache 2.0
          num_repeats: 3
          gitlab_identifier: {{dataset_name: word_count, version: 0.0.1, artifact_fpath: t.jsonl}}
        - name: validation
          type: validation
          jsonl_fpath: resources_servers/word_count/data/validation.jsonl
          license: MIT
        - name: example
          type: example
          jsonl_fpath: resources_servers/word_count/data/example.jsonl
'''


def task(n: int) -> dict[str, object]:
    return {"responses_create_params": {"input": f"Say {n} words."}, "expected_words": n}


def jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    env = tmp_path / "resources_servers" / "word_count"
    (env / "tests").mkdir(parents=True)
    (env / "app.py").write_text(APP)
    (env / "utils.py").write_text(UTILS)
    (env / "tests" / "test_app.py").write_text(TESTS)
    (env / "README.md").write_text("# word_count\n")
    (env / "configs").mkdir()
    (env / "configs" / "word_count.yaml").write_text(CONFIG)
    jsonl(env / "data" / "example.jsonl", [task(n) for n in range(1, 6)])
    return tmp_path


def command(name: str, module: str, *args: str, root: Path) -> Proc:
    """Run ``name`` (its console script, else ``python -m module``) in ``root``."""
    script = BIN / name
    argv = [str(script)] if script.exists() else [sys.executable, "-m", module]
    return Proc([*argv, *args], env={"NEMO_GYM_ROOT": str(root)}, cwd=root)


def ng_test(root: Path, *args: str) -> Proc:
    return command("ng_test", "nemo_gym.cli.test_env", *args, root=root)


def ng_test_all(root: Path) -> Proc:
    return command("ng_test_all", "nemo_gym.cli.test_all", root=root)


def ng_prepare_data(root: Path, *args: str) -> Proc:
    return command("ng_prepare_data", "nemo_gym.cli.prepare_data", *args, root=root)


ENTRY = "+entrypoint=resources_servers/word_count"
CONFIG_ARG = "+config_paths=[resources_servers/word_count/configs/word_count.yaml]"


def test_ng_test_runs_the_tests_from_the_folder(project: Path) -> None:
    run = ng_test(project, ENTRY)
    assert run.wait(120) == 0, run.text
    assert "2 passed" in run.text and "cd resources_servers/word_count && pytest" in run.text
    (project / "resources_servers/word_count/tests/test_app.py").write_text(
        TESTS.replace("== 3\n", "== 4\n", 1)
    )
    failing = ng_test(project, ENTRY)
    assert failing.wait(120) == 1, failing.text
    assert "1 failed, 1 passed" in failing.text
    agent = project / "responses_api_agents" / "my_agent"
    (agent / "tests").mkdir(parents=True)
    (agent / "helper.py").write_text("ANSWER = 42\n")
    (agent / "tests" / "test_helper.py").write_text(
        "from helper import ANSWER\n\n\ndef test_answer():\n    assert ANSWER == 42\n"
    )
    agent_entry = "+entrypoint=responses_api_agents/my_agent"
    agent_run = ng_test(project, agent_entry, "+should_validate_data=true")
    assert agent_run.wait(120) == 0, agent_run.text  # as in NeMo Gym: no data checks for agents
    assert "1 passed" in agent_run.text
    assert "no data checks for responses_api_agents" in agent_run.text


def test_data_validation_then_prepare_data_then_test_all(project: Path) -> None:
    env = project / "resources_servers" / "word_count"
    check = ng_test(project, ENTRY, "+should_validate_data=true")
    assert check.wait(120) == 1, check.text
    assert "example_metrics.json not found" in check.text and "ng_prepare_data" in check.text

    prep = ng_prepare_data(project, CONFIG_ARG, "+output_dirpath=out", "+mode=example_validation")
    assert prep.wait(120) == 0, prep.text
    metrics = json.loads((env / "data" / "example_metrics.json").read_text())
    # expected_words 1..5: mean 3, sample std sqrt(10 / 4) = 1.58
    assert metrics["Number of examples"] == 5
    assert metrics["expected_words"]["Average"] == 3.0
    assert metrics["expected_words"]["Standard deviation"] == 1.58
    assert len((project / "out" / "example.jsonl").read_text().splitlines()) == 5

    rollouts = [{**task(n), "reward": float(n % 2)} for n in range(1, 6)]  # ng_collect_rollouts'
    jsonl(env / "data" / "example_rollouts.jsonl", rollouts)
    check = ng_test(project, ENTRY, "+should_validate_data=true")
    assert check.wait(120) == 0, check.text
    assert "5 example tasks, example_metrics.json, 5 example rollouts" in check.text

    every = ng_test_all(project)
    assert every.wait(300) == 0, every.text
    assert "Tests passed 1 / 1 (100.00%)" in every.text
    assert "Data validation failed 0 / 1 (0.00%)" in every.text
    (project / "resources_servers" / "no_tests").mkdir()
    (project / "resources_servers" / "no_tests" / "README.md").write_text("# none\n")
    (env / "data" / "example_metrics_conflict.json").write_text("{}")
    every = ng_test_all(project)
    assert every.wait(300) == 1, every.text
    assert "Tests missing 1 / 2 (50.00%):\n- resources_servers/no_tests" in every.text
    assert "Data validation failed 2 / 2 (100.00%)" in every.text


def test_prepare_data_collates_train_and_validation(project: Path) -> None:
    data = project / "resources_servers" / "word_count" / "data"
    missing = ng_prepare_data(project, CONFIG_ARG, "+output_dirpath=out", "+mode=train_preparation")
    assert missing.wait(120) == 1, missing.text
    assert "word_count_simple_agent / train (train)" in missing.text
    assert "GitLab word_count 0.0.1 (t.jsonl)" in missing.text

    jsonl(data / "train.jsonl", [task(2), task(4)])
    jsonl(data / "validation.jsonl", [task(7)])
    prep = ng_prepare_data(project, CONFIG_ARG, "+output_dirpath=out", "+mode=train_preparation")
    assert prep.wait(120) == 0, prep.text
    ref = {"type": "responses_api_agents", "name": "word_count_simple_agent"}
    train_lines = (project / "out" / "train.jsonl").read_text().splitlines()
    train = [json.loads(line) for line in train_lines]
    assert train == [{**task(2), "agent_ref": ref}] * 3 + [{**task(4), "agent_ref": ref}] * 3
    validation = (project / "out" / "validation.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in validation] == [{**task(7), "agent_ref": ref}]
    metrics = json.loads((project / "out" / "train_metrics.json").read_text())
    # expected_words 2, 2, 2, 4, 4, 4: mean 3, sample std sqrt(6 / 5) = 1.095 -> 1.1
    assert metrics["Number of examples"] == 6
    assert metrics["expected_words"]["Standard deviation"] == 1.1
    assert not (project / "out" / "example.jsonl").exists()
