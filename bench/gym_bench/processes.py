"""Starting and stopping the processes under test: the fake OpenAI endpoint and ng_run (timed
to every server healthy), and the thread that drains a child's pipe line by line into a log."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from pathlib import Path
from typing import Any

import psutil

from .common import CONFIG_PATHS, ROOT, child_env, http_get_json, log, tool
from .sampling import Sampler


class LineReader(threading.Thread):
    """Drains a text pipe line by line into a log file, calling ``on_line`` for each line."""

    def __init__(self, stream: Any, log_path: Path, on_line: Any = None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.log_path = log_path
        self.on_line = on_line

    def run(self) -> None:
        with open(self.log_path, "a", encoding="utf-8") as fh:
            for line in self.stream:
                fh.write(line)
                fh.flush()
                if self.on_line is not None:
                    self.on_line(line)


def start_fake(out: Path, extra_args: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], int]:
    """Start the fake endpoint (``extra_args``: e.g. ``("--latency-s", "2")``); its port."""
    with open(out / "fake_openai.log", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nemo_gym.testing.fake_openai", "--port", "0", *extra_args],
            cwd=ROOT,
            env=child_env({}),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    buf = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            buf += line
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                # keep draining (it prints nothing else, but never let a pipe fill)
                LineReader(proc.stdout, out / "fake_openai.log").start()
                return proc, int(m.group(1))
        if proc.poll() is not None:
            break
    stop_process(proc, signal.SIGTERM, 5)
    raise RuntimeError(f"fake OpenAI endpoint did not start: {buf!r}")


def stop_process(proc: subprocess.Popen[Any], sig: int, deadline_s: float) -> int | None:
    """Signal ``proc`` and wait; SIGKILL it (and any descendant it left) after the deadline."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        log(f"pid {proc.pid} did not exit within {deadline_s}s after signal {sig}; killing it")
        for d in descendants:
            try:
                d.kill()
            except psutil.Error:
                pass
        proc.kill()
        return proc.wait(timeout=10)
    finally:
        for d in descendants:  # stragglers of a clean exit (should be none)
            try:
                if d.is_running() and d.status() != psutil.STATUS_ZOMBIE:
                    log(f"descendant {d.pid} of {proc.pid} still alive; killing it")
                    d.kill()
            except psutil.Error:
                pass


class NgRun:
    """ng_run under test. ``startup_deadline_s`` and ``extra_env`` (variables ng_run gets on
    top of the harness's own) are for subclasses: ng_run on a Ray cluster needs both."""

    startup_deadline_s = 60.0

    def __init__(self, out: Path, fake_port: int, head_port: int) -> None:
        self.extra_env: dict[str, str] = {}
        self.out = out
        self.fake_port = fake_port
        self.head_port = head_port
        self.proc: subprocess.Popen[str] | None = None
        self.reported_s: float | None = None
        self.reported_n: int | None = None
        self.reported_at: float | None = None
        self.instances: list[dict[str, Any]] = []

    def command(self) -> list[str]:
        return [
            tool("ng_run"),
            f"+config_paths=[{CONFIG_PATHS}]",
            f"+policy_base_url=http://127.0.0.1:{self.fake_port}/v1",
            "+policy_api_key=bench-key",
            "+policy_model_name=fake",
            "+echo_logs=false",
            f"+head_server.port={self.head_port}",
        ]

    def _on_line(self, line: str) -> None:
        m = re.search(r"All (\d+) servers healthy in ([0-9.]+)s", line)
        if m:
            self.reported_n = int(m.group(1))
            self.reported_s = float(m.group(2))
            self.reported_at = time.perf_counter()

    def start(self, sampler: Sampler) -> dict[str, Any]:
        env = child_env({"NEMO_GYM_LOG_LEVEL": "warning", **self.extra_env})
        url = f"http://127.0.0.1:{self.head_port}/server_instances"
        log_path = self.out / "ng_run.log"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        sampler.set_root("ng_run", self.proc.pid)
        LineReader(self.proc.stdout, log_path, self._on_line).start()
        deadline = t0 + self.startup_deadline_s
        healthy_at: float | None = None
        polls = 0
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"ng_run exited with {self.proc.returncode} during start-up; see {log_path}"
                )
            polls += 1
            try:
                rows = http_get_json(url, timeout=1.0)
                if (
                    isinstance(rows, list)
                    and rows
                    and all(r.get("status") == "healthy" for r in rows)
                ):
                    healthy_at = time.perf_counter()
                    self.instances = rows
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
                pass
            time.sleep(0.02)
        if healthy_at is None:
            raise RuntimeError(
                f"not all servers healthy within {self.startup_deadline_s:.0f} s; see {log_path}"
            )
        # the "All N servers healthy" line normally came already; give it a moment
        line_deadline = time.perf_counter() + 5
        while self.reported_s is None and time.perf_counter() < line_deadline:
            time.sleep(0.01)
        for row in self.instances:
            if row.get("pid"):
                sampler.labels[int(row["pid"])] = f"ng:{row['name']}"
        return {
            "healthy_wall_s": round(healthy_at - t0, 3),
            "ng_run_reported_s": self.reported_s,
            "ng_run_reported_servers": self.reported_n,
            "server_instances": len(self.instances),
            "polls": polls,
        }

    def gym_processes(self) -> dict[str, psutil.Process]:
        """label -> process for ng_run and each of its descendants."""
        assert self.proc is not None
        by_pid = {int(r["pid"]): f"ng:{r['name']}" for r in self.instances if r.get("pid")}
        main = psutil.Process(self.proc.pid)
        out = {"ng_run (supervisor)": main}
        for child in main.children(recursive=True):
            try:
                label = by_pid.get(child.pid) or child.name()
            except psutil.Error:
                continue
            if label in out:
                label = f"{label} ({child.pid})"
            out[label] = child
        return out

    def stop(self) -> dict[str, Any]:
        if self.proc is None:
            return {}
        t0 = time.perf_counter()
        code = stop_process(self.proc, signal.SIGINT, 45.0)
        return {"exit_code": code, "stop_s": round(time.perf_counter() - t0, 3)}
