"""`BaseServer`: socketserver's request loop, driven by a trio event loop."""

from __future__ import annotations

import contextlib
import math
import select
import socket as stdlib_socket
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from trio.lowlevel import wait_readable

import trioserve

from ._fixup import public
from ._handlers import AsyncDatagramSocket, is_async_handler_class, run_async_handler
from ._run import Caller, InFlight, Run, run_trio, serving

#: At most this many ready requests are taken in a row before the loop waits with trio.
_BURST = 32
#: Seconds a stopping loop waits for handler threads once it has shut their connections
#: down; those still running then (blocked on something else) are left to finish.
UNBLOCKED_SECONDS = 1.0


def _readable_now(fd: int) -> bool:
    """Whether ``fd`` is readable at this moment.

    A wait with a zero timeout (``move_on_after(0)``) is cancelled before trio looks at
    the descriptor, so a timed-out wait asks here whether a request is waiting after all.
    """
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


@public
class BaseServer:
    """The base of every server class: the request loop and the overridable steps.

    The loop runs in a trio event loop, started in the thread that calls
    :meth:`serve_forever` or :meth:`handle_request` (or in the caller's own trio run with
    :meth:`serve`). It waits for the server socket (``fileno()``) to be readable with
    trio, then calls ``get_request``, ``verify_request`` and ``process_request`` as the
    stdlib does; ``handle_error`` is called inside the ``except`` block, so
    ``sys.exc_info()`` works there. Requests that are ready one after another are taken
    without a trip through trio's I/O wait each. A plain server handles one request at a
    time: under :meth:`serve_forever` and :meth:`handle_request` its blocking handler
    runs in the loop's own thread, as in the stdlib (:meth:`shutdown` from another
    thread then times the grace period itself), under :meth:`serve` on a trio worker
    thread, so the caller's other tasks go on; a handler class whose ``handle`` is
    ``async def`` runs as a trio task instead.

    That handler in the loop's thread (``process_request`` to ``shutdown_request``) sees
    the context variables the thread had when it called :meth:`serve_forever` or
    :meth:`handle_request` (a copy), and ``sniffio`` finds no async library running there, so
    ``asyncio.run()`` and anyio-based libraries work in it as in the stdlib. The thread
    is still inside ``trio.run``, though: the handler cannot start a trio run of its own
    (``trio.run()`` raises :exc:`RuntimeError`); use :class:`ThreadingMixIn` or
    :meth:`serve`, whose handlers run on worker threads, for that.

    Args:
        server_address: Stored as :attr:`server_address`.
        RequestHandlerClass: Called as ``RequestHandlerClass(request, client_address,
            server)`` for each request.

    Attributes:
        timeout: Seconds :meth:`handle_request` waits for a request before it calls
            :meth:`handle_timeout` (``None``: no limit).
        grace_period: Seconds handlers still running when :meth:`shutdown` stops the
            loop may go on before their connections are shut down, which ends a
            handler stuck in ``recv`` (``None``: wait for them without limit).
    """

    #: The listening (or datagram) socket; set by the concrete server classes.
    socket: Any
    timeout: float | None = None
    #: Same default as trioserve's own servers.
    grace_period: float | None = 5.0

    #: Whether requests are handled concurrently (the mixins) or one at a time.
    _concurrent = False
    #: Whether ``verify_request`` .. ``shutdown_request`` run apart from the loop (plain
    #: servers: in its thread but one at a time, or on a worker thread under ``serve``)
    #: or in the loop itself (the mixins, whose process_request only starts).
    _process_in_worker = True
    #: ``(RequestHandlerClass, whether its handle is async def)``, checked once per class.
    _handler_kind: tuple[Any, bool] | None = None

    def __init__(self, server_address: Any, RequestHandlerClass: Callable[..., Any]) -> None:
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        self._state_lock = threading.Lock()
        self._is_shut_down = threading.Event()
        self._shutdown_request = False
        self._run: Run | None = None
        self._loop_claimed = False

    # The public, blocking entry points.

    def serve_forever(self, poll_interval: float | None = 0.5) -> None:
        """Handle requests until :meth:`shutdown` is called.

        Runs a trio event loop in the calling thread. :meth:`service_actions` is called
        after each request and at least every ``poll_interval`` seconds (``None``: only
        after requests). When stopped, handlers still running get ``grace_period``
        seconds before their connections are shut down; this returns once they are all
        done, except that ThreadingMixIn's handler threads still running
        :data:`UNBLOCKED_SECONDS` after that (blocked on something other than their
        connection) are left running, as the stdlib leaves its threads. What a plain
        server's handler raises past ``handle_error`` (and what the overridable methods
        raise) ends the loop and is raised here.

        Example::

            with adapters.TCPServer(("127.0.0.1", 0), Handler) as server:
                threading.Thread(target=server.serve_forever).start()
                ...
                server.shutdown()
        """
        run_trio(
            partial(self._with_run, partial(self._loop, poll_interval), True, caller=Caller.here())
        )

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (or :meth:`serve`) and wait until it has returned.

        Safe from any thread. Called from one of this server's handler threads (where
        the stdlib deadlocks) it returns once the loop takes no more requests; the loop
        returns after that handler. From a task of the trio run serving it (an async
        handler, a task beside :meth:`serve`) it only asks the loop to stop and returns
        at once. A shutdown requested while no loop runs stops the next one as soon as
        it starts.
        """
        with self._state_lock:
            self._shutdown_request = True
            run = self._run if self._run is not None and self._run.stoppable else None
        if run is not None:
            if run.in_this_thread():
                run.stop()
                if run.inline:  # a plain server's handler: the loop takes no more requests
                    run.loop_stopped.set()
                return
            # RunFinishedError: the loop has just ended by itself.
            with contextlib.suppress(trio.RunFinishedError):
                run.token.run_sync_soon(run.stop)
        if serving.get() is self:
            if run is not None:
                run.loop_stopped.wait()
            return
        if run is not None and run.inline:
            # The handler runs in the loop's thread, so the loop cannot time its grace.
            grace = self.grace_period
            if not self._is_shut_down.wait(grace):
                run.unblock(stdlib_socket.SHUT_RDWR)
        self._is_shut_down.wait()

    def handle_request(self) -> Any:
        """Wait for one request (at most :attr:`timeout` seconds) and handle it.

        Returns once the request has been dispatched, as in the stdlib: a plain server's
        handler (or any async handler) has run; a threading server's handler thread or a
        forked child may still run (:meth:`server_close` waits for them). With no request
        in time, returns what :meth:`handle_timeout` returns.
        """
        return run_trio(partial(self._with_run, self._one_request, False, caller=Caller.here()))

    def _handle_request_noblock(self) -> None:
        """Handle one request that is ready, without waiting (private in the stdlib too,
        but called by loops that select over several servers themselves)."""
        run_trio(partial(self._with_run, self._take_request, False, caller=Caller.here()))

    async def serve(
        self,
        poll_interval: float | None = 0.5,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the request loop inside the calling trio program, until :meth:`shutdown`.

        ``await nursery.start(server.serve)`` returns once the loop runs. Handler threads
        and tasks run in this task's nurseries; cancelling it shuts their connections
        down and returns once they have ended. Raises :exc:`RuntimeError` if the server
        already runs a loop.

        Example::

            async with trio.open_nursery() as nursery:
                await nursery.start(server.serve)
                ...
                server.shutdown()   # from a task here: asks the loop to stop
        """
        await self._with_run(partial(self._loop, poll_interval), True, task_status)

    def fileno(self) -> int:
        """The descriptor the loop waits on (the listening socket's)."""
        return int(self.socket.fileno())

    # The overridable steps, as documented.

    def server_activate(self) -> None:
        """Called by the constructor to activate the server; nothing by default."""

    def service_actions(self) -> None:
        """Called in the :meth:`serve_forever` loop; nothing by default."""

    def handle_timeout(self) -> Any:
        """Called when :meth:`handle_request` got no request within :attr:`timeout`."""

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Whether to handle the request; always ``True`` by default."""
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        """Call :meth:`finish_request`, then :meth:`shutdown_request`."""
        self.finish_request(request, client_address)
        self.shutdown_request(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Handle the request by instantiating ``RequestHandlerClass``."""
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request: Any) -> None:
        """Shut down and close one request; by default :meth:`close_request`."""
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Clean up one request; nothing by default."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Print the traceback of the exception being handled to stderr, and go on."""
        print("-" * 40, file=sys.stderr)
        print(
            "Exception occurred during processing of request from",
            client_address,
            file=sys.stderr,
        )
        traceback.print_exc()
        print("-" * 40, file=sys.stderr)

    def server_close(self) -> None:
        """Clean up the server; a loop still running is stopped first.

        From another thread this is :meth:`shutdown`; from a handler or the loop's
        own thread the loop is told to stop at once (it returns when the caller is done).
        """
        run = self._run
        if run is None:
            return
        if run.in_this_thread():
            run.stop()
        elif run.stoppable and serving.get() is not self:
            self.shutdown()
        else:
            # RunFinishedError: the loop has just ended by itself.
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(run.stop, trio_token=run.token)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *args: object) -> None:
        self.server_close()

    # The loop.

    async def _with_run(
        self,
        body: Callable[[Run], Awaitable[Any]],
        stoppable: bool,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
        *,
        caller: Caller | None = None,
    ) -> Any:
        """Run ``body(run)`` with nurseries for handlers, then wait for the handlers.

        ``caller``: the run is the server's own, so a plain server's blocking handler
        may run in its thread, as ``caller`` (a ``serve`` task shares its thread with
        other tasks).
        """
        with self._state_lock:
            if self._loop_claimed:
                raise RuntimeError(f"{self!r} is already running a request loop")
            self._loop_claimed = True
        context_token = serving.set(self)
        registered = False
        try:
            async with trio.open_nursery() as background:
                async with trio.open_nursery() as handlers:
                    run = Run(
                        token=trio.lowlevel.current_trio_token(),
                        thread_id=threading.get_ident(),
                        handlers=handlers,
                        background=background,
                        stoppable=stoppable,
                        caller=caller,
                    )
                    self._register(run)
                    registered = True
                    self._run_begins(run)
                    task_status.started()
                    try:
                        result = await body(run)
                        if stoppable:
                            await self._drain(run)
                    except trio.Cancelled:
                        run.unblock(stdlib_socket.SHUT_RDWR)  # a hard stop: end them all
                        raise
                    except BaseException:
                        self._end_after_error(run)
                        raise
                    finally:
                        if run.pool is not None:
                            with trio.CancelScope(shield=True):
                                await run.pool.close(leave_busy=run.left_behind)
                background.cancel_scope.cancel()
            return result
        finally:
            serving.reset(context_token)
            if registered:
                self._unregister(stoppable)
            with self._state_lock:
                self._loop_claimed = False

    def _register(self, run: Run) -> None:
        with self._state_lock:
            self._run = run
            if run.stoppable:
                self._is_shut_down.clear()
                if self._shutdown_request:
                    run.stop()

    def _unregister(self, stoppable: bool) -> None:
        with self._state_lock:
            self._run = None
            if stoppable:
                self._shutdown_request = False
                self._is_shut_down.set()

    def _run_begins(self, run: Run) -> None:
        """Hook: a loop starts (ForkingMixIn watches the children it already has)."""

    async def _wait_for_capacity(self, run: Run) -> None:
        """Hook: wait until another request may be taken (the mixins' limits)."""

    def _end_after_error(self, run: Run) -> None:
        """The loop ends with an error (a ``KeyboardInterrupt``, a hook that raised).

        As from the stdlib's loop, the error propagates at once and the pool's handler
        threads go on with their requests (:meth:`server_close` waits for them if
        ``block_on_close``); handlers that must end with the run are unblocked.
        """
        run.stop_taking()
        if run.pool is not None:
            self._leave_behind(run)
        run.unblock(stdlib_socket.SHUT_RDWR, pooled=False)

    def _leave_behind(self, run: Run) -> None:
        """The loop returns with handler threads of ``run.pool`` still running (a hook:
        ThreadingMixIn has them waited for)."""
        run.left_behind = True

    def _stop_handlers_at_once(self) -> bool:
        """Hook: whether shutdown unblocks handlers at once instead of after a grace."""
        return False

    async def _requests_to_take(self, run: Run) -> int:
        """Hook: how many ready requests the loop takes in a row now (0: none this time)."""
        return 1 + _BURST

    async def _loop(self, poll_interval: float | None, run: Run) -> None:
        period = math.inf if poll_interval is None else poll_interval
        ready = select.poll()
        try:
            with run.loop_scope:
                while True:
                    # A handler run in this thread may have stopped the loop (and closed
                    # the socket) without a checkpoint since.
                    await trio.lowlevel.checkpoint_if_cancelled()
                    await self._wait_for_capacity(run)
                    fd = self.fileno()
                    with trio.move_on_after(period) as waiting:
                        await wait_readable(fd)
                    if waiting.cancelled_caught and not _readable_now(fd):
                        self.service_actions()
                        continue
                    burst = await self._requests_to_take(run)
                    if not burst:
                        continue
                    await self._take_request(run)
                    self.service_actions()
                    # Take the requests that are ready now without a trip through trio's
                    # I/O wait each (the stdlib's select per request costs less).
                    ready.register(fd, select.POLLIN)
                    try:
                        for _ in range(burst - 1):
                            if self._shutdown_request or run.loop_scope.cancel_called:
                                break
                            if not ready.poll(0):
                                break
                            await self._wait_for_capacity(run)
                            await self._take_request(run)
                            self.service_actions()
                    finally:
                        ready.unregister(fd)
            if run.error is not None:
                raise run.error
        finally:
            run.stop_taking()
            run.loop_stopped.set()

    async def _one_request(self, run: Run) -> Any:
        timeout = self.socket.gettimeout()
        if timeout is None:
            timeout = self.timeout
        elif self.timeout is not None:
            timeout = min(timeout, self.timeout)
        with run.loop_scope:
            fd = self.fileno()
            with trio.move_on_after(math.inf if timeout is None else timeout) as waiting:
                await wait_readable(fd)
            if waiting.cancelled_caught and not _readable_now(fd):
                return self.handle_timeout()
            await self._take_request(run)
        return None

    async def _drain(self, run: Run) -> None:
        """After the loop stopped: give handlers the grace period, then unblock them.

        Handler threads of a pool (ThreadingMixIn's) still running
        :data:`UNBLOCKED_SECONDS` after that are left running, as the stdlib leaves its
        threads; other handlers are waited for.
        """
        if run.is_idle():
            return
        grace = math.inf if self.grace_period is None else self.grace_period
        if self._stop_handlers_at_once():
            run.unblock(stdlib_socket.SHUT_RD)
        with trio.move_on_after(grace):
            await run.wait_idle()
        run.unblock(stdlib_socket.SHUT_RDWR)
        if run.pool is not None:
            with trio.move_on_after(UNBLOCKED_SECONDS):
                await run.wait_idle()
            if not run.is_idle():
                self._leave_behind(run)
                return
        await run.wait_idle()

    async def _take_request(self, run: Run) -> None:
        """Get one request and dispatch it (the stdlib's ``_handle_request_noblock``)."""
        try:
            request, client_address = self.get_request()
        except OSError:
            return
        if self._handler_is_async():
            if not self._verified(request, client_address):
                return
            item = self._start_task(run, request, self._process_async, request, client_address)
        elif self._process_in_worker:
            if not self._verified(request, client_address):
                return
            caller = run.caller
            if caller is not None:
                # The loop's thread is the server's own: handle the request here, as the
                # stdlib does; shutdown() from another thread unblocks it after the grace.
                run.inline_request = request if isinstance(request, stdlib_socket.socket) else None
                try:
                    caller.call(self._process_in_thread, request, client_address)
                finally:
                    run.inline_request = None
                return
            item = self._start_thread(
                run, request, self._process_in_thread, request, client_address
            )
        else:
            if self._verified(request, client_address):
                self._process_in_thread(request, client_address)
            return
        if not self._concurrent:
            await item.finished.wait()

    def _handler_is_async(self) -> bool:
        """Whether ``RequestHandlerClass`` has an ``async def handle`` (found once per class)."""
        handler_class = self.RequestHandlerClass
        kind = self._handler_kind
        if kind is None or kind[0] is not handler_class:
            kind = self._handler_kind = (handler_class, is_async_handler_class(handler_class))
        return kind[1]

    def _verified(self, request: Any, client_address: Any) -> bool:
        """``verify_request``; a request refused, or whose check raised, is shut down."""
        try:
            verified = self.verify_request(request, client_address)
        except BaseException:
            self.shutdown_request(request)
            raise
        if not verified:
            self.shutdown_request(request)
        return verified

    def get_request(self) -> tuple[Any, Any]:
        """Accept a request; overridden by every concrete server."""
        raise NotImplementedError

    def _start_task(
        self, run: Run, request: Any, async_fn: Callable[..., Awaitable[None]], *args: Any
    ) -> InFlight:
        item = InFlight(request if isinstance(request, stdlib_socket.socket) else None)
        run.begin(item)
        run.handlers.start_soon(self._tracked, run, item, async_fn, *args)
        return item

    async def _tracked(
        self, run: Run, item: InFlight, async_fn: Callable[..., Awaitable[None]], *args: Any
    ) -> None:
        try:
            await async_fn(*args)
        finally:
            run.end(item)

    def _start_thread(
        self, run: Run, request: Any, sync_fn: Callable[..., None], *args: Any
    ) -> InFlight:
        """Run ``sync_fn(*args)`` for ``request`` on a trio worker thread of ``run``."""
        item = InFlight(request if isinstance(request, stdlib_socket.socket) else None)

        def in_thread() -> None:
            item.thread = threading.current_thread()
            try:
                sync_fn(*args)
            finally:
                item.thread = None

        run.begin(item)
        run.handlers.start_soon(self._tracked, run, item, self._to_thread, in_thread)
        return item

    async def _to_thread(self, sync_fn: Callable[[], None]) -> None:
        await trio.to_thread.run_sync(
            sync_fn, limiter=self._limiter(), thread_name=f"{type(self).__name__} handler"
        )

    def _limiter(self) -> trio.CapacityLimiter:
        """The limiter for handler threads (a plain server runs one at a time)."""
        limiter: trio.CapacityLimiter | None = vars(self).get("_plain_limiter")
        if limiter is None:
            limiter = vars(self).setdefault("_plain_limiter", trio.CapacityLimiter(1))
        return limiter

    def _process_in_thread(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            self.shutdown_request(request)
            raise

    async def _process_async(self, request: Any, client_address: Any) -> None:
        if isinstance(request, stdlib_socket.socket):
            view: Any = trioserve.Connection(request, client_address)
        elif isinstance(request, tuple) and isinstance(request[1], stdlib_socket.socket):
            view = (request[0], AsyncDatagramSocket(request[1]))
        else:
            view = request
        try:
            handler = self.RequestHandlerClass(view, client_address, self)
            await run_async_handler(handler)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
