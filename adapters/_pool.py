"""A loop's handler threads: requests go to idle workers, or to new ones, never wait."""

from __future__ import annotations

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
        # Invariant (under the lock): pending <= idle, so every queued call has a worker.
        self._pending = 0
        self._idle = 0
        self._jobs = 0
        self._token = trio.lowlevel.current_trio_token()
        self._all_done = trio.Event()
        self._closed = False

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

    async def close(self) -> None:
        """Let every worker go once its call is done, and wait until all have gone."""
        with self._lock:
            self._closed = True
            jobs = self._jobs
        for _ in range(jobs):
            self._calls.put(None)
        if jobs:
            await self._all_done.wait()

    def _work(self) -> None:
        calls = self._calls
        lock = self._lock
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
            call()
            if self._next_call is not None:
                while (call := self._next_call()) is not None:
                    call()
            with lock:
                self._idle += 1

    def _job_done(self, result: outcome.Outcome[None]) -> None:
        # In the worker thread, once trio has given it back its idle name.
        with self._lock:
            self._jobs -= 1
            last = self._closed and self._jobs == 0
        if last:
            self._token.run_sync_soon(self._all_done.set)
        result.unwrap()  # a worker that failed is a bug: trio prints it
