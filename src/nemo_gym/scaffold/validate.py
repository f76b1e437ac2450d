"""``ng_test +should_validate_data=true``: an environment's example data fits its verifier.

Checks ``data/example.jsonl`` the way ``ng_collect_rollouts`` reads input (file and line in
every error), that it has at least :data:`MIN_EXAMPLES` tasks, and that every row is accepted by
the request model of the server's ``verify`` (with a placeholder response), so a field the
verifier needs cannot be missing from the data. Used by ``nemo_gym.cli.test_env``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nemo_gym.core.errors import InputDataError
from nemo_gym.resources.server import SimpleResourcesServer
from nemo_gym.rollouts.inputs import read_rows
from nemo_gym.scaffold.entrypoint import ServerFolder

MIN_EXAMPLES = 5
#: Stands in for the model's answer when checking rows against the verify request model.
PLACEHOLDER_RESPONSE: dict[str, Any] = {
    "id": "resp_placeholder",
    "object": "response",
    "created_at": 0,
    "model": "placeholder",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}


def verify_request_model(folder: ServerFolder) -> type[BaseModel] | None:
    """The pydantic model ``verify`` takes, from the folder's ``app.py`` (None if not found)."""
    root = str(folder.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(f"{folder.server_type}.{folder.name}.app")
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if issubclass(cls, SimpleResourcesServer) and cls.__module__ == module.__name__:
            hint = typing.get_type_hints(cls.verify).get("body")
            if isinstance(hint, type) and issubclass(hint, BaseModel):
                return hint
    return None


def validate_example_data(folder: ServerFolder, data: Path | None = None) -> int:
    """Check the example data (``data``: another file to check against this folder's verify);
    return the number of rows.

    Raises:
        InputDataError: naming the file and line of the first bad row, or too few rows.
    """
    path = data or folder.path / "data" / "example.jsonl"
    rows = read_rows(path)
    if len(rows) < MIN_EXAMPLES:
        raise InputDataError(
            str(path), None, f"has {len(rows)} tasks; an environment needs at least {MIN_EXAMPLES}"
        )
    model = verify_request_model(folder)
    if model is None:
        return len(rows)
    lines = [i for i, raw in enumerate(path.read_bytes().splitlines(), 1) if raw.strip()]
    for line_no, row in zip(lines, rows, strict=True):
        try:
            model.model_validate({**row, "response": PLACEHOLDER_RESPONSE})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise InputDataError(
                str(path), line_no, f"{key}: {err['msg']} (the {model.__name__} of verify)"
            ) from None
    return len(rows)
