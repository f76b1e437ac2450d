"""``ng_test +should_validate_data=true``: a resources server's example data, as NeMo Gym checks it.

:func:`validate_data` makes NeMo Gym's checks, in its order, each failure one error that says
how to fix it: ``data/example.jsonl`` holds the example tasks; ``data/example_metrics.json``
(written by ``ng_prepare_data +mode=example_validation``) counts as many examples; no
``data/*conflict*`` file is left by ``ng_prepare_data``; ``data/example_rollouts.jsonl`` holds
rollouts of them (``ng_collect_rollouts``). NeMo Gym wants exactly 5 tasks and 5 rollouts; Gym
wants at least :data:`MIN_EXAMPLES` of each (a NeMo Gym environment passes both) and checks
more: every task is read as ``ng_collect_rollouts`` reads input and is accepted by the request
model of the server's ``verify`` (with a placeholder response), so a field the verifier needs
cannot be missing (:func:`validate_example_data`), and every rollout is a JSON object with a
numeric ``reward``. Used by ``nemo_gym.cli.test_env`` and ``nemo_gym.cli.test_all``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nemo_gym.core.errors import GymError, InputDataError
from nemo_gym.resources.server import SimpleResourcesServer
from nemo_gym.rollouts.inputs import read_rows
from nemo_gym.scaffold.entrypoint import ServerFolder

MIN_EXAMPLES = 5
#: The policy model's config, named in the commands the errors suggest.
MODEL_CONFIG = "responses_api_models/openai_model/configs/openai_model.yaml"
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
    """The pydantic model ``verify`` takes, from the folder's ``app.py`` (None if not found).

    The app is imported as ``<server_type>.<name>.app`` of this folder's project (whatever
    other ``resources_servers`` package is importable), with the folder and the project root on
    the path, as its tests and server see it: ``from .utils``, ``from utils`` and
    ``from resources_servers.<name>.utils`` all work. Afterwards the modules it loaded from the
    folder are forgotten, so the next folder's ``utils`` is its own.
    """
    before = set(sys.modules)
    saved_path = list(sys.path)
    package = f"{folder.server_type}.{folder.name}"
    # Set aside every module of that name already loaded (another copy of the package, its
    # app and helpers), so that the folder's own files are the ones imported.
    names = [
        n for n in sys.modules if n in (folder.server_type, package) or n.startswith(package + ".")
    ]
    saved = {name: sys.modules.pop(name, None) for name in {*names, folder.server_type, package}}
    sys.path[:0] = [str(folder.path), str(folder.root)]
    try:
        _load_package(folder.server_type, folder.root / folder.server_type)
        _load_package(package, folder.path)
        module = importlib.import_module(f"{package}.app")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, SimpleResourcesServer) and cls.__module__ == module.__name__:
                hint = typing.get_type_hints(cls.verify).get("body")
                if isinstance(hint, type) and issubclass(hint, BaseModel):
                    return hint
        return None
    finally:
        sys.path[:] = saved_path
        _forget_modules_of(folder, set(sys.modules) - before)
        for name, previous in saved.items():
            sys.modules.pop(name, None)
            if previous is not None:
                sys.modules[name] = previous


def _load_package(name: str, path: Path) -> None:
    """Put the package ``name`` in ``sys.modules``, made from the folder ``path``."""
    init = path / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(path)]
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if spec.loader is not None:
        spec.loader.exec_module(module)


def _forget_modules_of(folder: ServerFolder, names: set[str]) -> None:
    package = f"{folder.server_type}.{folder.name}"
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None) or ""
        if name == package or name.startswith(package + ".") or file.startswith(str(folder.path)):
            sys.modules.pop(name, None)


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


def _configs_hint(folder: ServerFolder) -> str:
    configs = sorted((folder.path / "configs").glob("*.yaml"))
    name = configs[0].name if configs else f"{folder.name}.yaml"
    return f"{folder.relative}/configs/{name}"


def _check_metrics(folder: ServerFolder, count: int) -> None:
    path = folder.path / "data" / "example_metrics.json"
    if not path.is_file():
        raise GymError(
            f"{path} not found: summarise the example data with\n"
            f'  ng_prepare_data "+config_paths=[{_configs_hint(folder)},{MODEL_CONFIG}]" '
            f"+output_dirpath=results/{folder.name} +mode=example_validation\n"
            "(the config's agent declares it under datasets: with type: example)"
        )
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputDataError(str(path), exc.lineno, f"not valid JSON ({exc.msg})") from None
    found = metrics.get("Number of examples") if isinstance(metrics, dict) else None
    if found != count:
        raise InputDataError(
            str(path),
            None,
            f'"Number of examples" is {found!r} but data/example.jsonl has {count} tasks; '
            "run ng_prepare_data +mode=example_validation again",
        )


def _check_rollouts(folder: ServerFolder) -> int:
    path = folder.path / "data" / "example_rollouts.jsonl"
    if not path.is_file():
        raise GymError(
            f"{path} not found: collect rollouts of the example data with\n"
            f'  ng_run "+config_paths=[{_configs_hint(folder)},{MODEL_CONFIG}]"\n'
            f"  ng_collect_rollouts +agent_name=<the config's agent> "
            f"+input_jsonl_fpath={folder.relative}/data/example.jsonl "
            f"+output_jsonl_fpath={folder.relative}/data/example_rollouts.jsonl +limit=5"
        )
    count = 0
    for line_no, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputDataError(str(path), line_no, f"not valid JSON ({exc.msg})") from None
        reward = row.get("reward") if isinstance(row, dict) else None
        if isinstance(reward, bool) or not isinstance(reward, (int, float)):
            raise InputDataError(
                str(path), line_no, f"a rollout needs a numeric `reward` (got {reward!r})"
            )
        count += 1
    if count < MIN_EXAMPLES:
        raise InputDataError(
            str(path), None, f"has {count} rollouts; an environment needs at least {MIN_EXAMPLES}"
        )
    return count


def validate_data(folder: ServerFolder) -> tuple[int, int]:
    """Make every check of the module docstring; return (tasks, rollouts).

    Raises:
        GymError: the first check that fails (``InputDataError`` when a file and line is known).
    """
    count = validate_example_data(folder)
    _check_metrics(folder, count)
    conflicts = sorted((folder.path / "data").glob("*conflict*"))
    if conflicts:
        names = ", ".join(p.name for p in conflicts)
        raise GymError(
            f"{folder.relative}/data has metrics conflict file(s) left by ng_prepare_data: "
            f"{names}; resolve them (see that command's message) and delete them"
        )
    return count, _check_rollouts(folder)
