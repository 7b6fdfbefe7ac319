"""A loop's handler threads: requests go to idle workers, or to new ones, never wait."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

import outcome
import trio

#: Seconds an idle worker waits for a request before its thread goes back to trio.
IDLE_SECONDS = 10.0


class HandlerPool:
    """Worker threads (jobs on trio's thread cache) that run handler calls for one loop.

    :meth:`submit` hands a call to a worker waiting for one, or starts a worker when
    every worker has a call already: each call runs at once, as if it had a thread of
    its own, but a busy server reuses its threads instead of handing each request
    through a trio task and ``trio.to_thread``. Create, submit and close in the trio
    thread; the calls must not raise.

    A worker that has finished a call asks ``next_call()`` (if given) for another one
    and runs it at once, without a trip through the queue, until it returns None; then
    the worker waits for :meth:`submit` again. ``next_call`` runs in the worker thread
    and must not raise.

    :meth:`close` can also leave the workers still in a call behind: they go once their
    call returns, without calling into the trio run (which may have ended by then), and
    :meth:`join` waits for them from any thread.

    Args:
        name: The name the worker threads carry while they belong to the pool.
        next_call: Returns the next call a worker that has finished may run, or None.
    """

    def __init__(
        self, name: str, next_call: Callable[[], Callable[[], None] | None] | None = None
    ) -> None:
        self._name = name
        self._next_call = next_call
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._gone = threading.Condition(self._lock)  # notified when a worker has gone
        # Invariant (under the lock): pending <= idle, so every queued call has a worker.
        self._pending = 0
        self._idle = 0
        self._jobs = 0
        self._in_call = 0  # workers running a call (or next_call and what it returned)
        self._workers: set[int] = set()  # the idents of the workers' threads
        self._token = trio.lowlevel.current_trio_token()
        self._all_done = trio.Event()
        self._closed = False
        self._leave_busy = False
        self._woken = False  # close() needs no wake-up: never call into the run again

    @property
    def busy(self) -> int:
        """How many workers are running a call now (read without the lock: a hint)."""
        return self._jobs - self._idle

    def submit(self, call: Callable[[], None]) -> None:
        """Run ``call()`` on a worker thread, a new one if none is free."""
        with self._lock:
            self._pending += 1
            start = self._pending > self._idle
            if start:
                self._idle += 1
                self._jobs += 1
        self._calls.put(call)
        if start:
            trio.lowlevel.start_thread_soon(self._work, self._job_done, name=self._name)

    async def close(self, *, leave_busy: bool = False) -> None:
        """Let every worker go once its call is done, and wait until all have gone.

        With ``leave_busy``, wait only for the workers not in a call; the others go when
        their call returns (:meth:`join` waits for them).
        """
        with self._lock:
            self._closed = True
            self._leave_busy = leave_busy
            jobs = self._jobs
            self._woken = done = self._all_gone()
        for _ in range(jobs):
            self._calls.put(None)
        if not done:
            await self._all_done.wait()

    def join(self, timeout: float | None = None) -> bool:
        """After :meth:`close`, block until every worker but the caller has gone (any
        thread), or ``timeout`` seconds have passed; whether they have all gone."""
        me = threading.get_ident()

        def others_gone() -> bool:
            return self._jobs == (1 if me in self._workers else 0)

        with self._gone:
            return self._gone.wait_for(others_gone, timeout)

    def _all_gone(self) -> bool:
        """Whether :meth:`close` has nothing left to wait for (under the lock).

        With ``leave_busy``, a call still queued counts as busy: a worker takes it before
        it sees the end.
        """
        return self._jobs == (self._in_call + self._pending if self._leave_busy else 0)

    def _work(self) -> None:
        calls = self._calls
        lock = self._lock
        with lock:
            self._workers.add(threading.get_ident())
        while True:
            try:
                call = calls.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with lock:
                    if self._pending < self._idle:  # the others cover what is queued
                        self._idle -= 1
                        return
                continue
            if call is None:
                with lock:
                    self._idle -= 1
                return
            with lock:
                self._pending -= 1
                self._idle -= 1
                self._in_call += 1
            call()
            if self._next_call is not None:
                while (call := self._next_call()) is not None:
                    call()
            with lock:
                self._idle += 1
                self._in_call -= 1

    def _job_done(self, result: outcome.Outcome[None]) -> None:
        # In the worker thread, once trio has given it back its idle name.
        with self._lock:
            self._jobs -= 1
            self._workers.discard(threading.get_ident())
            self._gone.notify_all()
            wake = self._closed and not self._woken and self._all_gone()
            if wake:
                self._woken = True
        if wake:
            # close() waits shielded, but a KeyboardInterrupt can still end the run first.
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._all_done.set)
        result.unwrap()  # a worker that failed is a bug: trio prints it
