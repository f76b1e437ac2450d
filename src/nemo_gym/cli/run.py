"""``ng_run``: start the head server and every server instance in the config, and keep them up."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import uvloop
from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.config.instances import parse_server_instances
from nemo_gym.config.loader import resolve_config
from nemo_gym.config.policy import default_policy_to_local_model, offline_notice
from nemo_gym.config.secrets import redact, redact_text, secret_values
from nemo_gym.core.errors import ConfigError
from nemo_gym.supervisor.launcher import start_servers
from nemo_gym.supervisor.supervisor import (
    Supervisor,
    SupervisorOptions,
    format_table,
    stdout_writer,
)


class RunParams(BaseModel):
    """Start the head server and one process per server instance defined in the config files,
    wait until every server answers /health, print the instance table and keep watching them.
    Ctrl+C stops them gracefully."""

    config_paths: list[str] = Field(
        default_factory=list, description="YAML files defining the server instances."
    )
    startup_timeout_s: float = Field(
        default=60.0, gt=0, description="Deadline for every server to become healthy."
    )
    graceful_shutdown_s: float = Field(
        default=30.0,
        ge=0,
        description=("After Ctrl+C, how long in-flight requests may take to finish."),
    )
    start_mode: Literal["fork", "spawn"] = Field(
        default="fork",
        description=(
            "fork: fast start from ng_run's preloaded interpreter; "
            "spawn: `python app.py` per server."
        ),
    )
    echo_logs: bool = Field(default=True, description="Print the servers' logs, prefixed by name.")


@cli_entry
def main() -> int:
    started = time.monotonic()
    params, loaded = load_params(RunParams, "ng_run", open_config=True)
    swapped = default_policy_to_local_model(loaded)
    if swapped:
        stdout_writer(offline_notice(swapped) + "\n")
    resolved = resolve_config(loaded)
    instances = parse_server_instances(resolved, loaded)
    if not instances:
        raise ConfigError(
            'no server instances to start; name config files with "+config_paths=[a.yaml,b.yaml]"',
            source="command line",
        )
    try:
        children = start_servers(
            resolved, instances, loaded.root, params.start_mode, params.graceful_shutdown_s, redact
        )
    except ConfigError as exc:  # e.g. a port in use: name where that port was set
        if exc.key is None or exc.source is not None:
            raise
        raise loaded.error(exc.detail, exc.key) from None
    options = SupervisorOptions(
        params.startup_timeout_s, params.graceful_shutdown_s, params.echo_logs
    )
    secrets = secret_values(resolved)
    supervisor = Supervisor(
        children, options, stdout_writer, redact=lambda line: redact_text(line, secrets)
    )

    def on_ready(elapsed: float) -> None:
        stdout_writer(format_table(children, elapsed))

    code = asyncio.run(supervisor.run(on_ready, started), loop_factory=uvloop.new_event_loop)
    if supervisor.config_error is not None:  # a server refused its settings
        key, message = supervisor.config_error
        raise loaded.error(message, key) if key else ConfigError(loaded.redact_text(message))
    return code
