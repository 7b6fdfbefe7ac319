"""The state of one request loop (one trio run, or one ``serve`` task) and its handlers."""

from __future__ import annotations

import contextlib
import contextvars
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import sniffio
import trio

from ._pool import HandlerPool
from ._taking import RequestTaker

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

T = TypeVar("T")

#: The server whose request loop runs the current task or handler thread (worker
#: threads get a copy of the task's context, so handlers on threads see it too).
serving: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "adapters.serving", default=None
)


@attrs.define(eq=False)
class InFlight:
    """One request being handled: its connection (to unblock it) and its thread."""

    sock: socket.socket | None
    thread: threading.Thread | None = None
    finished: trio.Event = attrs.field(factory=trio.Event)
    #: Whether a thread of the loop's HandlerPool handles it (it may outlive the loop).
    pooled: bool = False

    def unblock(self, how: int) -> None:
        """Shut down the connection (``how`` is ``SHUT_RD`` or ``SHUT_RDWR``).

        A handler blocked in ``recv`` then sees end-of-file, one blocked in ``send`` an
        error; a connection the handler already closed is left alone.
        """
        sock = self.sock
        if sock is None or sock.fileno() == -1:
            return
        with contextlib.suppress(OSError):  # closed or never connected: nothing to unblock
            sock.shutdown(how)


@attrs.frozen(eq=False)
class Caller:
    """The thread that called ``serve_forever`` or ``handle_request``, as it was before
    its trio run started: a plain server's blocking handler runs as that thread.

    trio marks the thread as running trio through sniffio's thread-local name (which
    anyio-based libraries read to pick their backend); the handler runs with the name
    the caller had. Context variables need nothing: the run's tasks see a copy of the
    caller's.
    """

    async_library: str | None

    @classmethod
    def here(cls) -> Caller:
        """The calling thread now (call before ``trio.run``)."""
        return cls(sniffio.thread_local.name)

    def call(self, fn: Callable[..., None], *args: Any) -> None:
        """``fn(*args)`` where sniffio finds the async library the caller had (normally
        none), not the trio run this thread is inside."""
        running = sniffio.thread_local.name
        sniffio.thread_local.name = self.async_library
        try:
            fn(*args)
        finally:
            sniffio.thread_local.name = running


@attrs.define(eq=False)
class Run:
    """A request loop in progress: where its handler tasks run and how to stop it."""

    token: trio.lowlevel.TrioToken
    thread_id: int
    handlers: trio.Nursery
    background: trio.Nursery
    stoppable: bool
    #: Set when the run is the server's own (serve_forever, handle_request): then a plain
    #: server's blocking handler runs in the loop's thread, as this caller, as in the stdlib.
    caller: Caller | None = None
    loop_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    in_flight: set[InFlight] = attrs.field(factory=set)
    idle: trio.Event = attrs.field(factory=trio.Event)
    child_exited: trio.Event = attrs.field(factory=trio.Event)
    #: The connection of the handler running in the loop's thread (``inline``), if any.
    inline_request: socket.socket | None = None
    #: The threads of ThreadingMixIn's handlers (a ``HandlerPool``), once one is needed.
    pool: HandlerPool | None = None
    #: Lets ThreadingMixIn's handler threads take ready requests themselves, if they may.
    taker: RequestTaker | None = None
    #: Whether requests may still be taken (false once the loop is told to stop).
    taking: bool = True
    #: What a handler thread's get_request or verify_request raised: the loop raises it.
    error: BaseException | None = None
    #: Set once the loop takes no more requests (handlers may still run).
    loop_stopped: threading.Event = attrs.field(factory=threading.Event)
    #: Whether the loop stopped waiting for handler threads still running (see _drain).
    left_behind: bool = False
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _waiting_for_idle: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self.idle.set()

    @property
    def inline(self) -> bool:
        """Whether a plain server's blocking handler runs in the loop's thread."""
        return self.caller is not None

    def in_this_thread(self) -> bool:
        return self.thread_id == threading.get_ident()

    def stop(self) -> None:
        """Stop the loop (call in the run's thread): no more requests are taken."""
        self.stop_taking()
        self.loop_scope.cancel()

    def stop_taking(self) -> None:
        """From now on :meth:`begin_if_taking` refuses (any thread)."""
        with self._lock:
            self.taking = False

    def fail_from_thread(self, error: BaseException) -> None:
        """From a handler thread: stop the loop, which raises ``error`` (the first one)."""

        def fail() -> None:
            if self.error is None:
                self.error = error
            self.stop()

        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(fail)

    def begin(self, item: InFlight) -> None:
        with self._lock:
            self._begin(item)

    def begin_if_taking(self, item: InFlight) -> bool:
        """:meth:`begin` unless the loop has been told to stop; whether it began."""
        with self._lock:
            if not self.taking:
                return False
            self._begin(item)
            return True

    def _begin(self, item: InFlight) -> None:
        if not self.in_flight:
            self.idle = trio.Event()
        self.in_flight.add(item)

    def end(self, item: InFlight) -> None:
        with self._lock:
            self.in_flight.discard(item)
            now_idle = not self.in_flight
        item.finished.set()
        if now_idle:
            self.idle.set()

    def end_in_thread(self, item: InFlight) -> None:
        """:meth:`end` from a handler thread; wakes the loop only if it waits for idle."""
        with self._lock:
            self.in_flight.discard(item)
            wake = self._waiting_for_idle and not self.in_flight
        if wake:
            # RunFinishedError: the loop left this handler behind and its run has ended.
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self.idle.set)

    def is_idle(self) -> bool:
        with self._lock:
            return not self.in_flight

    async def wait_idle(self) -> None:
        """Wait until no request is in flight (after the loop stopped taking them)."""
        with self._lock:
            if not self.in_flight:
                return
            self._waiting_for_idle = True
            idle = self.idle
        await idle.wait()

    def unblock(self, how: int, *, pooled: bool = True) -> None:
        """Shut down the connections in flight; with ``pooled`` false, not the pool's."""
        for item in list(self.in_flight):
            if pooled or not item.pooled:
                item.unblock(how)
        sock = self.inline_request
        if sock is not None:
            InFlight(sock).unblock(how)


def run_trio(async_fn: Callable[..., Any], *args: Any) -> Any:
    """``trio.run(async_fn, *args)``, raising a lone error as itself, not in a group.

    Handler errors that end a loop (a ``SystemExit`` from a plain server's handler, an
    exception re-raised by ``handle_error``) reach the caller as the stdlib raises them.
    """
    try:
        return trio.run(async_fn, *args)
    except BaseExceptionGroup as group:
        sole = sole_exception(group)
        if sole is None:
            raise
        raise sole from None


def sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception nested in ``group`` (through groups of one), else None."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


def report_thread_exception() -> None:
    """Pass the exception being handled to :func:`threading.excepthook`, as a thread would."""
    exc_type, exc_value, exc_tb = sys.exc_info()
    assert exc_type is not None
    args = threading.ExceptHookArgs([exc_type, exc_value, exc_tb, threading.current_thread()])
    threading.excepthook(args)
