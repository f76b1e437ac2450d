"""The benchmark harnesses behind ``bench/run_bench.py``, ``bench/scale_bench.py``,
``bench/ray_scale_bench.py`` and ``bench/local_model_bench.py``.

- ``common``: paths, the bars, logging, the started processes' environment, small helpers;
- ``sampling``: CPU-time readings and the RSS/PSS/USS sampler thread;
- ``processes``: starting and stopping the fake OpenAI endpoint and ng_run, reading their lines;
- ``collection``: one ng_collect_rollouts run at one parallelism level, and what it measured;
- ``profiling``: the optional py-spy run and the summary of its collapsed stacks;
- ``repetition``: one repetition (fake + ng_run + every level), and the bytecode-cache warm-up;
- ``report``: medians over repetitions, the Markdown report, results.json, ``--merge``;
- ``scale``: ``scale_bench.py``'s run of every in-flight level at one fake-model latency, with
  CPU per rollout by process kind;
- ``ray_cluster``, ``ray_processes``, ``ray_scale``: ``ray_scale_bench.py``'s local Ray cluster
  (in a process of its own), ng_run on it with which process is which, and its runs;
- ``quiet``: waiting for a quiet machine, the thread that watches for builds and test runs
  during the measurement, and the CPU of other processes in a window;
- ``local_model``, ``local_rollouts``, ``local_report``: ``local_model_bench.py``'s model server
  and direct llama-cpp-python runs, its quickstart rollouts, and its report.
"""
