"""How a program (not a command line) asks for Gym's merged config: NeMo Gym's parser config.

Trainers (NeMo RL, verl) build a config dict in code and call
``RunHelper().start(GlobalConfigDictParserConfig(...))``; the fields mean what they mean in NeMo
Gym. :func:`load_from_parser_config` turns one into a
:class:`~nemo_gym.config.loader.LoadedConfig` with the usual order (config files, ``env.yaml``,
the initial dict, the command line) and the usual errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict

from nemo_gym.config.loader import LoadedConfig, load_config


class GlobalConfigDictParserConfig(BaseModel):
    """Where the config comes from when a program, not a command line, starts Gym."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    dotenv_path: Path | None = None
    initial_global_config_dict: DictConfig | None = None
    skip_load_from_cli: bool = False
    skip_load_from_dotenv: bool = False
    hide_secrets: bool = False
    offline: bool = False

    #: A config that names no model, for uses that need none (data preparation and the like).
    NO_MODEL_GLOBAL_CONFIG_DICT: ClassVar[DictConfig] = DictConfig(
        {
            "policy_base_url": "",
            "policy_api_key": "",
            "policy_model_name": "",
            "policy_model": {"responses_api_models": {"dummy_model": {"entrypoint": "app.py"}}},
        }
    )


def load_from_parser_config(parser: GlobalConfigDictParserConfig) -> LoadedConfig:
    """Merge the sources ``parser`` names (see the module docstring)."""
    argv = (
        []
        if parser.skip_load_from_cli
        else [a for a in sys.argv[1:] if a.startswith("+") or "=" in a]
    )
    initial: dict[str, Any] | None = None
    if parser.initial_global_config_dict is not None:
        container = OmegaConf.to_container(parser.initial_global_config_dict, resolve=False)
        assert isinstance(container, dict)
        initial = {str(k): v for k, v in container.items()}
    return load_config(
        argv,
        dotenv_path=parser.dotenv_path,
        initial=initial,
        skip_dotenv=parser.skip_load_from_dotenv,
    )
