"""Binding listening sockets in ``ng_run`` before any server process starts.

Each server gets a socket that is already bound and listening when its process starts (port 0
lets the OS pick a free one), so there is no window in which another process can take the port
between choosing and binding it, as there is when a port is picked, released and re-bound.
"""

from __future__ import annotations

import errno
import socket

from nemo_gym.core.errors import ConfigError


def bind_listener(
    host: str, port: int, *, what: str, key: str | None = None, busy_hint: str | None = None
) -> socket.socket:
    """Bind and listen on ``host:port`` (``port`` 0: any free port).

    Raises:
        ConfigError: the port is taken or the host cannot be bound; names ``what`` and ``key``
            (``busy_hint`` replaces the advice given for a port in use).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            advice = busy_hint or (
                "Another ng_run may be running (check with `ng_status`, stop it with Ctrl+C), or "
                f"choose another port with +{key}=<port>"
            )
            raise ConfigError(
                f"port {port} on {host} is already in use, so {what} cannot start. {advice}"
                if key
                else f"port {port} on {host} is in use",
                key=key,
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port} for {what}: {exc.strerror}", key=key
        ) from None
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock
