"""Request handler classes: the stdlib's calling convention, plus ``async def handle``."""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import socket
from typing import TYPE_CHECKING, Any

import trio

from ._fixup import public

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


def is_async_handler_class(handler_class: object) -> bool:
    """Whether ``handler_class`` is a class whose ``handle`` is an ``async def``.

    A :func:`functools.partial` of such a class counts too (a common way to pass a
    handler class extra arguments, as ``http.server`` does with ``directory``).
    """
    while isinstance(handler_class, functools.partial):
        handler_class = handler_class.func
    return isinstance(handler_class, type) and inspect.iscoroutinefunction(
        getattr(handler_class, "handle", None)
    )


async def run_async_handler(handler: Any) -> None:
    """Run an async handler's ``setup``, ``handle`` and ``finish`` (each may be async).

    ``finish`` runs whatever ``handle`` does, as in the stdlib; it is skipped when
    ``setup`` raises.
    """
    started = handler.setup()
    if inspect.isawaitable(started):
        await started
    try:
        await handler.handle()
    finally:
        finished = handler.finish()
        if inspect.isawaitable(finished):
            await finished


class AsyncDatagramSocket:
    """What an async datagram handler gets as ``self.request[1]``: replies without blocking.

    The server's own socket stays in blocking mode (handlers on threads share it), so
    sends use ``MSG_DONTWAIT`` and wait with trio when the socket buffer is full.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    @property
    def family(self) -> int:
        return self._sock.family

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    async def sendto(self, data: ReadableBuffer, address: Any) -> int:
        """Send one datagram to ``address``; return the number of bytes sent."""
        while True:
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                return self._sock.sendto(data, socket.MSG_DONTWAIT, address)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._sock)


@public
class BaseRequestHandler:
    """The base class of request handlers: one instance per request.

    The constructor stores ``request``, ``client_address`` and ``server``, then calls
    :meth:`setup`, :meth:`handle` and :meth:`finish` (``finish`` even when ``handle``
    raises; not when ``setup`` raises). What ``handle`` raises reaches the server, which
    passes an :class:`Exception` to its ``handle_error``.

    A subclass whose ``handle`` is an ``async def`` runs as a trio task in the server's
    event loop, without a thread: the constructor then only stores the attributes and
    the server awaits ``setup``/``handle``/``finish`` (``setup`` and ``finish`` may be
    sync or async). For such handlers ``self.request`` is a :class:`trioserve.Connection`
    on stream servers (the trio stream native trioserve handlers get, so a handler can
    later move onto :func:`trioserve.serve_tcp` as it is) and
    ``(data, AsyncDatagramSocket)`` on datagram servers.

    Example::

        class Echo(adapters.BaseRequestHandler):
            def handle(self):
                self.request.sendall(self.request.recv(1024))
    """

    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        self.request = request
        self.client_address = client_address
        self.server = server
        if is_async_handler_class(type(self)):
            return
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    def setup(self) -> Any:
        """Called before :meth:`handle`; does nothing by default."""

    def handle(self) -> Any:
        """Serve the request; does nothing by default."""

    def finish(self) -> Any:
        """Called after :meth:`handle`, even when it raised; does nothing by default."""


class _SocketWriter(io.BufferedIOBase):
    """An unbuffered writable file over a socket: every ``write`` is a ``sendall``."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, b: ReadableBuffer, /) -> int:
        self._sock.sendall(b)
        with memoryview(b) as view:
            return view.nbytes

    def fileno(self) -> int:
        return self._sock.fileno()


@public
class StreamRequestHandler(BaseRequestHandler):
    """A handler for stream servers with ``self.rfile`` and ``self.wfile``.

    ``rfile`` is a buffered binary file reading from the connection (``rbufsize``);
    ``wfile`` sends each write at once when ``wbufsize`` is 0 (the default), else it
    is a buffered file flushed by :meth:`finish`. ``timeout`` (seconds) is applied to
    the socket and ``disable_nagle_algorithm`` sets ``TCP_NODELAY``. Both files are
    closed by :meth:`finish`; the socket is closed by the server.

    With an ``async def handle``, ``self.stream`` (also ``self.request``) is the
    connection as a :class:`trioserve.Connection`, instead of the two files.
    """

    rbufsize = -1
    wbufsize = 0
    timeout: float | None = None
    disable_nagle_algorithm = False

    def setup(self) -> None:
        self.connection = self.request
        if is_async_handler_class(type(self)):
            self.stream = self.request
            return
        if self.timeout is not None:
            self.connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = self.connection.makefile("rb", self.rbufsize)
        if self.wbufsize == 0:
            self.wfile: io.BufferedIOBase = _SocketWriter(self.connection)
        else:
            self.wfile = self.connection.makefile("wb", self.wbufsize)

    def finish(self) -> None:
        if is_async_handler_class(type(self)):
            return
        if not self.wfile.closed:
            with contextlib.suppress(OSError):  # the peer is gone: nobody to deliver to
                self.wfile.flush()
        self.wfile.close()
        self.rfile.close()


@public
class DatagramRequestHandler(BaseRequestHandler):
    """A handler for datagram servers with ``self.rfile`` and ``self.wfile``.

    ``rfile`` reads the datagram (``self.packet``); what is written to ``wfile`` is sent
    back to the client as one datagram by :meth:`finish` (an empty one if nothing was
    written, as in the stdlib). ``self.socket`` is the server's socket.
    """

    def setup(self) -> None:
        self.packet, self.socket = self.request
        self.rfile = io.BytesIO(self.packet)
        self.wfile = io.BytesIO()

    def finish(self) -> Any:
        if is_async_handler_class(type(self)):
            return self.socket.sendto(self.wfile.getvalue(), self.client_address)
        self.socket.sendto(self.wfile.getvalue(), self.client_address)
        return None
