"""Shared pieces of the harness: repo paths, the environment under test, the bars, logging,
the environment of the processes it starts (``--pycache-prefix``) and small helpers."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
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


def set_pycache_prefix(prefix: str | None) -> None:
    """Set (``--pycache-prefix``) where the started processes keep their bytecode cache."""
    global PYCACHE_PREFIX
    PYCACHE_PREFIX = prefix


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
