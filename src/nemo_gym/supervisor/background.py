"""``RunHelper``: Gym's servers started from another program and kept up in the background.

This is what NeMo RL's and verl's NeMo Gym integrations call: ``RunHelper().start(parser)``
returns once every server answers ``/health`` (or raises naming the server that did not), the
servers keep running while the program trains, ``poll()`` raises if any of them died, and
``shutdown()`` stops them in ``ng_run``'s order. The supervisor (``supervisor.py``) runs on its own
event loop in a thread; servers are started with ``spawn`` by default (``python app.py``), since
forking a trainer's process (threads, CUDA, Ray) is not safe. Server logs go to the ``logging``
logger of this module. Start-up is shared with ``ng_run`` (``startup.py``).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time

from nemo_gym.config.parser_config import GlobalConfigDictParserConfig, load_from_parser_config
from nemo_gym.supervisor.display import format_table
from nemo_gym.supervisor.startup import Launched, config_error, launch
from nemo_gym.supervisor.supervisor import SupervisorOptions

logger = logging.getLogger(__name__)


def _log_lines(text: str) -> None:
    for line in text.splitlines():
        if line.strip():
            logger.info("%s", line)


class RunHelper:
    """Start the servers of a config from code and keep them up (see the module docstring)."""

    def __init__(self) -> None:
        self._launched: Launched | None = None
        self._thread: threading.Thread | None = None
        self._exit_code: int | None = None

    def start(self, global_config_dict_parser_config: GlobalConfigDictParserConfig) -> None:
        """Start every server and the head server; return once all answer ``/health``.

        Settings read from the config: ``start_mode`` (``spawn``), ``startup_timeout_s`` (600),
        ``graceful_shutdown_s`` (30).

        Raises:
            ConfigError: the config is invalid or a server refused its settings.
            RuntimeError: a server exited or did not become healthy in time (its log was logged).
        """
        if self._thread is not None:
            raise RuntimeError("RunHelper.start() was already called")
        started = time.monotonic()
        loaded = load_from_parser_config(global_config_dict_parser_config)
        data = loaded.data
        options = SupervisorOptions(
            startup_timeout_s=float(data.get("startup_timeout_s", 600.0)),
            graceful_shutdown_s=float(data.get("graceful_shutdown_s", 30.0)),
            echo_logs=True,
        )
        mode = str(data.get("start_mode", "spawn"))
        launched = launch(loaded, start_mode=mode, options=options, write=_log_lines)
        self._launched = launched
        ready = threading.Event()

        def on_ready(elapsed: float) -> None:
            _log_lines(format_table(launched.children, elapsed))
            ready.set()

        def supervise() -> None:
            try:
                self._exit_code = asyncio.run(
                    launched.supervisor.run(on_ready, started, handle_signals=False)
                )
            finally:
                ready.set()

        self._thread = threading.Thread(target=supervise, name="gym-supervisor", daemon=True)
        self._thread.start()
        atexit.register(self.shutdown)
        ready.wait()
        if not self._thread.is_alive() or self._exit_code is not None:
            self._thread.join()
            launched.close()
            refused = config_error(loaded, launched.supervisor)
            if refused is not None:
                raise refused
            raise RuntimeError(
                f"Gym's servers did not start (exit code {self._exit_code}); "
                "the failing server and its log are in the log above"
            )

    def poll(self) -> None:
        """Raise if the supervisor or any server process has stopped."""
        if self._launched is None or self._thread is None:
            raise RuntimeError("RunHelper.start() has not been called")
        dead = [c for c in self._launched.children if c.exit_code is not None]
        if dead:
            names = ", ".join(f"{c.label} (exit code {c.exit_code})" for c in dead)
            raise RuntimeError(f"Gym server process finished unexpectedly: {names}")
        if not self._thread.is_alive():
            raise RuntimeError(f"Gym's supervisor stopped (exit code {self._exit_code})")

    def shutdown(self) -> None:
        """Stop every server gracefully (agents first) and wait for them; safe to call twice."""
        if self._launched is None or self._thread is None:
            return
        self._launched.supervisor.request_stop()
        self._thread.join()
        self._launched.close()
        atexit.unregister(self.shutdown)

    def display_server_instance_info(self) -> None:
        """Log the table of running servers."""
        if self._launched is not None:
            _log_lines(format_table(self._launched.children, 0.0))
