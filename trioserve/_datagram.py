"""Datagrams: what a datagram handler is given, and the socket they arrive on."""

from __future__ import annotations

import errno
import math
import socket as stdlib_socket
from typing import Any

import attrs
import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    notify_closing,
    wait_readable,
    wait_writable,
)

from ._connection import CLOSED_ERRNOS
from ._errors import NoReplyAddressError
from ._handlers import LOGGER, describe_peer
from ._stats import Counters
from ._unix import SocketFile

#: The largest datagram handed to a handler unless ``receive_size`` says otherwise:
#: every UDP datagram over IPv4 fits (65,507 bytes of payload at most).
DEFAULT_RECEIVE_SIZE = 65536

#: The largest ``receive_size`` allowed: every receive allocates that much first, and
#: no datagram socket carries more (a Unix datagram is bounded by the send buffer).
MAX_RECEIVE_SIZE = 16 * 1024 * 1024

#: Datagrams received in a row without waiting before the receive loop yields to the
#: handlers it started (a checkpoint per datagram would add a trip through the
#: scheduler to every one of them).
RECEIVE_BURST = 16

#: At most one warning about dropped (oversized) datagrams per socket in this many
#: seconds, so a sender of large datagrams cannot flood the log; stats count them all.
DROP_WARNING_INTERVAL = 10.0

#: recvmsg() errors that report on an earlier datagram (an ICMP error, on systems that
#: deliver them to unconnected sockets), not on the socket: receive the next one.
RECEIVE_IGNORABLE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNREFUSED",
        "ECONNRESET",
        "EHOSTUNREACH",
        "ENETUNREACH",
        "EHOSTDOWN",
        "ENETDOWN",
        "ENONET",
        "EPROTO",
    )
    if hasattr(errno, name)
)

#: sendto() fails for want of room that no poll announces: EAGAIN from a Unix datagram
#: peer whose receive queue is full (the socket polls writable all along), or ENOBUFS
#: from a full interface queue (BSDs, macOS). reply() then tries again after a wait
#: that grows from the first value to the second.
REPLY_RETRY_MIN = 0.001
REPLY_RETRY_MAX = 0.05

#: Queued socket errors read at most after one error report (see _discard_error_queue).
ERROR_QUEUE_READS = 64

_MSG_ERRQUEUE: int = getattr(stdlib_socket, "MSG_ERRQUEUE", 0)

#: A plain int: testing flags against the enum member costs an enum operation per datagram.
_MSG_TRUNC = int(stdlib_socket.MSG_TRUNC)


def check_receive_size(receive_size: object) -> int:
    if isinstance(receive_size, bool) or not isinstance(receive_size, int):
        raise TypeError(f"receive_size must be an int, not {receive_size!r}")
    if not 1 <= receive_size <= MAX_RECEIVE_SIZE:
        raise ValueError(
            f"receive_size must be between 1 and {MAX_RECEIVE_SIZE} bytes, not {receive_size!r}"
        )
    return receive_size


def _short_repr(data: bytes) -> str:
    if len(data) <= 32:
        return repr(data)
    return f"{data[:32]!r}... ({len(data)} bytes)"


