"""Config merging, interpolation, validation errors and redaction (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nemo_gym.config.instances import parse_server_instances
from nemo_gym.config.loader import load_config, resolve_config
from nemo_gym.config.secrets import REDACTED, redact
from nemo_gym.core.errors import ConfigError


def write(root: Path, rel: str, data: object) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return path


def make_impl(root: Path, server_type: str, impl: str) -> None:
    write(root, f"{server_type}/{impl}/app.py", "# app\n")


def instance(server_type: str, impl: str, **settings: object) -> dict[str, object]:
    return {server_type: {impl: {"entrypoint": "app.py", **settings}}}


def test_files_env_yaml_and_cli_merge_in_order(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", {"x": 1, "y": {"a": 1, "b": 1}, "config_paths": ["c.yaml"]})
    write(tmp_path, "b.yaml", {"x": 2, "y": {"b": 2}})
    write(tmp_path, "c.yaml", {"x": 3, "only_c": True, "config_paths": ["a.yaml"]})
    write(tmp_path, "env.yaml", {"y": {"c": "env"}, "z": "env"})
    loaded = load_config(["+config_paths=[a.yaml,b.yaml]", "+z=cli", "++y.a=9"], root=tmp_path)
    cfg = resolve_config(loaded)
    # a, then b, then c (listed by a, loaded once despite the cycle), then env.yaml, then CLI
    assert cfg["x"] == 3
    assert cfg["only_c"] is True
    assert cfg["y"] == {"a": 9, "b": 2, "c": "env"}
    assert cfg["z"] == "cli"
    assert cfg["config_paths"] == ["a.yaml", "b.yaml", "c.yaml"]
    assert loaded.sources["x"] == "c.yaml" and loaded.sources["z"] == "command line"


def test_relative_paths_resolve_against_root_not_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "configs/a.yaml", {"x": 1})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = resolve_config(load_config(["+config_paths=[configs/a.yaml]"], root=tmp_path))
    assert cfg["x"] == 1


def test_cli_values_lists_null_and_dotted_keys(tmp_path: Path) -> None:
    cfg = resolve_config(
        load_config(
            ["+a.b.c=5", "+l=[1,two,3.5]", "+n=null", "+s=gpt-4.1-2025-04-14", "plain=7"],
            root=tmp_path,
        )
    )
    assert cfg["a"] == {"b": {"c": 5}}
    assert cfg["l"] == [1, "two", 3.5]
    assert cfg["n"] is None
    assert cfg["s"] == "gpt-4.1-2025-04-14"
    assert cfg["plain"] == 7


def test_unparseable_cli_argument_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot parse 'garbage'"):
        load_config(["garbage"], root=tmp_path)


def test_interpolation_reads_config_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    write(tmp_path, "env.yaml", "policy_api_key: ${OPENAI_API_KEY}\nbase: http://x\n")
    write(tmp_path, "m.yaml", {"model": {"key": "${policy_api_key}", "url": "${base}/v1"}})
    cfg = resolve_config(load_config(["+config_paths=[m.yaml]"], root=tmp_path))
    assert cfg["model"] == {"key": "sk-from-env", "url": "http://x/v1"}


def test_unresolvable_reference_names_key_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", "first: 1\nmodel:\n  key: ${policy_api_key}\n")
    with pytest.raises(ConfigError) as info:
        resolve_config(load_config(["+config_paths=[m.yaml]"], root=tmp_path))
    message = str(info.value)
    assert "m.yaml:3" in message and "model.key" in message and "policy_api_key" in message


def test_missing_mandatory_value_is_named(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", {"agent": {"name": "???"}})
    with pytest.raises(ConfigError, match=r"agent.name: is required"):
        resolve_config(load_config(["+config_paths=[m.yaml]"], root=tmp_path))


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file 'nope.yaml' not found"):
        load_config(["+config_paths=[nope.yaml]"], root=tmp_path)


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_config(["+config_paths=[bad.yaml]"], root=tmp_path)


def _instances(tmp_path: Path, data: dict[str, object]) -> list[object]:
    write(tmp_path, "servers.yaml", data)
    loaded = load_config(["+config_paths=[servers.yaml]"], root=tmp_path)
    return parse_server_instances(resolve_config(loaded), loaded)  # type: ignore[return-value]


def test_valid_instances_are_parsed(tmp_path: Path) -> None:
    make_impl(tmp_path, "resources_servers", "weather")
    make_impl(tmp_path, "responses_api_agents", "simple_agent")
    found = _instances(
        tmp_path,
        {
            "weather": instance("resources_servers", "weather", domain="agent"),
            "agent": instance(
                "responses_api_agents",
                "simple_agent",
                resources_server={"type": "resources_servers", "name": "weather"},
            ),
            "not_a_server": {"some": "setting"},
        },
    )
    assert [(i.name, i.server_type, i.impl) for i in found] == [  # type: ignore[attr-defined]
        ("weather", "resources_servers", "weather"),
        ("agent", "responses_api_agents", "simple_agent"),
    ]


def test_unknown_server_type_names_file_line_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _instances(tmp_path, {"pad": 1, "weather": instance("resource_servers", "weather")})
    message = str(info.value)
    assert "servers.yaml:2" in message or "servers.yaml:3" in message
    assert "weather.resource_servers" in message and "did you mean 'resources_servers'" in message


def test_missing_entrypoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"weather.resources_servers.weather: missing `entrypoint`"
    ):
        _instances(tmp_path, {"weather": {"resources_servers": {"weather": {"domain": "agent"}}}})


def test_wrong_type_is_named(tmp_path: Path) -> None:
    make_impl(tmp_path, "resources_servers", "weather")
    with pytest.raises(ConfigError, match=r"weather.resources_servers.weather.port: .*'abc'"):
        _instances(tmp_path, {"weather": instance("resources_servers", "weather", port="abc")})


def test_reference_to_missing_instance_is_named(tmp_path: Path) -> None:
    make_impl(tmp_path, "responses_api_agents", "simple_agent")
    with pytest.raises(ConfigError) as info:
        _instances(
            tmp_path,
            {
                "agent": instance(
                    "responses_api_agents",
                    "simple_agent",
                    model_server={"type": "responses_api_models", "name": "policy_modle"},
                )
            },
        )
    message = str(info.value)
    assert "agent.responses_api_agents.simple_agent.model_server.name" in message
    assert "'policy_modle', which is not defined" in message


def test_missing_implementation_folder_is_named(tmp_path: Path) -> None:
    make_impl(tmp_path, "resources_servers", "weather")
    with pytest.raises(ConfigError, match="did you mean 'weather'"):
        _instances(tmp_path, {"w": instance("resources_servers", "wether")})


def test_redact_hides_secret_keys_and_their_copies() -> None:
    cfg = {
        "policy_api_key": "sk-1",
        "nested": {"openai_api_key": "sk-1", "auth_token": "t", "copy": "sk-1", "url": "http://x"},
        "items": [{"password": "p"}],
    }
    out = redact(cfg)
    assert out["policy_api_key"] == REDACTED
    assert out["nested"] == {
        "openai_api_key": REDACTED,
        "auth_token": REDACTED,
        "copy": REDACTED,
        "url": "http://x",
    }
    assert out["items"] == [{"password": REDACTED}]
    assert "sk-1" not in repr(out)
