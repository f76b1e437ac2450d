"""Is the machine quiet? Waiting for a low load and no build or test run before measuring, a
watcher thread that notes any such process during the measurement, and the CPU that processes
other than this harness and its descendants used in a window (the noise of a figure)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psutil

from .common import log
from .sampling import system_busy_s

BUSY_NAMES = ("cc1plus", "cmake", "ninja")


def load1() -> float:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return float(fh.read().split()[0])


def busy_processes() -> list[str]:
    """Compilers/builds (cc1plus, cmake, ninja) and pytest runs, as ``name[pid]``."""
    mine = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        info = proc.info
        if info["pid"] in mine:
            continue
        name = info.get("name") or ""
        cmdline = " ".join(info.get("cmdline") or [])
        if name in BUSY_NAMES or "pytest" in name or "pytest" in cmdline:
            found.append(f"{name}[{info['pid']}]")
    return found


def wait_until_quiet(max_load: float, poll_s: float, timeout_s: float) -> dict[str, Any]:
    """Poll until load1 < ``max_load`` and no build/pytest process runs, for up to ``timeout_s``."""
    t0 = time.monotonic()
    polls = 0
    while True:
        polls += 1
        load, busy = load1(), busy_processes()
        quiet = load < max_load and not busy
        waited = time.monotonic() - t0
        if quiet or waited >= timeout_s:
            result = {
                "quiet": quiet,
                "waited_s": round(waited, 1),
                "polls": polls,
                "load1_at_start": load,
                "busy_processes_at_start": busy,
                "rule": f"load1 < {max_load} and no {'/'.join(BUSY_NAMES)}/pytest process",
            }
            if not quiet:
                log(f"machine still busy after {waited:.0f}s (load {load}, {busy}); running anyway")
            return result
        log(f"waiting for a quiet machine: load1 {load}, busy {busy or 'none'}")
        time.sleep(poll_s)


class Watcher(threading.Thread):
    """Every ``interval`` s, notes load1 and any build/pytest process, for the whole run."""

    def __init__(self, interval: float = 5.0) -> None:
        super().__init__(daemon=True, name="quiet-watcher")
        self.interval = interval
        self.loads: list[float] = []
        self.seen: dict[str, float] = {}  # process -> first seen (s into the run)
        self._t0 = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.loads.append(load1())
                for proc in busy_processes():
                    self.seen.setdefault(proc, round(time.monotonic() - self._t0, 1))
            except (OSError, psutil.Error):
                pass
            self._halt.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        self._halt.set()
        self.join(timeout=self.interval + 5)
        return {
            "samples": len(self.loads),
            "load1_max": max(self.loads, default=None),
            "busy_processes_seen": self.seen,
        }


def _own_tree_cpu() -> dict[int, float]:
    """CPU seconds of this process (with its reaped children) and of each live descendant."""
    me = psutil.Process()
    t = me.cpu_times()
    out = {me.pid: t.user + t.system + t.children_user + t.children_system}
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
            out[child.pid] = c.user + c.system
        except psutil.Error:
            pass
    return out


class CpuWindow:
    """Machine-wide busy CPU in a window, split into this harness's tree and everything else."""

    def __init__(self) -> None:
        self.sys0 = system_busy_s()
        self.own0 = _own_tree_cpu()
        self.t0 = time.perf_counter()

    def close(self) -> dict[str, float]:
        sys_busy = system_busy_s() - self.sys0
        own1 = _own_tree_cpu()
        own = sum(v - self.own0.get(pid, 0.0) for pid, v in own1.items())
        wall = time.perf_counter() - self.t0
        return {
            "wall_s": round(wall, 2),
            "machine_busy_cpu_s": round(sys_busy, 2),
            "bench_processes_cpu_s": round(own, 2),
            "other_processes_cpu_s": round(sys_busy - own, 2),
            "machine_busy_fraction": round(sys_busy / (wall * (os.cpu_count() or 1)), 3),
        }
