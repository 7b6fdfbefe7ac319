"""Handler threads that take the next ready request themselves (ThreadingMixIn's fast path)."""

from __future__ import annotations

import contextvars
import select
import threading
import time

import trio

#: Seconds the loop leaves a ready request to handler threads that have been taking
#: requests themselves, before it takes one too.
STALL_SECONDS = 0.001
#: The share of a CPU above which the process counts as busy computing: more threads
#: would only wait for the GIL.
SATURATED = 0.8
#: Seconds the holder waits for the next request before it gives the role up.
HOLD_SECONDS = 0.01


class RequestTaker:
    """What the loop and the handler threads of one ThreadingMixIn loop share to take requests.

    Handing each request from the loop's thread to a handler thread costs a wake-up, two
    context switches and a hand-over of the GIL: more than a short handler itself. So
    one handler thread at a time, the *holder*, takes the next ready request itself
    when it has finished one, and handles it at once; with short handlers it serves the
    whole load in one thread, as a plain server would, with no hand-over. It gives the
    role up when no request has come for :data:`HOLD_SECONDS`. ``lock`` keeps ``get_request`` and
    ``verify_request`` from ever running in two threads at once, as in the stdlib where
    one loop calls them.

    The loop takes requests, each to a handler thread of its own, whenever the holder
    does not: at once when there is no holder or it has taken none since the loop last
    looked (it is busy in a handler), otherwise after :data:`STALL_SECONDS` if it took
    none meanwhile or the process did not keep a CPU busy meanwhile (its handlers wait
    rather than compute, so more threads help).

    Args:
        fd: The server socket's descriptor, polled (under ``lock``) before each take.
        context: The loop's context; each request a handler thread takes runs in a copy.
    """

    def __init__(self, fd: int, context: contextvars.Context) -> None:
        self.lock = threading.Lock()
        self.context = context
        #: The ident of the handler thread taking requests itself, if any (under ``lock``).
        self.holder: int | None = None
        #: Whether the holder waits for a request (outside ``lock``), rather than handles one.
        self.waiting = False
        #: Requests the holders have taken so far; the loop's sign of their progress.
        self.taken = 0
        #: ``taken`` when the loop last looked, and when that was (time.monotonic()).
        self.seen_by_loop = 0
        self.looked_at = 0.0
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._holder_poll = select.poll()
        self._holder_poll.register(fd, select.POLLIN)

    def ready(self) -> bool:
        """Whether a request waits on the socket now (call with ``lock`` held)."""
        return bool(self._poll.poll(0))

    def wait_ready(self) -> None:
        """In the holder, without ``lock``: wait up to :data:`HOLD_SECONDS` for a request."""
        self._holder_poll.poll(HOLD_SECONDS * 1000)

    async def leave_to_holder(self) -> bool:
        """In the loop, with a request ready: whether to leave it to the holder.

        Waits up to :data:`STALL_SECONDS` to see whether the holder keeps up.
        """
        if self.holder is None:
            return False
        taken = self.taken
        waiting = self.waiting
        wall_before = time.monotonic()
        if (
            taken == self.seen_by_loop
            and not waiting
            and wall_before - self.looked_at >= STALL_SECONDS
        ):
            return False  # the holder has been in one handler since the loop last looked
        cpu_before = time.process_time()
        await trio.sleep(STALL_SECONDS)
        cpu = time.process_time() - cpu_before
        self.looked_at = time.monotonic()
        wall = self.looked_at - wall_before
        self.seen_by_loop = self.taken
        return self.taken != taken and (waiting or cpu >= SATURATED * wall)
