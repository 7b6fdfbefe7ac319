"""`ForkingMixIn`: each request in a child process, reaped as soon as it exits."""

from __future__ import annotations

import os
import select
from typing import TYPE_CHECKING, Any

import trio

from ._fixup import public
from ._run import Run

if TYPE_CHECKING:
    from ._base import BaseServer

    _MixinBase = BaseServer
else:
    _MixinBase = object

#: A pidfd becomes readable when its process exits: children are reaped the moment they
#: end, without waitpid(-1) (which would steal other code's children) and without polling.
HAVE_PIDFD = hasattr(os, "pidfd_open")


@public
class ForkingMixIn(_MixinBase):
    """Mix-in: handle each request in a forked child process.

    The child runs ``finish_request`` (``handle_error`` on an :class:`Exception`), then
    ``shutdown_request``, and exits with status 0 (1 if the handler failed). The parent
    closes its copy of the request at once. Children are watched through pidfds while a
    loop runs and reaped as soon as they exit; at ``max_children`` the loop takes no
    request until one exits. :meth:`server_close` waits for the children left if
    ``block_on_close``. The pids of children not yet reaped are in
    :attr:`active_children`. An ``async def handle`` is not forked: it runs as a trio
    task of the loop, concurrently with other requests.
    """

    timeout: float | None = 300
    active_children: set[int] | None = None
    max_children = 40
    block_on_close = True

    _concurrent = True
    _process_in_worker = False

    def collect_children(self, *, blocking: bool = False) -> None:
        """Reap exited children; with ``blocking``, wait for all of them.

        Above ``max_children`` this first waits until a child exits, as the stdlib does.
        """
        children = self.active_children
        if children is None:
            return
        while len(children) >= self.max_children and self._pidfds():
            ready, _, _ = select.select(list(self._pidfds().values()), [], [])
            for pid, pidfd in list(self._pidfds().items()):
                if pidfd in ready:
                    self._reap(pid, blocking=True)
        for pid in list(children):
            self._reap(pid, blocking=blocking)

    def handle_timeout(self) -> Any:
        """Reap children that have exited."""
        self.collect_children()

    def service_actions(self) -> None:
        """Reap exited children no reaper task watches (without waiting, at any number)."""
        watched = self._pidfds() if getattr(self, "_run", None) is not None else {}
        for pid in list(self.active_children or ()):
            if pid not in watched:
                self._reap(pid, blocking=False)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Fork; the child handles the request and exits, the parent closes its copy."""
        pid = os.fork()
        if pid:
            if self.active_children is None:
                self.active_children = set()
            self.active_children.add(pid)
            self._watch(pid)
            self.close_request(request)
            return
        status = 1
        try:
            self.finish_request(request, client_address)
            status = 0
        except Exception:
            self.handle_error(request, client_address)
        finally:
            try:
                self.shutdown_request(request)
            finally:
                os._exit(status)

    def server_close(self) -> None:
        """Close the server, then reap the children (waiting for them if ``block_on_close``)."""
        super().server_close()
        self.collect_children(blocking=self.block_on_close)

    def _pidfds(self) -> dict[int, int]:
        pidfds: dict[int, int] = vars(self).setdefault("_child_pidfds", {})
        return pidfds

    def _watch(self, pid: int) -> None:
        if not HAVE_PIDFD:
            return
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return  # no pidfds here (old kernel): service_actions reaps instead
        self._pidfds()[pid] = pidfd
        run: Run | None = getattr(self, "_run", None)  # None: mixed into a stdlib class
        if run is not None and run.in_this_thread():
            run.background.start_soon(self._reaper, run, pid, pidfd)

    def _reap(self, pid: int, *, blocking: bool) -> None:
        try:
            reaped, _ = os.waitpid(pid, 0 if blocking else os.WNOHANG)
        except ChildProcessError:
            reaped = pid  # already reaped elsewhere
        if reaped == 0:
            return
        if self.active_children is not None:
            self.active_children.discard(pid)
        pidfd = self._pidfds().pop(pid, None)
        if pidfd is not None:
            if trio.lowlevel.in_trio_run():
                trio.lowlevel.notify_closing(pidfd)  # wakes this run's reaper, if any
            os.close(pidfd)

    async def _reaper(self, run: Run, pid: int, pidfd: int) -> None:
        try:
            await trio.lowlevel.wait_readable(pidfd)
        except trio.ClosedResourceError:
            pass  # reaped by collect_children meanwhile
        else:
            self._reap(pid, blocking=True)
        run.child_exited.set()

    def _run_begins(self, run: Run) -> None:
        for pid, pidfd in list(self._pidfds().items()):
            run.background.start_soon(self._reaper, run, pid, pidfd)

    async def _wait_for_capacity(self, run: Run) -> None:
        while self.active_children and len(self.active_children) >= self.max_children:
            if not self._pidfds():
                self.collect_children()  # no pidfds: block as the stdlib does
                continue
            run.child_exited = trio.Event()
            await run.child_exited.wait()
