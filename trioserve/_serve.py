"""The serve_* functions: a :class:`Server` made and run in one call."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import trio

from ._datagram import DEFAULT_RECEIVE_SIZE
from ._handlers import Handler
from ._options import DEFAULT_GRACE_PERIOD
from ._server import Server


def _server(
    handler: Handler,
    max_connections: int | None,
    idle_timeout: float | None,
    handler_timeout: float | None,
    grace_period: float,
) -> Server:
    return Server(
        handler,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        handler_timeout=handler_timeout,
        grace_period=grace_period,
    )


async def serve_tcp(
    handler: Handler,
    port: int,
    *,
    host: str | bytes | None = None,
    backlog: int | None = None,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    handler_timeout: float | None = None,
    grace_period: float = DEFAULT_GRACE_PERIOD,
) -> None:
    """Serve TCP connections on ``port``, each as ``handler(conn)`` in a task of its own.

    A drop-in for :func:`trio.serve_tcp` (same positional arguments, same
    ``task_status.started(listeners)``), with the :class:`Server` options on top. The
    handler gets a :class:`Connection`, closed when the handler returns, raises or is
    cancelled; what it raises is logged (logger ``trioserve``) and counted, and the
    server goes on. Cancelling the surrounding scope stops everything at once; for a
    graceful stop use :class:`Server` and :meth:`Server.shutdown`.

    Example::

        async def echo(conn: trioserve.Connection) -> None:
            async for data in conn:
                await conn.send_all(data)

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trioserve.serve_tcp, echo, 0)
            port = listeners[0].socket.getsockname()[1]
    """
    server = _server(handler, max_connections, idle_timeout, handler_timeout, grace_period)
    await server.serve_tcp(
        port, host=host, backlog=backlog, handler_nursery=handler_nursery, task_status=task_status
    )


async def serve_unix(
    handler: Handler,
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    *,
    mode: int | None = None,
    backlog: int | None = None,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    handler_timeout: float | None = None,
    grace_period: float = DEFAULT_GRACE_PERIOD,
) -> None:
    """Serve a Unix stream socket at ``path``; see :meth:`Server.serve_unix` for its file."""
    server = _server(handler, max_connections, idle_timeout, handler_timeout, grace_period)
    await server.serve_unix(
        path, mode=mode, backlog=backlog, handler_nursery=handler_nursery, task_status=task_status
    )


async def serve_listeners(
    handler: Handler,
    listeners: Sequence[trio.abc.Listener[Any]],
    *,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.abc.Listener[Any]]] = trio.TASK_STATUS_IGNORED,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    handler_timeout: float | None = None,
    grace_period: float = DEFAULT_GRACE_PERIOD,
) -> None:
    """Serve connections from trio listeners; a drop-in for :func:`trio.serve_listeners`."""
    server = _server(handler, max_connections, idle_timeout, handler_timeout, grace_period)
    await server.serve_listeners(
        listeners, handler_nursery=handler_nursery, task_status=task_status
    )


async def serve_udp(
    handler: Handler,
    port: int,
    *,
    host: str | bytes | None = None,
    receive_size: int = DEFAULT_RECEIVE_SIZE,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.socket.SocketType]] = trio.TASK_STATUS_IGNORED,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    handler_timeout: float | None = None,
    grace_period: float = DEFAULT_GRACE_PERIOD,
) -> None:
    """Serve UDP on ``port``, each datagram as ``handler(datagram)`` in a task of its own.

    ``task_status.started()`` gets the list of bound trio sockets (one per address of
    ``host``; every interface, IPv4 and IPv6, for ``None``). The handler gets a
    :class:`Datagram`; ``await datagram.reply(data)`` answers from the socket it came
    in on. What a handler raises, a failed reply included, is logged (logger
    ``trioserve``) and counted, and the server goes on. See :meth:`Server.serve_udp`
    for backpressure, oversized datagrams and shutdown.

    Example::

        async def echo(datagram: trioserve.Datagram) -> None:
            await datagram.reply(datagram.data)

        async with trio.open_nursery() as nursery:
            sockets = await nursery.start(trioserve.serve_udp, echo, 0)
            port = sockets[0].getsockname()[1]
    """
    server = _server(handler, max_connections, idle_timeout, handler_timeout, grace_period)
    await server.serve_udp(
        port,
        host=host,
        receive_size=receive_size,
        handler_nursery=handler_nursery,
        task_status=task_status,
    )


async def serve_unix_datagram(
    handler: Handler,
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    *,
    mode: int | None = None,
    receive_size: int = DEFAULT_RECEIVE_SIZE,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[trio.socket.SocketType]] = trio.TASK_STATUS_IGNORED,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    handler_timeout: float | None = None,
    grace_period: float = DEFAULT_GRACE_PERIOD,
) -> None:
    """Serve a Unix datagram socket at ``path``, a task per datagram.

    As :func:`serve_udp`; see :meth:`Server.serve_unix_datagram` for the socket file
    and for senders that cannot be answered.

    Example::

        async with trio.open_nursery() as nursery:
            await nursery.start(trioserve.serve_unix_datagram, echo, "/run/echo.sock")
    """
    server = _server(handler, max_connections, idle_timeout, handler_timeout, grace_period)
    await server.serve_unix_datagram(
        path,
        mode=mode,
        receive_size=receive_size,
        handler_nursery=handler_nursery,
        task_status=task_status,
    )
