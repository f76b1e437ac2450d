"""``ng_convert_weights``: a model's weights between GGUF and transformers' format.

The direction follows ``+input``: a ``.gguf`` file becomes a transformers directory
(safetensors, config, tokenizer); a transformers directory becomes a GGUF file. The work is in
``nemo_gym.training.convert`` (the ``[train]`` extra), imported only once the parameters are
checked, so a wrong path is reported at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.core.errors import ConfigError


class ConvertWeightsParams(BaseModel):
    """Convert a llama-architecture model's weights between llama.cpp's GGUF (what local_model
    serves) and transformers' format (what a torch update trains). A .gguf input is written as a
    transformers directory; a directory input is written as a GGUF file whose tokenizer, chat
    template and other metadata come from +template (default: the SmolLM2 GGUF local_model
    ships). Needs the [train] extra: pip install 'nemo-gym[train]'.
    Example: ng_convert_weights +input=model.gguf +output=hf_model/ ;
    ng_convert_weights +input=hf_model/ +output=model-f16.gguf"""

    input: str = Field(description="A .gguf file or a transformers model directory.")
    output: str = Field(description="The transformers directory or .gguf file to write.")
    dtype: Literal["f16", "f32"] = Field(default="f16", description="Precision of the weights.")
    template: str | None = Field(
        default=None,
        description="GGUF output only: the GGUF whose non-weight metadata (tokenizer) to copy.",
    )


def _missing_extra() -> str | None:
    import importlib.util

    absent = [m for m in ("torch", "transformers", "gguf") if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return f"needs {', '.join(absent)}: install the training extra (pip install 'nemo-gym[train]')"


@cli_entry
def main() -> int:
    params, _ = load_params(ConvertWeightsParams, "ng_convert_weights")
    source, target = Path(params.input), Path(params.output)
    to_gguf = source.is_dir()
    if not to_gguf and not (source.is_file() and source.suffix == ".gguf"):
        raise ConfigError(
            f"{source} is neither a .gguf file nor a transformers model directory",
            source="command line",
            key="+input",
        )
    if to_gguf and target.suffix != ".gguf":
        raise ConfigError(
            f"{target}: a transformers directory is written as a GGUF file; name it *.gguf",
            source="command line",
            key="+output",
        )
    if not to_gguf and target.exists() and not target.is_dir():
        raise ConfigError(
            f"{target} is a file; name a directory", source="command line", key="+output"
        )
    if problem := _missing_extra():
        raise ConfigError(problem, source="command line", key="+input")
    from nemo_gym.training import convert

    if to_gguf:
        template = Path(params.template) if params.template else convert.shipped_gguf()
        convert.transformers_to_gguf(source, target, template, params.dtype)
    else:
        convert.gguf_to_transformers(source, target, params.dtype)
    print(f"{source} -> {target} ({params.dtype})")
    return 0


if __name__ == "__main__":
    main()
