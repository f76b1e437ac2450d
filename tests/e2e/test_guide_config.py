"""Step 2 of the guide: env.yaml with an ${OPENAI_API_KEY} reference, read through
``nemo_gym.global_config.get_global_config_dict`` by the guide's own snippet."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import Proc, fake_openai_process

pytestmark = pytest.mark.e2e

GUIDE_SNIPPET = """
from openai import OpenAI
from nemo_gym.global_config import get_global_config_dict

config = get_global_config_dict()
client = OpenAI(api_key=config['policy_api_key'], base_url=config['policy_base_url'])
response = client.chat.completions.create(
    model=config['policy_model_name'],
    messages=[{'role': 'user', 'content': 'Say hello'}],
    max_tokens=10
)
print('✅ API configured successfully!')
print(f'Response: {response.choices[0].message.content}')
"""


def test_guide_step_2_snippet_reads_env_yaml_and_environment(tmp_path: Path) -> None:
    with fake_openai_process() as base_url:
        (tmp_path / "env.yaml").write_text(
            f"policy_base_url: {base_url}\n"
            "policy_api_key: ${OPENAI_API_KEY}\n"
            "policy_model_name: gpt-4.1-2025-04-14\n"
        )
        proc = Proc(
            [sys.executable, "-c", GUIDE_SNIPPET],
            env={"NEMO_GYM_ROOT": str(tmp_path), "OPENAI_API_KEY": "sk-from-environment"},
            cwd=tmp_path,
        )
        assert proc.wait(60) == 0, proc.text
        stats = json.loads(urllib.request.urlopen(base_url[:-3] + "/fake/stats").read())
    assert stats["auth"] == ["Bearer sk-from-environment"]
    assert "✅ API configured successfully!" in proc.lines
    assert "Response: You said: Say hello" in proc.lines
