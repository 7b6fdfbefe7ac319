"""`ThreadingMixIn`: each request on a trio worker thread, bounded by a CapacityLimiter."""

from __future__ import annotations

import atexit
import contextvars
import math
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from . import _base
from ._fixup import public
from ._pool import HandlerPool
from ._run import InFlight, Run, report_thread_exception
from ._taking import STALL_SECONDS, RequestTaker

if TYPE_CHECKING:
    import outcome

    from ._base import BaseServer

    _MixinBase = BaseServer
else:
    _MixinBase = object


def _current_run(server: object) -> Run | None:
    """The loop ``server`` runs, if any (None also when mixed into a stdlib server class)."""
    run: Run | None = getattr(server, "_run", None)
    return run


class _DetachedThreads:
    """Handler threads started outside a ``serve_forever`` loop (by ``handle_request``),
    and the pools of loops that returned with handler threads still running.

    They outlive the call that started them, as the stdlib's threads do;
    ``server_close`` joins them (if ``block_on_close``), and so does the program's exit
    unless they are ``daemon_threads``.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._items: set[InFlight] = set()
        self._pools: list[tuple[HandlerPool, Run]] = []
        #: The grace :meth:`join` gets when the program exits (see _JOIN_AT_EXIT).
        self.exit_grace: float | None = None

    def add(self, item: InFlight) -> None:
        with self._changed:
            self._items.add(item)

    def add_pool(self, pool: HandlerPool, run: Run) -> None:
        with self._changed:
            self._pools.append((pool, run))

    def remove(self, item: InFlight) -> None:
        with self._changed:
            self._items.discard(item)
            self._changed.notify_all()

    def threads(self) -> list[threading.Thread]:
        with self._changed:
            return [item.thread for item in self._items if item.thread is not None]

    def join(self, grace: float | None) -> None:
        """Wait for the threads; after ``grace`` seconds shut their connections down.

        A handler thread calling this (through ``server_close``) does not wait for itself.
        """
        me = threading.current_thread()
        deadline = None if grace is None else time.monotonic() + grace

        def others_done() -> bool:
            return all(item.thread is me for item in self._items)

        with self._changed:
            pools, self._pools = self._pools, []
            if not self._changed.wait_for(others_done, timeout=_left(deadline)):
                for item in self._items:
                    if item.thread is not me:
                        item.unblock(socket.SHUT_RDWR)
                self._changed.wait_for(others_done)
        for pool, run in pools:
            _finish_left_pool(pool, run, _left(deadline))


#: Detached threads that are not daemon threads in the stdlib's sense: joined at exit.
_JOIN_AT_EXIT: weakref.WeakSet[_DetachedThreads] = weakref.WeakSet()


@atexit.register
def _join_detached_threads() -> None:
    for detached in list(_JOIN_AT_EXIT):
        detached.join(detached.exit_grace)


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _finish_left_pool(pool: HandlerPool, run: Run, grace: float | None) -> None:
    """Wait for the handler threads a stopped loop left running; after ``grace`` seconds
    shut their connections down (which ends a handler stuck in ``recv``) and wait on."""
    if not pool.join(grace):
        run.unblock(socket.SHUT_RDWR)
        pool.join()


@public
class ThreadingMixIn(_MixinBase):
    """Mix-in: handle each request on a trio worker thread.

    Under :meth:`serve_forever` (or ``serve``) the threads belong to the loop: a
    request goes to an idle handler thread of the loop, or to a new one when all are
    busy (never waiting behind another handler); at most ``max_threads`` run at once
    (:attr:`thread_limiter`; at the limit the server stops taking requests until one
    finishes), and :meth:`shutdown` returns once they are done: after ``grace_period``
    seconds (at once if ``daemon_threads`` is true or ``block_on_close`` false) their
    connections are shut down, which ends handlers blocked in ``recv``. Without
    ``max_threads``, a handler still running a second after that (blocked on something
    else) is left running, as the stdlib leaves its threads. A thread started by
    :meth:`handle_request` outlives that call, as in the stdlib. :meth:`server_close`
    waits for the threads left running either way if ``block_on_close`` is true and
    ``daemon_threads`` false.

    Under :meth:`serve_forever` (or ``serve``) without ``max_threads``, a handler thread that has
    finished its request takes the next ready one itself (``get_request``,
    ``verify_request``, then the handler) instead of waiting for the loop to hand it
    over: a hand-over between threads costs more than a short handler. The loop goes on
    taking requests whenever that thread is busy in a handler, so a handler that blocks
    never holds others up. ``get_request`` and ``verify_request`` may thus run in a
    handler thread, but never in two threads at once; a class that overrides
    ``process_request`` or ``service_actions`` (or an instance given its own) has every
    request taken by the loop, which calls them in its own thread as the stdlib does.

    An exception other than :class:`Exception` leaving a handler thread (``SystemExit``)
    goes to :func:`threading.excepthook`, as it would from a ``threading.Thread``.
    """

    daemon_threads = False
    block_on_close = True
    #: At most this many handler threads at once under serve_forever.
    max_threads: float = math.inf

    _concurrent = True
    _process_in_worker = False

    @property
    def thread_limiter(self) -> trio.CapacityLimiter:
        """The :class:`trio.CapacityLimiter` bounding this server's handler threads."""
        limiter: trio.CapacityLimiter | None = vars(self).get("_thread_limiter")
        if limiter is None:
            limiter = vars(self).setdefault(
                "_thread_limiter", trio.CapacityLimiter(self.max_threads)
            )
        return limiter

    @property
    def _threads(self) -> list[threading.Thread]:
        """The threads handling requests right now."""
        threads = self._detached().threads()
        run = _current_run(self)
        if run is not None:
            threads += [item.thread for item in list(run.in_flight) if item.thread is not None]
        return threads

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Run in the handler thread: ``finish_request``, ``handle_error``, ``shutdown_request``."""
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a thread to handle the request."""
        run = _current_run(self)
        if run is not None and run.stoppable and run.in_this_thread():
            if self.thread_limiter.total_tokens == math.inf:
                self._submit(run, request, client_address)
            else:
                self._start_thread(run, request, self._thread_main, request, client_address)
        else:
            self._start_detached(request, client_address)

    def server_close(self) -> None:
        """Close the server; wait for detached handler threads if ``block_on_close``.

        Detached: started by :meth:`handle_request`, or left running by a loop that
        stopped. With ``daemon_threads`` it does not wait for them, as in the stdlib.
        """
        super().server_close()
        if self.block_on_close and not self.daemon_threads:
            self._detached().join(getattr(self, "grace_period", None))

    def _thread_main(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        except BaseException:
            report_thread_exception()

    def _submit(self, run: Run, request: Any, client_address: Any) -> None:
        """Handle the request on a thread of the loop's pool (no limit to wait for)."""
        pool = run.pool
        if pool is None:
            next_call = None
            if self._threads_may_take():
                taker = run.taker = RequestTaker(self.fileno(), contextvars.copy_context())
                next_call = partial(self._take_ready, run, taker)
            pool = run.pool = HandlerPool(f"{type(self).__name__} handler", next_call)
        item = InFlight(request if isinstance(request, socket.socket) else None, pooled=True)
        run.begin(item)
        pool.submit(
            partial(
                self._handle_in_pool,
                run,
                item,
                contextvars.copy_context(),
                request,
                client_address,
            )
        )

    def _handle_in_pool(
        self,
        run: Run,
        item: InFlight,
        context: contextvars.Context,
        request: Any,
        client_address: Any,
    ) -> None:
        item.thread = threading.current_thread()
        try:
            context.run(self._thread_main, request, client_address)
        finally:
            item.thread = None
            run.end_in_thread(item)

    def _threads_may_take(self) -> bool:
        """Whether handler threads may take requests themselves (see RequestTaker).

        Not when ``process_request`` or ``service_actions`` is overridden, by the class
        or on the instance (``mock.patch.object``) before the loop starts: the loop
        calls those for each request it takes, in its own thread. Nor without a GIL
        (free-threaded builds), where a hand-over costs little and threads run at once.
        """
        cls = type(self)
        own = vars(self)
        gil: Callable[[], bool] = getattr(sys, "_is_gil_enabled", lambda: True)
        return (
            gil()
            and cls.process_request is ThreadingMixIn.process_request
            and cls.service_actions is _base.BaseServer.service_actions
            and "process_request" not in own
            and "service_actions" not in own
        )

    def _take_ready(self, run: Run, taker: RequestTaker) -> Callable[[], None] | None:
        """In a handler thread whose request is done: take the next ready request.

        Only the holder does (see :class:`RequestTaker`), or any thread while there is
        none; with none ready, the holder waits a little for one. Returns the call that
        handles the request in this thread, or None (and gives the role up) when none
        came or the loop has been told to stop. What
        ``get_request`` or ``verify_request`` raises (other than the ``OSError`` of a
        request gone meanwhile) stops the loop, which raises it, as in the stdlib.
        """
        me = threading.get_ident()
        waited = False
        while True:
            with taker.lock:
                if taker.holder not in (None, me):
                    return None
                taker.waiting = False
                try:
                    call = self._take_one(run, taker)
                except BaseException as exc:
                    run.fail_from_thread(exc)
                    call = None
                    waited = True
                if call is not None:
                    taker.holder = me
                    return call
                if waited or not run.taking or self._shutdown_request:
                    taker.holder = None
                    return None
                taker.holder = me
                taker.waiting = True
            taker.wait_ready()
            waited = True

    def _take_one(self, run: Run, taker: RequestTaker) -> Callable[[], None] | None:
        """:meth:`_take_ready` under the lock: the call for a ready request, or None."""
        while run.taking and not self._shutdown_request and taker.ready():
            try:
                request, client_address = self.get_request()
            except OSError:
                return None
            taker.taken += 1
            if not self._verified(request, client_address):
                continue
            item = InFlight(request if isinstance(request, socket.socket) else None, pooled=True)
            if not run.begin_if_taking(item):
                # The loop stopped meanwhile: as for requests still in the backlog.
                self.shutdown_request(request)
                return None
            context = taker.context.copy()
            return partial(self._handle_in_pool, run, item, context, request, client_address)
        return None

    async def _take_request(self, run: Run) -> None:
        taker = run.taker
        if taker is None:
            await super()._take_request(run)
            return
        if not taker.lock.acquire(blocking=False):
            await trio.sleep(STALL_SECONDS)  # a handler thread is taking one right now
            return
        try:
            if taker.ready():  # not taken by a handler thread meanwhile
                await super()._take_request(run)
        finally:
            taker.lock.release()

    async def _requests_to_take(self, run: Run) -> int:
        taker = run.taker
        if taker is not None and await taker.leave_to_holder():
            return 0
        return await super()._requests_to_take(run)

    def _detached(self) -> _DetachedThreads:
        detached: _DetachedThreads | None = vars(self).get("_detached_threads")
        if detached is None:
            detached = vars(self).setdefault("_detached_threads", _DetachedThreads())
        return detached

    def _start_detached(self, request: Any, client_address: Any) -> None:
        detached = self._detached() if self.daemon_threads else self._detached_to_wait_for()
        item = InFlight(request if isinstance(request, socket.socket) else None)

        def in_thread() -> None:
            item.thread = threading.current_thread()
            try:
                self._thread_main(request, client_address)
            finally:
                item.thread = None

        def deliver(result: outcome.Outcome[None]) -> None:
            # Called once trio has given the thread its idle name back: a thread that
            # server_close() waited for is then an idle worker.
            del result  # in_thread reports its own errors
            detached.remove(item)

        detached.add(item)
        context = contextvars.copy_context()
        trio.lowlevel.start_thread_soon(
            partial(context.run, in_thread), deliver, name=f"{type(self).__name__} handler"
        )

    def _limiter(self) -> trio.CapacityLimiter:
        return self.thread_limiter

    async def _wait_for_capacity(self, run: Run) -> None:
        limiter = self.thread_limiter
        if limiter.available_tokens < 1:
            async with limiter:
                pass  # a thread has finished; its token goes to the next request

    def _stop_handlers_at_once(self) -> bool:
        return bool(self.daemon_threads or not self.block_on_close)

    def _leave_behind(self, run: Run) -> None:
        super()._leave_behind(run)
        if run.pool is not None and not self.daemon_threads:
            self._detached_to_wait_for().add_pool(run.pool, run)

    def _detached_to_wait_for(self) -> _DetachedThreads:
        """The detached threads, which (not being daemon threads) the program waits for
        when it exits, as for the stdlib's threads: trio's worker threads are daemon
        threads, so an exit hook joins them, with the grace period of server_close()."""
        detached = self._detached()
        detached.exit_grace = getattr(self, "grace_period", None)
        _JOIN_AT_EXIT.add(detached)
        return detached
