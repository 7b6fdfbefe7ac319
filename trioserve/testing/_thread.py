"""`serve_in_thread`: a test server in a background thread, for tests of blocking code."""

from __future__ import annotations

import contextlib
import math
import socket as stdlib_socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol, runtime_checkable

import attrs
import trio

from .._handlers import Handler
from .._stats import ServerStats
from ._failures import handler_errors_group
from ._kinds import (
    DATAGRAM_KINDS,
    TEST_GRACE_PERIOD,
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
from ._open import TestServer, UnixPath, open_test_server

#: How often a socketserver-style ``serve_forever`` checks for ``shutdown()``; the
#: standard library's default (0.5 s) would add that much to every test's teardown.
POLL_INTERVAL = 0.05

#: Seconds a blocking client socket from :meth:`ThreadedTestServer.connect` waits for
#: any one operation before raising, so a broken server fails a test instead of hanging it.
CLIENT_TIMEOUT = 10.0

#: The kinds serve_in_thread offers: memory streams cannot cross to another thread.
THREAD_KINDS = ("tcp", "unix", "udp", "unix-datagram")


@runtime_checkable
class SocketServerLike(Protocol):
    """What :func:`serve_in_thread` needs from a ``socketserver``-style server."""

    server_address: Any

    def serve_forever(self, poll_interval: float = ...) -> None: ...
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


_STREAM_KIND = {stdlib_socket.AF_UNIX: "unix"}
_DATAGRAM_KIND = {stdlib_socket.AF_UNIX: "unix-datagram"}


def _kind_of(target: SocketServerLike) -> Kind:
    sock = getattr(target, "socket", None)
    if not isinstance(sock, stdlib_socket.socket):
        return "tcp" if isinstance(target.server_address, tuple) else "unix"
    if sock.type == stdlib_socket.SOCK_DGRAM:
        return _DATAGRAM_KIND.get(sock.family, "udp")  # type: ignore[return-value]
    return _STREAM_KIND.get(sock.family, "tcp")  # type: ignore[return-value]


@attrs.define(eq=False)
class ThreadedTestServer(AddressParts):
    """A server running in a background thread, as :func:`serve_in_thread` yields it.

    Attributes:
        kind: "tcp", "unix", "udp" or "unix-datagram".
        address: ``(host, port)`` or the socket path, ready for a blocking client.
        target: The handler or the ``socketserver``-style server being served.
        handler_errors: What the handlers raised so far, oldest first.
    """

    __test__: ClassVar[bool] = False  # not a test class, whatever its name says to pytest

    kind: Kind
    address: Address
    target: object
    handler_errors: list[Exception]
    _in_trio: TestServer | None = None
    _token: trio.lowlevel.TrioToken | None = None
    _sockets: list[stdlib_socket.socket] = attrs.field(factory=list)
    _temp_dir: str | None = None
    _stopped: bool = False

    @property
    def stats(self) -> ServerStats:
        """The trioserve server's counters, read in its own thread (final ones after exit).

        Raises:
            AttributeError: The target is a ``socketserver``-style server.
        """
        if self._in_trio is None or self._token is None:
            raise AttributeError("stats are kept by trioserve servers only")
        server = self._in_trio.server
        if self._stopped:
            return server.stats
        return trio.from_thread.run_sync(lambda: server.stats, trio_token=self._token)

    def connect(self, *, timeout: float | None = CLIENT_TIMEOUT) -> stdlib_socket.socket:
        """Open a blocking client connection to a tcp or unix server.

        The socket is closed when the context exits, if the test has not closed it.

        Raises:
            TypeError: The server serves datagrams (use :meth:`open_datagram_socket`).
            OSError: The connection failed.
        """
        if self.kind in DATAGRAM_KINDS:
            raise TypeError(
                f"a {self.kind} test server takes datagrams: use open_datagram_socket()"
            )
        if isinstance(self.address, tuple):
            sock = stdlib_socket.create_connection(self.address, timeout=timeout)
        else:
            sock = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self.path)
            except BaseException:
                sock.close()
                raise
        self._sockets.append(sock)
        return sock

    def open_datagram_socket(
        self, *, timeout: float | None = CLIENT_TIMEOUT
    ) -> stdlib_socket.socket:
        """Open a blocking datagram socket connected to a udp or unix-datagram server.

        A unix-datagram client is bound to a path of its own in a temporary directory,
        so that replies can reach it. The socket is closed when the context exits.

        Raises:
            TypeError: The server serves streams (use :meth:`connect`).
        """
        if self.kind not in DATAGRAM_KINDS:
            raise TypeError(f"a {self.kind} test server takes connections: use connect()")
        if isinstance(self.address, tuple):
            host = self.address[0]
            family = stdlib_socket.AF_INET6 if ":" in host else stdlib_socket.AF_INET
            sock = stdlib_socket.socket(family, stdlib_socket.SOCK_DGRAM)
        else:
            sock = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)
        try:
            sock.settimeout(timeout)
            if not isinstance(self.address, tuple):
                if self._temp_dir is None:
                    self._temp_dir = make_temp_dir()
                sock.bind(unix_path(self._temp_dir, f"client-{len(self._sockets)}.sock"))
            sock.connect(self.address if isinstance(self.address, tuple) else self.path)
        except BaseException:
            sock.close()
            raise
        self._sockets.append(sock)
        return sock

    def _hang_up_clients(self) -> None:
        """Send EOF on every client the test left open (see :meth:`_close_clients`)."""
        for sock in self._sockets:
            if sock.type == stdlib_socket.SOCK_STREAM:
                with contextlib.suppress(OSError):
                    sock.shutdown(stdlib_socket.SHUT_WR)

    def _close_clients(self, drain_timeout: float) -> None:
        """Close the clients, after reading what the server still sends.

        Closing a socket with unread bytes sends a reset, which the handler would see as
        a broken connection and the test as a handler error; so each stream socket reads
        until the server closes its end (or ``drain_timeout`` passes) before it closes.
        """
        for sock in self._sockets:
            try:
                if sock.type == stdlib_socket.SOCK_STREAM and sock.fileno() != -1:
                    sock.settimeout(None if math.isinf(drain_timeout) else drain_timeout)
                    while sock.recv(65536):
                        pass
            except OSError:
                pass  # reset, timed out, or closed by the test: close it all the same
            finally:
                sock.close()
        if self._temp_dir is not None:
            remove_dir(self._temp_dir)


