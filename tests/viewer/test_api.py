"""The viewer's JSON endpoints in-process: numbers, paging, sorting, filters, search, live rows,
malformed lines, compare, and what is never served."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from nemo_gym.rollouts.row import row_status
from nemo_gym.viewer.app import CSP, ViewerSettings, create_app
from nemo_gym.viewer.rowinfo import summarize
from tests.viewer.factory import XSS, append_jsonl, row, sample_rows, write_jsonl


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    a = write_jsonl(tmp_path / "a.jsonl", sample_rows())
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [row(0, 0, reward=0.0), row(1, 0, reward=1.0), row(1, 1, reward=1.0), row(4, 0)],
    )
    return [a, b]


@pytest.fixture
async def client(files: list[Path]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ViewerSettings(paths=files))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


async def get(client: httpx.AsyncClient, url: str, **params: object) -> dict:  # type: ignore[type-arg]
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_summary_numbers(client: httpx.AsyncClient) -> None:
    s = await get(client, "/api/files/0/summary")
    assert s["rows"] == 8
    assert s["status_counts"] == {"completed": 5, "truncated": 1, "failed": 1, "malformed": 1}
    kinds = {(k["status"], k["kind"]): k["count"] for k in s["failure_kinds"]}
    assert kinds == {("failed", "verifier_error"): 1, ("truncated", "max_steps"): 1}
    rewards = [1.0, 1.0, 1.0, 0.0, 0.5, 0.25]  # the failed row is not averaged in as 0
    mean = sum(rewards) / 6
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / 5)
    r = s["reward"]
    assert r["n"] == 6 and r["mean"] == pytest.approx(mean)
    t_975_5 = 2.5705818356363146  # scipy.stats.t.ppf(0.975, 5): rewards not all 0/1, so t
    assert r["ci_method"] == "t"
    assert r["ci_high"] - mean == pytest.approx(t_975_5 * std / math.sqrt(6), rel=1e-9)
    assert mean - r["ci_low"] == pytest.approx(t_975_5 * std / math.sqrt(6), rel=1e-9)
    assert sum(b["count"] for b in s["histogram"]) == 6
    assert s["histogram"][0]["lo"] == 0.0 and s["histogram"][-1]["hi"] == 1.0
    assert s["histogram"][-1]["count"] == 3
    # tasks: 0 -> 2/2 pass, 1 -> 1/2, 2 -> 0/1 scored (one failed), 3 -> 0/1
    assert s["tasks"] == 4 and s["max_repeats"] == 2
    p1, p2 = s["pass_at_k"]
    assert p1 == {"k": 1, "value": pytest.approx((1 + 0.5 + 0 + 0) / 4), "tasks": 4}
    assert p2 == {"k": 2, "value": pytest.approx((1 + 1) / 2), "tasks": 2}
    assert {t["name"]: t["rows"] for t in s["tools"]} == {"get_weather": 5, "search_web": 2}
    assert s["has_tokens"] is True
    assert s["malformed"][0]["line"] == 7 and "invalid JSON" in s["malformed"][0]["error"]


async def test_summary_interval_of_0_1_rewards_is_wilson(tmp_path: Path) -> None:
    rewards = [1.0] * 7 + [0.0] * 3
    path = write_jsonl(tmp_path / "w.jsonl", [row(i, reward=r) for i, r in enumerate(rewards)])
    app = create_app(ViewerSettings(paths=[path]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        r = (await get(c, "/api/files/0/summary"))["reward"]
    # scipy.stats.binomtest(7, 10).proportion_ci(method="wilson")
    assert r["ci_method"] == "wilson"
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((0.396778147461, 0.892208732594), 1e-10)


async def test_one_graded_reward_has_no_interval(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "one.jsonl", [row(0, reward=0.5)])
    app = create_app(ViewerSettings(paths=[path]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        r = (await get(c, "/api/files/0/summary"))["reward"]
    assert r["n"] == 1 and r["mean"] == 0.5 and r["ci_low"] is None and r["ci_high"] is None


async def test_pass_threshold_is_configurable(files: list[Path]) -> None:
    app = create_app(ViewerSettings(paths=files, pass_threshold=0.5))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        s = await get(c, "/api/files/0/summary")
    assert s["pass_at_k"][0]["value"] == pytest.approx((1 + 0.5 + 1 + 0) / 4)


async def test_rows_paging_and_sorting(client: httpx.AsyncClient) -> None:
    page = await get(client, "/api/files/0/rows", limit=3, offset=2)
    assert page["total"] == 8 and page["matched"] == 8
    assert [r["line"] for r in page["rows"]] == [3, 4, 5]
    by_reward = await get(client, "/api/files/0/rows", sort="reward", order="desc")
    rewards = [r["reward"] for r in by_reward["rows"]]
    assert rewards[:6] == [1.0, 1.0, 1.0, 0.5, 0.25, 0.0]
    assert rewards[6:] == [None, None]  # no reward sorts last either way
    ascending = await get(client, "/api/files/0/rows", sort="reward", order="asc")
    assert [r["reward"] for r in ascending["rows"]][:2] == [0.0, 0.25]
    by_steps = await get(client, "/api/files/0/rows", sort="steps", order="desc", limit=1)
    assert by_steps["rows"][0]["line"] == 6
    first = (await get(client, "/api/files/0/rows", limit=1))["rows"][0]
    assert first["tokens"] == 3 and first["tools"] == ["get_weather"] and first["task_index"] == 0


@pytest.mark.parametrize(
    ("params", "lines"),
    [
        ({"status": "failed"}, [5]),
        ({"status": "truncated,failed"}, [5, 6]),
        ({"status": "malformed"}, [7]),
        ({"kind": "verifier_error"}, [5]),
        ({"reward_min": 0.5}, [1, 2, 3, 6]),
        ({"reward_min": 0.1, "reward_max": 0.6}, [6, 8]),
        ({"tool": "search_web"}, [3, 4]),
        ({"task": 1}, [3, 4]),
        ({"q": "LLAMAS"}, [3, 4]),  # case-insensitive, in the input
        ({"q": "no idea"}, [4]),  # in the assistant's text
        ({"q": "think about"}, [2]),  # in the reasoning
        ({"q": "llamas sorry"}, [4]),  # every term must occur
        ({"q": "unexpected end"}, []),  # parse errors are not row text
        ({"q": "responses_create_params"}, [7]),  # a malformed line is searched as raw text
        ({"status": "completed", "q": "paris", "reward_min": 1}, [1, 2]),
    ],
)
async def test_filters(client: httpx.AsyncClient, params: dict, lines: list[int]) -> None:  # type: ignore[type-arg]
    page = await get(client, "/api/files/0/rows", **params)
    assert [r["line"] for r in page["rows"]] == lines
    assert page["matched"] == len(lines) and page["total"] == 8


async def test_bad_filter_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/files/0/rows", params={"status": "bogus"})
    assert response.status_code == 422 and "status" in response.text
    response = await client.get("/api/files/0/rows", params={"sort": "nope"})
    assert response.status_code == 422


async def test_one_row_and_malformed_row(client: httpx.AsyncClient) -> None:
    detail = await get(client, "/api/files/0/rows/7")
    assert detail["line"] == 8 and detail["status"] == "completed"
    assert detail["data"]["response"]["output"][2]["content"][0]["text"] == f"Echo: {XSS}"
    bad = await get(client, "/api/files/0/rows/6")
    assert bad["status"] == "malformed" and bad["line"] == 7 and bad["data"] is None
    assert bad["raw"].startswith('{"responses_create_params"') and "invalid JSON" in bad["error"]


async def test_tasks_page(client: httpx.AsyncClient) -> None:
    page = await get(client, "/api/files/0/tasks", sort="pass_rate", order="desc")
    assert page["total"] == 4
    assert [(t["task_index"], t["passed"], t["scored"], t["failed"]) for t in page["tasks"]] == [
        (0, 2, 2, 0),
        (1, 1, 2, 0),
        (2, 0, 1, 1),
        (3, 0, 1, 0),
    ]


async def test_compare_puts_changes_first(client: httpx.AsyncClient) -> None:
    c = await get(client, "/api/compare", a=0, b=1)
    assert c["joined_by"] == "task_index"
    assert (c["better"], c["worse"], c["same"], c["only_a"], c["only_b"]) == (1, 1, 0, 2, 1)
    first, second = c["tasks"][:2]
    assert (first["task_index"], first["delta"]) == (0, -1.0)
    assert (second["task_index"], second["delta"]) == (1, 0.5)
    assert first["a"]["rows"] == [0, 1] and first["b"]["rows"] == [0]
    assert [
        t["task_index"] for t in (await get(client, "/api/compare", show="better"))["tasks"]
    ] == [1]


async def test_compare_falls_back_to_input_hash(tmp_path: Path) -> None:
    plain = [{k: v for k, v in row(i, reward=1.0).items() if k != "_ng_task_index"} for i in (0, 1)]
    worse = [{k: v for k, v in row(i, reward=0.0).items() if k != "_ng_task_index"} for i in (1, 0)]
    paths = [write_jsonl(tmp_path / "x.jsonl", plain), write_jsonl(tmp_path / "y.jsonl", worse)]
    transport = httpx.ASGITransport(app=create_app(ViewerSettings(paths=paths)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        result = await get(c, "/api/compare")
    assert result["joined_by"] == "input_hash" and result["worse"] == 2 and result["only_a"] == 0


async def test_appended_rows_and_partial_line(client: httpx.AsyncClient, files: list[Path]) -> None:
    v1 = await get(client, "/api/files/0/version")
    append_jsonl(files[0], [row(5, reward=1.0, question="a new arrival")])
    with files[0].open("a") as f:
        f.write('{"responses_create_params": {"input": []}, "rew')  # no newline yet
    v2 = await get(client, "/api/files/0/version")
    assert v2["rows"] == 9 and v2["version"] != v1["version"]
    assert (await get(client, "/api/files/0/rows", q="new arrival"))["rows"][0]["line"] == 9
    with files[0].open("a") as f:
        f.write('ard": 0.0}\n')
    s = await get(client, "/api/files/0/summary")
    assert s["rows"] == 10 and s["status_counts"]["completed"] == 7
    assert s["status_counts"]["malformed"] == 1


async def test_rewritten_file_is_indexed_again(
    client: httpx.AsyncClient, files: list[Path]
) -> None:
    await get(client, "/api/files/0/summary")
    write_jsonl(files[0], [row(0, reward=0.0)])
    s = await get(client, "/api/files/0/summary")
    assert s["rows"] == 1 and s["reward"]["mean"] == 0.0


@pytest.mark.parametrize(
    "url",
    [
        "/api/files/5/summary",
        "/api/files/-1/rows",
        "/api/files/0/rows/99",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2f..%2fpyproject.toml",
        "/api/files/0/../../../etc/passwd",
        "/etc/passwd",
        "/a.jsonl",
    ],
)
async def test_only_named_files_are_served(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url)
    assert response.status_code == 404
    assert "responses_create_params" not in response.text and "root:" not in response.text


async def test_read_only_and_security_headers(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/app.js">' in page.text
    assert page.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    api = await client.get("/api/files")
    assert (
        api.headers["content-security-policy"] == CSP and api.headers["cache-control"] == "no-store"
    )
    assert (await client.post("/api/files")).status_code == 405
    assert (await client.delete("/api/files/0/rows/0")).status_code == 405
    foreign = await client.get("/api/files", headers={"host": "evil.example"})
    assert foreign.status_code == 400  # DNS-rebinding guard


def test_static_front_end_never_uses_inner_html() -> None:
    static = Path(__file__).parents[2] / "src/nemo_gym/viewer/static"
    sources = {p.name: p.read_text() for p in static.glob("*.js")}
    assert sources, "no front-end modules found"
    for name, text in sources.items():
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{name} uses {sink}"
    assert "<script>" not in (static / "index.html").read_text()  # no inline script


ROWS_OF_OTHER_TOOLS = [
    {"reward": 0.5},
    {"reward": 0},
    {"reward": None},
    {"reward": True},  # a boolean is not a reward
    {"reward": "1"},
    {"reward": 1.0, "_ng_status": "unknown"},
    {"reward": None, "_ng_status": "truncated"},  # an explicit status wins
    {},
]


def test_viewer_reads_status_by_the_rollouts_rule() -> None:
    for r in ROWS_OF_OTHER_TOOLS:
        assert summarize(r).status == row_status(r), r


async def test_rows_without_gym_keys_are_counted_by_that_rule(tmp_path: Path) -> None:
    params = {"responses_create_params": {"input": "hi"}}
    path = write_jsonl(tmp_path / "other.jsonl", [{**params, **r} for r in ROWS_OF_OTHER_TOOLS])
    app = create_app(ViewerSettings(paths=[path]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        s = await get(c, "/api/files/0/summary")
    assert s["status_counts"] == {"completed": 3, "truncated": 1, "failed": 4, "malformed": 0}
    assert {(k["status"], k["kind"]): k["count"] for k in s["failure_kinds"]} == {
        ("failed", "no_reward"): 4
    }
    assert s["reward"]["n"] == 3 and s["reward"]["mean"] == pytest.approx(0.5)
