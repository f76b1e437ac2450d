"""``ServerClient``: call another Gym server by its instance name, with the pooled client.

Inside servers started by ``ng_run`` the address book is the resolved config the process was
given; outside (a script such as ``client.py``, ``ng_collect_rollouts``) it is downloaded from
the head server with :meth:`ServerClient.load_from_global_config` (:func:`fetch_global_config`).
Every Gym process that calls a server (servers, the head server, the supervisor, the CLI) does
it through this module and ``http_client``; :func:`get_sync` is the same client for synchronous
code.

Neighbours: ``http_client`` (timeouts and retries), ``transport`` (how attempts are sent),
``launch`` (the config a server process was given), ``nemo_gym.config`` (loading a config).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml
from pydantic import BaseModel

from nemo_gym.config.instances import instance_section
from nemo_gym.config.loader import load_config
from nemo_gym.config.settings import head_address
from nemo_gym.core.errors import ConfigError, GymError, UpstreamError
from nemo_gym.server.http_client import NO_RETRY, HttpClient, HttpResponse, RetryPolicy
from nemo_gym.server.launch import current_launch_context
from nemo_gym.server.replicas import ReplicaSet

#: Calls between Gym servers retry only connections that were never made: a 5xx from a tool is
#: an answer, and a call that may have reached a tool must not run twice.
INTERNAL_RETRY = RetryPolicy(
    max_attempts=3, backoff_base_s=0.2, retry_statuses=frozenset(), retry_after_sent=False
)


def head_url(config: Mapping[str, Any]) -> str:
    """The head server's base URL from a (local) config."""
    head = config.get("head_server") or {}
    host = head.get("host") or config.get("default_host") or "127.0.0.1"
    return f"http://{host}:{head.get('port') or 11000}"


def request_sync(
    method: str, url: str, *, json: Any = None, timeout_s: float = 10.0
) -> HttpResponse:
    """Make one request (no retry) from synchronous code, with the pooled client.

    Works with or without an event loop running in this thread (with one, the call runs in a
    fresh loop on a helper thread).

    Raises:
        UpstreamError: no connection, or no answer within ``timeout_s``.
    """

    async def send() -> HttpResponse:
        http = HttpClient(timeout_s=timeout_s)
        try:
            return await http.request(method, url, json=json, retry=NO_RETRY)
        finally:
            await http.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(send())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, send()).result()


def get_sync(url: str, timeout_s: float = 10.0) -> HttpResponse:
    """GET ``url`` once from synchronous code (see :func:`request_sync`)."""
    return request_sync("GET", url, timeout_s=timeout_s)


def fetch_global_config(head_server_url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """Download the running setup's config (secrets redacted) from the head server.

    Raises:
        GymError: nothing answers at ``head_server_url``.
    """
    try:
        resp = get_sync(f"{head_server_url}/global_config_dict_yaml", timeout_s)
        resp.raise_for_status()
    except UpstreamError as exc:
        raise GymError(
            f"could not reach the head server at {head_server_url} ({exc}). Start the servers "
            'with `ng_run "+config_paths=[...]"` first, or point +head_server.port=... at it.'
        ) from None
    text = resp.body.decode()
    if text.startswith('"'):  # NeMo Gym's older head server JSON-encoded the YAML
        text = json.loads(text)
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def default_head_url() -> str:
    """The head server's URL: in a server process from its config, elsewhere from ``env.yaml``
    and ``+head_server.port=...`` on the command line (else ``127.0.0.1:11000``).

    Raises:
        ConfigError: the head server's address in the config is not valid.
    """
    context = current_launch_context()
    if context is not None:
        return head_url(context.config)
    argv = [a for a in sys.argv[1:] if a.startswith("+") or "=" in a]
    host, port = head_address(load_config(argv))
    return head_url({"head_server": {"host": host, "port": port}})


class ServerClient:
    """Resolve instance names to URLs and make calls with the pooled client.

    Args:
        global_config: a resolved config holding the server instances (with host and port).
        http: the outbound client; one is created if not given.
    """

    def __init__(self, global_config: Mapping[str, Any], http: HttpClient | None = None) -> None:
        self.global_config_dict = global_config
        self.http = http or HttpClient()
        self._urls: dict[str, str] = {}
        self.replicas = ReplicaSet(global_config, self.http)  # instances run as Ray replicas

    @classmethod
    def load_from_global_config(
        cls, head_server_config: Mapping[str, Any] | None = None
    ) -> ServerClient:
        """Build a client from the config a running head server serves.

        Args:
            head_server_config: ``{host, port}`` of the head server; by default taken from
                ``env.yaml`` and ``+head_server.port=...`` on the command line, else
                ``127.0.0.1:11000``.
        """
        if head_server_config is None:
            return cls(fetch_global_config(default_head_url()))
        return cls(fetch_global_config(head_url({"head_server": dict(head_server_config)})))

    def base_url(self, server_name: str) -> str:
        """``http://host:port`` of the instance ``server_name``."""
        url = self._urls.get(server_name)
        if url is not None:
            return url
        section = instance_section(self.global_config_dict, server_name)
        if section is not None:
            settings = section[2]
            url = f"http://{settings['host']}:{settings['port']}"
            self._urls[server_name] = url
            return url
        known = [
            k
            for k in self.global_config_dict
            if instance_section(self.global_config_dict, k) is not None
        ]
        raise ConfigError(f"no server instance named {server_name!r}; running: {', '.join(known)}")

    async def request(
        self,
        method: str,
        server_name: str,
        url_path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        cookies: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy = INTERNAL_RETRY,
    ) -> HttpResponse:
        """Call ``url_path`` on the instance ``server_name``; see :meth:`HttpClient.request`
        (``data``: a body already encoded, sent as it is)."""
        if isinstance(json, BaseModel):
            json = json.model_dump(mode="json", exclude_unset=True)
        async with self.replicas.lease(server_name, headers, cookies) as replica:
            return await self.http.request(
                method,
                (replica or self.base_url(server_name)) + url_path,
                json=json,
                data=data,
                cookies=dict(cookies) if cookies else None,
                headers=dict(headers) if headers else None,
                timeout_s=timeout_s,
                retry=retry,
            )

    async def post(
        self, server_name: str, url_path: str, json: Any = None, **kwargs: Any
    ) -> HttpResponse:
        """POST to another server (NeMo Gym's signature)."""
        return await self.request("POST", server_name, url_path, json=json, **kwargs)

    async def get(self, server_name: str, url_path: str, **kwargs: Any) -> HttpResponse:
        """GET from another server."""
        return await self.request("GET", server_name, url_path, **kwargs)

    async def close(self) -> None:
        """Close the pooled connections."""
        await self.http.close()
