"""Counters a server keeps, and the frozen snapshot :attr:`Server.stats` returns."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class ServerStats:
    """A snapshot of a server's counters, taken when :attr:`Server.stats` was read.

    Attributes:
        active: Handlers running now.
        accepted: Connections accepted (stream servers) since the server was made.
        received: Datagrams received and handed to a handler (datagram servers).
        completed: Handlers that returned.
        failed: Handlers that raised an exception (each one logged with its traceback).
        disconnected: Handlers that ended with the peer gone: they raised
            ``trio.BrokenResourceError`` or a connection reset / broken pipe (logged in
            one line at INFO, without a traceback).
        timed_out: Handlers cancelled by ``idle_timeout`` or ``handler_timeout``.
        cancelled: Handlers cancelled by shutdown: at the end of the grace period, or
            by a hard stop.
        dropped: Datagrams dropped without a handler (too large for the receive buffer).
        accept_errors: Times accepting failed for want of descriptors or memory and the
            server backed off.
    """

    active: int = 0
    accepted: int = 0
    received: int = 0
    completed: int = 0
    failed: int = 0
    disconnected: int = 0
    timed_out: int = 0
    cancelled: int = 0
    dropped: int = 0
    accept_errors: int = 0


@attrs.define(eq=False, kw_only=True)
class Counters:
    """The live, mutable counters behind :class:`ServerStats` (one per server)."""

    active: int = 0
    accepted: int = 0
    received: int = 0
    completed: int = 0
    failed: int = 0
    disconnected: int = 0
    timed_out: int = 0
    cancelled: int = 0
    dropped: int = 0
    accept_errors: int = 0

    def snapshot(self) -> ServerStats:
        return ServerStats(**attrs.asdict(self))
