"""``ng_train_loop``: the closed RL loop on the embedded model (see ``nemo_gym.training.loop``).

Starts ``ng_run`` with the environment's config and ``local_model`` on a free head port, loads
the served GGUF into transformers, runs the loop, prints one line per iteration, writes
``loop.json`` and ``reward.png`` in the output folder, and stops the servers it started.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from pydantic import BaseModel, Field

from nemo_gym.cli.params import cli_entry, load_params
from nemo_gym.core.errors import ConfigError, GymError
from nemo_gym.core.paths import resolve_path

LOCAL_MODEL_CONFIG = "responses_api_models/local_model/configs/local_model.yaml"
WEATHER = "resources_servers/weather_condition"


class TrainLoopParams(BaseModel):
    """Train the embedded model (SmolLM2-135M in llama.cpp) on an environment's rewards, on CPU:
    N iterations of collect (training mode) -> GRPO update (torch, PPO clipping against the
    recorded log-probs) -> write F16 GGUF -> reload into the running local_model -> collect the
    training and held-out tasks again. Prints per iteration the policy version, train and
    held-out mean reward with 95% intervals and seconds per phase; writes loop.json and
    reward.png to +output_dir. Needs the [train] extra.
    Example: ng_train_loop +output_dir=results/loop +iterations=2"""

    env_config_fpath: str = Field(
        default=f"{WEATHER}/configs/weather_condition.yaml", description="Environment config."
    )
    agent_name: str = Field(default="weather_condition_simple_agent", description="Agent.")
    model_server_name: str = Field(default="policy_model", description="The local_model server.")
    train_jsonl_fpath: str = Field(default=f"{WEATHER}/data/train.jsonl")
    heldout_jsonl_fpath: str = Field(default=f"{WEATHER}/data/heldout.jsonl")
    train_limit: int | None = Field(default=None, ge=1, description="First N training tasks.")
    heldout_limit: int | None = Field(default=None, ge=1, description="First N held-out tasks.")
    output_dir: str = Field(default="results/train_loop", description="GGUFs, rollouts, plot.")
    iterations: int = Field(default=2, ge=0, description="GRPO updates.")
    repeats: int = Field(default=8, ge=2, description="Rollouts per training task (a group).")
    heldout_repeats: int = Field(default=4, ge=1)
    learning_rate: float = Field(default=2e-5, gt=0)
    clip_eps: float = Field(default=0.2, gt=0)
    epochs: int = Field(default=1, ge=1, description="Passes over each batch of rollouts.")
    minibatch: int = Field(default=8, ge=1, description="Rollouts per optimiser step.")
    temperature: float = Field(default=0.7, gt=0, description="Sampling temperature.")
    max_output_tokens: int = Field(default=48, ge=1)
    parallel: int = Field(default=4, ge=1, description="Rollouts in flight.")
    seed: int = Field(default=0)
    startup_timeout_s: float = Field(default=300.0, gt=0)


class Servers:
    """``ng_run`` as a child process, its output read line by line in a thread."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log.open("w")
        self.healthy = threading.Event()
        self.popen = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, bufsize=1,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.log.write(line)
            self.log.flush()
            if "servers healthy in" in line:
                self.healthy.set()
        self.healthy.set()  # exited: wake the waiter, who checks poll()

    def wait_healthy(self, timeout: float) -> None:
        if not self.healthy.wait(timeout) or self.popen.poll() is not None:
            raise GymError(f"ng_run did not start within {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._thread.join(10)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self.log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _row_line(result: object) -> str:
    from nemo_gym.training.report import IterationResult

    assert isinstance(result, IterationResult)
    phases = " ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    tokens = f" ({result.update.tokens_per_s:.0f} tok/s)" if result.update else ""
    return (
        f"{result.iteration:>4}  {result.version:<24}  train {result.train.text()}  "
        f"held-out {result.heldout.text()}  {phases}{tokens}"
    )


@cli_entry
def main() -> int:
    params, _ = load_params(TrainLoopParams, "ng_train_loop")
    logging.getLogger("gguf").setLevel(logging.WARNING)  # one line per tensor file otherwise
    absent = [
        m
        for m in ("torch", "transformers", "gguf", "accelerate")
        if importlib.util.find_spec(m) is None
    ]
    if absent:
        raise ConfigError(
            f"needs {', '.join(absent)}: install the training extra (pip install "
            "'nemo-gym[train]')",
            source="command line",
        )
    from nemo_gym.rollouts.inputs import read_rows
    from nemo_gym.server.client import ServerClient, fetch_global_config, head_url
    from nemo_gym.training.convert import load_gguf_model, shipped_gguf
    from nemo_gym.training.grpo import GrpoSettings
    from nemo_gym.training.loop import LoopSettings, PolicyLoop
    from nemo_gym.training.report import as_json, plot

    train_rows = read_rows(resolve_path(params.train_jsonl_fpath), limit=params.train_limit)
    heldout_rows = read_rows(resolve_path(params.heldout_jsonl_fpath), limit=params.heldout_limit)
    output = resolve_path(params.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    servers = Servers(
        [
            str(Path(sys.executable).parent / "ng_run"),
            f"+config_paths=[{params.env_config_fpath},{LOCAL_MODEL_CONFIG}]",
            f"+head_server.port={port}",
            "+policy_base_url=null",
            "+echo_logs=false",
        ],
        output / "ng_run.log",
    )
    try:
        started = time.monotonic()
        servers.wait_healthy(params.startup_timeout_s)
        config = fetch_global_config(head_url({"head_server": {"host": "127.0.0.1", "port": port}}))
        client = ServerClient(config)
        section = config.get(params.model_server_name, {}).get("responses_api_models", {})
        model_path = (section.get("local_model") or {}).get("model_path")
        template = resolve_path(model_path) if model_path else shipped_gguf()
        print(f"servers up in {time.monotonic() - started:.1f} s; loading {template}")
        started = time.monotonic()
        model = load_gguf_model(template)
        print(f"model loaded into transformers in {time.monotonic() - started:.1f} s")
        settings = LoopSettings(
            iterations=params.iterations,
            repeats=params.repeats,
            heldout_repeats=params.heldout_repeats,
            max_output_tokens=params.max_output_tokens,
            temperature=params.temperature,
            seed=params.seed,
            parallel=params.parallel,
            grpo=GrpoSettings(
                learning_rate=params.learning_rate,
                clip_eps=params.clip_eps,
                epochs=params.epochs,
                minibatch=params.minibatch,
                temperature=params.temperature,
                seed=params.seed,
            ),
        )
        loop = PolicyLoop(
            run_url=client.base_url(params.agent_name) + "/run",
            model_url=client.base_url(params.model_server_name),
            train_rows=train_rows,
            heldout_rows=heldout_rows,
            model=model,
            template=template,
            output_dir=output,
            settings=settings,
        )
        print("iter  policy                    reward (mean +- 95% interval)  seconds per phase")
        results = asyncio.run(loop.run(lambda r: print(_row_line(r), flush=True)))
    finally:
        servers.stop()
    (output / "loop.json").write_text(json.dumps(as_json(results), indent=2) + "\n")
    picture = plot(results, output / "reward.png")
    shown = f", {picture}" if picture else " (matplotlib is not installed: no plot)"
    print(f"-> {output / 'loop.json'}{shown}")
    return 0


if __name__ == "__main__":
    main()
