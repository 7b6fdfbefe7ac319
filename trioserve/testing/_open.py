"""`open_test_server`: a real server for one trio test, gone afterwards whatever happened."""

from __future__ import annotations

import os
import socket as stdlib_socket
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, ClassVar, Protocol

import attrs
import trio

from .._handlers import Handler
from .._server import Server
from .._stats import ServerStats
from ._failures import FailureCollector, handler_errors_group
from ._kinds import (
    DATAGRAM_KINDS,
    TEST_GRACE_PERIOD,
    UNIX_KINDS,
    Address,
    AddressParts,
    Kind,
    check_host_and_path,
    check_kind,
    describe,
    inet_address,
    make_temp_dir,
    remove_dir,
    unix_path,
)
from ._memory import MemoryListener

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

UnixPath = str | os.PathLike[str]


@attrs.define(eq=False)
class TestServer(AddressParts):
    """A running test server, as :func:`open_test_server` yields it.

    Attributes:
        kind: ``"tcp"``, ``"unix"``, ``"udp"``, ``"unix-datagram"`` or ``"memory"``.
        address: ``(host, port)`` for tcp and udp, the socket path for the Unix kinds,
            ``None`` for memory.
        server: The :class:`trioserve.Server` serving (for :attr:`Server.stats`,
            :meth:`Server.shutdown`, ...).
        endpoints: What the serve_* call reported: its listeners, or its bound sockets
            for the datagram kinds.
        handler_errors: What the server's handlers raised so far, oldest first.
    """

    __test__: ClassVar[bool] = False  # not a test class, whatever its name says to pytest

    kind: Kind
    address: Address
    server: Server
    endpoints: list[Any]
    handler_errors: list[Exception]
    _temp_dir: str | None
    _memory: MemoryListener | None
    _streams: list[trio.abc.AsyncResource] = attrs.field(factory=list)
    _sockets: list[trio.socket.SocketType] = attrs.field(factory=list)

    @property
    def stats(self) -> ServerStats:
        """The server's counters now (see :class:`trioserve.ServerStats`)."""
        return self.server.stats

    async def connect(self) -> trio.abc.HalfCloseableStream:
        """Open a client connection to a tcp, unix or memory server.

        The test may close it; whatever is still open is closed when the server's
        context exits, before the server shuts down.

        Returns:
            A :class:`trio.SocketStream`, or for "memory" the client end of a
            :func:`trio.testing.memory_stream_pair`.

        Raises:
            TypeError: The server serves datagrams (use :meth:`open_datagram_socket`).
        """
        stream: trio.abc.HalfCloseableStream
        if self.kind == "memory":
            assert self._memory is not None
            stream = await self._memory.connect()
        elif self.kind == "unix":
            stream = await trio.open_unix_socket(self.path)
        elif self.kind == "tcp":
            assert isinstance(self.address, tuple)
            host, port = self.address
            stream = await trio.open_tcp_stream(host, port)
        else:
            raise TypeError(
                f"a {self.kind} test server takes datagrams: use open_datagram_socket()"
            )
        self._streams.append(stream)
        return stream

    async def open_datagram_socket(self) -> trio.socket.SocketType:
        """Open a datagram socket connected to a udp or unix-datagram server.

        ``await sock.send(data)`` reaches the handler and ``await sock.recv(n)`` gets its
        replies (a unix-datagram client is bound to a path of its own in the server's
        temporary directory so that replies can reach it). The socket is closed when
        the server's context exits, if the test has not closed it.

        Raises:
            TypeError: The server serves streams (use :meth:`connect`).
        """
        if self.kind not in DATAGRAM_KINDS:
            raise TypeError(f"a {self.kind} test server takes connections: use connect()")
        if self.kind == "udp":
            assert isinstance(self.address, tuple)
            host, port = self.address
            family = stdlib_socket.AF_INET6 if ":" in host else stdlib_socket.AF_INET
            sock = trio.socket.socket(family, stdlib_socket.SOCK_DGRAM)
            try:
                await sock.connect((host, port))
            except BaseException:
                sock.close()
                raise
        else:
            assert self._temp_dir is not None
            sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)
            try:
                await sock.bind(unix_path(self._temp_dir, f"client-{len(self._sockets)}.sock"))
                await sock.connect(self.path)
            except BaseException:
                sock.close()
                raise
        self._sockets.append(sock)
        return sock

    def _hang_up_clients(self, nursery: trio.Nursery) -> None:
        """Close the clients the test left open, without resetting a connection.

        Closing a socket with unread bytes sends a reset, which the handler would see as
        a broken connection and the test as a handler error. So each stream sends EOF,
        reads what the handler still sends until the server closes its end (the handler
        returned, or was cancelled after the grace period), then closes.
        """
        for sock in self._sockets:
            sock.close()
        for stream in self._streams:
            nursery.start_soon(_hang_up, stream)


async def _hang_up(stream: trio.abc.AsyncResource) -> None:
    try:
        if isinstance(stream, trio.abc.HalfCloseableStream):
            await stream.send_eof()
            while await stream.receive_some():
                pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
        pass  # the test closed it, broke it, or is still using it: just close it
    finally:
        await trio.aclose_forcefully(stream)