@attrs.define(eq=False)
class _Runner:
    """The background thread and what it reports back."""

    ready: threading.Event = attrs.field(factory=threading.Event)
    handle: ThreadedTestServer | None = None
    crash: BaseException | None = None
    stop: Callable[[], None] | None = None
    thread: threading.Thread | None = None

    def start(self, name: str, main: Callable[[], None]) -> None:
        def run() -> None:
            try:
                main()
            except BaseException as exc:
                self.crash = exc
            finally:
                self.ready.set()

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def request_stop(self) -> None:
        """Ask the server to stop (once it started); only the first call does anything."""
        self.ready.wait()
        stop, self.stop = self.stop, None
        if stop is not None:
            stop()

    def finish(self) -> None:
        """Stop the server and join the thread."""
        assert self.thread is not None
        self.request_stop()
        self.thread.join()


def _run_trioserve(
    runner: _Runner, handler: Handler, kind: Kind, options: dict[str, Any]
) -> Callable[[], None]:
    stop = trio.Event()

    async def main() -> None:
        async with open_test_server(handler, kind=kind, **options) as test_server:
            token = trio.lowlevel.current_trio_token()
            runner.handle = ThreadedTestServer(
                kind=kind,
                address=test_server.address,
                target=handler,
                handler_errors=test_server.handler_errors,
                in_trio=test_server,
                token=token,
            )

            def request_stop() -> None:
                # A run that already ended (it crashed) has nothing left to stop.
                with contextlib.suppress(trio.RunFinishedError):
                    trio.from_thread.run_sync(stop.set, trio_token=token)

            runner.stop = request_stop
            runner.ready.set()
            await stop.wait()

    return lambda: trio.run(main)


def _run_socketserver(runner: _Runner, target: SocketServerLike) -> Callable[[], None]:
    handle = ThreadedTestServer(
        kind=_kind_of(target),
        address=_address_of(target.server_address),
        target=target,
        handler_errors=[],
    )
    runner.handle = handle

    def main() -> None:
        runner.stop = target.shutdown
        runner.ready.set()
        # shutdown() waits for serve_forever to end, so it must not run before serve_forever
        # starts: `ready` is set only once nothing stands between this thread and the call.
        target.serve_forever(poll_interval=POLL_INTERVAL)

    return main


def _address_of(server_address: Any) -> Address:
    if isinstance(server_address, tuple):
        return inet_address(server_address)
    if isinstance(server_address, bytes):
        return server_address.decode()
    return str(server_address)


@contextmanager
def _collecting_errors(target: object, errors: list[Exception]) -> Iterator[None]:
    """Collect what a socketserver-style server's handlers raise via its handle_error."""
    original = getattr(target, "handle_error", None)
    if original is None:
        yield
        return

    def handle_error(request: Any, client_address: Any) -> None:
        failure = sys.exc_info()[1]
        if isinstance(failure, Exception):
            errors.append(failure)
        original(request, client_address)

    target.handle_error = handle_error  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del target.handle_error  # type: ignore[attr-defined]


