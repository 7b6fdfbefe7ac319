"""`Server`: accepting and receiving, running handlers in nurseries, and shutting down."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import socket as stdlib_socket
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import attrs
import trio
from trio.lowlevel import checkpoint, notify_closing, wait_readable

from ._connection import Connection, IdleWatch
from ._datagram import DEFAULT_RECEIVE_SIZE, Datagram, DatagramSocket, check_receive_size
from ._handlers import (
    LOGGER,
    Handler,
    check_handler,
    describe_origin,
    is_peer_gone,
    split_handler_error,
)
from ._listeners import (
    check_backlog,
    check_host,
    check_port,
    open_tcp_sockets,
    open_udp_sockets,
    open_unix_socket,
)
from ._options import DEFAULT_GRACE_PERIOD, ServerOptions
from ._stats import Counters, ServerStats
from ._unix import SocketFile, bind_unix_socket, check_mode, check_unix_path

#: accept() errors that mean the system is out of descriptors or memory: back off.
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

#: accept() errors about one connection that died in the backlog: accept the next one.
ACCEPT_IGNORABLE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
    )
    if hasattr(errno, name)
)

ACCEPT_SURVIVABLE_ERRNOS = ACCEPT_CAPACITY_ERRNOS | ACCEPT_IGNORABLE_ERRNOS

#: First wait after accept() ran out of descriptors or memory. The wait ends early when
#: one of this server's connections closes (freeing a descriptor), and doubles on each
#: failure in a row up to ACCEPT_BACKOFF_MAX, so an exhausted server neither spins nor
#: floods the log, and resumes soon after descriptors free up.
ACCEPT_BACKOFF_MIN = 0.05
ACCEPT_BACKOFF_MAX = 1.0

#: Connections accepted in a row without waiting before the accept loop yields to
#: other tasks (a checkpoint per accept would halve accept throughput under load).
ACCEPT_BURST = 16

#: What a handler is given: a stream (usually a Connection) or a Datagram.
_Request: TypeAlias = trio.abc.AsyncResource | Datagram

_current_server: contextvars.ContextVar[Server] = contextvars.ContextVar("trioserve.server")


def current_server() -> Server:
    """The :class:`Server` running the calling handler (or any task it started).

    Raises:
        RuntimeError: Called outside a trioserve handler.
    """
    try:
        return _current_server.get()
    except LookupError:
        raise RuntimeError("current_server() must be called from a trioserve handler") from None


class _Endpoint:
    """One thing a serve_* call takes work from: a listener, or a datagram socket."""

    #: Whether it stays open until its handlers are done (they reply through it).
    open_while_draining = False

    def close_now(self) -> None:
        """Stop accepting at once, where that can be done synchronously."""

    def reported(self) -> object:
        """What ``task_status.started()`` lists for this endpoint."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close it for good (its handlers are done); return at once if cancelled."""
        raise NotImplementedError


class _ListeningEndpoint(_Endpoint):
    listener: trio.abc.Listener[Any]

    def reported(self) -> object:
        return self.listener

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.listener)


async def _close_endpoints(endpoints: Sequence[_Endpoint]) -> None:
    for endpoint in endpoints:
        endpoint.close_now()
    # Each aclose returns at once when cancelled; the shield only makes sure every
    # endpoint gets closed during a hard stop, not just the first one.
    with trio.CancelScope(shield=True):
        for endpoint in endpoints:
            await endpoint.aclose()


@attrs.define(eq=False)
class _SocketEndpoint(_ListeningEndpoint):
    """A listening socket this server opened: accepted on directly, without trio's wrappers."""

    sock: stdlib_socket.socket
    listener: trio.SocketListener
    socket_file: SocketFile | None = None
    tcp: bool = False

    def close_now(self) -> None:
        if self.sock.fileno() != -1:
            notify_closing(self.sock)
            self.sock.close()
        if self.socket_file is not None:
            self.socket_file.remove()


@attrs.define(eq=False)
class _ListenerEndpoint(_ListeningEndpoint):
    """A trio listener the caller passed to serve_listeners."""

    listener: trio.abc.Listener[Any]

    def close_now(self) -> None:
        if isinstance(self.listener, trio.SocketListener):
            self.listener.socket.close()

    async def accept(self) -> trio.abc.AsyncResource:
        if isinstance(self.listener, trio.SocketListener):
            sock, address = await self.listener.socket.accept()
            if sock.family != stdlib_socket.AF_UNIX:
                _set_nodelay(sock)
            return Connection.from_trio_socket(sock, address)
        stream: trio.abc.AsyncResource = await self.listener.accept()
        return stream


