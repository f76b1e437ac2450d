"""The packages of ``nemo_gym`` form layers: each imports only from layers below it.

Every ``import`` in ``src/nemo_gym`` is read with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` count too) and mapped to its unit: a subpackage (``server``, ``config``...) or
a top-level module (``global_config``...). An import may go down the layers or stay within one;
going up is an error naming the file and line, and the cycle it closes if any, unless the edge is
in :data:`KNOWN_UPWARD` with the reason it is still there. Within a layer, the units must not
import each other in a cycle. So a new cycle between packages fails this test.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO

SRC = REPO / "src" / "nemo_gym"

#: Bottom first. A unit may import from its own layer and the layers below it.
LAYERS: list[set[str]] = [
    {"core", "_version"},  # errors and paths: no Gym imports
    {"protocol", "config"},  # wire models; loading and checking a config
    {"server"},  # the server base, the pooled client and its transports, ServerClient
    {"head"},  # the head server (and head.client, the old home of ServerClient)
    {"rollouts"},  # rows, collection, statistics
    {
        "model",
        "resources",
        "agent",
        "datasets",
        "training",
        "viewer",
        "supervisor",
        "testing",
        "ray_support",  # Ray clusters, verification offloaded to Ray tasks, Ray collectors
    },
    {"integrations", "scaffold"},  # trainers' adapters; the environment template
    {  # NeMo Gym's module names, kept for environments written for it: a thin top layer
        "base_resources_server",
        "base_responses_api_agent",
        "base_responses_api_model",
        "config_types",
        "global_config",
        "judge",
        "openai_utils",
        "reward_profile",
        "rollout_collection",
        "server_utils",
    },
    {"nemo_gym"},  # the package's own __init__: the public surface
    {"cli"},  # the commands
    {"authoring"},  # the surface environments import: re-exports from every layer, cli_entry too
]

#: Imports that go up a layer today, each with why it is still there. Remove an entry when its
#: import is gone (the test fails on entries that no longer occur).
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    where: str


def unit_of(module: str) -> str | None:
    """``nemo_gym.server.base`` -> ``server``; ``nemo_gym.judge`` -> ``judge``."""
    parts = module.split(".")
    if parts[0] != "nemo_gym":
        return None
    if len(parts) == 1:
        return "nemo_gym"
    if (SRC / parts[1]).is_dir() or (SRC / f"{parts[1]}.py").exists():
        return parts[1]
    return "nemo_gym"  # a name imported from the package itself


def imported_modules(path: Path, package: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def edges() -> list[Edge]:
    out: list[Edge] = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        src = unit_of(module)
        assert src is not None
        for target, line in imported_modules(path, package):
            dst = unit_of(target)
            if dst is not None and dst != src:
                out.append(Edge(src, dst, f"{path.relative_to(REPO)}:{line}"))
    return out


def layer_of(unit: str) -> int:
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"{unit!r} is in no layer: add it to LAYERS in {__file__}")


def find_cycle(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A path ``start -> ... -> goal`` in ``graph`` (breadth first), if there is one."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            path = [node]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])  # type: ignore[arg-type]
            return path[::-1]
        for nxt in sorted(graph.get(node, ())):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def test_every_unit_has_a_layer() -> None:
    units = {e.src for e in edges()} | {e.dst for e in edges()}
    for unit in units:
        layer_of(unit)


def test_no_import_goes_up_a_layer_or_closes_a_cycle() -> None:
    all_edges = edges()
    graph: dict[str, set[str]] = defaultdict(set)
    for e in all_edges:
        graph[e.src].add(e.dst)
    problems = []
    for e in all_edges:
        if (e.src, e.dst) in KNOWN_UPWARD:
            continue
        cycle = find_cycle(graph, e.dst, e.src)
        up = layer_of(e.dst) > layer_of(e.src)
        if up or (cycle and layer_of(e.dst) == layer_of(e.src)):
            what = f"{e.where}: {e.src} imports {e.dst}"
            if up:
                what += " (a higher layer)"
            if cycle:
                what += f", closing the cycle {' -> '.join([e.src, *cycle])}"
            problems.append(what)
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_known_upward_imports_still_exist() -> None:
    present = {(e.src, e.dst) for e in edges()}
    gone = [edge for edge in KNOWN_UPWARD if edge not in present]
    assert not gone, f"remove these from KNOWN_UPWARD, they no longer occur: {gone}"


def test_the_checker_finds_a_cycle_and_names_it() -> None:
    graph = {"server": {"config"}, "config": {"head"}, "head": {"server"}}
    assert find_cycle(graph, "head", "config") == ["head", "server", "config"]
    assert find_cycle({"a": {"b"}}, "b", "a") is None
    assert unit_of("nemo_gym.server.base") == "server"
    assert unit_of("nemo_gym.global_config") == "global_config"
    assert unit_of("nemo_gym") == "nemo_gym" and unit_of("aiohttp") is None
