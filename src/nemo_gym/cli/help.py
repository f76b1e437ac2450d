"""``ng_help``: list every command with a one-line description."""

from __future__ import annotations

from pydantic import BaseModel

from nemo_gym.cli.commands import COMMANDS
from nemo_gym.cli.params import cli_entry, load_params


class HelpParams(BaseModel):
    """List the ng_* commands."""


@cli_entry
def main() -> int:
    load_params(HelpParams, "ng_help")
    print("Run a command with `+h=true` or `+help=true` to see more detailed information!\n")
    print("Available CLI scripts")
    print("-" * 21)
    width = max(len(name) for name, _ in COMMANDS)
    for name, about in COMMANDS:
        print(f"{name.ljust(width)}  {about}")
    print("\nEach also answers to a long name: nemo_gym_run, nemo_gym_collect_rollouts, ...")
    return 0
