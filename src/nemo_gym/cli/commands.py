"""The list of ``ng_*`` commands with one line each, for ``ng_help`` (no pyproject needed)."""

COMMANDS: tuple[tuple[str, str], ...] = (
    ("ng_run", "Start the head server and every server in the config files; Ctrl+C stops them."),
    (
        "ng_collect_rollouts",
        "Run every row of a JSONL file through an agent and save the verified rollouts.",
    ),
    (
        "ng_merge_rollouts",
        "Merge the shard files of a sharded collection (+num_shards) and report on the whole.",
    ),
    ("ng_viewer", "Serve a page on 127.0.0.1:7860 to browse, filter and compare rollout files."),
    (
        "ng_init_resources_server",
        "Scaffold a new environment (+entrypoint=resources_servers/<name>) that passes its tests.",
    ),
    (
        "ng_test",
        "Run one server folder's tests from inside it (+entrypoint=resources_servers/<name>).",
    ),
    ("ng_test_all", "Run every server folder's tests and check every environment's data."),
    (
        "ng_prepare_data",
        "Validate the datasets a config declares and collate them into train/validation files.",
    ),
    (
        "ng_export",
        "Turn a rollout file into training data: tokens, trl, verl, sft or dpo (+format=...).",
    ),
    (
        "ng_convert_weights",
        "Convert model weights between GGUF and transformers' format ([train] extra).",
    ),
    (
        "ng_train_loop",
        "Train the embedded model on an environment: collect, GRPO, reload, N times ([train]).",
    ),
    ("ng_status", "Show the servers a running ng_run started and whether each is healthy."),
    (
        "ng_dump_config",
        "Print the merged config (config files, env.yaml, command line) with secrets redacted.",
    ),
    ("ng_version", "Print the Gym version and the environment it runs in."),
    ("ng_help", "List the ng_* commands."),
)
