"""Where the project root is, so relative paths mean the same from any current directory.

The root is, in order: ``$NEMO_GYM_ROOT``; the source checkout this package was installed from
(editable install: the folder holding ``pyproject.toml`` two levels above ``src/nemo_gym``); else
the current directory. Config files, ``env.yaml``, server folders and relative data paths are all
resolved against it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


@cache
def project_root() -> Path:
    """Return the project root (see module docstring)."""
    env = os.environ.get("NEMO_GYM_ROOT")
    if env:
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "nemo_gym").is_dir():
        return checkout
    return Path.cwd().resolve()


def resolve_path(path: str | os.PathLike[str], root: Path | None = None) -> Path:
    """Resolve ``path`` against the project root unless it is absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (root or project_root()) / p