@attrs.define(eq=False)
class _DatagramEndpoint(_Endpoint):
    """A datagram socket: it stays open after serving stops, until its handlers are done."""

    socket: DatagramSocket
    open_while_draining = True

    def close_now(self) -> None:
        self.socket.stop_receiving()

    def reported(self) -> object:
        return self.socket.trio_socket

    async def aclose(self) -> None:
        self.socket.close()
        await checkpoint()


@attrs.define(eq=False)
class _ServeRun:
    """The state of one serve_* call: what it accepts on and the handlers it started."""

    endpoints: Sequence[_Endpoint]
    external_nursery: bool
    accept_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    handler_scopes: set[trio.CancelScope] = attrs.field(factory=set)
    active: int = 0
    stopping: bool = False
    grace_over: bool = False
    drained: trio.Event | None = None

    def stop_accepting(self) -> None:
        self.stopping = True
        self.accept_scope.cancel()
        for endpoint in self.endpoints:
            endpoint.close_now()

    def handler_finished(self, scope: trio.CancelScope | None) -> None:
        self.active -= 1
        if scope is not None:
            self.handler_scopes.discard(scope)
        if self.active == 0 and self.drained is not None:
            self.drained.set()


def _set_nodelay(sock: stdlib_socket.socket | trio.socket.SocketType) -> None:
    # Some systems (macOS, BSDs) refuse options on a connection the peer reset while
    # it waited in the backlog: its handler will find out on its first receive.
    with contextlib.suppress(OSError):
        sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)


def _check_handler_nursery(handler_nursery: object) -> None:
    if handler_nursery is not None and not isinstance(handler_nursery, trio.Nursery):
        raise TypeError(f"handler_nursery must be a trio.Nursery or None, not {handler_nursery!r}")


