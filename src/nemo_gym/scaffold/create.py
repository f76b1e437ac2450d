"""Create a new environment folder from the templates in ``templates/``.

The generated environment is complete as it stands: ``ng_test`` passes on it and ``ng_run``
serves it (a config with a domain, an agent and example data). ``ng_init_resources_server``
is the command; ``entrypoint`` names the folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from nemo_gym.core.errors import GymError
from nemo_gym.scaffold.entrypoint import ServerFolder

#: template file -> path inside the new folder (``{name}`` is the environment's name).
FILES: tuple[tuple[str, str], ...] = (
    ("app.py.tmpl", "app.py"),
    ("config.yaml.tmpl", "configs/{name}.yaml"),
    ("example.jsonl.tmpl", "data/example.jsonl"),
    ("data_gitignore.tmpl", "data/.gitignore"),
    ("test_app.py.tmpl", "tests/test_app.py"),
    ("README.md.tmpl", "README.md"),
)
#: Empty package markers, so ``resources_servers.<name>.app`` imports in tests.
PACKAGE_MARKERS = ("__init__.py", "tests/__init__.py")


def title_case(name: str) -> str:
    """``my_env`` -> ``MyEnv`` (the prefix of the generated class names)."""
    return "".join(part.capitalize() for part in name.split("_"))


def render(template: str, name: str) -> str:
    text = resources.files("nemo_gym.scaffold").joinpath("templates", template).read_text()
    return Template(text).substitute(name=name, title=title_case(name))


def create_environment(folder: ServerFolder) -> list[Path]:
    """Write the new environment and return the files created, in order.

    Raises:
        GymError: the folder already exists (nothing is overwritten).
    """
    target = folder.path
    if target.exists():
        raise GymError(f"{target} already exists; nothing was changed (choose another name)")
    type_dir = target.parent
    created: list[Path] = []
    if not type_dir.exists():
        type_dir.mkdir(parents=True)
        (type_dir / "__init__.py").write_text("")
        created.append(type_dir / "__init__.py")
    for rel in PACKAGE_MARKERS:
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        created.append(path)
    for template, rel in FILES:
        path = target / rel.format(name=folder.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, folder.name))
        created.append(path)
    return created