async def _start(
    nursery: trio.Nursery, server: Server, kind: Kind, host: str, path: str | None
) -> tuple[list[Any], Address, MemoryListener | None]:
    if kind == "tcp":
        listeners = await nursery.start(partial(server.serve_tcp, 0, host=host))
        return listeners, inet_address(listeners[0].socket.getsockname()), None
    if kind == "unix":
        assert path is not None
        return await nursery.start(partial(server.serve_unix, path)), path, None
    if kind == "memory":
        memory = MemoryListener()
        return await nursery.start(partial(server.serve_listeners, [memory])), None, memory
    if kind == "udp":
        sockets = await nursery.start(partial(server.serve_udp, 0, host=host))
        return sockets, inet_address(sockets[0].getsockname()), None
    assert path is not None
    return await nursery.start(partial(server.serve_unix_datagram, path)), path, None


@asynccontextmanager
async def open_test_server(
    handler: Handler,
    *,
    kind: Kind = "tcp",
    host: str | None = None,
    path: UnixPath | None = None,
    raise_handler_errors: bool = True,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    handler_timeout: float | None = None,
    grace_period: float = TEST_GRACE_PERIOD,
) -> AsyncIterator[TestServer]:
    """Serve ``handler`` for the duration of an ``async with`` block, in a trio test.

    The server listens before the block starts: on port 0 of ``host`` (default
    127.0.0.1) for tcp and udp, at a socket in a fresh temporary directory for the Unix
    kinds (or at ``path``), or on an in-memory listener for ``kind="memory"``, whose
    connections are :func:`trio.testing.memory_stream_pair` streams (no sockets, so
    the autojump clock runs freely; ``idle_timeout`` watches socket connections only,
    ``handler_timeout`` applies to both).

    When the block exits, normally or by an exception, the server shuts down
    gracefully: handlers get ``grace_period`` seconds, then they are cancelled. Client
    connections the test opened through the handle and left open send EOF and are
    closed once the server closes its end (so the handler sees an orderly close). When
    the block is cancelled (a timeout around it), the server stops at once. In every
    case the listening sockets are closed, the Unix socket file and the temporary
    directory are removed, and the exception the block raised propagates unchanged.

    Args:
        handler: The handler, as for :class:`trioserve.Server`.
        kind: "tcp", "unix", "udp", "unix-datagram" or "memory".
        host: Where tcp and udp servers listen (default ``"127.0.0.1"``).
        path: The Unix socket path instead of a temporary one; it is free again at exit.
        raise_handler_errors: Whether handler errors fail the test: if the block itself
            raised nothing, they are raised at exit as an :class:`ExceptionGroup`. With
            ``False`` they are only kept in :attr:`TestServer.handler_errors`.
        max_connections, idle_timeout, handler_timeout, grace_period: The server
            options (``grace_period`` defaults to 1 second here).

    Raises:
        ExceptionGroup: At exit, with what the handlers raised.
        TypeError, ValueError: An argument or option is invalid.
        OSError: The server could not listen (nothing is left open).

    Example::

        async def test_echo() -> None:
            async with open_test_server(echo) as test_server:
                client = await test_server.connect()
                await client.send_all(b"ping")
                assert await client.receive_some() == b"ping"
    """
    kind = check_kind(kind)
    check_host_and_path(kind, host, path)
    server = Server(
        handler,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        handler_timeout=handler_timeout,
        grace_period=grace_period,
    )
    collector = FailureCollector(server)
    temp_dir = make_temp_dir() if kind in UNIX_KINDS else None
    socket_path = None
    if temp_dir is not None:
        socket_path = unix_path(temp_dir, "server.sock") if path is None else os.fspath(path)
    where = "?"
    raised: BaseException | None = None  # what the block (or the start) raised
    stopped: BaseException | None = None  # what the nursery raised on the way out
    try:
        with collector.installed():
            try:
                async with trio.open_nursery() as nursery:
                    try:
                        endpoints, address, memory = await _start(
                            nursery, server, kind, host or "127.0.0.1", socket_path
                        )
                    except BaseException as exc:
                        raised = exc
                    else:
                        where = describe(kind, address)
                        handle = TestServer(
                            kind=kind,
                            address=address,
                            server=server,
                            endpoints=endpoints,
                            handler_errors=collector.failures,
                            temp_dir=temp_dir,
                            memory=memory,
                        )
                        try:
                            yield handle
                        except BaseException as exc:
                            raised = exc
                        finally:
                            handle._hang_up_clients(nursery)
                            server.shutdown()
            except BaseException as exc:
                stopped = exc
    finally:
        if temp_dir is not None:
            remove_dir(temp_dir)
    failures = list(collector.failures)
    if (
        raised is not None
        and stopped is not None
        and _only_cancelled(raised)
        and not _only_cancelled(stopped)
    ):
        # The server crashed (a handler raised KeyboardInterrupt or SystemExit) and
        # cancelled the block: the crash is what happened, not the cancellation.
        raised = stopped
    if raised is not None:
        _note_failures(raised, failures)
        raise raised
    if stopped is not None:
        _note_failures(stopped, failures)
        raise stopped
    if failures and raise_handler_errors:
        raise handler_errors_group(failures, where)


def _only_cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is :class:`trio.Cancelled`, or a group of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(inner) for inner in exc.exceptions)
    return isinstance(exc, trio.Cancelled)


def _note_failures(exc: BaseException, failures: list[Exception]) -> None:
    """Mention handler errors on an exception that takes precedence over them."""
    if failures and sys.version_info >= (3, 11):
        exc.add_note(f"the test server's handlers failed too: {failures!r}")


class StartTestServer(Protocol):
    """The ``trioserve_server`` fixture: takes :func:`open_test_server`'s arguments."""

    def __call__(self, handler: Handler, /, **options: Any) -> Awaitable[TestServer]: ...
