"""``ng_dump_config``: the merged config, resolved, with every secret redacted."""

from __future__ import annotations

import sys

import yaml
from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.config.instances import parse_server_instances
from nemo_gym.config.loader import resolve_config
from nemo_gym.config.policy import default_policy_to_local_model
from nemo_gym.config.secrets import redact


class DumpConfigParams(BaseModel):
    """Print the config ng_run would use (config_paths files, then env.yaml, then the command
    line), with interpolations resolved, validated, and secrets replaced by ***REDACTED***."""

    config_paths: list[str] = Field(default_factory=list, description="YAML files to merge.")


@cli_entry
def main() -> int:
    _, loaded = load_params(DumpConfigParams, "ng_dump_config", open_config=True)
    default_policy_to_local_model(loaded)
    resolved = resolve_config(loaded)
    parse_server_instances(resolved, loaded)
    resolved.pop("h", None)
    sys.stdout.write(yaml.safe_dump(redact(resolved), sort_keys=False))
    return 0