class Server:
    """A socket server: one handler, its options, counters, and a graceful shutdown.

    A server may serve several endpoints at once (call several serve_* methods, each in
    a nursery); the options, the connection limit and :attr:`stats` cover all of them,
    and :meth:`shutdown` stops all of them.

    Args:
        handler: ``async def handler(conn)`` for stream endpoints (``conn`` is a
            :class:`Connection`, or the listener's own stream type for listeners that
            are not socket listeners); ``async def handler(datagram)`` for datagrams.
        max_connections: At most this many handlers at once; at the limit the server
            stops accepting (or reading datagrams) until one finishes (``None``:
            unlimited).
        idle_timeout: Seconds a connection may wait for bytes from the peer before its
            handler is cancelled and the connection closed (``None``: no limit). It
            does not apply to datagram handlers: use ``handler_timeout``.
        handler_timeout: Seconds a handler may run in all (``None``: no limit).
        grace_period: Seconds handlers may go on after :meth:`shutdown` before they are
            cancelled (``math.inf``: as long as they need).

    Raises:
        TypeError, ValueError: An option is invalid; the message names it and its value.

    Example::

        server = trioserve.Server(handler, max_connections=100, idle_timeout=30)
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(server.serve_tcp, 8080)
            ...
            server.shutdown()   # every serve_* returns once its handlers are done
    """

    def __init__(
        self,
        handler: Handler,
        *,
        max_connections: int | None = None,
        idle_timeout: float | None = None,
        handler_timeout: float | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD,
    ) -> None:
        check_handler(handler)
        self.handler = handler
        self.options = ServerOptions.create(
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            handler_timeout=handler_timeout,
            grace_period=grace_period,
        )
        self._counters = Counters()
        limit = self.options.max_connections
        self._slots = None if limit is None else trio.Semaphore(limit)
        self._needs_scope = (
            self.options.idle_timeout is not None or self.options.handler_timeout is not None
        )
        self._shutdown_requested = False
        self._shutdown_event = trio.Event()
        self._descriptor_freed = trio.Event()
        self._runs: set[_ServeRun] = set()
        #: Called with each exception a handler fails with (trioserve.testing uses it).
        self._failure_watchers: list[Callable[[Exception], None]] = []

    def __repr__(self) -> str:
        return f"<trioserve.Server handler={self.handler!r} {self.options!r}>"

    @property
    def stats(self) -> ServerStats:
        """A frozen snapshot of the counters (see :class:`ServerStats`)."""
        return self._counters.snapshot()

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`shutdown` was called: a keep-alive handler should finish up."""
        return self._shutdown_requested

    async def wait_for_shutdown(self) -> None:
        """Return once :meth:`shutdown` has been called (at once if it already was)."""
        await self._shutdown_event.wait()

    def shutdown(self) -> None:
        """Stop gracefully: stop accepting now, then let handlers finish.

        Listening sockets close at once (new connections are refused). Running handlers
        may go on for ``grace_period`` seconds and can check :attr:`shutting_down`; the
        ones still running then are cancelled and their connections closed. Every
        serve_* call of this server then returns normally. A serve_* called after this
        returns at once. Calling it again does nothing.

        Call it from a trio task of the run the server runs in; from another thread use
        ``trio.from_thread.run_sync(server.shutdown)``.
        """
        if self._shutdown_requested:
            return
        self._shutdown_requested = True
        self._shutdown_event.set()
        for run in list(self._runs):
            run.stop_accepting()

    async def serve_tcp(
        self,
        port: int,
        *,
        host: str | bytes | None = None,
        backlog: int | None = None,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve TCP on ``port`` (0 picks a free one) at every address of ``host``.

        Args:
            port: The port; 0 lets the kernel choose (all addresses then share one).
            host: Where to listen; ``None`` means every interface, IPv4 and IPv6.
            backlog: The listen backlog (``None``: as much as the kernel allows).
            handler_nursery: Run handlers there instead of in a nursery of our own.
            task_status: Given the list of :class:`trio.SocketListener` once they listen.

        Returns once :meth:`shutdown` has drained this endpoint's handlers; the
        listening sockets are closed on every path.
        """
        port = check_port(port)
        host = check_host(host)
        backlog_value = check_backlog(backlog)
        _check_handler_nursery(handler_nursery)
        sockets = await open_tcp_sockets(port, host, backlog_value)
        endpoints = [
            _SocketEndpoint(
                sock, trio.SocketListener(trio.socket.from_stdlib_socket(sock)), tcp=True
            )
            for sock in sockets
        ]
        await self._serve(endpoints, handler_nursery, task_status)

    async def serve_unix(
        self,
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        *,
        mode: int | None = None,
        backlog: int | None = None,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve a Unix stream socket at ``path``.

        A stale socket file at ``path`` (nobody answers) is replaced; a live one raises
        :class:`AddressInUseError`; a path that is not a socket raises
        :class:`NotASocketError` and is never deleted. ``mode`` (e.g. ``0o660``) is
        applied before the socket listens. The socket file is removed when serving
        stops, unless another server has bound the path since.
        """
        fspath = check_unix_path(path)
        mode = check_mode(mode)
        backlog_value = check_backlog(backlog)
        _check_handler_nursery(handler_nursery)
        sock, socket_file = open_unix_socket(fspath, backlog_value, mode)
        endpoint = _SocketEndpoint(
            sock, trio.SocketListener(trio.socket.from_stdlib_socket(sock)), socket_file
        )
        await self._serve([endpoint], handler_nursery, task_status)

    async def serve_udp(
        self,
        port: int,
        *,
        host: str | bytes | None = None,
        receive_size: int = DEFAULT_RECEIVE_SIZE,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[trio.socket.SocketType]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve UDP on ``port`` (0 picks a free one) at every address of ``host``.

        Every datagram runs ``handler(datagram)`` (a :class:`Datagram`) in a task of its
        own. At ``max_connections`` running handlers the server stops reading, so the
        kernel's receive buffer holds (or, when full, drops) what comes next; no queue
        grows in memory. A datagram larger than ``receive_size`` is dropped, logged and
        counted in ``stats.dropped``, never handed over cut short. ``idle_timeout``
        does not apply to datagrams.

        On :meth:`shutdown` the server stops reading at once (datagrams that arrive
        later are never handled) and keeps the sockets open until its handlers are done,
        so they can still reply. The sockets are closed on every path.

        Args:
            port: The port; 0 lets the kernel choose (all addresses then share one).
            host: Where to bind; ``None`` means every interface, IPv4 and IPv6.
            receive_size: The largest datagram accepted, in bytes (each receive asks the
                kernel for this much memory, so keep it near what clients send).
            handler_nursery: Run handlers there instead of in a nursery of our own.
            task_status: Given the list of bound trio sockets once they receive.

        Raises:
            TypeError, ValueError: An argument is invalid.
            OSError: Binding failed (e.g. the port is taken); nothing is left open.

        Example::

            async def handler(datagram: trioserve.Datagram) -> None:
                await datagram.reply(datagram.data)

            server = trioserve.Server(handler, max_connections=100)
            async with trio.open_nursery() as nursery:
                sockets = await nursery.start(server.serve_udp, 0)
                port = sockets[0].getsockname()[1]
        """
        port = check_port(port)
        host = check_host(host)
        size = check_receive_size(receive_size)
        _check_handler_nursery(handler_nursery)
        sockets = await open_udp_sockets(port, host)
        endpoints = [
            _DatagramEndpoint(DatagramSocket(sock, size, self._counters)) for sock in sockets
        ]
        await self._serve(endpoints, handler_nursery, task_status)

    async def serve_unix_datagram(
        self,
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        *,
        mode: int | None = None,
        receive_size: int = DEFAULT_RECEIVE_SIZE,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[trio.socket.SocketType]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve a Unix datagram socket at ``path``, a task per datagram.

        Datagrams are handled as :meth:`serve_udp` handles them. A reply goes to the
        path the sender's socket is bound to; :meth:`Datagram.reply` raises
        :class:`NoReplyAddressError` for a sender bound to none. The socket file is
        treated as :meth:`serve_unix` treats it: a stale one is replaced, a live one
        raises :class:`AddressInUseError`, a path that is not a socket raises
        :class:`NotASocketError` and is left alone; ``mode`` is applied at once; the
        file is removed when serving stops (on :meth:`shutdown`, before the grace
        period, so no new sender finds it).
        """
        fspath = check_unix_path(path)
        mode = check_mode(mode)
        size = check_receive_size(receive_size)
        _check_handler_nursery(handler_nursery)
        sock, socket_file = bind_unix_socket(fspath, stdlib_socket.SOCK_DGRAM, mode=mode)
        endpoint = _DatagramEndpoint(DatagramSocket(sock, size, self._counters, socket_file))
        await self._serve([endpoint], handler_nursery, task_status)

    async def serve_listeners(
        self,
        listeners: Sequence[trio.abc.Listener[Any]],
        *,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[trio.abc.Listener[Any]]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve connections from trio listeners (socket, SSL or memory listeners).

        Connections from a :class:`trio.SocketListener` reach the handler as a
        :class:`Connection`; other listeners' streams are passed as they are. The
        listeners are closed when serving stops, as :func:`trio.serve_listeners` does.
        """
        if isinstance(listeners, (str, bytes, trio.abc.Listener)) or not isinstance(
            listeners, Sequence
        ):
            raise TypeError(f"listeners must be a list of trio listeners, not {listeners!r}")
        for listener in listeners:
            if not isinstance(listener, trio.abc.Listener):
                raise TypeError(f"expected a trio.abc.Listener, got {listener!r}")
        _check_handler_nursery(handler_nursery)
        endpoints = [_ListenerEndpoint(listener) for listener in listeners]
        await self._serve(endpoints, handler_nursery, task_status)

    async def _serve(
        self,
        endpoints: Sequence[_Endpoint],
        handler_nursery: trio.Nursery | None,
        task_status: trio.TaskStatus[Any],
    ) -> None:
        started = [endpoint.reported() for endpoint in endpoints]
        run = _ServeRun(endpoints, external_nursery=handler_nursery is not None)
        server_token = _current_server.set(self)
        self._runs.add(run)
        try:
            if self._shutdown_requested:
                task_status.started(started)
                return
            async with trio.open_nursery() as own_handlers:
                handlers = own_handlers if handler_nursery is None else handler_nursery
                with run.accept_scope:
                    async with trio.open_nursery() as accepting:
                        for endpoint in endpoints:
                            accepting.start_soon(self._accept_loop, run, endpoint, handlers)
                        task_status.started(started)
                run.stop_accepting()
                # Refuse new connections during the grace period: close the listeners
                # (a wrapping one, such as trio.SSLListener, cannot be closed synchronously).
                await _close_endpoints([e for e in endpoints if not e.open_while_draining])
                await self._drain(run, own_handlers)
        finally:
            self._runs.discard(run)
            _current_server.reset(server_token)
            await _close_endpoints(endpoints)

    async def _drain(self, run: _ServeRun, own_handlers: trio.Nursery) -> None:
        """Give running handlers the grace period, then cancel the ones left."""
        if run.active == 0:
            return
        run.drained = trio.Event()
        grace = self.options.grace_period
        LOGGER.info("shutting down: waiting up to %s s for %d handlers", grace, run.active)
        with trio.move_on_after(grace):
            await run.drained.wait()
        if run.active == 0:
            return
        LOGGER.info("grace period over: cancelling %d handlers", run.active)
        run.grace_over = True
        if not run.external_nursery:
            own_handlers.cancel_scope.cancel()  # its exit waits for the handlers
            return
        for scope in run.handler_scopes:
            scope.cancel()
        await run.drained.wait()

    async def _accept_loop(
        self, run: _ServeRun, endpoint: _Endpoint, handlers: trio.Nursery
    ) -> None:
        try:
            if isinstance(endpoint, _SocketEndpoint):
                await self._accept_sockets(run, endpoint, handlers)
            elif isinstance(endpoint, _DatagramEndpoint):
                await self._receive_datagrams(run, endpoint.socket, handlers)
            else:
                assert isinstance(endpoint, _ListenerEndpoint)
                await self._accept_streams(run, endpoint, handlers)
        except (trio.ClosedResourceError, OSError):
            if run.stopping:
                return  # shutdown() closed the listener under us
            raise

    async def _accept_sockets(
        self, run: _ServeRun, endpoint: _SocketEndpoint, handlers: trio.Nursery
    ) -> None:
        """The accept loop for sockets we opened: accept directly, in bursts."""
        listen_sock = endpoint.sock
        slots = self._slots
        tcp = endpoint.tcp
        backoff = ACCEPT_BACKOFF_MIN
        burst = 0
        while True:
            if slots is not None:
                try:
                    slots.acquire_nowait()
                except trio.WouldBlock:
                    await slots.acquire()
                    burst = 0
            try:
                while True:
                    try:
                        sock, address = listen_sock.accept()
                        break
                    except BlockingIOError:
                        await wait_readable(listen_sock)
                        burst = 0
                    except OSError as exc:
                        if exc.errno not in ACCEPT_SURVIVABLE_ERRNOS:
                            raise
                        backoff = await self._back_off(exc, backoff)
                        burst = 0
            except BaseException:
                if slots is not None:
                    slots.release()
                raise
            backoff = ACCEPT_BACKOFF_MIN
            if tcp:
                _set_nodelay(sock)
            self._start_handler(run, handlers, Connection(sock, address))
            burst += 1
            if burst >= ACCEPT_BURST:
                burst = 0
                await checkpoint()

    async def _accept_streams(
        self, run: _ServeRun, endpoint: _ListenerEndpoint, handlers: trio.Nursery
    ) -> None:
        """The accept loop for listeners the caller gave us."""
        slots = self._slots
        backoff = ACCEPT_BACKOFF_MIN
        while True:
            if slots is not None:
                await slots.acquire()
            try:
                while True:
                    try:
                        stream = await endpoint.accept()
                        break
                    except OSError as exc:
                        if exc.errno not in ACCEPT_SURVIVABLE_ERRNOS:
                            raise
                        backoff = await self._back_off(exc, backoff)
            except BaseException:
                if slots is not None:
                    slots.release()
                raise
            backoff = ACCEPT_BACKOFF_MIN
            self._start_handler(run, handlers, stream)

    async def _receive_datagrams(
        self, run: _ServeRun, sock: DatagramSocket, handlers: trio.Nursery
    ) -> None:
        """The receive loop: a slot, then a datagram, then a handler task for it."""
        slots = self._slots
        # The socket stays open after shutdown(), and a burst of datagrams can pass without
        # a checkpoint where the cancellation would be seen: look before each one.
        while not run.stopping:
            if slots is not None:
                try:
                    slots.acquire_nowait()  # acquire() would yield on every datagram
                except trio.WouldBlock:
                    await slots.acquire()
            try:
                datagram = await sock.receive()
            except BaseException:
                if slots is not None:
                    slots.release()
                raise
            self._start_handler(run, handlers, datagram)

    async def _back_off(self, exc: OSError, delay: float) -> float:
        """Get over a failed accept; return the next delay to wait if it fails again.

        A connection that died in the backlog is skipped at once. Running out of
        descriptors or memory waits ``delay``, or until one of our connections closes.
        """
        if exc.errno in ACCEPT_IGNORABLE_ERRNOS:
            return delay
        self._counters.accept_errors += 1
        assert exc.errno is not None
        LOGGER.warning(
            "accept failed with %s (%s); accepting again when a connection closes, or in %s s",
            errno.errorcode.get(exc.errno, exc.errno),
            os.strerror(exc.errno),
            delay,
        )
        if self._descriptor_freed.is_set():
            self._descriptor_freed = trio.Event()
        with trio.move_on_after(delay):
            await self._descriptor_freed.wait()
        return min(delay * 2, ACCEPT_BACKOFF_MAX)

    def _start_handler(self, run: _ServeRun, handlers: trio.Nursery, stream: _Request) -> None:
        counters = self._counters
        if type(stream) is Datagram:
            counters.received += 1
        else:
            counters.accepted += 1
        counters.active += 1
        run.active += 1
        scope: trio.CancelScope | None = None
        if self._needs_scope or run.external_nursery:
            scope = trio.CancelScope()
            timeout = self.options.handler_timeout
            if timeout is not None:
                scope.deadline = trio.current_time() + timeout
            run.handler_scopes.add(scope)
            if run.grace_over:
                scope.cancel()
        try:
            handlers.start_soon(self._run_handler, run, stream, scope)
        except BaseException:
            self._handler_done(run, scope)
            if isinstance(stream, Connection):
                stream.close()
            raise

    def _handler_done(self, run: _ServeRun, scope: trio.CancelScope | None) -> None:
        self._counters.active -= 1
        run.handler_finished(scope)
        if self._slots is not None:
            self._slots.release()
        self._descriptor_freed.set()

    async def _run_handler(
        self, run: _ServeRun, stream: _Request, scope: trio.CancelScope | None
    ) -> None:
        try:
            if scope is None:
                await self._call_handler(stream)
            else:
                with scope:
                    idle_timeout = self.options.idle_timeout
                    if idle_timeout is not None and type(stream) is Connection:
                        stream.watch_idle(IdleWatch(scope, idle_timeout))
                    await self._call_handler(stream)
                if scope.cancelled_caught:
                    self._note_stopped(run, stream, scope)
        except BaseException:
            self._counters.cancelled += 1
            raise
        finally:
            try:
                # type() rather than isinstance(): Connection's ABC metaclass makes
                # isinstance() slow, and this runs for every connection and datagram.
                if type(stream) is Connection:
                    stream.close()
                elif not isinstance(stream, Datagram):
                    await trio.aclose_forcefully(stream)  # re-raises an outer Cancelled
            finally:
                self._handler_done(run, scope)

    async def _call_handler(self, stream: _Request) -> None:
        """Run the handler; log and count what it raises, let cancellation through."""
        try:
            await self.handler(stream)
        except BaseException as exc:
            failure, rest = split_handler_error(exc)
            if failure is not None and is_peer_gone(failure):
                self._counters.disconnected += 1
                LOGGER.info(
                    "connection from %s broken: %s",
                    describe_origin(stream),
                    failure,
                )
            elif failure is not None:
                self._counters.failed += 1
                LOGGER.error(
                    "handler %r failed on %s from %s",
                    self.handler,
                    "a datagram" if isinstance(stream, Datagram) else "a connection",
                    describe_origin(stream),
                    exc_info=failure,
                )
                for watcher in self._failure_watchers:
                    watcher(failure)
            if rest is exc:
                raise
            if rest is not None:
                raise rest from None
        else:
            self._counters.completed += 1

    def _note_stopped(self, run: _ServeRun, stream: _Request, scope: trio.CancelScope) -> None:
        if run.grace_over:
            self._counters.cancelled += 1
            return
        self._counters.timed_out += 1
        if isinstance(stream, Datagram):
            LOGGER.info(
                "handler for a datagram from %s cancelled: handler_timeout expired",
                describe_origin(stream),
            )
            return
        # An idle watch puts the handler's own deadline back after every receive.
        which = "handler_timeout" if trio.current_time() >= scope.deadline else "idle_timeout"
        LOGGER.info(
            "connection from %s closed: %s expired",
            describe_origin(stream),
            which,
        )
