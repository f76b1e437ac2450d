"""``ng_run``: start the head server and every server instance in the config, and keep them up."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import uvloop
from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.supervisor.display import format_table, stdout_writer
from nemo_gym.supervisor.restarts import RestartPolicy
from nemo_gym.supervisor.startup import config_error, launch
from nemo_gym.supervisor.supervisor import SupervisorOptions


class RunParams(BaseModel):
    """Start the head server and one process per server instance defined in the config files,
    wait until every server answers /health, print the instance table and keep watching them: a
    server that dies is started again on the same port. Ctrl+C stops them gracefully."""

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
    install_requirements: bool = Field(
        default=True,
        description="Install what each server folder's requirements.txt asks for and the "
        "environment lacks (with uv, before starting).",
    )
    max_restarts: int = Field(
        default=5,
        ge=0,
        description=(
            "Restarts of a server that dies, within 5 minutes, before ng_run gives up and stops "
            "(0: the first death stops everything)."
        ),
    )


@cli_entry
def main() -> int:
    started = time.monotonic()
    params, loaded = load_params(RunParams, "ng_run", open_config=True)
    options = SupervisorOptions(
        params.startup_timeout_s,
        params.graceful_shutdown_s,
        params.echo_logs,
        RestartPolicy(max_restarts=params.max_restarts),
    )
    launched = launch(
        loaded,
        start_mode=params.start_mode,
        options=options,
        write=stdout_writer,
        install_requirements=params.install_requirements,
    )

    def on_ready(elapsed: float) -> None:
        stdout_writer(format_table(launched.children, elapsed))

    try:
        code = asyncio.run(
            launched.supervisor.run(on_ready, started), loop_factory=uvloop.new_event_loop
        )
    finally:
        launched.close()  # the Ray cluster, if ng_run started one
    refused = config_error(loaded, launched.supervisor)
    if refused is not None:  # a server refused its settings
        raise refused
    return code