@attrs.frozen(eq=False)
class Datagram:
    """One received datagram, as a datagram handler gets it.

    The server makes one per datagram and runs ``handler(datagram)`` in a task of its
    own. Nothing needs closing: the socket belongs to the server, which keeps it open
    until every handler it started has finished, so :meth:`reply` works during the
    grace period of a graceful shutdown too.

    Attributes:
        data: The datagram's bytes, whole (``b""`` for an empty datagram): a datagram
            larger than the server's ``receive_size`` is dropped, never cut short.
        remote_address: The sender: ``(host, port)`` (IPv6: ``(host, port, flowinfo,
            scope_id)``), or a Unix path (``None`` or ``""`` when the sender is unbound).
        local_address: The address of the socket it arrived on; for a socket bound to
            every interface, that is the wildcard address (``0.0.0.0`` or ``::``).

    Example::

        async def handler(datagram: trioserve.Datagram) -> None:
            await datagram.reply(datagram.data.upper())
    """

    data: bytes = attrs.field(repr=_short_repr)
    remote_address: Any
    local_address: Any
    _sock: stdlib_socket.socket = attrs.field(repr=False, alias="sock")

    async def reply(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` to the sender as one datagram, from the socket this one came in on.

        Delivery is best effort, as for any datagram: a reply that was sent may still be
        lost. If the kernel has no room for it right now (``EAGAIN``, ``ENOBUFS``), this
        waits until it has; for a Unix peer that does not read its replies, that is as
        long as the handler may run: bound it with ``handler_timeout``. It is a
        checkpoint.

        Errors never reach the server: one the handler does not catch fails this
        handler only (logged and counted); the server serves on.

        Raises:
            NoReplyAddressError: The sender is a Unix datagram socket bound to no path,
                so there is nowhere to send to (an ``OSError`` with ``EDESTADDRREQ``).
            trio.ClosedResourceError: The server's socket is closed: the server was
                stopped (hard) while this handler went on in a nursery of its own.
            OSError: The kernel refused the datagram, for example
                ``ConnectionRefusedError`` or ``FileNotFoundError`` when a Unix sender
                has gone away, or ``EMSGSIZE`` when ``data`` is too large to send.
        """
        address = self.remote_address
        if not address:
            raise NoReplyAddressError(
                errno.EDESTADDRREQ,
                "cannot reply: the sender is a Unix socket bound to no path "
                "(bind the client's socket to receive replies)",
            )
        await checkpoint_if_cancelled()
        sock = self._sock
        retry = REPLY_RETRY_MIN
        while True:
            try:
                sock.sendto(data, address)
                break
            except BlockingIOError:
                if sock.family != stdlib_socket.AF_UNIX:
                    try:
                        await wait_writable(sock)  # the send buffer drains on its own
                        continue
                    except trio.BusyResourceError:
                        pass  # another handler waits for room already: try again later
            except OSError as exc:
                if exc.errno in CLOSED_ERRNOS:
                    raise trio.ClosedResourceError("the server's socket was closed") from None
                if exc.errno != errno.ENOBUFS:
                    raise
            await trio.sleep(retry)
            retry = min(retry * 2, REPLY_RETRY_MAX)
        await cancel_shielded_checkpoint()


@attrs.define(eq=False)
class DatagramSocket:
    """A bound datagram socket a server receives on and its handlers reply from.

    It owns ``sock`` (and ``socket_file``, for a Unix path): :meth:`close` closes both.

    Args:
        sock: A bound ``SOCK_DGRAM`` socket from the standard library, non-blocking.
        receive_size: The largest datagram to accept; larger ones are dropped.
        counters: The server's counters (``dropped`` counts the oversized datagrams).
        socket_file: The Unix socket file ``sock`` is bound to, if any.
    """

    sock: stdlib_socket.socket
    receive_size: int
    counters: Counters
    socket_file: SocketFile | None = None
    trio_socket: trio.socket.SocketType = attrs.field(init=False)
    local_address: Any = attrs.field(init=False)
    _burst: int = attrs.field(default=0, init=False)
    _unreported_drops: int = attrs.field(default=0, init=False)
    _next_drop_warning: float = attrs.field(default=-math.inf, init=False)

    def __attrs_post_init__(self) -> None:
        self.trio_socket = trio.socket.from_stdlib_socket(self.sock)
        self.local_address = self.sock.getsockname()

    async def receive(self) -> Datagram:
        """Wait for the next datagram that fits in ``receive_size`` and return it.

        Oversized datagrams are dropped, counted and (at most every
        ``DROP_WARNING_INTERVAL`` seconds) logged. A checkpoint at least once every
        ``RECEIVE_BURST`` datagrams, rather than on every call.

        Raises:
            trio.ClosedResourceError: The socket was closed.
            OSError: The socket failed.
        """
        sock = self.sock
        size = self.receive_size
        while True:
            if self._burst >= RECEIVE_BURST:
                self._burst = 0
                await checkpoint()
            try:
                data, _, flags, address = sock.recvmsg(size)
            except BlockingIOError:
                self._burst = 0
                await wait_readable(sock)
                continue
            except OSError as exc:
                if exc.errno not in RECEIVE_IGNORABLE_ERRNOS:
                    raise
                self._discard_error_queue()
                self._burst += 1
                continue
            self._burst += 1
            if flags & _MSG_TRUNC:
                self._drop(address)
                continue
            return Datagram(data, address, self.local_address, sock)

    def _discard_error_queue(self) -> None:
        # With IP_RECVERR (Linux) an ICMP error also waits in the socket's error queue,
        # which keeps the socket polling readable: the loop would spin until it is read.
        if not _MSG_ERRQUEUE:
            return  # no error queue on this system
        for _ in range(ERROR_QUEUE_READS):
            try:
                self.sock.recvmsg(1, 512, _MSG_ERRQUEUE)
            except OSError:
                return

    def _drop(self, address: Any) -> None:
        self.counters.dropped += 1
        self._unreported_drops += 1
        now = trio.current_time()
        if now < self._next_drop_warning:
            return
        more = self._unreported_drops - 1
        LOGGER.warning(
            "dropped a datagram from %s: larger than receive_size (%d bytes)%s",
            describe_peer(address),
            self.receive_size,
            f"; {more} more dropped since the last warning" if more else "",
        )
        self._unreported_drops = 0
        self._next_drop_warning = now + DROP_WARNING_INTERVAL

    def stop_receiving(self) -> None:
        """Let no new sender find the socket: remove its Unix socket file, if any.

        The socket itself stays open for the replies of handlers still running.
        """
        if self.socket_file is not None:
            self.socket_file.remove()

    def close(self) -> None:
        """Close the socket (tasks waiting on it get ClosedResourceError) and remove its file."""
        if self.sock.fileno() != -1:
            notify_closing(self.sock)
            self.sock.close()
        self.stop_receiving()
