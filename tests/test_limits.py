from __future__ import annotations

import logging
from functools import partial

import pytest
import trio
import trio.testing

import trioserve

from .helpers import MemoryListener, connect, exchange


async def test_max_connections_is_never_exceeded_under_50_clients(
    autojump_clock: trio.abc.Clock,
) -> None:
    limit = 5
    running = 0
    most = 0

    async def handler(conn: trioserve.Connection) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await conn.receive_some()
            await trio.sleep(1)  # busy for a while (autojump clock)
            await conn.send_all(b"served")
        finally:
            running -= 1

    server = trioserve.Server(handler, max_connections=limit)
    replies: list[bytes] = []

    async def client(listener: trio.SocketListener) -> None:
        async with await connect(listener) as stream:
            await stream.send_all(b"hi")
            replies.append(await stream.receive_some())

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        async with trio.open_nursery() as clients:
            for _ in range(50):
                clients.start_soon(client, listener)
            await trio.testing.wait_all_tasks_blocked()
            # At the limit the server stops accepting: the rest wait in the kernel's backlog.
            assert server.stats.accepted == limit
            assert server.stats.active == limit
        nursery.cancel_scope.cancel()
    assert replies == [b"served"] * 50
    assert most == limit
    assert server.stats.accepted == 50


async def test_max_connections_applies_to_listener_streams_too(
    autojump_clock: trio.abc.Clock,
) -> None:
    release = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        await release.wait()
        await stream.send_all(b"ok")

    listener = MemoryListener()
    server = trioserve.Server(handler, max_connections=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_listeners, [listener])
        clients = [await listener.connect() for _ in range(4)]
        await trio.testing.wait_all_tasks_blocked()
        assert server.stats.active == 2
        release.set()
        for client in clients:
            assert await client.receive_some() == b"ok"
        nursery.cancel_scope.cancel()
    assert server.stats.completed == 4


async def test_idle_timeout_closes_a_silent_connection(autojump_clock: trio.abc.Clock) -> None:
    server = trioserve.Server(_echo_forever, idle_timeout=10)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        async with await connect(listener) as client:
            start = trio.current_time()
            assert await client.receive_some() == b""
            assert trio.current_time() - start == pytest.approx(10)
        nursery.cancel_scope.cancel()
    assert server.stats.timed_out == 1


async def test_idle_timeout_spares_a_connection_that_keeps_talking(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trioserve")
    server = trioserve.Server(_echo_forever, idle_timeout=10)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        async with await connect(listener) as client:
            for _ in range(5):
                await trio.sleep(8)  # virtual time: autojump clock
                assert await exchange(client, b"still here") == b"still here"
            assert trio.current_time() >= 40
            start = trio.current_time()
            assert await client.receive_some() == b""
            assert trio.current_time() - start == pytest.approx(10)
        nursery.cancel_scope.cancel()
    assert server.stats.timed_out == 1
    assert "idle_timeout expired" in caplog.text


async def test_handler_timeout_bounds_the_whole_handler(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trioserve")
    server = trioserve.Server(_echo_forever, handler_timeout=30, idle_timeout=10)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        async with await connect(listener) as client:
            start = trio.current_time()
            while True:
                await trio.sleep(5)  # never idle for 10 s (autojump clock)
                try:
                    await exchange(client, b"ping")
                except trio.BrokenResourceError:
                    break
                if not await _still_open(client):
                    break
            assert 30 <= trio.current_time() - start <= 35
        nursery.cancel_scope.cancel()
    assert server.stats.timed_out == 1
    assert "handler_timeout expired" in caplog.text


async def test_handler_timeout_cancels_a_handler_that_never_reads(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def stuck(conn: trioserve.Connection) -> None:
        await trio.sleep_forever()

    server = trioserve.Server(stuck, handler_timeout=3)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        async with await connect(listener) as client:
            start = trio.current_time()
            assert await client.receive_some() == b""
            assert trio.current_time() - start == pytest.approx(3)
        nursery.cancel_scope.cancel()
    assert (server.stats.timed_out, server.stats.cancelled) == (1, 0)


async def _echo_forever(conn: trioserve.Connection) -> None:
    async for data in conn:
        await conn.send_all(data)


async def _still_open(client: trio.SocketStream) -> bool:
    with trio.move_on_after(0):
        return await client.receive_some() != b""
    return True
