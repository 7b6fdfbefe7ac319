"""Collecting what a test server's handlers raise, so the test that caused it fails."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .._handlers import LOGGER
from .._server import Server, current_server

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


class FailureCollector(logging.Handler):
    """A handler on the ``trioserve`` logger that keeps one server's handler errors.

    The server logs a failed handler at ERROR level with the exception attached, from
    the handler's own task, where :func:`trioserve.current_server` names the server.
    Records from any other server (another test server, another thread) are ignored.
    """

    def __init__(self, server: Server) -> None:
        super().__init__(logging.ERROR)
        self.server = server
        self.failures: list[Exception] = []
        self._failures_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is None:
            return
        failure = record.exc_info[1]
        if not isinstance(failure, Exception):
            return
        try:
            server = current_server()
        except RuntimeError:
            return
        if server is self.server:
            with self._failures_lock:
                self.failures.append(failure)

    @contextmanager
    def installed(self) -> Iterator[FailureCollector]:
        """Listen on the ``trioserve`` logger for the duration of the block."""
        LOGGER.addHandler(self)
        try:
            yield self
        finally:
            LOGGER.removeHandler(self)


def handler_errors_group(failures: list[Exception], where: str) -> ExceptionGroup[Exception]:
    """The exception a test server raises at exit when its handlers failed."""
    count = len(failures)
    noun = "handler" if count == 1 else "handlers"
    return ExceptionGroup(f"{count} {noun} of the test server at {where} failed", failures)
