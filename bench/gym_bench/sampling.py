"""Measuring the processes under test: CPU time of one process and of the whole machine, and
the sampler thread that keeps the peak summed RSS/PSS/USS of every Gym process per phase."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psutil

from .common import MB, log


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
        each: dict[str, float] = {}
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
            each[self.label(pid, proc)] = round(rss / MB, 1)
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
            if rss_sum / MB > st["peak_rss_sum_mb"]:
                st["rss_mb_at_peak"] = each  # which process held what at the peak
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
