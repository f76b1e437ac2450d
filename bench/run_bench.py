#!/usr/bin/env python
"""End-to-end throughput / start-up / memory benchmark of Gym against a zero-latency fake model.

Not a test: it measures. Run from anywhere with the project's venv:

    .venv/bin/python bench/run_bench.py [--rows 2000] [--parallel 16,64,256] [--out bench/out]
                                        [--repeat K] [--profile]

One repetition:

1. starts the fake OpenAI endpoint (``python -m nemo_gym.testing.fake_openai --port 0``);
2. starts ``ng_run`` (example_single_tool_call + openai_model pointed at the fake) on a free
   head-server port and times Popen -> every entry of ``GET /server_instances`` "healthy"
   (polled every 20 ms), next to the "All N servers healthy in X.XXs" line ng_run prints;
3. for each parallelism p runs ``ng_collect_rollouts`` over ``--rows`` rows and times it (whole
   command, and from its "Found N rows!" line to its exit), reads the rows back (p50/p99 of
   ``_ng_elapsed_s``, counts per ``_ng_status``), counts upstream requests per rollout, and
   takes each process's CPU time over the run;
4. samples, every 50 ms, the RSS of every Gym process (ng_run and its descendants,
   ng_collect_rollouts and its descendants; never the fake endpoint), and their PSS/USS every
   500 ms, and keeps the peak of the sum per phase and the biggest single process;
5. stops ng_run with SIGINT, then the fake endpoint.

``--repeat K`` runs all of that K times and reports medians. ``--profile`` adds one run at
``--profile-parallel`` (default 64) after the measured ones, with ``py-spy record`` attached to
every Gym process for ``--profile-duration`` seconds; that run is reported apart (py-spy costs
CPU) and is never part of the medians. ``--pycache-prefix DIR`` gives the started processes a
bytecode cache outside the repo (this machine sets PYTHONDONTWRITEBYTECODE and the venv has no
.pyc, so by default every process start compiles its imports). ``--merge a.json b.json`` pools
earlier runs. Results: a Markdown report on stdout and ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG_PATHS = (
    "resources_servers/example_single_tool_call/configs/example_single_tool_call.yaml,"
    "responses_api_models/openai_model/configs/openai_model.yaml"
)
EXAMPLE_JSONL = ROOT / "resources_servers/example_single_tool_call/data/example.jsonl"
AGENT = "example_single_tool_call_simple_agent"
MB = 1024 * 1024

# The project's bars (see bench/README.md).
BAR_ROLLOUTS_PER_S_AT_64 = 500.0
BAR_PEAK_RSS_MB = 600.0
BAR_HEALTHY_S = 3.0


# --------------------------------------------------------------------------------------------
# small helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"cannot find {name} (looked in {BIN} and PATH)")
    return found


def rel(path: Path) -> str:
    """``path`` relative to the repo root when inside it (as a person would type it)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path.resolve())


