"""The ``ng_*`` commands. Each module is one command with a ``main()``; ``params`` holds the
shared parsing of ``+key=value`` arguments into a typed model and the ``+h=true`` help.

For trainers this package also offers NeMo Gym's ``RunHelper`` and
``GlobalConfigDictParserConfig`` (``from nemo_gym.cli import RunHelper``), loaded on first use
so that the commands do not import the supervisor they do not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nemo_gym.config.parser_config import GlobalConfigDictParserConfig
    from nemo_gym.supervisor.background import RunHelper

__all__ = ["GlobalConfigDictParserConfig", "RunHelper"]


def __getattr__(name: str) -> Any:
    if name == "RunHelper":
        from nemo_gym.supervisor.background import RunHelper

        return RunHelper
    if name == "GlobalConfigDictParserConfig":
        from nemo_gym.config.parser_config import GlobalConfigDictParserConfig

        return GlobalConfigDictParserConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
