"""Binding listening sockets in ``ng_run`` before any server process starts.

Each server gets a socket that is already bound and listening when its process starts (port 0
lets the OS pick a free one), so there is no window in which another process can take the port
between choosing and binding it, as there is when a port is picked, released and re-bound.

:func:`reserve_port` holds a free port for a process started later (a test's ``ng_run``) that
binds it itself: the reserving socket is bound but not listening, so the OS gives the port to
no other ``bind``, while a listener with ``SO_REUSEADDR`` (as :func:`bind_listener` makes) can
still take it.
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
    sock = _reusable_socket(host)
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


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a free port of ``host``, not listening (see the module docstring).

    Keep it open until the process given the port has bound it; then close it.
    """
    sock = _reusable_socket(host)
    sock.bind((host, 0))
    return sock


def _reusable_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock
