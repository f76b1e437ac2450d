"""``ng_status``: the servers a running ``ng_run`` started, and whether each is healthy."""

from __future__ import annotations

from pydantic import BaseModel

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.config.settings import head_address
from nemo_gym.core.errors import UpstreamError
from nemo_gym.server.client import get_sync, head_url


class StatusParams(BaseModel):
    """Ask the head server (127.0.0.1:11000 unless +head_server.port=... says otherwise) which
    servers are running and check each one's /health."""


@cli_entry
def main() -> int:
    _, loaded = load_params(StatusParams, "ng_status")
    host, port = head_address(loaded)
    url = head_url({"head_server": {"host": host, "port": port}})
    try:
        resp = get_sync(f"{url}/server_instances", timeout_s=10)
        resp.raise_for_status()
        rows = resp.json_sync()
    except UpstreamError:
        print(f"No Gym servers are running: nothing answers at {url}.")
        print('Start them with: ng_run "+config_paths=[<environment>.yaml,<model>.yaml]"')
        return 1
    healthy = sum(1 for r in rows if r.get("status") == "healthy")
    print(f"Head server: {url}")
    for i, row in enumerate(rows):
        mark = "✓" if row.get("status") == "healthy" else "✗"
        uptime = row.get("uptime_seconds")
        uptime_text = f"{uptime:.0f}s" if isinstance(uptime, (int, float)) else "-"
        replica = f" replica {row['replica']}" if row.get("replica") is not None else ""
        print(
            f"[{i}] {mark} {row['name']}{replica} ({row['server_type']}/{row['implementation']})"
        )
        if row.get("node_id"):
            print(f"      node: {row['node_ip']} (Ray node {row['node_id'][:12]})")
        print(
            f"      url: {row['url']}  pid: {row.get('pid')}  status: {row.get('status')}  "
            f"uptime: {uptime_text}"
        )
    print(f"{len(rows)} servers found ({healthy} healthy, {len(rows) - healthy} unhealthy)")
    return 0 if healthy == len(rows) else 1
