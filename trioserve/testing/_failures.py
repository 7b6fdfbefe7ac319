"""Collecting what a test server's handlers raise, so the test that caused it fails."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .._server import Server

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


class FailureCollector:
    """Keeps what one server's handlers fail with, while :meth:`installed` is active.

    The server reports each handler failure to it directly (whatever the logging
    configuration), from the handler's task or thread.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.failures: list[Exception] = []
        self._failures_lock = threading.Lock()

    def record(self, failure: Exception) -> None:
        with self._failures_lock:
            self.failures.append(failure)

    @contextmanager
    def installed(self) -> Iterator[FailureCollector]:
        """Collect the server's handler failures for the duration of the block."""
        self.server._failure_watchers.append(self.record)
        try:
            yield self
        finally:
            self.server._failure_watchers.remove(self.record)


def handler_errors_group(failures: list[Exception], where: str) -> ExceptionGroup[Exception]:
    """The exception a test server raises at exit when its handlers failed."""
    count = len(failures)
    noun = "handler" if count == 1 else "handlers"
    return ExceptionGroup(f"{count} {noun} of the test server at {where} failed", failures)
