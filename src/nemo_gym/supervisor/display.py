"""What ``ng_run`` shows of its servers: the instance table it prints once all are healthy, the
rows the head server serves at ``/server_instances``, and its flushed stdout writer. Reads the
``ChildProcess`` records of ``children.py``; used by ``supervisor.py``, ``launcher.py`` and the
commands.
"""

from __future__ import annotations

import sys
from typing import Any

from nemo_gym.supervisor.children import ChildProcess


def format_table(children: list[ChildProcess], elapsed_s: float) -> str:
    """The instance table ``ng_run`` prints once everything is healthy."""
    rows = [("NAME", "TYPE", "IMPLEMENTATION", "URL", "PID")]
    rows += [(c.name, c.server_type, c.implementation, c.url, str(c.pid)) for c in children]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    bar = "#" * max(len(line) for line in lines)
    return (
        f"{bar}\nAll {len(children)} servers healthy in {elapsed_s:.2f}s\n"
        + "\n".join(lines)
        + f"\n{bar}\nPress Ctrl+C to stop them. `ng_status` shows their health.\n"
    )


def stdout_writer(text: str) -> None:
    """Write to stdout and flush (ng_run's output is often piped to a log file)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def instance_rows(children: list[ChildProcess]) -> list[dict[str, Any]]:
    """The head server's instance table."""
    return [
        {
            "name": c.name,
            "process_name": c.name,
            "server_type": c.server_type,
            "implementation": c.implementation,
            "host": c.host,
            "port": c.port,
            "url": c.url,
            "pid": c.pid,
            "start_time": c.started_at,
            "config_path": c.config_path,
        }
        for c in children
    ]
