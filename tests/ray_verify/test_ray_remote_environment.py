"""An environment in NeMo Gym's style whose verify runs a ``@ray.remote`` task
(``ray_word_count/``, part of the compatibility suite) under the real ``ng_run`` and
``ng_collect_rollouts``, joined to a real local Ray cluster through ``ray_head_node_address``.

The cluster is started here (``ray.cluster_utils.Cluster`` on 127.0.0.1) and its address given to
``ng_run``; the test stops it. The fake model answers ``You said: <text>``, so each row's
word count, hence its reward, is known in advance (see ``EXPECTED``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, Proc, fake_openai_process, free_port, ng_run
from tests.ray_verify.local_cluster import LOOPBACK, loopback_cluster

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
]
ENV = Path(__file__).resolve().parent / "ray_word_count"
AGENT = "ray_word_count_simple_agent"
#: (task, reward, words counted): "You said: one two three" has 5 words, as expected; etc.
EXPECTED = [(0, 1.0, 5), (1, 1.0, 4), (2, 0.0, 6), (3, 0.0, 4)]


@pytest.fixture
def cluster() -> Iterator[tuple[str, str]]:
    with loopback_cluster() as found:
        yield found


def project(root: Path) -> None:
    (root / "resources_servers").mkdir()
    (root / "resources_servers" / "ray_word_count").symlink_to(ENV)
    for kind, name in (
        ("responses_api_agents", "simple_agent"),
        ("responses_api_models", "openai_model"),
    ):
        (root / kind).mkdir()
        (root / kind / name).symlink_to(REPO / kind / name)


def test_verify_runs_a_ray_remote_task_on_the_cluster_ng_run_names(
    cluster: tuple[str, str], tmp_path: Path
) -> None:
    address, node_id = cluster
    project(tmp_path)
    env = {"NEMO_GYM_ROOT": str(tmp_path), **LOOPBACK}
    configs = (
        "resources_servers/ray_word_count/configs/ray_word_count.yaml,"
        "responses_api_models/openai_model/configs/openai_model.yaml"
    )
    port = free_port()
    out = tmp_path / "rollouts.jsonl"
    with fake_openai_process() as base_url:
        server = ng_run(
            port, base_url, f"+ray_head_node_address={address}", configs=configs, env=env
        )
        try:
            server.wait_line("servers healthy in", timeout=120)
            collect = Proc(
                [
                    str(BIN / "ng_collect_rollouts"),
                    f"+agent_name={AGENT}",
                    f"+input_jsonl_fpath={ENV / 'data' / 'example.jsonl'}",
                    f"+output_jsonl_fpath={out}",
                    f"+head_server.port={port}",
                ],
                env=env,
            )
            assert collect.wait(180) == 0, collect.text + "\n" + server.text
        finally:
            server.stop()

    rows = sorted(
        (json.loads(line) for line in out.read_text().splitlines()),
        key=lambda r: r["_ng_task_index"],
    )
    assert [(r["_ng_task_index"], r["reward"], r["counted_words"]) for r in rows] == EXPECTED
    for row in rows:
        assert row["_ng_status"] == "completed"
        assert row["ray_node_id"] == node_id  # counted on the cluster ng_run was given
        assert row["ray_worker_pid"] != row["server_pid"]  # ... in a Ray worker, not the server
    assert "mean reward 0.5" in collect.text
