"""ng_run when something is wrong: a server that crashes at start-up, a port that is taken,
a broken config."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers import BIN, Proc, free_port

pytestmark = pytest.mark.e2e


def make_root(tmp_path: Path, app_source: str) -> Path:
    impl = tmp_path / "resources_servers" / "crashy"
    impl.mkdir(parents=True)
    (impl / "app.py").write_text(app_source)
    (tmp_path / "crashy.yaml").write_text(
        "crashy:\n  resources_servers:\n    crashy:\n      entrypoint: app.py\n"
        "      domain: other\n"
    )
    return tmp_path


def test_server_crashing_at_startup_is_named_with_its_log(tmp_path: Path) -> None:
    root = make_root(tmp_path, "print('loading crashy')\nraise RuntimeError('boom at import')\n")
    proc = Proc(
        [str(BIN / "ng_run"), "+config_paths=[crashy.yaml]", f"+head_server.port={free_port()}"],
        env={"NEMO_GYM_ROOT": str(root)},
    )
    assert proc.wait(60) == 1
    text = proc.text
    assert (
        "ERROR: server crashy (resources_servers/crashy) exited with code 1 during start-up" in text
    )
    assert "Last" in text and "loading crashy" in text and "RuntimeError: boom at import" in text


def test_server_that_never_becomes_healthy_times_out(tmp_path: Path) -> None:
    root = make_root(tmp_path, "import time\nprint('stuck', flush=True)\ntime.sleep(600)\n")
    proc = Proc(
        [
            str(BIN / "ng_run"),
            "+config_paths=[crashy.yaml]",
            "+startup_timeout_s=2",
            f"+head_server.port={free_port()}",
        ],
        env={"NEMO_GYM_ROOT": str(root)},
    )
    assert proc.wait(60) == 1
    assert "did not answer GET /health within 2s" in proc.text and "stuck" in proc.text


def test_taken_head_port_is_a_clear_error(tmp_path: Path) -> None:
    root = make_root(tmp_path, "raise SystemExit(0)\n")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        proc = Proc(
            [str(BIN / "ng_run"), "+config_paths=[crashy.yaml]", f"+head_server.port={port}"],
            env={"NEMO_GYM_ROOT": str(root)},
        )
        assert proc.wait(60) == 2
    assert f"port {port} on 127.0.0.1 is already in use" in proc.text
    assert "+head_server.port=<port>" in proc.text


def test_config_error_names_file_and_key(tmp_path: Path) -> None:
    root = make_root(tmp_path, "")
    (root / "bad.yaml").write_text(
        "crashy:\n  resource_servers:\n    crashy:\n      entrypoint: app.py\n"
    )
    proc = Proc([str(BIN / "ng_run"), "+config_paths=[bad.yaml]"], env={"NEMO_GYM_ROOT": str(root)})
    assert proc.wait(60) == 2
    assert "bad.yaml:2: crashy.resource_servers: unknown server type" in proc.text


def test_help_prints_parameters(tmp_path: Path) -> None:
    proc = Proc([str(BIN / "ng_run"), "+h=true"])
    assert proc.wait(60) == 0
    assert "Displaying help for ng_run" in proc.text and "+startup_timeout_s" in proc.text