@contextmanager
def serve_in_thread(
    target: Handler | SocketServerLike,
    *,
    kind: Kind | None = None,
    host: str | None = None,
    path: UnixPath | None = None,
    raise_handler_errors: bool = True,
    max_connections: int | None = None,
    idle_timeout: float | None = None,
    handler_timeout: float | None = None,
    grace_period: float = TEST_GRACE_PERIOD,
) -> Iterator[ThreadedTestServer]:
    """Serve ``target`` from a background thread for the duration of a ``with`` block.

    For tests of blocking code: urllib, a socket client, a subprocess. ``target`` is
    either a trioserve handler, served with :func:`open_test_server` (same ``kind``,
    ``host``, ``path`` and options; ``kind`` defaults to "tcp") in ``trio.run`` on the
    thread, or an object with the ``socketserver`` server API (``serve_forever``,
    ``shutdown``, ``server_address``, ``server_close``; an ``adapters`` server or a
    ``socketserver.TCPServer``), whose ``serve_forever`` runs on the thread and which
    is closed with ``server_close()`` at exit.

    The block starts once the server listens. When it exits, normally, by an
    exception or by ``KeyboardInterrupt``, client sockets opened through the handle are
    closed, the server is shut down and the thread is joined, so no thread, socket or
    temporary file is left; the block's exception propagates unchanged.

    Raises:
        ExceptionGroup: At exit, with what the handlers raised (unless
            ``raise_handler_errors`` is false or the block raised). For a socketserver-style
            server these are the exceptions its ``handle_error`` was called for.
        TypeError, ValueError: An argument or option is invalid, or options were given
            with a socketserver-style server (it has its own).
        BaseException: Whatever stopped the server's thread early, at entry or at exit.

    Example::

        def test_fetch() -> None:
            with serve_in_thread(http_handler) as test_server:
                url = f"http://{test_server.host}:{test_server.port}/"
                assert urllib.request.urlopen(url).status == 200
    """
    runner = _Runner()
    collecting: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if isinstance(target, SocketServerLike):
        _refuse_options(
            target,
            kind=kind,
            host=host,
            path=path,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            handler_timeout=handler_timeout,
            grace_period=None if grace_period == TEST_GRACE_PERIOD else grace_period,
        )
        main = _run_socketserver(runner, target)
        assert runner.handle is not None
        collecting = _collecting_errors(target, runner.handle.handler_errors)
        name = f"trioserve test server for {type(target).__name__}"
    else:
        checked_kind = check_kind(kind or "tcp", allowed=THREAD_KINDS)
        check_host_and_path(checked_kind, host, path)
        options: dict[str, Any] = {
            "host": host,
            "path": path,
            "raise_handler_errors": False,
            "max_connections": max_connections,
            "idle_timeout": idle_timeout,
            "handler_timeout": handler_timeout,
            "grace_period": grace_period,
        }
        main = _run_trioserve(runner, target, checked_kind, options)
        name = f"trioserve test server ({checked_kind})"
    raised: BaseException | None = None
    with collecting:
        try:
            runner.start(name, main)
            runner.ready.wait()
            if runner.handle is None or runner.stop is None:
                assert runner.crash is not None
                raise runner.crash
            handle = runner.handle
            try:
                yield handle
            finally:
                handle._hang_up_clients()
                if isinstance(target, SocketServerLike):
                    # shutdown() waits for the request in hand: let it see its EOF first.
                    handle._close_clients(CLIENT_TIMEOUT)
                    runner.finish()
                else:
                    runner.request_stop()
                    handle._close_clients(grace_period + CLIENT_TIMEOUT)
        except BaseException as exc:
            raised = exc
        finally:
            runner.finish()
            if runner.handle is not None:
                runner.handle._stopped = True
            if isinstance(target, SocketServerLike):
                target.server_close()
    if raised is not None:
        raise raised
    if runner.crash is not None:
        raise runner.crash
    assert runner.handle is not None
    failures = list(runner.handle.handler_errors)
    if failures and raise_handler_errors:
        raise handler_errors_group(failures, describe(runner.handle.kind, runner.handle.address))


def _refuse_options(target: object, **given: object) -> None:
    extra = [name for name, value in given.items() if value is not None]
    if extra:
        raise TypeError(
            f"{', '.join(extra)} apply to trioserve handlers, not to the server object {target!r}"
        )


class StartThreadedTestServer(Protocol):
    """The ``trioserve_thread_server`` fixture: takes :func:`serve_in_thread`'s arguments."""

    def __call__(
        self, target: Handler | SocketServerLike, /, **options: Any
    ) -> ThreadedTestServer: ...
