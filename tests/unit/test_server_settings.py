"""A server process checks its own settings: unknown keys with a "did you mean", errors without
secrets, and the one marker line that lets ng_run name the file and line (in-process)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from nemo_gym.config.instances import instance_section
from nemo_gym.config.secrets import REDACTED
from nemo_gym.config.server_settings import (
    CONFIG_ERROR_MARKER,
    check_setting_keys,
    config_error_line,
    parse_config_error,
    validate_settings,
)
from nemo_gym.core.errors import ConfigError
from nemo_gym.server.base import BaseServerConfig, SimpleServer
from nemo_gym.server.launch import LaunchContext, build_server, run_server
from responses_api_agents.simple_agent.app import SimpleAgent
from responses_api_models.openai_model.app import OpenAIModelServer

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-live-SECRET-123456"
REFS = {
    "resources_server": {"type": "resources_servers", "name": "weather"},
    "model_server": {"type": "responses_api_models", "name": "policy_model"},
}


def agent_context(**settings: Any) -> LaunchContext:
    config = {
        "policy_api_key": SECRET,
        "agent": {
            "responses_api_agents": {"simple_agent": {"entrypoint": "app.py", **REFS, **settings}}
        },
    }
    return LaunchContext(config=config, instance_name="agent")


def test_simple_agent_max_step_is_refused_with_did_you_mean() -> None:
    with pytest.raises(ConfigError) as info:
        build_server(SimpleAgent, agent_context(max_step=1))
    assert info.value.key == "agent.responses_api_agents.simple_agent.max_step"
    assert info.value.detail == (
        "unknown setting 'max_step' for SimpleAgentConfig (did you mean 'max_steps'?); its "
        "settings are: max_request_body_mb, max_sessions, max_steps, model_server, "
        "model_timeout_s, resources_server, session_ttl_s, "
        "tool_timeout_s, verify_timeout_s"
    )


def test_nemo_gym_metadata_keys_are_accepted() -> None:
    server = build_server(
        SimpleAgent,
        agent_context(
            max_steps=3,
            verified=False,
            verified_url="https://x",
            description="d",
            value="v",
            dataset_name="n",
            license="MIT",
            datasets=[{"name": "e", "type": "example", "jsonl_fpath": "data/example.jsonl"}],
            host="127.0.0.1",
            port=1234,
        ),
    )
    assert server.config.max_steps == 3  # type: ignore[attr-defined]


class Retry(BaseModel):
    attempts: int = 1


class OpenRetry(BaseModel):
    model_config = ConfigDict(extra="allow")

    attempts: int = 1


class NestedConfig(BaseServerConfig):
    retry: Retry | None = None
    open_retry: OpenRetry = OpenRetry()


class AnythingGoesConfig(BaseServerConfig):
    accepts_any_settings: ClassVar[bool] = True


def test_unknown_key_of_a_nested_settings_model_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        check_setting_keys(NestedConfig, {"retry": {"atempts": 2}}, "x.resources_servers.x")
    assert info.value.key == "x.resources_servers.x.retry.atempts"
    assert "(did you mean 'attempts'?); its settings are: attempts" in info.value.detail


def test_open_nested_models_and_opted_out_classes_accept_any_key() -> None:
    check_setting_keys(NestedConfig, {"open_retry": {"anything": 1}}, "x")
    check_setting_keys(AnythingGoesConfig, {"whatever": 1, "entrypoint": "app.py"}, "x")


def test_model_config_typo_does_not_show_the_api_key() -> None:
    config = {
        "policy_model": {
            "responses_api_models": {
                "openai_model": {
                    "entrypoint": "app.py",
                    "openai_base_url": "http://127.0.0.1:9/v1",
                    "openai_api_key": SECRET,
                    "openai_modle": "gpt",
                }
            }
        }
    }
    with pytest.raises(ConfigError) as info:
        build_server(OpenAIModelServer, LaunchContext(config=config, instance_name="policy_model"))
    assert info.value.key == "policy_model.responses_api_models.openai_model.openai_modle"
    assert "did you mean 'openai_model'?" in str(info.value)
    assert SECRET not in str(info.value)


def test_missing_setting_does_not_show_the_section() -> None:
    settings = {"name": "m", "openai_base_url": "http://x/v1", "openai_api_key": SECRET}
    with pytest.raises(ConfigError) as info:
        validate_settings(
            OpenAIModelServer.model_fields["config"].annotation,  # type: ignore[arg-type]
            settings,
            "m.responses_api_models.openai_model",
            {},
        )
    assert str(info.value) == (
        "m.responses_api_models.openai_model.openai_model: missing required setting 'openai_model'"
    )


class Checked(BaseServerConfig):
    limit: int = 1
    auth_token: int = 0


def test_wrong_value_is_shown_unless_it_is_a_credential_and_secrets_are_redacted() -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings(Checked, {"limit": "many"}, "c", {})
    assert str(info.value) == (
        "c.limit: Input should be a valid integer, unable to parse string as an integer "
        "(got 'many')"
    )
    with pytest.raises(ConfigError) as info:
        validate_settings(Checked, {"auth_token": SECRET}, "c", {})
    assert "(value not shown: it is a credential)" in str(info.value)
    assert SECRET not in str(info.value)
    # a copy of a secret under an innocent key is redacted by value
    with pytest.raises(ConfigError) as info:
        validate_settings(Checked, {"limit": SECRET}, "c", {"policy_api_key": SECRET})
    assert SECRET not in str(info.value) and f"(got '{REDACTED}')" in str(info.value)


def test_marker_line_round_trips_key_and_message() -> None:
    exc = ConfigError("unknown setting 'x'", key="a.b.c.x")
    line = config_error_line(exc)
    assert line.startswith(CONFIG_ERROR_MARKER) and "\n" not in line
    assert parse_config_error(line) == ("a.b.c.x", "unknown setting 'x'")
    assert parse_config_error("INFO: something else") is None
    assert parse_config_error(CONFIG_ERROR_MARKER + "{not json") is None


def test_run_server_reports_a_config_error_as_the_marker_line_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nemo_gym.server.launch as launch

    monkeypatch.setattr(launch, "_context", agent_context(max_step=1))
    monkeypatch.setattr(launch, "configure_process_logging", lambda: None)
    with pytest.raises(SystemExit) as info:
        run_server(SimpleAgent)
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert [parse_config_error(line) for line in lines] == [
        (
            "agent.responses_api_agents.simple_agent.max_step",
            "unknown setting 'max_step' for SimpleAgentConfig (did you mean 'max_steps'?); its "
            "settings are: max_request_body_mb, max_sessions, max_steps, model_server, "
            "model_timeout_s, resources_server, session_ttl_s, "
            "tool_timeout_s, verify_timeout_s",
        )
    ]


def shipped_instances() -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """``(config file, instance, server type, implementation, settings)`` of every config."""
    found = []
    for path in sorted(REPO.glob("*/*/configs/*.yaml")):
        for name, entry in yaml.safe_load(path.read_text()).items():
            section = instance_section({name: entry}, name)
            if section is not None:
                found.append((str(path.relative_to(REPO)), name, *section))
    return found


@pytest.mark.parametrize(
    ("path", "name", "server_type", "impl", "settings"),
    shipped_instances(),
    ids=lambda v: v if isinstance(v, str) and v.endswith(".yaml") else "",
)
def test_every_shipped_config_is_accepted_by_its_implementation(
    path: str, name: str, server_type: str, impl: str, settings: dict[str, Any]
) -> None:
    module = importlib.import_module(f"{server_type}.{impl}.app")
    servers = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, SimpleServer) and v.__module__ == module.__name__
    ]
    assert servers, f"{path}: no server class in {module.__name__}"
    for server in servers:
        config_cls = server.model_fields["config"].annotation
        assert isinstance(config_cls, type)
        check_setting_keys(config_cls, {**settings, "name": name}, f"{name}.{server_type}.{impl}")


def test_the_local_model_swapped_in_for_the_policy_accepts_its_settings() -> None:
    from nemo_gym.config.loader import load_config, resolve_config
    from nemo_gym.config.policy import default_policy_to_local_model
    from responses_api_models.local_model.app import LocalModelServer

    loaded = load_config(
        [
            "+config_paths=[responses_api_models/openai_model/configs/openai_model.yaml]",
            "++policy_model.responses_api_models.openai_model.port=8123",
        ],
        root=REPO,
        skip_dotenv=True,
    )
    assert default_policy_to_local_model(loaded) == ["policy_model"]
    section = instance_section(resolve_config(loaded), "policy_model")
    assert section is not None and section[:2] == ("responses_api_models", "local_model")
    config_cls = LocalModelServer.model_fields["config"].annotation
    assert isinstance(config_cls, type)
    check_setting_keys(config_cls, section[2], "policy_model.responses_api_models.local_model")


def test_local_model_settings_given_for_the_policy_are_kept_when_it_is_swapped_in() -> None:
    """``+policy_model.responses_api_models.local_model.n_ctx=...`` with no policy_base_url:
    the instance becomes the local model with those settings (it crashed on two implementations)."""
    from nemo_gym.config.loader import load_config, resolve_config
    from nemo_gym.config.policy import default_policy_to_local_model

    loaded = load_config(
        [
            "+config_paths=[responses_api_models/openai_model/configs/openai_model.yaml]",
            "++policy_model.responses_api_models.openai_model.port=8123",
            "+policy_model.responses_api_models.local_model.n_ctx=4096",
            "+policy_model.responses_api_models.local_model.guided_tool_use=false",
        ],
        root=REPO,
        skip_dotenv=True,
    )
    assert default_policy_to_local_model(loaded) == ["policy_model"]
    section = instance_section(resolve_config(loaded), "policy_model")
    assert section is not None
    assert section[:2] == ("responses_api_models", "local_model")
    assert section[2]["port"] == 8123
    assert section[2]["n_ctx"] == 4096
    assert section[2]["guided_tool_use"] is False


def test_an_agent_pool_leaves_room_for_16384_inbound_rollouts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiohttp's limit counts connections in use, not idle ones: an agent keeps up to its limit
    open to the model server and as many idle to the resources server. With this container's
    20,000 descriptors, both pools and 16,384 inbound rollouts must fit (an eighth each, 2 x
    2,500, did not: 9,391 of 32,768 rows failed with "Too many open files")."""
    import resource

    limits = {"now": (1024, 20000)}
    monkeypatch.setattr(resource, "getrlimit", lambda _: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _, value: limits.update(now=value))
    http = build_server(SimpleAgent, agent_context()).server_client.http
    assert (http.limit, http.limit_per_host) == (1666, 1666)  # 20,000 // 12
    assert 16384 + 2 * http.limit < 20000


def test_nemo_gym_pool_keys_size_the_pool() -> None:
    context = agent_context()
    context.config.update(
        global_aiohttp_connector_limit=300, global_aiohttp_connector_limit_per_host=100
    )
    http = build_server(SimpleAgent, context).server_client.http
    assert (http.limit, http.limit_per_host) == (300, 100)
