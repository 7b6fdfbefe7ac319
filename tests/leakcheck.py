"""What a test may not leave behind: descriptors, threads, child processes."""

from __future__ import annotations

import os
import threading

import attrs

#: trio's worker-thread cache keeps idle threads, named like this, for a few seconds;
#: they belong to trio's process-wide pool, not to any server.
IDLE_TRIO_WORKER_PREFIX = "Trio thread "


def _open_fds() -> dict[int, str]:
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, already closed
    return fds


def _threads() -> set[threading.Thread]:
    return {
        thread
        for thread in threading.enumerate()
        if thread.is_alive() and not thread.name.startswith(IDLE_TRIO_WORKER_PREFIX)
    }


def _children() -> set[int]:
    me = str(os.getpid())
    children = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            children.add(int(name))
    return children


@attrs.frozen
class Snapshot:
    fds: dict[int, str]
    threads: set[threading.Thread]
    children: set[int]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(_open_fds(), _threads(), _children())

    def leaks_since(self, before: Snapshot) -> list[str]:
        """Describe everything open now that was not open in ``before``."""
        leaks = [
            f"descriptor {fd} -> {target}"
            for fd, target in sorted(self.fds.items())
            if before.fds.get(fd) != target
        ]
        leaks += [f"thread {thread.name!r}" for thread in self.threads - before.threads]
        leaks += [f"child process {pid}" for pid in sorted(self.children - before.children)]
        return leaks
