"""``ng_viewer``: serve a local page over rollout JSONL files (see ``nemo_gym.viewer``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.core.errors import ConfigError
from nemo_gym.core.paths import project_root
from nemo_gym.supervisor.ports import bind_listener

DEFAULT_PORT = 7860


class ViewerParams(BaseModel):
    """Look at rollouts in the browser: an overview (statuses, mean reward with its 95% CI,
    histogram, pass@k), a filterable, searchable list, every rollout in full, and with two files
    a per-task comparison. Read-only; new rows appended to the file show up while it runs.
    Example: ng_viewer +jsonl_fpath=results/my_first_rollouts.jsonl"""

    jsonl_fpath: str | list[str] = Field(
        description="Rollout JSONL file, or two or more to compare: +jsonl_fpath=[a.jsonl,b.jsonl]."
    )
    host: str = Field(
        default="127.0.0.1", description="Address to listen on (keep 127.0.0.1 unless you must)."
    )
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535, description="Port (0: any free one).")
    pass_threshold: float = Field(
        default=1.0, description="A rollout passes (for pass rate and pass@k) if reward >= this."
    )


def resolve_files(raw: str | list[str]) -> list[Path]:
    """The named files, relative to the current directory (or else the project root).

    Raises:
        ConfigError: a file does not exist or is not a regular file (naming it).
    """
    names = [raw] if isinstance(raw, str) else raw
    if not names:
        raise ConfigError("give at least one file", source="command line", key="+jsonl_fpath")
    paths = []
    for name in names:
        path = Path(name).expanduser()
        if not path.is_absolute() and not path.exists():
            path = project_root() / path
        if not path.is_file():
            raise ConfigError(f"no such file: {name}", source="command line", key="+jsonl_fpath")
        paths.append(path.resolve())
    return paths


@cli_entry
def main() -> int:
    params, _ = load_params(ViewerParams, "ng_viewer")
    paths = resolve_files(params.jsonl_fpath)
    from nemo_gym.server.launch import serve
    from nemo_gym.viewer.app import LOOPBACK_HOSTS, ViewerSettings, create_app
    from nemo_gym.viewer.index import FileIndex

    indexes = []
    for i, path in enumerate(paths):
        started = time.perf_counter()
        index = FileIndex(i, path)
        index.refresh(workers=os.cpu_count() or 1)
        indexes.append(index)
        print(f"Indexed {path}: {index.rows} rows in {time.perf_counter() - started:.2f}s")
    loopback = params.host in LOOPBACK_HOSTS
    settings = ViewerSettings(
        paths=paths,
        pass_threshold=params.pass_threshold,
        allowed_hosts=[*LOOPBACK_HOSTS, params.host] if loopback else ["*"],
    )
    app = create_app(settings, indexes)
    sock = bind_listener(
        params.host,
        params.port,
        what="ng_viewer",
        key="port",
        busy_hint="Another ng_viewer may be running; choose another port with +port=<port>",
    )
    shown_host = f"[{params.host}]" if ":" in params.host else params.host
    print(f"Rollout viewer: http://{shown_host}:{sock.getsockname()[1]}  (Ctrl+C to stop)")
    sys.stdout.flush()
    try:
        serve(app, host=params.host, port=params.port, sock=sock, graceful_shutdown_s=2.0)
    except KeyboardInterrupt:
        pass  # Ctrl+C is how a viewer is meant to stop: a clean exit, like ng_run's
    return 0
