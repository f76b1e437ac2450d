"""Bad input through the real commands: one clear line, the right exit code, no traceback and no
secret (``ng_collect_rollouts`` and ``ng_run``)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.helpers import BIN, Proc, free_port, wait_for

pytestmark = pytest.mark.e2e

SECRET = "sk-live-SECRET-123456"
ROW_LINE = json.dumps({"responses_create_params": {"input": "hi"}}) + "\n"


def collect(tmp_path: Path, *extra: str, rows: str = ROW_LINE, output: str = "out.jsonl") -> Proc:
    """``ng_collect_rollouts`` in ``tmp_path`` (its root: no env.yaml unless a test writes one)."""
    (tmp_path / "in.jsonl").write_text(rows)
    return Proc(
        [
            str(BIN / "ng_collect_rollouts"),
            "+agent_name=weather_agent",
            "+input_jsonl_fpath=in.jsonl",
            f"+output_jsonl_fpath={output}",
            *extra,
        ],
        cwd=tmp_path,
        env={"NEMO_GYM_ROOT": str(tmp_path)},
    )


def test_collect_typo_of_a_parameter_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = collect(tmp_path, "+num_repeat=2")
    assert proc.wait(60) == 2
    assert len(proc.lines) == 1, proc.text
    assert proc.lines[0].startswith(
        "error: command line: +num_repeat: unknown parameter of ng_collect_rollouts; "
        "did you mean +num_repeats?"
    )


def test_collect_output_that_is_a_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "outdir").mkdir()
    proc = collect(tmp_path, output="outdir")
    assert proc.wait(60) == 2
    assert proc.lines == [
        "error: command line: +output_jsonl_fpath: 'outdir' is a directory; name a file in it, "
        "e.g. outdir/rollouts.jsonl"
    ]


def test_collect_empty_input_is_an_error_not_a_success(tmp_path: Path) -> None:
    proc = collect(tmp_path, rows="\n\n")
    assert proc.wait(60) == 1
    assert proc.lines == [
        "error: in.jsonl: has no rows: the file is empty (one JSON object per line is expected)"
    ]
    assert not (tmp_path / "out.jsonl").exists()


def test_collect_bad_head_port_in_env_yaml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text("head_server:\n  port: 99999\n")
    proc = collect(tmp_path)
    assert proc.wait(60) == 2
    assert proc.lines == [
        "error: env.yaml:2: head_server.port: must be a port number from 1 to 65535 (got 99999)"
    ]


@contextmanager
def fake_head_server(config: dict[str, object]) -> Iterator[int]:
    """A head server that only serves ``/global_config_dict_yaml``."""
    body = yaml.safe_dump(config).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/global_config_dict_yaml" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def test_collect_refuses_an_agent_name_that_is_a_model_server(tmp_path: Path) -> None:
    address = {"host": "127.0.0.1", "port": 9}
    running = {
        "policy_model": {"responses_api_models": {"openai_model": address}},
        "weather_agent": {"responses_api_agents": {"simple_agent": address}},
    }
    with fake_head_server(running) as port:
        proc = collect(tmp_path, "++agent_name=policy_model", f"+head_server.port={port}")
        assert proc.wait(60) == 2
    assert proc.lines[-1] == (
        "error: command line: +agent_name: 'policy_model' is a model server "
        "(responses_api_models/openai_model), not an agent; rollouts run through an agent. "
        "Agents running: weather_agent"
    )
    assert not (tmp_path / "out.jsonl").exists()


MODEL_WITH_TYPO = f"""\
# the model, with a typo in one setting
policy_model:
  responses_api_models:
    openai_model:
      entrypoint: app.py
      openai_base_url: http://127.0.0.1:9/v1
      openai_api_key: {SECRET}
      openai_modle: gpt-x
