"""The stream a stream handler is given: :class:`Connection`."""

from __future__ import annotations

import errno
import socket as stdlib_socket
from typing import Any, final

import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    notify_closing,
    wait_readable,
    wait_writable,
)

#: Bytes :meth:`Connection.receive_some` asks the kernel for when no size is given.
DEFAULT_RECEIVE_SIZE = 65536

#: errno values that mean the socket itself is gone (closed under us).
CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


def _stream_error(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    if exc.errno in CLOSED_ERRNOS:
        return trio.ClosedResourceError("the connection was already closed")
    return trio.BrokenResourceError(f"connection broken: {exc}")


class IdleWatch:
    """Cancels a handler whose connection waits too long for bytes from the peer.

    The server makes one per connection when ``idle_timeout`` is set. Before each
    receive it pulls the deadline of the handler's cancel scope in to ``now +
    idle_timeout``; afterwards it puts the handler's own deadline back. A receive that
    outlasts the idle timeout therefore cancels the whole handler, as ``idle_timeout``
    promises, without a cancel scope per receive.
    """

    __slots__ = ("handler_deadline", "scope", "timeout")

    def __init__(self, scope: trio.CancelScope, timeout: float) -> None:
        self.scope = scope
        self.timeout = timeout
        self.handler_deadline = scope.deadline

    def arm(self) -> None:
        self.scope.deadline = min(self.handler_deadline, trio.current_time() + self.timeout)

    def disarm(self) -> None:
        self.scope.deadline = self.handler_deadline


@final
class Connection(trio.abc.HalfCloseableStream):
    """A connected stream socket, as a :class:`trio.abc.HalfCloseableStream`.

    The server makes one for every connection it accepts and closes it when the
    handler returns, raises or is cancelled; a handler may close it earlier. It can be
    wrapped like any trio stream (:class:`trio.SSLStream`, h11, ...).

    Every async method is a checkpoint, and a cancelled :meth:`receive_some` loses no
    data. Socket errors become :class:`trio.BrokenResourceError` (the ``OSError`` is the
    ``__cause__``); use after :meth:`aclose` raises :class:`trio.ClosedResourceError`.

    Args:
        sock: A connected ``SOCK_STREAM`` socket from the standard library; the
            connection takes it over, makes it non-blocking and closes it in the end.
        remote_address: The peer's address as ``accept()`` returned it, or ``None`` to
            ask the socket.

    Example::

        async def handler(conn: trioserve.Connection) -> None:
            async for data in conn:
                await conn.send_all(data)
    """

    __slots__ = (
        "_drained",
        "_eof_sent",
        "_idle",
        "_local_address",
        "_raw",
        "_receiving",
        "_remote_address",
        "_sending",
        "_trio_socket",
    )

    def __init__(self, sock: stdlib_socket.socket, remote_address: Any = None) -> None:
        if not isinstance(sock, stdlib_socket.socket):
            raise TypeError(f"expected a socket.socket, got {sock!r}")
        if sock.type != stdlib_socket.SOCK_STREAM:
            raise ValueError(f"expected a SOCK_STREAM socket, got {sock!r}")
        sock.setblocking(False)
        self._raw = sock
        self._remote_address = remote_address
        self._local_address: Any = None
        self._trio_socket: trio.socket.SocketType | None = None
        self._idle: IdleWatch | None = None
        self._sending = False
        self._receiving = False
        self._eof_sent = False
        self._drained = False

    @classmethod
    def from_trio_socket(
        cls, sock: trio.socket.SocketType, remote_address: Any = None
    ) -> Connection:
        """Take over a connected trio socket: ``sock`` itself is detached and unusable after."""
        family, type_, proto = sock.family, sock.type, sock.proto
        raw = stdlib_socket.socket(family, type_, proto, fileno=sock.detach())
        return cls(raw, remote_address)

    @property
    def socket(self) -> trio.socket.SocketType:
        """The trio socket underneath (the same descriptor; closing it closes the connection)."""
        if self._trio_socket is None:
            self._trio_socket = trio.socket.from_stdlib_socket(self._raw)
        return self._trio_socket

    @property
    def remote_address(self) -> Any:
        """The peer's address: ``(host, port, ...)`` for TCP, a path (often ``''``) for Unix."""
        if self._remote_address is None:
            self._remote_address = self._raw.getpeername()
        return self._remote_address

    @property
    def local_address(self) -> Any:
        """The address the connection arrived on."""
        if self._local_address is None:
            self._local_address = self._raw.getsockname()
        return self._local_address

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        """Set a socket option, as :meth:`trio.SocketStream.setsockopt` does."""
        self._raw.setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int, buffersize: int = 0) -> int | bytes:
        """Read a socket option, as :meth:`trio.SocketStream.getsockopt` does."""
        if buffersize:
            return self._raw.getsockopt(level, option, buffersize)
        return self._raw.getsockopt(level, option)

    def watch_idle(self, watch: IdleWatch | None) -> None:
        """Apply an idle timeout to every later receive (the server calls this)."""
        self._idle = watch

    def _check_open(self) -> None:
        if self._raw.fileno() == -1:
            raise trio.ClosedResourceError("the connection was already closed")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of ``data``; wait while the kernel's send buffer is full.

        Raises:
            trio.BusyResourceError: Another task is sending on this connection.
            trio.ClosedResourceError: The connection was closed.
            trio.BrokenResourceError: The peer went away or the socket failed.
        """
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this connection")
        self._sending = True
        try:
            await checkpoint_if_cancelled()
            if self._eof_sent:
                raise trio.ClosedResourceError("cannot send after send_eof()")
            sock = self._raw
            waited = False
            if not data:
                self._check_open()  # no send() to find out
                sent = 0
            else:
                try:
                    sent = sock.send(data)  # EBADF (closed) becomes ClosedResourceError
                except BlockingIOError:
                    sent = 0
            if sent < len(data):
                with memoryview(data) as view:
                    while sent < len(view):
                        try:
                            sent += sock.send(view[sent:])
                        except BlockingIOError:
                            waited = True
                            await wait_writable(sock)
            if not waited:
                await cancel_shielded_checkpoint()
            # Other tasks ran meanwhile: an answer to what we sent may be waiting now.
            self._drained = False
        except OSError as exc:
            raise _stream_error(exc) from exc
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the kernel's send buffer has room."""
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this connection")
        self._sending = True
        try:
            self._check_open()
            await wait_writable(self._raw)
        except OSError as exc:
            raise _stream_error(exc) from exc
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        """Shut down the sending half (``SHUT_WR``); receiving goes on. Idempotent."""
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this connection")
        self._sending = True
        try:
            await checkpoint()
            self._check_open()
            if not self._eof_sent:
                self._raw.shutdown(stdlib_socket.SHUT_WR)
                self._eof_sent = True
        except OSError as exc:
            raise _stream_error(exc) from exc
        finally:
            self._sending = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` bytes (64 KiB by default); ``b""`` means end of stream.

        With ``idle_timeout`` set, waiting here longer than that cancels the handler.
        """
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        elif max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes!r}")
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this connection")
        self._receiving = True
        try:
            sock = self._raw
            if self._drained:
                self._check_open()  # recv() would find out, but waiting first would not
                # The last receive emptied the kernel's buffer, so a recv() now would
                # almost surely fail with EAGAIN: wait for the socket to be readable.
                data = await self._receive_when_readable(sock, max_bytes)
            else:
                await checkpoint_if_cancelled()
                try:
                    data = sock.recv(max_bytes)
                except BlockingIOError:
                    data = await self._receive_when_readable(sock, max_bytes)
                else:
                    await cancel_shielded_checkpoint()
            self._drained = len(data) < max_bytes
            return data
        except OSError as exc:
            raise _stream_error(exc) from exc
        finally:
            self._receiving = False

    async def _receive_when_readable(self, sock: stdlib_socket.socket, max_bytes: int) -> bytes:
        idle = self._idle
        if idle is not None:
            idle.arm()
        try:
            while True:
                await wait_readable(sock)
                try:
                    return sock.recv(max_bytes)
                except BlockingIOError:
                    pass
        finally:
            if idle is not None:
                idle.disarm()

    async def aclose(self) -> None:
        """Close the connection at once (no lingering); waiting tasks get ClosedResourceError."""
        self.close()
        await checkpoint()

    def close(self) -> None:
        """Close the connection synchronously; closing twice is harmless."""
        if self._raw.fileno() != -1:
            notify_closing(self._raw)
            self._raw.close()
