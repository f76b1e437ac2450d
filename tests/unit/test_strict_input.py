"""Strict input, clear errors: unknown ``+keys``, duplicate YAML keys, Gym's own settings,
the collector's arguments, and no secret in any error message (in-process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nemo_gym.cli.collect import CollectParams, check_output_path
from nemo_gym.cli.dump_config import DumpConfigParams
from nemo_gym.cli.params import parse_params
from nemo_gym.cli.run import RunParams
from nemo_gym.config.instances import check_agent_name, parse_server_instances
from nemo_gym.config.loader import LoadedConfig, load_config, resolve_config
from nemo_gym.config.secrets import (
    REDACTED,
    config_for_instance,
    is_secret_key,
    redact,
    redact_text,
)
from nemo_gym.config.settings import head_address
from nemo_gym.core.errors import ConfigError, InputDataError
from nemo_gym.rollouts.inputs import read_rows

COLLECT_ARGS = ["+agent_name=a", "+input_jsonl_fpath=in.jsonl", "+output_jsonl_fpath=out.jsonl"]
SECRET = "sk-live-SECRET-123456"


def load(root: Path, *argv: str) -> LoadedConfig:
    return load_config(list(argv), root=root)


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- unknown +keys ------------------------------------------------------------------------------


def test_typo_of_a_collect_parameter_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    loaded = load(tmp_path, *COLLECT_ARGS, "+num_repeat=2")
    with pytest.raises(ConfigError) as info:
        parse_params(CollectParams, loaded, "ng_collect_rollouts")
    message = str(info.value)
    assert message.startswith("command line: +num_repeat: unknown parameter of ng_collect_rollouts")
    assert "did you mean +num_repeats?" in message
    assert "\n" not in message


def test_unknown_collect_key_without_a_close_match_is_still_refused(tmp_path: Path) -> None:
    loaded = load(tmp_path, *COLLECT_ARGS, "+zzz=1")
    with pytest.raises(ConfigError, match=r"\+zzz: unknown parameter") as info:
        parse_params(CollectParams, loaded, "ng_collect_rollouts")
    assert "did you mean" not in str(info.value)


def test_later_nemo_gym_name_of_a_parameter_points_at_gyms_name(tmp_path: Path) -> None:
    loaded = load(tmp_path, *COLLECT_ARGS, "+resume_from_cache=true")
    with pytest.raises(ConfigError, match=r"\+resume_from_cache: .*did you mean \+resume\?"):
        parse_params(CollectParams, loaded, "ng_collect_rollouts")


def test_collect_accepts_its_parameters_gym_settings_and_keys_env_yaml_sets(
    tmp_path: Path,
) -> None:
    write(tmp_path, "env.yaml", "my_setting: 1\n")
    loaded = load(
        tmp_path,
        *COLLECT_ARGS,
        "+num_repeats=2",
        "+responses_create_params.temperature=0.5",
        "++head_server.port=12345",
        "+policy_base_url=http://x/v1",
        "++my_setting=2",
    )
    params = parse_params(CollectParams, loaded, "ng_collect_rollouts")
    assert params.num_repeats == 2
    assert params.responses_create_params == {"temperature": 0.5}


@pytest.mark.parametrize(
    ("arg", "suggestion"),
    [
        ("+startup_timeout=5", "+startup_timeout_s"),
        ("+config_path=[a.yaml]", "+config_paths"),
        ("+start_mod=spawn", "+start_mode"),
        ("+head_sever.port=1", "+head_server"),
        ("+policy_model_nam=m", "+policy_model_name"),
    ],
)
def test_ng_run_refuses_a_new_key_one_typo_from_a_known_one(
    tmp_path: Path, arg: str, suggestion: str
) -> None:
    loaded = load(tmp_path, arg)
    with pytest.raises(ConfigError, match=f"did you mean \\{suggestion}\\?"):
        parse_params(RunParams, loaded, "ng_run", open_config=True)


def test_ng_run_and_dump_config_accept_arbitrary_config_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        "m.yaml",
        "policy_model:\n  responses_api_models:\n    openai_model:\n      entrypoint: app.py\n"
        "      openai_model: ${policy_model_nam}\n",
    )
    argv = [
        "+config_paths=[m.yaml]",
        "+policy_model.responses_api_models.openai_model.x=1",
        "++head_server.port=12000",
        "+startup_timeout_s=5",
        "+my_own_global=3",  # for a server to read; close to nothing
        "+policy_model_nam=m",  # close to policy_model_name, but m.yaml interpolates it
        "+other.responses_api_agents.simple_agent.max_steps=2",  # a new instance
    ]
    for model, command in ((RunParams, "ng_run"), (DumpConfigParams, "ng_dump_config")):
        params = parse_params(model, load(tmp_path, *argv), command, open_config=True)
        assert params.config_paths == ["m.yaml"]


def test_strict_command_refuses_what_ng_run_would_accept(tmp_path: Path) -> None:
    loaded = load(tmp_path, *COLLECT_ARGS, "+my_own_global=3")
    with pytest.raises(ConfigError, match=r"\+my_own_global: unknown parameter"):
        parse_params(CollectParams, loaded, "ng_collect_rollouts")


# -- duplicate YAML keys ------------------------------------------------------------------------


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "agent:\n  responses_api_agents:\n    simple_agent:\n      max_steps: 3\n"
        "      entrypoint: app.py\n      max_steps: 5\n",
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "+config_paths=[a.yaml]")
    assert str(info.value) == (
        "a.yaml:6: agent.responses_api_agents.simple_agent.max_steps: duplicate key: written "
        "on line 4 and again on line 6; keep one of them"
    )


def test_duplicate_top_level_key_in_env_yaml(tmp_path: Path) -> None:
    write(tmp_path, "env.yaml", "policy_base_url: a\nx: 1\npolicy_base_url: b\n")
    with pytest.raises(ConfigError, match=r"^env.yaml:3: policy_base_url: .*line 1 and again"):
        load(tmp_path)


def test_duplicate_key_inside_a_list_item_and_a_flow_mapping(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "x:\n  - {k: 1, k: 2}\n")
    with pytest.raises(ConfigError, match=r"a.yaml:2: x.0.k: duplicate key: written on line 2"):
        load(tmp_path, "+config_paths=[a.yaml]")


def test_merge_keys_and_same_key_in_sibling_mappings_are_not_duplicates(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "base: &b {port: 1, host: h}\nx:\n  <<: *b\n  port: 2\ny:\n  port: 3\n",
    )
    cfg = resolve_config(load(tmp_path, "+config_paths=[a.yaml]"))
    assert cfg["x"] == {"port": 2, "host": "h"} and cfg["y"] == {"port": 3}


# -- Gym's own settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"), [("abc", "'abc'"), ("99999", "99999"), ("0", "0"), ("true", "True")]
)
def test_bad_head_server_port_in_env_yaml_names_file_line_key(
    tmp_path: Path, value: str, shown: str
) -> None:
    write(tmp_path, "env.yaml", f"policy_base_url: x\nhead_server:\n  port: {value}\n")
    loaded = load(tmp_path)
    expected = (
        f"env.yaml:3: head_server.port: must be a port number from 1 to 65535 (got {shown})"
    )
    with pytest.raises(ConfigError) as info:
        head_address(loaded)
    assert str(info.value) == expected
    with pytest.raises(ConfigError) as info:  # ng_run and ng_dump_config check it too
        parse_server_instances(resolve_config(loaded), loaded)
    assert str(info.value) == expected


def test_head_server_that_is_not_a_mapping_is_named(tmp_path: Path) -> None:
    write(tmp_path, "env.yaml", "head_server: 11000\n")
    with pytest.raises(ConfigError, match=r"^env.yaml:1: head_server: must be a mapping"):
        head_address(load(tmp_path))


def test_head_address_reads_defaults_and_overrides(tmp_path: Path) -> None:
    assert head_address(load(tmp_path)) == ("127.0.0.1", 11000)
    write(tmp_path, "env.yaml", "default_host: 127.0.0.2\n")
    assert head_address(load(tmp_path, "++head_server.port=12001")) == ("127.0.0.2", 12001)


# -- collector arguments ------------------------------------------------------------------------


def test_output_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_output_path(tmp_path)
    assert str(info.value) == (
        f"command line: +output_jsonl_fpath: {str(tmp_path)!r} is a directory; name a file in "
        f"it, e.g. {tmp_path / 'rollouts.jsonl'}"
    )


def test_output_path_under_a_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "f.txt", "")
    with pytest.raises(ConfigError, match=r"f.txt' is a file, not a directory"):
        check_output_path(tmp_path / "f.txt" / "sub" / "out.jsonl")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_path_in_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="permission denied"):
            check_output_path(ro / "out.jsonl")
    finally:
        ro.chmod(0o700)


def test_output_path_that_can_be_created_is_accepted(tmp_path: Path) -> None:
    check_output_path(tmp_path / "new" / "dir" / "out.jsonl")
    write(tmp_path, "old.jsonl", "{}\n")
    check_output_path(tmp_path / "old.jsonl")


def test_empty_or_blank_input_is_an_error(tmp_path: Path) -> None:
    for name, text in (("empty.jsonl", ""), ("blank.jsonl", "\n  \n\n")):
        path = write(tmp_path, name, text)
        with pytest.raises(InputDataError) as info:
            read_rows(path)
        assert str(info.value) == (
            f"{path}: has no rows: the file is empty (one JSON object per line is expected)"
        )


def test_input_path_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"is a directory, not a JSONL file$"):
        read_rows(tmp_path)


RUNNING = {
    "head_server": {"host": "127.0.0.1", "port": 11000},
    "policy_model": {"responses_api_models": {"openai_model": {"host": "h", "port": 1}}},
    "weather": {"resources_servers": {"weather": {"host": "h", "port": 2}}},
    "weather_agent": {"responses_api_agents": {"simple_agent": {"host": "h", "port": 3}}},
}


def test_agent_name_naming_an_agent_is_accepted() -> None:
    check_agent_name(RUNNING, "weather_agent")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "policy_model",
            "command line: +agent_name: 'policy_model' is a model server "
            "(responses_api_models/openai_model), not an agent; rollouts run through an agent. "
            "Agents running: weather_agent",
        ),
        (
            "weather",
            "command line: +agent_name: 'weather' is a resources server "
            "(resources_servers/weather), not an agent; rollouts run through an agent. "
            "Agents running: weather_agent",
        ),
        (
            "weather_agnt",
            "command line: +agent_name: no server instance named 'weather_agnt' (did you mean "
            "'weather_agent'?); rollouts run through an agent. Agents running: weather_agent",
        ),
    ],
)
def test_agent_name_of_another_server_is_refused(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_agent_name(RUNNING, name)
    assert str(info.value) == message


# -- secrets in error messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("openai_api_key", True),
        ("key", True),
        ("access_key", True),
        ("hf_token", True),
        ("client_secret", True),
        ("db_password", True),
        ("Authorization", True),
        ("keyword", False),
        ("monkey", False),
        ("model", False),
        ("host", False),
    ],
)
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_redact_text_replaces_every_secret_value_and_keeps_short_ones() -> None:
    text = f"bad value {{'openai_api_key': '{SECRET}', 'x': 'abc', 'copy': '{SECRET}'}}"
    assert redact_text(text, {SECRET, "abc"}) == (
        f"bad value {{'openai_api_key': '{REDACTED}', 'x': 'abc', 'copy': '{REDACTED}'}}"
    )


def test_redact_replaces_secrets_embedded_in_other_values() -> None:
    out = redact({"password": "hunter22", "url": "https://u:hunter22@db/x", "n": 1})
    assert out == {"password": REDACTED, "url": f"https://u:{REDACTED}@db/x", "n": 1}


def test_config_error_message_never_shows_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    write(tmp_path, "env.yaml", "policy_api_key: ${MY_KEY}\n")
    write(
        tmp_path,
        "m.yaml",
        "weather:\n  resources_servers:\n    weather:\n      entrypoint: app.py\n"
        "      port: ${policy_api_key}\n",
    )
    write(tmp_path, "resources_servers/weather/app.py", "")
    loaded = load(tmp_path, "+config_paths=[m.yaml]")
    with pytest.raises(ConfigError) as info:
        parse_server_instances(resolve_config(loaded), loaded)
    message = str(info.value)
    assert message.startswith("m.yaml:5: weather.resources_servers.weather.port: ")
    assert SECRET not in message and REDACTED in message


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            f"+policy_api_key={SECRET}[",
            "cannot parse '+policy_api_key=***REDACTED***' (not a valid value)",
        ),
        (f"+a.auth_token={SECRET},x", "'+a.auth_token=***REDACTED***' is a sweep"),
    ],
)
def test_unparseable_secret_argument_is_not_echoed(tmp_path: Path, arg: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, arg)
    assert message in str(info.value) and SECRET not in str(info.value)


def test_command_parameter_error_never_shows_a_secret(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        *COLLECT_ARGS,
        f"+policy_api_key={SECRET}",
        f"+responses_create_params=[{SECRET}]",
    )
    with pytest.raises(ConfigError) as info:
        parse_params(CollectParams, loaded, "ng_collect_rollouts")
    message = str(info.value)
    assert message.startswith("command line: +responses_create_params: ")
    assert SECRET not in message and REDACTED in message


# -- where a key was written --------------------------------------------------------------------


def test_error_names_the_file_that_wrote_the_key_not_the_last_file_of_its_instance(
    tmp_path: Path,
) -> None:
    write(tmp_path, "resources_servers/weather/app.py", "")
    write(
        tmp_path,
        "a.yaml",
        "weather:\n  resources_servers:\n    weather:\n      entrypoint: app.py\n"
        "      port: abc\n",
    )
    write(tmp_path, "b.yaml", "weather:\n  resources_servers:\n    weather:\n      domain: math\n")
    loaded = load(
        tmp_path, "+config_paths=[a.yaml,b.yaml]", "++weather.resources_servers.weather.x=1"
    )
    assert loaded.sources["weather"] == "command line"
    with pytest.raises(ConfigError, match=r"^a.yaml:5: weather.resources_servers.weather.port: "):
        parse_server_instances(resolve_config(loaded), loaded)
    assert loaded.source_of("weather.resources_servers.weather.domain") == ("b.yaml", 4)
    assert loaded.source_of("weather.resources_servers.weather.x") == ("command line", None)
    assert loaded.source_of("weather.resources_servers.weather.x.deeper") == ("command line", None)


def test_each_server_gets_only_the_secrets_of_its_own_section() -> None:
    config = {
        "policy_api_key": SECRET,
        "judge_key": "judge-SECRET-9876",
        "policy_model": {
            "responses_api_models": {"openai_model": {"openai_api_key": SECRET, "port": 1}}
        },
        "judge": {
            "resources_servers": {"math": {"judge_api_key": "judge-SECRET-9876", "url": "u"}}
        },
        "agent": {"responses_api_agents": {"simple_agent": {"port": 3}}},
    }
    model_config, model_withheld = config_for_instance(config, "policy_model")
    assert model_withheld == {"judge-SECRET-9876"}
    assert model_config["policy_api_key"] == SECRET  # the model's own key, also at the top
    assert model_config["policy_model"] == config["policy_model"]
    assert model_config["judge_key"] == REDACTED
    assert model_config["judge"]["resources_servers"]["math"] == {
        "judge_api_key": REDACTED,
        "url": "u",
    }
    agent_config, agent_withheld = config_for_instance(config, "agent")
    assert agent_withheld == {SECRET, "judge-SECRET-9876"}
    assert SECRET not in repr(agent_config) and "judge-SECRET" not in repr(agent_config)
    assert agent_config["agent"] == config["agent"]
    assert agent_config["policy_model"]["responses_api_models"]["openai_model"]["port"] == 1
    assert config["policy_api_key"] == SECRET  # the input is not changed
