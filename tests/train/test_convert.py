"""Weights between GGUF and transformers, checked against llama.cpp itself.

The model is the SmolLM2 GGUF that local_model serves, read by transformers (float32). Written
back as F16 GGUF, llama.cpp must give the same per-token log-probs on a fixed text as the
transformers model (F16 rounding only: mean difference well under 0.01 nats). Needs the
``[train]`` extra; skipped with the reason when it is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

for _module in ("torch", "transformers", "gguf", "accelerate"):
    pytest.importorskip(_module, reason=f"{_module} is missing: install the [train] extra")

import gguf  # noqa: E402
import torch  # noqa: E402

from nemo_gym.cli import convert_weights  # noqa: E402
from nemo_gym.training.convert import (  # noqa: E402
    ConversionError,
    gguf_to_transformers,
    load_gguf_model,
    rotary_permute,
    shipped_gguf,
    write_gguf,
)

pytestmark = pytest.mark.train
TEXT = (
    b"The quick brown fox jumps over the lazy dog. In Paris the weather today is sunny and "
    b"warm, while in Oslo it is cold and snowing."
)


@pytest.fixture(scope="module")
def model() -> Any:
    return load_gguf_model(shipped_gguf())


def llama_cpp_log_probs(path: Path, ids: list[int]) -> Any:
    """log p(ids[i+1] | ids[:i+1]) from llama.cpp's logits of every position."""
    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_ctx=256, logits_all=True, verbose=False)
    llama.eval(ids)
    logits = np.asarray(llama.scores[: len(ids)], dtype=np.float64)
    llama.close()
    peak = logits.max(axis=1, keepdims=True)
    norm = np.log(np.exp(logits - peak).sum(axis=1, keepdims=True)) + peak
    return (logits - norm)[np.arange(len(ids) - 1), ids[1:]]


def torch_log_probs(model: Any, ids: list[int]) -> Any:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    return torch.log_softmax(logits, -1).numpy()[np.arange(len(ids) - 1), ids[1:]]


def tokenize(path: Path) -> list[int]:
    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_ctx=256, vocab_only=True, verbose=False)
    ids = list(llama.tokenize(TEXT, add_bos=False))
    llama.close()
    return ids


def test_rotary_permute_interleaves_each_heads_halves() -> None:
    rows = np.arange(8, dtype=np.float32).reshape(8, 1)  # 2 heads of 4 rows: halves (0,1)(2,3)
    assert rotary_permute(rows, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    with pytest.raises(ConversionError, match="do not split into 3 heads"):
        rotary_permute(rows, 3)


def test_f16_gguf_matches_transformers_in_llama_cpp(model: Any, tmp_path: Path) -> None:
    written = write_gguf(model, shipped_gguf(), tmp_path / "f16.gguf")
    reader = gguf.GGUFReader(written)
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["blk.0.attn_q.weight"] == "F16" and kinds["output_norm.weight"] == "F32"
    assert "output.weight" not in kinds  # tied to token_embd
    assert reader.fields["general.file_type"].contents() == 1  # MOSTLY_F16
    ids = tokenize(written)
    assert len(ids) > 20
    ours, theirs = llama_cpp_log_probs(written, ids), torch_log_probs(model, ids)
    diff = np.abs(ours - theirs)
    assert diff.mean() < 0.01, diff
    # the quantised original is further from the float32 weights than F16 is
    original = np.abs(llama_cpp_log_probs(shipped_gguf(), ids) - theirs)
    assert diff.mean() < original.mean()


def test_command_converts_both_ways(
    model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf_dir = tmp_path / "hf"
    gguf_to_transformers(shipped_gguf(), hf_dir)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in hf_dir.iterdir()
    }
    back = tmp_path / "back.gguf"
    monkeypatch.setattr(sys, "argv", ["ng_convert_weights", f"+input={hf_dir}", f"+output={back}"])
    with pytest.raises(SystemExit) as done:
        convert_weights.main()
    assert done.value.code == 0
    # f32 -> f16 (directory) -> f32 -> f16 (GGUF) rounds once: the same tensors as direct
    direct = write_gguf(model, shipped_gguf(), tmp_path / "direct.gguf")
    ours = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(back).tensors}
    reference = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(direct).tensors}
    assert ours.keys() == reference.keys()
    for name, data in reference.items():
        if name.endswith("norm.weight"):  # f32 in the GGUF, f16 in the directory
            np.testing.assert_allclose(ours[name], data, rtol=1e-3, err_msg=name)
        else:
            assert np.array_equal(ours[name], data), name


def test_command_names_a_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys,
        "argv",
        ["ng_convert_weights", f"+input={tmp_path / 'none.gguf'}", f"+output={tmp_path / 'o'}"],
    )
    with pytest.raises(SystemExit) as done:
        convert_weights.main()
    assert done.value.code == 2
    assert "none.gguf is neither a .gguf file nor a transformers model directory" in (
        capsys.readouterr().err
    )