#: Set by --pycache-prefix: where the started processes read and write their bytecode cache.
PYCACHE_PREFIX: str | None = None


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a started process: ours, plus ``extra``; with --pycache-prefix, a
    bytecode cache outside the repo (PYTHONPYCACHEPREFIX) that the processes may write."""
    env = {**os.environ, **extra}
    if PYCACHE_PREFIX:
        env["PYTHONPYCACHEPREFIX"] = PYCACHE_PREFIX
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def bytecode_info() -> dict[str, Any]:
    """Whether the processes we start can use compiled bytecode (it changes every start-up)."""
    site = Path(psutil.__file__).resolve().parent.parent
    return {
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "pycache_prefix": PYCACHE_PREFIX,
        "site_packages_pyc_files": sum(1 for _ in site.glob("*/__pycache__/*.pyc")),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
        return json.loads(resp.read())


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100)."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def cpu_s(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def system_busy_s() -> float:
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(t)
    return float(total - idle)


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_total_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------------------------
# memory sampler


class Sampler(threading.Thread):
    """Every ``interval`` s: RSS/PSS/USS of ng_run + descendants and ng_collect_rollouts +
    descendants, summed; peak per phase and biggest single process per phase."""

    def __init__(self, interval: float = 0.05, slow_every: int = 10) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.interval = interval
        self.slow_every = slow_every
        self._n = 0
        self._tree: dict[int, list[int]] = {}
        self.roots: dict[str, int] = {}  # role -> pid (ng_run, ng_collect_rollouts)
        self.exclude: set[int] = set()
        self.labels: dict[int, str] = {}
        self.phase = "idle"
        self.phases: dict[str, dict[str, Any]] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self.phase = phase

    def set_root(self, role: str, pid: int | None) -> None:
        with self._lock:
            if pid is None:
                self.roots.pop(role, None)
            else:
                self.roots[role] = pid
                self.labels.setdefault(pid, role)

    def label(self, pid: int, proc: psutil.Process | None = None) -> str:
        if pid in self.labels:
            return self.labels[pid]
        try:
            return (proc or psutil.Process(pid)).name()
        except psutil.Error:
            return str(pid)

    def _proc(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
        return proc

    def sample_once(self) -> None:
        """One sample. RSS (cheap: /proc/<pid>/statm) every time; PSS/USS (smaps_rollup, ~0.5 ms
        per 90 MB process) and the process-tree walk (~0.7 ms) only every ``slow_every``-th
        sample, and the tree walk on every sample during start-up, so that the harness's own CPU
        stays small next to what it measures on a 2-core machine."""
        self._n += 1
        with self._lock:
            roots = list(self.roots.values())
            phase = self.phase
        slow = self._n % self.slow_every == 1 or self.slow_every <= 1
        if slow or phase == "startup" or set(roots) - set(self._tree):
            tree: dict[int, list[int]] = {}
            for root in roots:
                try:
                    proc = self._proc(root)
                    tree[root] = [c.pid for c in proc.children(recursive=True)]
                except psutil.Error:
                    continue
            self._tree = tree
        pids = [pid for root, kids in self._tree.items() if root in roots for pid in (root, *kids)]
        rss_sum = pss_sum = uss_sum = 0
        biggest: tuple[int, str] = (0, "")
        n = 0
        for pid in dict.fromkeys(pids):
            if pid in self.exclude:
                continue
            try:
                proc = self._proc(pid)
                if slow:
                    full = proc.memory_full_info()
                    rss = full.rss
                    pss_sum += getattr(full, "pss", 0)
                    uss_sum += full.uss
                else:
                    rss = proc.memory_info().rss
            except psutil.Error:
                self._procs.pop(pid, None)
                continue
            n += 1
            rss_sum += rss
            if rss > biggest[0]:
                biggest = (rss, self.label(pid, proc))
        if n == 0:
            return
        with self._lock:
            st = self.phases.setdefault(
                phase,
                {
                    "samples": 0,
                    "peak_rss_sum_mb": 0.0,
                    "peak_pss_sum_mb": 0.0,
                    "peak_uss_sum_mb": 0.0,
                    "peak_processes": 0,
                    "biggest_process": {"label": "", "rss_mb": 0.0},
                },
            )
            st["samples"] += 1
            st["peak_rss_sum_mb"] = max(st["peak_rss_sum_mb"], round(rss_sum / MB, 1))
            if slow:
                st["peak_pss_sum_mb"] = max(st["peak_pss_sum_mb"], round(pss_sum / MB, 1))
                st["peak_uss_sum_mb"] = max(st["peak_uss_sum_mb"], round(uss_sum / MB, 1))
            st["peak_processes"] = max(st["peak_processes"], n)
            if biggest[0] / MB > st["biggest_process"]["rss_mb"]:
                st["biggest_process"] = {"label": biggest[1], "rss_mb": round(biggest[0] / MB, 1)}

    def run(self) -> None:
        nxt = time.monotonic()
        while not self._halt.is_set():
            try:
                self.sample_once()
            except Exception as exc:  # never let the sampler kill the benchmark
                log(f"sampler error: {exc!r}")
            nxt += self.interval
            delay = nxt - time.monotonic()
            if delay < 0:
                nxt = time.monotonic()
                delay = 0
            self._halt.wait(delay)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def phase_stats(self, phase: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.phases.get(phase, {})))


# --------------------------------------------------------------------------------------------
# processes


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


def start_fake(out: Path) -> tuple[subprocess.Popen[str], int]:
    with open(out / "fake_openai.log", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nemo_gym.testing.fake_openai", "--port", "0"],
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
    """ng_run under test."""

    def __init__(self, out: Path, fake_port: int, head_port: int) -> None:
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
        env = child_env({"NEMO_GYM_LOG_LEVEL": "warning"})
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
        deadline = t0 + 60.0
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
            raise RuntimeError(f"not all servers healthy within 60 s; see {log_path}")
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


# --------------------------------------------------------------------------------------------
# one collection run


def write_input(path: Path, rows: int) -> None:
    src = [line for line in EXAMPLE_JSONL.read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(path, "w", encoding="utf-8") as fh:
        for line in itertools.islice(itertools.cycle(src), rows):
            fh.write(line + "\n")


def fake_requests(fake_port: int) -> int:
    return int(http_get_json(f"http://127.0.0.1:{fake_port}/fake/stats")["requests"])


def collect_command(
    input_path: Path, output_path: Path, parallel: int, head_port: int
) -> list[str]:
    return [
        tool("ng_collect_rollouts"),
        f"+agent_name={AGENT}",
        f"+input_jsonl_fpath={rel(input_path)}",
        f"+output_jsonl_fpath={rel(output_path)}",
        f"+num_samples_in_parallel={parallel}",
        f"+head_server.port={head_port}",
    ]


def run_collect(
    *,
    ngrun: NgRun,
    sampler: Sampler,
    fake: subprocess.Popen[str],
    fake_port: int,
    input_path: Path,
    output_path: Path,
    rows: int,
    parallel: int,
    out: Path,
    on_found: Any = None,
    deadline_s: float = 900.0,
) -> dict[str, Any]:
    for p in (output_path, Path(str(output_path) + ".manifest.json")):
        p.unlink(missing_ok=True)
    cmd = collect_command(input_path, output_path, parallel, ngrun.head_port)
    # PYTHONUNBUFFERED: its stdout is a pipe here, and we time from its "Found N rows!" line.
    env = child_env({"NEMO_GYM_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"})

    servers = ngrun.gym_processes()
    fake_ps = psutil.Process(fake.pid)
    me = psutil.Process()
    cpu0 = {label: cpu_s(p) for label, p in servers.items()}
    fake_cpu0 = cpu_s(fake_ps)
    me_cpu0 = cpu_s(me)
    sys0 = system_busy_s()
    req0 = fake_requests(fake_port)

    found: dict[str, Any] = {}
    done = threading.Event()
    result: dict[str, Any] = {}

    err = open(out / f"collect_p{parallel}.stderr.log", "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        start_new_session=True,
    )
    err.close()
    sampler.set_root("ng_collect_rollouts", proc.pid)
    ps_collect = psutil.Process(proc.pid)

    def on_line(line: str) -> None:
        if "t" not in found and re.match(r"Found \d+ rows!", line):
            found["t"] = time.perf_counter()
            found["cpu"] = cpu_s(ps_collect)
            found["sys"] = system_busy_s()
            if on_found is not None:
                on_found(proc.pid)

    def waiter() -> None:
        _, status, rusage = os.wait4(proc.pid, 0)
        result["t_end"] = time.perf_counter()
        result["status"] = status
        result["rusage"] = rusage
        done.set()

    reader = LineReader(proc.stdout, out / f"collect_p{parallel}.stdout.log", on_line)
    reader.start()
    threading.Thread(target=waiter, daemon=True).start()
    try:
        if not done.wait(deadline_s):
            log(f"ng_collect_rollouts p={parallel} still running after {deadline_s}s; killing it")
            raise TimeoutError
    except BaseException:  # the deadline, or Ctrl+C on the harness: never leave it running
        if not done.is_set():
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: it and its children
            except ProcessLookupError:
                pass
            done.wait(10)
        if not isinstance(sys.exc_info()[1], TimeoutError):
            raise
    sampler.set_root("ng_collect_rollouts", None)
    proc.returncode = os.waitstatus_to_exitcode(result["status"]) if "status" in result else -9
    reader.join(timeout=5)

    cpu1 = {label: cpu_s(p) for label, p in servers.items()}
    fake_cpu1 = cpu_s(fake_ps)
    me_cpu1 = cpu_s(me)
    sys1 = system_busy_s()
    req1 = fake_requests(fake_port)

    wall = result.get("t_end", time.perf_counter()) - t0
    t_found = found.get("t")
    ru = result.get("rusage")
    collect_cpu = (ru.ru_utime + ru.ru_stime) if ru is not None else None

    # rows back
    statuses: Counter[str] = Counter()
    elapsed: list[float] = []
    n_out = 0
    if output_path.exists():
        with open(output_path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                n_out += 1
                statuses[str(row.get("_ng_status"))] += 1
                if isinstance(row.get("_ng_elapsed_s"), (int, float)):
                    elapsed.append(float(row["_ng_elapsed_s"]))

    cpu: dict[str, float | None] = {}
    for label in servers:
        a, b = cpu0.get(label), cpu1.get(label)
        cpu[label] = round(b - a, 3) if a is not None and b is not None else None
    cpu["ng_collect_rollouts"] = round(collect_cpu, 3) if collect_cpu is not None else None
    if collect_cpu is not None and found.get("cpu") is not None:
        cpu["ng_collect_rollouts (after 'Found N rows!')"] = round(collect_cpu - found["cpu"], 3)
    gym_cpu = sum(v for k, v in cpu.items() if v is not None and "after" not in k)
    fake_cpu = (fake_cpu1 - fake_cpu0) if fake_cpu0 is not None and fake_cpu1 is not None else None
    me_cpu = (me_cpu1 - me_cpu0) if me_cpu0 is not None and me_cpu1 is not None else None
    sys_busy = sys1 - sys0
    other = sys_busy - gym_cpu - (fake_cpu or 0) - (me_cpu or 0)
    per_k = {k: (round(v * 1000.0 / rows, 3) if v is not None else None) for k, v in cpu.items()}

    ok = n_out == rows and set(statuses) == {"completed"} and proc.returncode == 0
    return {
        "parallel": parallel,
        "rows": rows,
        "exit_code": proc.returncode,
        "wall_s": round(wall, 3),
        "rollouts_per_s": round(rows / wall, 1),
        "startup_to_found_s": round(t_found - t0, 3) if t_found else None,
        "found_to_exit_s": round(result["t_end"] - t_found, 3)
        if t_found and "t_end" in result
        else None,
        "rollouts_per_s_excl_startup": round(rows / (result["t_end"] - t_found), 1)
        if t_found and "t_end" in result
        else None,
        "rows_out": n_out,
        "statuses": dict(statuses),
        "all_completed": ok,
        "elapsed_p50_s": round(percentile(elapsed, 50), 4) if elapsed else None,
        "elapsed_p99_s": round(percentile(elapsed, 99), 4) if elapsed else None,
        "elapsed_mean_s": round(statistics.fmean(elapsed), 4) if elapsed else None,
        "upstream_requests": req1 - req0,
        "upstream_requests_per_rollout": round((req1 - req0) / rows, 3),
        "cpu_s": cpu,
        "cpu_s_per_1000_rollouts": per_k,
        "gym_cpu_s": round(gym_cpu, 3),
        "gym_cpu_s_per_1000_rollouts": round(gym_cpu * 1000.0 / rows, 3),
        "fake_openai_cpu_s": round(fake_cpu, 3) if fake_cpu is not None else None,
        "bench_harness_cpu_s": round(me_cpu, 3) if me_cpu is not None else None,
        "system_busy_cpu_s": round(sys_busy, 3),
        "other_processes_cpu_s": round(other, 3),
        "cpu_utilisation_of_machine": round(sys_busy / (wall * (os.cpu_count() or 1)), 3),
        "cpu_utilisation_of_machine_excl_startup": round(
            (sys1 - found["sys"]) / ((result["t_end"] - t_found) * (os.cpu_count() or 1)), 3
        )
        if t_found and "t_end" in result and "sys" in found
        else None,
        "command": " ".join(cmd),
    }


# --------------------------------------------------------------------------------------------
# py-spy profile


WAIT_LEAF = re.compile(
    r"^(epoll_wait|epoll_pwait|epoll_pwait2|poll|ppoll|select|pselect6?|"
    r"__GI_epoll_wait|__GI___poll) \(libc"
)


def summarise_raw_profile(path: Path, top: int = 10) -> dict[str, Any]:
    """Self time per function and per package from py-spy's ``--format raw`` (collapsed
    stacks: ``frame;frame;...;leaf count``)."""
    self_counts: Counter[str] = Counter()
    pkg_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = 0
    waiting = 0
    if not path.exists():
        return {"samples": 0, "top_self": [], "by_package": []}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count_s = line.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        # --native: a thread blocked in the event loop's poll or on a lock (tqdm's monitor)
        if WAIT_LEAF.match(leaf) or ("(libc" in leaf and "PyThread_acquire_lock_timed" in stack):
            waiting += count
            continue
        total += count
        self_counts[leaf] += count
        m = re.search(r"\(([^)]*)\)\s*$", leaf)
        file = m.group(1) if m else ""
        pkg = file.split("/", 1)[0] if "/" in file else (file.rsplit(".", 1)[0] or "?")
        pkg_counts[pkg] += count
        for f in set(frames):
            incl_counts[f] += count

    def pct(c: int) -> float:
        return round(100.0 * c / total, 1) if total else 0.0

    return {
        "samples": total,
        "wait_samples_excluded": waiting,
        "top_self": [
            {"function": f, "samples": c, "pct": pct(c)} for f, c in self_counts.most_common(top)
        ],
        "by_package": [
            {"package": p, "samples": c, "pct": pct(c)} for p, c in pkg_counts.most_common(12)
        ],
        "top_inclusive": [
            {"function": f, "samples": c, "pct": pct(c)}
            for f, c in incl_counts.most_common(top + 15)
        ],
    }


def profile_run(
    *,
    ngrun: NgRun,
    sampler: Sampler,
    fake: subprocess.Popen[str],
    fake_port: int,
    out: Path,
    rows: int,
    parallel: int,
    duration: int,
    rate: int,
    native: bool = False,
) -> dict[str, Any]:
    pyspy = BIN / "py-spy"
    if not pyspy.exists():
        found = shutil.which("py-spy")
        if not found:
            log(
                "py-spy not found; install it with `.venv/bin/python -m pip install py-spy` "
                "(or `python3 -m pip --python .venv/bin/python install py-spy`); no profile"
            )
            return {"error": "py-spy not installed"}
        pyspy = Path(found)
    prof_dir = out / "profile"
    prof_dir.mkdir(parents=True, exist_ok=True)
    input_path = out / "input_profile.jsonl"
    write_input(input_path, rows)
    targets = {label: p.pid for label, p in ngrun.gym_processes().items()}
    spies: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def slug(label: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")

    def attach(label: str, pid: int) -> None:
        raw = prof_dir / f"{slug(label)}.txt"
        cmd = [
            str(pyspy),
            "record",
            "-p",
            str(pid),
            "-d",
            str(duration),
            "-r",
            str(rate),
            "--format",
            "raw",
            "--nolineno",
            "-o",
            str(raw),
        ]
        cmd += ["--native"] if native else ["--nonblocking"]
        with open(prof_dir / f"{slug(label)}.log", "w") as err:
            spies.append((label, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err), raw))

    def on_found(pid: int) -> None:
        for label, tpid in targets.items():
            attach(label, tpid)
        attach("ng_collect_rollouts", pid)

    sampler.set_phase("profile")
    run = run_collect(
        ngrun=ngrun,
        sampler=sampler,
        fake=fake,
        fake_port=fake_port,
        input_path=input_path,
        output_path=out / f"rollouts_profile_p{parallel}.jsonl",
        rows=rows,
        parallel=parallel,
        out=out,
        on_found=on_found,
    )
    for _, spy, _ in spies:
        try:
            spy.wait(timeout=duration + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
    profiles = {}
    for label, _, raw in spies:
        summary = summarise_raw_profile(raw)
        summary["active_pct"] = round(100.0 * summary["samples"] / (duration * rate), 1)
        profiles[label] = {"raw_file": rel(raw), **summary}
    return {
        "run": run,
        "duration_s": duration,
        "rate_hz": rate,
        "native": native,
        "profiles": profiles,
    }


# --------------------------------------------------------------------------------------------
# one repetition


def one_repetition(args: argparse.Namespace, out: Path, rep: int, profile: bool) -> dict[str, Any]:
    sampler = Sampler(0.05)
    fake: subprocess.Popen[str] | None = None
    ngrun: NgRun | None = None
    result: dict[str, Any] = {"repetition": rep}
    sampler.start()
    try:
        fake, fake_port = start_fake(out)
        sampler.exclude.add(fake.pid)
        head_port = free_port()
        while head_port == fake_port:
            head_port = free_port()
        ngrun = NgRun(out, fake_port, head_port)
        result["ng_run_command"] = " ".join(ngrun.command())
        sampler.set_phase("startup")
        log(f"rep {rep}: starting ng_run (head port {head_port}, fake port {fake_port})")
        startup = ngrun.start(sampler)
        time.sleep(0.3)  # let the start-up RSS settle into the start-up phase
        startup["memory"] = sampler.phase_stats("startup")
        result["startup"] = startup
        log(
            f"rep {rep}: healthy in {startup['healthy_wall_s']}s "
            f"(ng_run says {startup['ng_run_reported_s']}s)"
        )

        input_path = out / "input.jsonl"
        write_input(input_path, args.rows)
        levels = {}
        for p in args.parallel:
            phase = f"p{p}"
            sampler.set_phase(phase)
            log(f"rep {rep}: collecting {args.rows} rows at parallel {p}")
            run = run_collect(
                ngrun=ngrun,
                sampler=sampler,
                fake=fake,
                fake_port=fake_port,
                input_path=input_path,
                output_path=out / f"rollouts_p{p}.jsonl",
                rows=args.rows,
                parallel=p,
                out=out,
            )
            time.sleep(0.1)
            run["memory"] = sampler.phase_stats(phase)
            levels[str(p)] = run
            log(
                f"rep {rep}: p={p}: {run['rollouts_per_s']} rollouts/s "
                f"({run['rollouts_per_s_excl_startup']} excl. start-up), "
                f"statuses {run['statuses']}, peak RSS {run['memory'].get('peak_rss_sum_mb')} MB"
            )
            if not run["all_completed"]:
                log(
                    f"rep {rep}: p={p}: NOT all rows completed: {run['statuses']} "
                    f"(exit {run['exit_code']}, {run['rows_out']} rows)"
                )
        result["levels"] = levels
        if profile:
            log(f"rep {rep}: profiling run at parallel {args.profile_parallel} with py-spy")
            result["profile"] = profile_run(
                ngrun=ngrun,
                sampler=sampler,
                fake=fake,
                fake_port=fake_port,
                out=out,
                rows=args.profile_rows,
                parallel=args.profile_parallel,
                duration=args.profile_duration,
                rate=args.profile_rate,
                native=args.profile_native,
            )
        sampler.set_phase("idle")
    finally:
        if ngrun is not None:
            sampler.set_phase("shutdown")
            result["shutdown"] = ngrun.stop()
            log(f"rep {rep}: ng_run stopped: {result['shutdown']}")
        if fake is not None:
            stop_process(fake, signal.SIGTERM, 5.0)
        sampler.stop()
    all_phases = {k: v for k, v in sampler.phases.items() if k != "profile"}
    result["peak_rss_sum_mb_overall"] = max(
        (v["peak_rss_sum_mb"] for v in all_phases.values()), default=None
    )
    result["peak_pss_sum_mb_overall"] = max(
        (v["peak_pss_sum_mb"] for v in all_phases.values()), default=None
    )
    return result


# --------------------------------------------------------------------------------------------
# medians and report


def median_tree(items: list[Any]) -> Any:
    """Median of numbers, recursively through dicts; the most common value otherwise."""
    items = [i for i in items if i is not None]
    if not items:
        return None
    first = items[0]
    if isinstance(first, bool):
        return all(items)
    if isinstance(first, (int, float)):
        nums = [i for i in items if isinstance(i, (int, float))]
        med = statistics.median(nums)
        return round(med, 4) if isinstance(med, float) else med
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for i in items if isinstance(i, dict) for k in i))
        return {k: median_tree([i.get(k) for i in items if isinstance(i, dict)]) for k in keys}
    try:
        return (
            Counter(json.dumps(i, sort_keys=True) for i in items).most_common(1)[0][0]
            if isinstance(first, list)
            else Counter(items).most_common(1)[0][0]
        )
    except TypeError:
        return first


def fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def report(results: dict[str, Any]) -> str:
    med = results["median"]
    reps = results["repetitions"]
    k = len(reps)
    lines = [f"# Gym benchmark ({results['date']})", ""]
    m = results["machine"]
    lines.append(
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_gib']} GiB RAM, "
        f"Python {m['python']}. Rows: {results['args']['rows']}. "
        f"Figures are medians of {k} repetition(s)"
        + (" (per-run values in brackets)." if k > 1 else ".")
    )
    lines.append("")

    def per_run(get: Any, nd: int = 2) -> str:
        vals = []
        for r in reps:
            try:
                vals.append(fmt(get(r), nd))
            except (KeyError, TypeError):
                vals.append("–")
        return f" [{', '.join(vals)}]" if k > 1 else ""

    st = med["startup"]
    lines += [
        "## Start-up",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| Popen(ng_run) → every /server_instances entry healthy | "
        f"{fmt(st['healthy_wall_s'])} s{per_run(lambda r: r['startup']['healthy_wall_s'])} |",
        f"| ng_run's own \"All {st.get('ng_run_reported_servers')} servers healthy "
        'in X s" | '
        f"{fmt(st['ng_run_reported_s'])} s"
        f"{per_run(lambda r: r['startup']['ng_run_reported_s'])} |",
        f"| peak summed RSS during start-up | "
        f"{fmt(st['memory'].get('peak_rss_sum_mb'), 0)} MB"
        f"{per_run(lambda r: r['startup']['memory']['peak_rss_sum_mb'], 0)} |",
        f"| ng_run stop on SIGINT | {fmt(med['shutdown'].get('stop_s'))} s, exit code "
        f"{med['shutdown'].get('exit_code')} |",
        "",
    ]

    lines += [
        "## Collection (ng_collect_rollouts)",
        "",
        "| parallel | wall s | rollouts/s | rollouts/s excl. CLI start-up | CLI start-up s "
        "| p50 rollout s | p99 rollout s | statuses | upstream req/rollout "
        "| peak RSS sum MB | peak PSS sum MB | biggest process (RSS MB) "
        "| machine CPU busy (whole / excl. CLI start-up) |",
        "| " + " | ".join(["---"] * 13) + " |",
    ]
    for p, lv in med["levels"].items():
        mem = lv.get("memory") or {}
        big = mem.get("biggest_process") or {}
        lines.append(
            f"| {p} | {fmt(lv['wall_s'])} | {fmt(lv['rollouts_per_s'], 1)}"
            f"{per_run(lambda r, p=p: r['levels'][p]['rollouts_per_s'], 1)} "
            f"| {fmt(lv['rollouts_per_s_excl_startup'], 1)}"
            f"{per_run(lambda r, p=p: r['levels'][p]['rollouts_per_s_excl_startup'], 1)} "
            f"| {fmt(lv['startup_to_found_s'])} | {fmt(lv['elapsed_p50_s'], 3)} "
            f"| {fmt(lv['elapsed_p99_s'], 3)} | {json.dumps(lv['statuses']).replace('|', '/')} "
            f"| {fmt(lv['upstream_requests_per_rollout'])} | {fmt(mem.get('peak_rss_sum_mb'), 0)} "
            f"| {fmt(mem.get('peak_pss_sum_mb'), 0)} "
            f"| {big.get('label')} ({fmt(big.get('rss_mb'), 0)}) "
            f"| {fmt(100 * (lv.get('cpu_utilisation_of_machine') or 0), 0)}% / "
            f"{fmt(100 * (lv.get('cpu_utilisation_of_machine_excl_startup') or 0), 0)}% |"
        )
    lines.append("")

    labels = list(
        dict.fromkeys(lab for lv in med["levels"].values() for lab in lv["cpu_s_per_1000_rollouts"])
    )
    ps = list(med["levels"])
    lines += [
        "## CPU seconds per 1000 rollouts (psutil cpu_times delta over the whole command)",
        "",
        "| process | " + " | ".join(f"p={p}" for p in ps) + " |",
        "| --- | " + " | ".join("---" for _ in ps) + " |",
    ]
    for lab in labels:
        lines.append(
            f"| {lab} | "
            + " | ".join(fmt(med["levels"][p]["cpu_s_per_1000_rollouts"].get(lab)) for p in ps)
            + " |"
        )
    lines.append(
        "| **all Gym processes** | "
        + " | ".join(fmt(med["levels"][p]["gym_cpu_s_per_1000_rollouts"]) for p in ps)
        + " |"
    )
    lines.append(
        "| fake OpenAI endpoint (not Gym) | "
        + " | ".join(
            fmt(1000 * med["levels"][p]["fake_openai_cpu_s"] / med["levels"][p]["rows"]) for p in ps
        )
        + " |"
    )
    lines.append(
        "| this harness (sampler, pipes) | "
        + " | ".join(
            fmt(1000 * med["levels"][p]["bench_harness_cpu_s"] / med["levels"][p]["rows"])
            for p in ps
        )
        + " |"
    )
    lines.append(
        "| other processes on the machine (noise) | "
        + " | ".join(
            fmt(1000 * med["levels"][p]["other_processes_cpu_s"] / med["levels"][p]["rows"])
            for p in ps
        )
        + " |"
    )
    lines.append("")

    peak = med.get("peak_rss_sum_mb_overall")
    rps64 = (med["levels"].get("64") or {}).get("rollouts_per_s")
    healthy = st["healthy_wall_s"]
    lines += ["## Bars", "", "| bar | measured | verdict |", "| --- | --- | --- |"]

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("met" if ok else "**missed**")

    lines.append(
        f"| >= {BAR_ROLLOUTS_PER_S_AT_64:.0f} rollouts/s at 64 in parallel | "
        f"{fmt(rps64, 1)} rollouts/s | "
        f"{verdict(None if rps64 is None else rps64 >= BAR_ROLLOUTS_PER_S_AT_64)} |"
    )
    lines.append(
        f"| peak RSS of all Gym processes < {BAR_PEAK_RSS_MB:.0f} MB | {fmt(peak, 0)} MB "
        f"(summed RSS; PSS {fmt(med.get('peak_pss_sum_mb_overall'), 0)} MB) | "
        f"{verdict(None if peak is None else peak < BAR_PEAK_RSS_MB)} |"
    )
    lines.append(
        f"| all servers healthy within {BAR_HEALTHY_S:.0f} s of ng_run | "
        f"{fmt(healthy)} s | "
        f"{verdict(None if healthy is None else healthy <= BAR_HEALTHY_S)} |"
    )
    lines.append("")

    prof = results.get("profile")
    if prof and "profiles" in prof:
        run = prof["run"]
        lines += [
            f"## py-spy profile (separate run: {run['rows']} rows at parallel "
            f"{run['parallel']}, {prof['duration_s']} s at {prof['rate_hz']} Hz, "
            f"{run['rollouts_per_s']} rollouts/s under the profiler)",
            "",
        ]
        for label, pr in prof["profiles"].items():
            if not pr.get("samples"):
                continue
            lines += [
                f"### {label} ({pr['samples']} samples = on CPU {pr.get('active_pct')}% "
                f"of the window; raw stacks: `{pr['raw_file']}`)",
                "",
                "| self % | function |",
                "| --- | --- |",
            ]
            for row in pr["top_self"]:
                lines.append(f"| {row['pct']} | `{row['function']}` |")
            lines.append("")
            lines.append(
                "By package (self): "
                + ", ".join(f"{r['package']} {r['pct']}%" for r in pr["by_package"][:8])
            )
            lines.append("")
    return "\n".join(lines)


def warm_pycache() -> None:
    """Fill the --pycache-prefix cache: import what ng_run's servers and the CLIs import."""
    log(f"warming the bytecode cache in {PYCACHE_PREFIX}")
    code = (
        "import nemo_gym.cli.run, nemo_gym.cli.collect, nemo_gym.testing.fake_openai, "
        "uvicorn, uvloop, httptools, fastapi, nemo_gym.head.app, nemo_gym.agent.server, "
        "nemo_gym.model.server, nemo_gym.resources.server, "
        "uvicorn.protocols.http.httptools_impl, uvicorn.lifespan.on, uvicorn.loops.uvloop"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env({}), check=True)
    # plus one throw-away start of everything, for whatever the line above missed
    args = argparse.Namespace(rows=64, parallel=[64], profile_parallel=64)
    tmp = Path(PYCACHE_PREFIX or "/tmp") / "_warmup_out"
    tmp.mkdir(parents=True, exist_ok=True)
    one_repetition(args, tmp, 0, False)


def merge(args: argparse.Namespace) -> int:
    """Pool the repetitions of several results.json files (e.g. separate invocations)."""
    loaded = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.merge]
    results = {k: v for k, v in loaded[-1].items() if k not in ("median", "report_markdown")}
    results["merged_from"] = [
        {"file": f, "date": r["date"], "command": r["command"]}
        for f, r in zip(args.merge, loaded, strict=True)
    ]
    results["repetitions"] = [rep for r in loaded for rep in r["repetitions"]]
    dates = sorted(r["date"] for r in loaded)
    results["date"] = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    profiles = [r["profile"] for r in loaded if r.get("profile")]
    if profiles:
        results["profile"] = profiles[-1]
    results["median"] = median_tree(results["repetitions"])
    text = report(results)
    results["report_markdown"] = text
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8"
    )
    print(text)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--parallel", default="16,64,256", help="comma-separated parallelism levels")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--repeat", type=int, default=1, help="repetitions; medians are reported")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="after the measured runs, one py-spy-profiled run (needs py-spy)",
    )
    ap.add_argument("--profile-parallel", type=int, default=64)
    ap.add_argument("--profile-rows", type=int, default=6000)
    ap.add_argument("--profile-duration", type=int, default=10)
    ap.add_argument("--profile-rate", type=int, default=100)
    ap.add_argument(
        "--profile-native",
        action="store_true",
        help="py-spy --native (C frames too; pauses the processes while sampling)",
    )
    ap.add_argument(
        "--pycache-prefix",
        metavar="DIR",
        help=(
            "give the started processes a bytecode cache in DIR (PYTHONPYCACHEPREFIX, with "
            "PYTHONDONTWRITEBYTECODE unset); a warm-up start fills it before the measured ones"
        ),
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="RESULTS_JSON",
        help="run nothing: pool the repetitions of earlier results.json files, "
        "print the report of their medians and write it to <out>/results.json",
    )
    args = ap.parse_args()
    if args.merge:
        return merge(args)
    args.parallel = [int(x) for x in str(args.parallel).split(",") if x.strip()]
    global PYCACHE_PREFIX
    if args.pycache_prefix:
        PYCACHE_PREFIX = str(Path(args.pycache_prefix).resolve())
        warm_pycache()
    out = Path(args.out)
    if not out.is_absolute():
        out = (Path.cwd() / out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("ng_run.log", "fake_openai.log"):
        (out / name).unlink(missing_ok=True)

    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "command": " ".join(
            [
                os.path.relpath(sys.executable, Path.cwd()),
                *[os.path.relpath(a, Path.cwd()) if a == __file__ else a for a in sys.argv],
            ]
        ),
        "args": {**vars(args)},
        "bytecode": bytecode_info(),
        "loadavg_before": os.getloadavg(),
        "repetitions": [],
    }
    t_all = time.perf_counter()
    for rep in range(1, args.repeat + 1):
        do_profile = args.profile and rep == args.repeat
        rep_result = one_repetition(args, out, rep, do_profile)
        if "profile" in rep_result:
            results["profile"] = rep_result.pop("profile")
        results["repetitions"].append(rep_result)
    results["total_s"] = round(time.perf_counter() - t_all, 1)
    results["median"] = median_tree(results["repetitions"])
    text = report(results)
    results["report_markdown"] = text
    (out / "results.json").write_text(
        json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8"
    )
    print(text)
    print(f"\n(results: {rel(out / 'results.json')}; total {results['total_s']} s)")
    bad = [
        p
        for r in results["repetitions"]
        for p, lv in r.get("levels", {}).items()
        if not lv["all_completed"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; the processes this run started were stopped")
        sys.exit(130)
