"""The pytest plugin trioserve installs (entry point ``pytest11``, name ``trioserve``).

Fixtures:

``trioserve_server``
    (async, for trio tests run by pytest-trio) ``await trioserve_server(handler, **kw)``
    enters :func:`~trioserve.testing.open_test_server` with the same arguments and returns
    the :class:`~trioserve.testing.TestServer`. ``kind="memory"`` gives in-memory
    connections for handler unit tests without sockets.
``trioserve_thread_server``
    (sync) ``trioserve_thread_server(target, **kw)`` enters
    :func:`~trioserve.testing.serve_in_thread` and returns the
    :class:`~trioserve.testing.ThreadedTestServer`.

Every server a fixture started is stopped when the test ends, newest first, and a handler
error fails the test then. The plugin only adds these fixtures (no hooks, nothing autouse),
so it costs nothing to suites that do not use them; ``-p no:trioserve`` turns it off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import pytest
import trio

from .._handlers import Handler
from ._open import StartTestServer, TestServer, open_test_server
from ._thread import SocketServerLike, StartThreadedTestServer, ThreadedTestServer, serve_in_thread

#: A request to the task that keeps the servers: what to start, and where to answer.
_Request = tuple[Handler, dict[str, Any], "trio.MemorySendChannel[TestServer | Exception]"]


async def _keep_servers(
    requests: trio.MemoryReceiveChannel[_Request], failures: list[Exception]
) -> None:
    """Enter and, at the end, exit every test server in this one task.

    A server's context holds a nursery, which must be opened and closed by the same
    task: the test's task cannot open it, since the fixture's task closes it.
    """
    try:
        async with AsyncExitStack() as servers:
            async for handler, options, reply in requests:
                try:
                    started = await servers.enter_async_context(
                        open_test_server(handler, **options)
                    )
                except Exception as exc:
                    reply.send_nowait(exc)
                else:
                    reply.send_nowait(started)
    except Exception as exc:
        failures.append(exc)


@pytest.fixture
async def trioserve_server() -> AsyncIterator[StartTestServer]:
    """Start test servers in a trio test; all of them stop when the test ends."""
    send_request, receive_requests = trio.open_memory_channel[_Request](0)
    failures: list[Exception] = []

    async def start(handler: Handler, /, **options: Any) -> TestServer:
        send_reply, receive_reply = trio.open_memory_channel[TestServer | Exception](1)
        await send_request.send((handler, options, send_reply))
        started = await receive_reply.receive()
        if isinstance(started, Exception):
            raise started
        return started

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_keep_servers, receive_requests, failures)
        with send_request:
            yield start
    if failures:
        raise failures[0]


@pytest.fixture
def trioserve_thread_server() -> Iterator[StartThreadedTestServer]:
    """Start servers in background threads; all of them stop when the test ends."""
    with ExitStack() as servers:

        def start(target: Handler | SocketServerLike, /, **options: Any) -> ThreadedTestServer:
            return servers.enter_context(serve_in_thread(target, **options))

        yield start
