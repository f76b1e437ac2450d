"""The optional py-spy run (``--profile``): py-spy attached to every Gym process during one
collection, and the summary of its collapsed stacks (self time per function and per package)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from .collection import run_collect, write_input
from .common import BIN, log, rel
from .processes import NgRun
from .sampling import Sampler

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
