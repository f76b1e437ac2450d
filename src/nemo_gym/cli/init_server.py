"""``ng_init_resources_server``: scaffold a new environment that passes its tests as generated."""

from __future__ import annotations

from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.core.paths import project_root
from nemo_gym.scaffold.create import create_environment
from nemo_gym.scaffold.entrypoint import parse_entrypoint


class InitParams(BaseModel):
    """Create resources_servers/<name>/ with a working server (one tool and a verify), its
    config, 5 example tasks, tests and a README, ready for ng_test and ng_run."""

    entrypoint: str = Field(description="The folder to create: resources_servers/<name>.")


@cli_entry
def main() -> int:
    params, _ = load_params(InitParams, "ng_init_resources_server")
    folder = parse_entrypoint(params.entrypoint, server_types=("resources_servers",))
    created = create_environment(folder)
    root = project_root()
    print(f"Created {folder.relative} in {root}:")
    for path in created:
        print(f"  {path.relative_to(root)}")
    config = f"{folder.relative}/configs/{folder.name}.yaml"
    print("\nNext:")
    print(f"  ng_test +entrypoint={folder.relative}")
    print(
        f'  ng_run "+config_paths=[{config},'
        'responses_api_models/openai_model/configs/openai_model.yaml]"'
    )
    print(
        f"  ng_collect_rollouts +agent_name={folder.name}_simple_agent "
        f"+input_jsonl_fpath={folder.relative}/data/example.jsonl "
        f"+output_jsonl_fpath=results/{folder.name}.jsonl"
    )
    return 0
