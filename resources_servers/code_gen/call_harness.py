"""In-sandbox driver of a function-call test (stdlib only; copied next to ``solution.py``).

Usage: ``python -I call_harness.py FN_NAME`` with a JSON list of arguments on stdin. It loads
``solution.py`` with ``from typing import *`` and a few common modules already imported (as
LeetCode-style solutions expect), calls ``FN_NAME`` (a top-level function, else a method of
``Solution()``) and writes the JSON of the return value to stdout. Anything the solution prints
goes to stderr, so it cannot corrupt the answer. ``grading.py`` compares the answer.
"""

import importlib.util
import json
import os
import sys

PRELUDE = (
    "from typing import *\n"
    "import bisect, collections, functools, heapq, itertools, math, re, string\n"
)


def main() -> None:
    fn_name = sys.argv[1]
    args = json.loads(sys.stdin.read())
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    spec = importlib.util.spec_from_file_location("solution", "solution.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    exec(PRELUDE, module.__dict__)  # the globals LeetCode-style code expects
    spec.loader.exec_module(module)
    fn = getattr(module, fn_name, None)
    if fn is None and hasattr(module, "Solution"):
        fn = getattr(module.Solution(), fn_name, None)
    if not callable(fn):
        sys.exit(f"solution.py defines no function or Solution method named {fn_name!r}")
    result = fn(*args)
    answer.write(json.dumps(result))
    answer.close()


if __name__ == "__main__":
    main()