"""


@pytest.mark.parametrize("mode", ["fork", "spawn"])
def test_ng_run_server_setting_typo_names_file_line_key_and_hides_the_key(
    tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "model.yaml"
    config.write_text(MODEL_WITH_TYPO)
    proc = Proc(
        [
            str(BIN / "ng_run"),
            f"+config_paths=[{config}]",
            f"+head_server.port={free_port()}",
            f"+start_mode={mode}",
        ]
    )
    assert proc.wait(60) == 2
    assert proc.lines[-1] == (
        f"error: {config}:8: policy_model.responses_api_models.openai_model.openai_modle: "
        "unknown setting 'openai_modle' for OpenAIModelConfig (did you mean 'openai_model'?); "
        "its settings are: max_attempts, max_request_body_mb, max_sessions, openai_api_key, "
        "openai_base_url, openai_model, request_timeout_s, session_ttl_s"
    )
    assert "server policy_model (responses_api_models/openai_model) did not start" in proc.text
    assert SECRET not in proc.text and "Traceback" not in proc.text


def test_ng_run_duplicate_yaml_key_and_bad_head_port_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "model.yaml"
    config.write_text(MODEL_WITH_TYPO + "policy_model: {}\n")
    proc = Proc(
        [str(BIN / "ng_run"), f"+config_paths=[{config}]"], env={"NEMO_GYM_ROOT": str(tmp_path)}
    )
    assert proc.wait(60) == 2
    assert proc.lines == [
        "error: model.yaml:9: policy_model: duplicate key: written on line 2 and again on line 9; "
        "keep one of them"
    ]
    config.write_text(MODEL_WITH_TYPO.replace("openai_modle", "openai_model"))
    (tmp_path / "env.yaml").write_text("head_server:\n  host: 127.0.0.1\n  port: abc\n")
    proc = Proc(
        [str(BIN / "ng_run"), f"+config_paths=[{config}]"],
        env={"NEMO_GYM_ROOT": str(tmp_path)},
    )
    assert proc.wait(60) == 2
    assert proc.lines == [
        "error: env.yaml:3: head_server.port: must be a port number from 1 to 65535 (got 'abc')"
    ]


def test_ng_run_typo_of_its_own_parameter_is_refused(tmp_path: Path) -> None:
    proc = Proc([str(BIN / "ng_run"), "+config_path=[a.yaml]", "+startup_timeout_s=5"])
    assert proc.wait(60) == 2
    assert proc.lines[0].startswith(
        "error: command line: +config_path: unknown parameter of ng_run; did you mean "
        "+config_paths?"
    )


def test_ng_run_redacts_secrets_from_a_crashing_servers_log(tmp_path: Path) -> None:
    impl = tmp_path / "resources_servers" / "leaky"
    impl.mkdir(parents=True)
    (impl / "app.py").write_text(
        "from nemo_gym.server.launch import launch_context\n"
        "settings = launch_context().config['leaky']['resources_servers']['leaky']\n"
        "print('settings:', settings, flush=True)\n"
        "raise RuntimeError('cannot log in with ' + settings['copy'])\n"
    )
    (tmp_path / "leaky.yaml").write_text(
        "leaky:\n  resources_servers:\n    leaky:\n      entrypoint: app.py\n      domain: other\n"
        f"      service_password: {SECRET}\n      copy: ${{.service_password}}\n"
    )
    proc = Proc(
        [str(BIN / "ng_run"), "+config_paths=[leaky.yaml]", f"+head_server.port={free_port()}"],
        env={"NEMO_GYM_ROOT": str(tmp_path)},
    )
    assert proc.wait(60) == 1
    assert "RuntimeError: cannot log in with ***REDACTED***" in proc.text
    assert "'service_password': '***REDACTED***', 'copy': '***REDACTED***'" in proc.text
    assert SECRET not in proc.text


def test_ng_run_taken_instance_port_names_the_file_and_line_that_set_it(tmp_path: Path) -> None:
    impl = tmp_path / "resources_servers" / "busy"
    impl.mkdir(parents=True)
    (impl / "app.py").write_text("raise SystemExit(0)\n")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        (tmp_path / "busy.yaml").write_text(
            "busy:\n  resources_servers:\n    busy:\n      entrypoint: app.py\n"
            f"      domain: other\n      port: {port}\n"
        )
        proc = Proc(
            [str(BIN / "ng_run"), "+config_paths=[busy.yaml]", f"+head_server.port={free_port()}"],
            env={"NEMO_GYM_ROOT": str(tmp_path)},
        )
        assert proc.wait(60) == 2
    assert proc.lines[-1].startswith(
        f"error: busy.yaml:6: busy.resources_servers.busy.port: port {port} on 127.0.0.1 is "
        "already in use"
    )


PEEK_APP = """\
import json, os, sys, time
from pathlib import Path
from nemo_gym.server.launch import launch_context
name = launch_context().instance_name
out = Path(sys.argv[0]).parent.parent.parent / (name + ".seen.json")
Path(str(out) + ".tmp").write_text(json.dumps({
    "env": os.environ.get("MY_KEY"),
    "config": json.dumps(launch_context().config),
    "raw": os.environ.get("NEMO_GYM_CONFIG_DICT", ""),
}))
os.replace(str(out) + ".tmp", out)  # whole, or not there yet
time.sleep(120)
"""


@pytest.mark.parametrize("mode", ["fork", "spawn"])
def test_only_the_server_whose_section_holds_a_secret_gets_it(tmp_path: Path, mode: str) -> None:
    for impl in ("holder", "peek"):
        (tmp_path / "resources_servers" / impl).mkdir(parents=True)
        (tmp_path / "resources_servers" / impl / "app.py").write_text(PEEK_APP)
    (tmp_path / "two.yaml").write_text(
        "holder:\n  resources_servers:\n    holder:\n      entrypoint: app.py\n"
        "      domain: other\n      api_key: ${MY_KEY}\n"
        "peek:\n  resources_servers:\n    peek:\n      entrypoint: app.py\n      domain: other\n"
    )
    proc = Proc(
        [
            str(BIN / "ng_run"),
            "+config_paths=[two.yaml]",
            f"+head_server.port={free_port()}",
            f"+start_mode={mode}",
        ],
        env={"NEMO_GYM_ROOT": str(tmp_path), "MY_KEY": SECRET},
    )
    try:
        seen = {
            name: json.loads(
                wait_for(
                    lambda n=name: (p := tmp_path / f"{n}.seen.json").exists() and p.read_text(),
                    60,
                    f"{name} to report what it sees",
                )
            )
            for name in ("holder", "peek")
        }
    finally:
        proc.stop()
    assert seen["holder"]["env"] == SECRET and SECRET in seen["holder"]["config"]
    assert seen["peek"]["env"] is None
    assert SECRET not in seen["peek"]["config"] and SECRET not in seen["peek"]["raw"]
    assert '"api_key": "***REDACTED***"' in seen["peek"]["config"]
