"""Write reasoning_gym task rows (JSONL), locally, from a list of generator specs.

The specs are the ``generators`` of the reasoning_gym server instance in the given config files,
or ``+generators=[...]`` on the command line. Each spec writes ``size`` rows, entries
``0..size-1`` of its dataset, in order, so the output depends only on the specs (and the
reasoning-gym version). ``app.py`` regenerates the same entries when it verifies::

    python -m resources_servers.reasoning_gym.generate \\
        "+config_paths=[resources_servers/reasoning_gym/configs/reasoning_gym.yaml]" \\
        +output_jsonl_fpath=resources_servers/reasoning_gym/data/example.jsonl
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from nemo_gym.authoring import ConfigError, LoadedConfig, cli_entry, instance_section, load_params
from resources_servers.reasoning_gym.generators import EntryRef, GeneratorSpec

logger = logging.getLogger(__name__)

COMMAND = "python -m resources_servers.reasoning_gym.generate"
DEFAULT_INSTRUCTION = (
    "Put your final answer inside <answer></answer> tags, with nothing else inside them."
)


class GenerateParams(BaseModel):
    """Write reasoning_gym task rows from generator specs: the `generators` of the
    reasoning_gym server instance in +config_paths, or +generators=[{name, size, seed, config}]."""

    output_jsonl_fpath: str = Field(description="Where the rows are written (overwritten).")
    generators: list[GeneratorSpec] | None = Field(
        default=None,
        description="Generator specs, overriding the server instance's, e.g. "
        "[{name: basic_arithmetic, size: 1000, seed: 7, config: {max_terms: 4}}].",
    )
    instance_name: str = Field(
        default="reasoning_gym", description="The server instance whose generators are used."
    )
    instruction: str = Field(
        default=DEFAULT_INSTRUCTION, description="Appended to every question, after a blank line."
    )


def instance_generators(loaded: LoadedConfig, instance_name: str) -> list[GeneratorSpec]:
    """The validated ``generators`` of the server instance ``instance_name``.

    Raises:
        ConfigError: there is no such instance, it lists no generators, or one is invalid.
    """
    node = loaded.data.get(instance_name)
    container = OmegaConf.to_container(node, resolve=True) if node is not None else None
    section = instance_section({instance_name: container}, instance_name)
    if section is None or not section[2].get("generators"):
        raise ConfigError(
            f"no server instance {instance_name!r} with generators in the config; pass "
            "+config_paths=[...] (or +generators=[...])",
            key=instance_name,
        )
    server_type, impl, settings = section
    try:
        return TypeAdapter(list[GeneratorSpec]).validate_python(settings["generators"])
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        key = f"{instance_name}.{server_type}.{impl}.generators.{loc}"
        raise loaded.error(err["msg"], key) from None


def build_rows(specs: Sequence[GeneratorSpec], instruction: str) -> Iterator[dict[str, Any]]:
    """One row per entry of every spec's dataset, in order."""
    for spec in specs:
        for index in range(spec.size):
            ref = EntryRef(
                dataset=spec.name, size=spec.size, seed=spec.seed, config=spec.config, index=index
            )
            question = ref.entry()["question"]
            yield {
                "responses_create_params": {
                    "input": [{"role": "user", "content": f"{question}\n\n{instruction}"}]
                },
                "reasoning_gym": ref.model_dump(),
            }


def write_rows(rows: Iterator[dict[str, Any]], path: Path) -> int:
    """Write ``rows`` as JSONL to ``path`` (parents created); return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def generate(argv: Sequence[str] | None = None) -> int:
    """The command: parse ``+key=value`` arguments, write the rows, return the exit code."""
    params, loaded = load_params(GenerateParams, COMMAND, argv)
    specs = params.generators or instance_generators(loaded, params.instance_name)
    path = Path(params.output_jsonl_fpath)
    count = write_rows(build_rows(specs, params.instruction), path)
    logger.info("wrote %d rows from %d generators to %s", count, len(specs), path)
    return 0


main = cli_entry(generate)

if __name__ == "__main__":
    main()
