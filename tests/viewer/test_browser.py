"""The viewer in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a
real ``ng_viewer`` process: overview numbers, filters, search, one rollout, compare, a row
appearing live, and script injection. Screenshots go to ``tests/viewer/artifacts/``.

These tests fail (never skip) when Chromium is missing: ``scripts/setup.sh`` installs it.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers import BIN, free_port
from tests.viewer.factory import XSS, append_jsonl, row, sample_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = os.environ.get("GYM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Path]]]:
    """``ng_viewer`` over three files: a (sample rows), b (a second run), live (grows)."""
    tmp = tmp_path_factory.mktemp("viewer")
    a = write_jsonl(tmp / "run_a.jsonl", sample_rows())
    b = write_jsonl(
        tmp / "run_b.jsonl",
        [row(0, 0, reward=0.0), row(1, 0, reward=1.0), row(1, 1, reward=1.0), row(4, 0)],
    )
    live = write_jsonl(tmp / "live.jsonl", [row(0, reward=1.0), row(1, reward=0.0)])
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "ng_viewer"), f"+jsonl_fpath=[{a},{b},{live}]", f"+port={port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline, seen = time.monotonic() + 60, ""
    while "http://" not in seen:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"ng_viewer did not print its URL:\n{seen}{proc.stdout.read()}")
        if select.select([proc.stdout], [], [], 0.5)[0]:
            seen += proc.stdout.readline()
    url = re.search(r"http://\S+", seen)
    assert url is not None and url.group(0) == f"http://127.0.0.1:{port}"
    try:
        yield url.group(0), [a, b, live]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/setup.sh (apt chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))
    yield pg
    context.close()
    assert errors == []


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def stat(page: Page, key: str) -> str:
    return page.locator(f'[data-stat="{key}"] .value').inner_text()


def test_overview_numbers(page: Page, served: tuple[str, list[Path]]) -> None:
    page.goto(served[0] + "/")
    expect(page.locator('[data-stat="rows"] .value')).to_have_text("8")
    assert stat(page, "completed") == "5" and stat(page, "failed") == "1"
    assert stat(page, "truncated") == "1" and stat(page, "malformed") == "1"
    assert stat(page, "mean") == "0.625"
    expect(page.locator('[data-stat="mean"] .sub')).to_contain_text(
        "95% CI [0.163, 1.087] (Student t)"
    )
    assert stat(page, "pass1") == "37.5%"
    expect(page.locator(".kinds")).to_contain_text("verifier_error")
    expect(page.locator(".hist .bar")).to_have_count(10)
    expect(page.locator(".malformed-list")).to_contain_text("line 7")
    shot(page, "overview")


def test_filter_by_status_is_kept_in_the_url(page: Page, served: tuple[str, list[Path]]) -> None:
    page.goto(served[0] + "/#view=rows&file=0")
    expect(page.locator(".count")).to_have_text("8 of 8 rollouts")
    page.select_option('select[name="status"]', "failed")
    expect(page.locator(".count")).to_have_text("1 of 8 rollouts")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("verifier_error")
    assert "status=failed" in page.url
    page.reload()
    expect(page.locator(".count")).to_have_text("1 of 8 rollouts")
    page.goto(served[0] + "/#view=rows&file=0&reward_min=0.5&sort=reward&order=desc")
    expect(page.locator(".count")).to_have_text("4 of 8 rollouts")
    expect(page.locator("tbody td.reward")).to_have_text(["1", "1", "1", "0.500"])
    shot(page, "rows_filtered")


def test_search(page: Page, served: tuple[str, list[Path]]) -> None:
    page.goto(served[0] + "/#view=rows&file=0")
    page.fill('input[name="q"]', "llamas")
    page.press('input[name="q"]', "Enter")
    expect(page.locator(".count")).to_have_text("2 of 8 rollouts")
    expect(page.locator("tbody .preview")).to_have_text(["Find llamas in Peru"] * 2)
    assert "q=llamas" in page.url
    shot(page, "search")


def test_one_rollout(page: Page, served: tuple[str, list[Path]]) -> None:
    page.goto(served[0] + "/#view=rows&file=0")
    page.locator('tr[data-row="0"] td.preview a').click()
    expect(page.locator(".detail-head h2")).to_contain_text("Line 1")
    expect(page.locator(".inputs .item .role")).to_have_text(["system", "user"])
    expect(page.locator(".inputs .item.user .text")).to_have_text("What is the weather in Paris?")
    expect(page.locator(".tools-offered .tool-name")).to_have_text(["get_weather", "search_web"])
    expect(page.locator(".tools-offered")).to_contain_text("Get the current weather for a city.")
    kinds = page.locator(".outputs [data-kind]")
    expect(kinds).to_have_count(3)
    assert [kinds.nth(i).get_attribute("data-kind") for i in range(3)] == [
        "function_call",
        "function_call_output",
        "message assistant",
    ]
    expect(kinds.nth(0).locator("pre")).to_have_text('{\n  "city": "Paris"\n}')
    expect(kinds.nth(2).locator(".text")).to_have_text("It is sunny.")
    expect(page.locator(".token-counts")).to_contain_text("prompt tokens: 5 · generated tokens: 3")
    tokens = page.locator(".token-strip .tok")
    expect(tokens).to_have_text(["101", "102", "103"])
    assert "logprob -1.5000" in (tokens.nth(1).get_attribute("title") or "")
    expect(page.locator('[data-field="reward"]')).to_contain_text("1")
    shot(page, "rollout")
    page.locator(".crumbs a", has_text="next row").click()
    reasoning = page.locator(".outputs details.reasoning")
    expect(reasoning).to_have_count(1)
    assert reasoning.get_attribute("open") is None  # collapsed
    reasoning.locator("summary").click()
    expect(reasoning.locator(".text")).to_have_text("Think about Paris.")


def test_failed_and_malformed_rows(page: Page, served: tuple[str, list[Path]]) -> None:
    page.goto(served[0] + "/#view=row&file=0&row=4")
    expect(page.locator('[data-failure="verifier_error"]')).to_contain_text("boom")
    expect(page.locator(".big-reward .value")).to_have_text("none")
    page.goto(served[0] + "/#view=row&file=0&row=6")
    expect(page.locator(".error-box")).to_contain_text("invalid JSON")
    expect(page.locator("h2")).to_contain_text("Line 7")


def test_compare_two_runs(page: Page, served: tuple[str, list[Path]]) -> None:
    page.goto(served[0] + "/#view=compare&a=0&b=1")
    expect(page.locator('[data-stat="better"] .value')).to_have_text("1")
    assert stat(page, "worse") == "1" and stat(page, "mean_b") == "0.750"
    rows = page.locator("table.compare tbody tr")
    expect(rows.first.locator("td").first).to_have_text("task 0")
    expect(rows.first.locator(".delta")).to_have_text("-1")
    expect(rows.nth(1).locator(".delta")).to_have_text("+0.500")
    shot(page, "compare")
    page.locator(".subtabs a", has_text="better").click()
    expect(page.locator("table.compare tbody tr")).to_have_count(1)


def test_new_rows_appear_live(page: Page, served: tuple[str, list[Path]]) -> None:
    live = served[1][2]
    page.goto(served[0] + "/#view=rows&file=2")
    expect(page.locator(".count")).to_have_text("2 of 2 rollouts")
    append_jsonl(live, [row(7, reward=1.0, question="A row that arrives while watching")])
    expect(page.locator(".count")).to_have_text("3 of 3 rollouts", timeout=15_000)
    expect(page.locator('tr[data-row="2"] .preview')).to_have_text(
        "A row that arrives while watching"
    )
    with live.open("a") as f:
        f.write('{"reward": 1.0, "_ng_st')  # half a line: not shown until its newline
    page.goto(served[0] + "/#view=overview&file=2")
    expect(page.locator('[data-stat="rows"] .value')).to_have_text("3")
    with live.open("a") as f:
        f.write('atus": "completed"}\n')
    expect(page.locator('[data-stat="rows"] .value')).to_have_text("4", timeout=15_000)
    expect(page.locator(".live")).to_contain_text("live")
    shot(page, "live")


def test_script_injection_shows_as_text(page: Page, served: tuple[str, list[Path]]) -> None:
    page.goto(served[0] + "/#view=rows&file=0&q=pwned")
    expect(page.locator("tbody .preview")).to_have_text(f"Echo this: {XSS}"[:160])
    page.goto(served[0] + "/#view=row&file=0&row=7")
    expect(page.locator(".outputs .message .text")).to_have_text(f"Echo: {XSS}")
    expect(page.locator(".outputs .function_call_output pre")).to_have_text(XSS)
    expect(page.locator(".outputs .function_call pre")).to_contain_text("<script>window.__pwned=1")
    expect(page.locator(".inputs .item.user .text")).to_have_text(f"Echo this: {XSS}")
    assert page.locator(".outputs img, .inputs img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None
    shot(page, "injection")
