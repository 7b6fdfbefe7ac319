"""Running one handler: its cancel scope, timeouts, error isolation and accounting."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

LOGGER = logging.getLogger("trioserve")

#: What a handler may be: an async function of the connection (or datagram).
Handler = Callable[[Any], Awaitable[object]]


#: What a handler raises when its peer hung up or reset the connection: a network
#: event rather than a bug, so it is logged in one line and counted as a disconnect.
PEER_GONE_ERRORS = (
    trio.BrokenResourceError,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


def is_peer_gone(failure: Exception) -> bool:
    """Whether a handler failed only because its peer went away (nurseries included)."""
    if isinstance(failure, PEER_GONE_ERRORS):
        return True
    if isinstance(failure, BaseExceptionGroup):
        _, rest = failure.split(PEER_GONE_ERRORS)
        return rest is None
    return False


def check_handler(handler: object) -> None:
    if not callable(handler):
        raise TypeError(f"handler must be an async callable, not {handler!r}")


def split_handler_error(exc: BaseException) -> tuple[Exception | None, BaseException | None]:
    """Split what a handler raised into the part to log and the part to let through.

    Ordinary exceptions (ExceptionGroup included) are the handler's own failure.
    ``trio.Cancelled``, ``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit``
    must propagate; a BaseExceptionGroup is divided between the two.
    """
    if isinstance(exc, Exception):
        return exc, None
    if isinstance(exc, BaseExceptionGroup):
        failure, rest = exc.split(Exception)
        return failure, rest
    return None, exc


def host_port(host: object, port: object) -> str:
    """``host:port``, with an IPv6 host in brackets: ``[::1]:8080``."""
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def describe_peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return host_port(address[0], address[1])
    if isinstance(address, bytes):
        address = address.decode(errors="backslashreplace")
    return repr(address) if address else "an unnamed Unix socket"


def describe_origin(stream: object) -> str:
    """Where a connection or datagram came from, for log messages."""
    if hasattr(stream, "remote_address"):
        return describe_peer(stream.remote_address)
    return f"a {type(stream).__name__}"  # a listener's own stream type (memory, TLS, ...)
