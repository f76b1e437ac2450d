"""``ng_version``: the Gym version and what it runs on."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, Field

import nemo_gym
from nemo_gym.cli.params import cli_entry, load_params


class VersionParams(BaseModel):
    """Print the Gym version, the Python it runs on and the versions of its key dependencies."""

    json_output: bool = Field(default=False, alias="json", description="Print JSON instead.")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


@cli_entry
def main() -> int:
    params, _ = load_params(VersionParams, "ng_version")
    info = {
        "nemo_gym": nemo_gym.__version__,
        "python": platform.python_version(),
        "python_path": sys.executable,
        "install_path": str(Path(nemo_gym.__file__).parent),
        "openai": _version("openai"),
        "fastapi": _version("fastapi"),
        "aiohttp": _version("aiohttp"),
        "platform": platform.platform(),
    }
    if params.json_output:
        print(json.dumps(info, indent=2))
        return 0
    print(f"NeMo-Gym {nemo_gym.__version__}")
    for key, value in info.items():
        if key != "nemo_gym":
            print(f"  {key}: {value}")
    return 0
