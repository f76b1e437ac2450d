"""The end-to-end benchmark harness behind ``bench/run_bench.py``, split by role.

- ``common``: paths, the bars, logging, the started processes' environment, small helpers;
- ``sampling``: CPU-time readings and the RSS/PSS/USS sampler thread;
- ``processes``: starting and stopping the fake OpenAI endpoint and ng_run, reading their lines;
- ``collection``: one ng_collect_rollouts run at one parallelism level, and what it measured;
- ``profiling``: the optional py-spy run and the summary of its collapsed stacks;
- ``repetition``: one repetition (fake + ng_run + every level), and the bytecode-cache warm-up;
- ``report``: medians over repetitions, the Markdown report, results.json, ``--merge``.
"""
