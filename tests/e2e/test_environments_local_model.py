"""Every environment's README commands, run as written, on the embedded local model.

The commands are read from the ``bash`` blocks of ``resources_servers/<name>/README.md``.
Only what isolates a test run is changed: the head server's port, the output file (under the
test's temporary folder), ``+limit=3`` and short answers. Rewards need not be high (the model is
SmolLM2-135M); they must be computed and recorded: every row is verified (completed or
truncated) with a numeric reward.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, Proc, free_port

pytestmark = pytest.mark.e2e
ENVIRONMENTS = [
    "example_single_tool_call",
    "example_stateful_counter",
    "example_multi_step",
    "math_with_judge",
    "mcqa",
    "code_gen",
    "instruction_following",
    "structured_outputs",
    "reasoning_gym",
    "weather_condition",
]


def readme_commands(readme: Path) -> dict[str, list[str]]:
    """The first ``ng_*`` command of each name in the README's bash blocks, split as a shell
    would."""
    blocks = re.findall(r"```bash\n(.*?)```", readme.read_text(), re.S)
    assert blocks, f"{readme} has no ```bash block of example commands"
    commands: dict[str, list[str]] = {}
    for line in "".join(blocks).splitlines():
        if line.startswith(("ng_", "python ")):
            argv = shlex.split(line)
            commands.setdefault(" ".join(argv[:3]) if argv[0] == "python" else argv[0], argv)
    return commands


def with_value(argv: list[str], key: str, value: str) -> list[str]:
    """``argv`` with ``+key=...`` set to ``value`` (replaced if present, else appended)."""
    kept = [a for a in argv if not a.startswith(f"+{key}=")]
    return [*kept, f"+{key}={value}"]


def expects_tool_calls(data: Path) -> bool:
    first = json.loads(data.read_text().splitlines()[0])
    return bool(first["responses_create_params"].get("tools"))


def run_readme(
    folder: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> list[dict[str, object]]:
    """Run the README's commands for ``folder``; return the collected rows."""
    commands = readme_commands(folder / "README.md")
    assert {"ng_run", "ng_collect_rollouts"} <= commands.keys(), commands
    port = str(free_port())
    root = folder.parents[1]
    for key, argv in commands.items():
        if key.startswith("python "):  # e.g. a data generator: writes under tmp_path instead
            argv = with_value(argv, "output_jsonl_fpath", str(tmp_path / "generated.jsonl"))
            script = Proc([str(BIN / "python"), *argv[1:]], env=env, cwd=root)
            assert script.wait(300) == 0, script.text
            assert (tmp_path / "generated.jsonl").stat().st_size > 0
    if "ng_test" in commands:
        test = Proc([str(BIN / "ng_test"), *commands["ng_test"][1:]], env=env, cwd=root)
        assert test.wait(300) == 0, test.text
    run_args = commands["ng_run"][1:]
    for key, value in (
        ("head_server.port", port),
        ("policy_base_url", "null"),  # a developer's env.yaml must not redirect the model
        ("graceful_shutdown_s", "5"),
        ("echo_logs", "false"),
    ):
        run_args = with_value(run_args, key, value)
    run = Proc([str(BIN / "ng_run"), *run_args], env=env, cwd=root)
    out = tmp_path / "rollouts.jsonl"
    try:
        run.wait_line("servers healthy in", timeout=180)
        collect_args = commands["ng_collect_rollouts"][1:]
        for key, value in (
            ("head_server.port", port),
            ("output_jsonl_fpath", str(out)),
            ("limit", "3"),
            # room for a whole tool call: a call cut off by the token limit is no call at all
            ("responses_create_params.max_output_tokens", "96"),
        ):
            collect_args = with_value(collect_args, key, value)
        collect = Proc([str(BIN / "ng_collect_rollouts"), *collect_args], env=env, cwd=root)
        assert collect.wait(600) == 0, collect.text + run.text
    finally:
        run.stop()
    assert run.popen.returncode == 0, run.text
    return [json.loads(line) for line in out.read_text().splitlines()]


def check_rows(rows: list[dict[str, object]], tools: bool) -> None:
    assert len(rows) == 3
    for row in rows:
        assert row["_ng_status"] in ("completed", "truncated"), row["_ng_failure"]
        assert isinstance(row["reward"], float)
        response = row["response"]
        assert isinstance(response, dict)
        if tools:
            kinds = [i["type"] for i in response["output"]]
            assert "function_call" in kinds, (row["_ng_status"], row["_ng_failure"], response)


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_readme_commands_on_the_embedded_model(name: str, tmp_path: Path) -> None:
    folder = REPO / "resources_servers" / name
    rows = run_readme(folder, tmp_path)
    check_rows(rows, expects_tool_calls(folder / "data" / "example.jsonl"))


def test_a_scaffolded_environment_passes_its_tests_and_runs(tmp_path: Path) -> None:
    """ng_init_resources_server output, untouched: ng_test passes, ng_run serves it."""
    root = tmp_path / "project"
    root.mkdir()
    for shared in ("responses_api_agents", "responses_api_models"):
        (root / shared).symlink_to(REPO / shared)
    env = {"NEMO_GYM_ROOT": str(root)}
    init = Proc(
        [str(BIN / "ng_init_resources_server"), "+entrypoint=resources_servers/word_sums"],
        env=env,
        cwd=root,
    )
    assert init.wait(60) == 0, init.text
    folder = root / "resources_servers" / "word_sums"
    assert (folder / "configs" / "word_sums.yaml").is_file()
    again = Proc(
        [str(BIN / "ng_init_resources_server"), "+entrypoint=resources_servers/word_sums"],
        env=env,
        cwd=root,
    )
    assert again.wait(60) == 1 and "already exists" in again.text
    rows = run_readme(folder, tmp_path, env)
    check_rows(rows, tools=True)
