from __future__ import annotations

import math
import socket
from functools import partial

import pytest
import trio
import trio.testing

import trioserve

from .helpers import MemoryListener, connect, echo, exchange


async def test_shutdown_refuses_new_connections_and_lets_handlers_finish(
    autojump_clock: trio.abc.Clock,
) -> None:
    finishing = trio.Event()

    async def handler(conn: trioserve.Connection) -> None:
        await conn.receive_some()
        await finishing.wait()
        await trio.sleep(2)  # work that fits in the grace period (autojump clock)
        await conn.send_all(b"done")

    server = trioserve.Server(handler, grace_period=5)
    returned = trio.Event()

    async def serve(task_status: trio.TaskStatus[list[trio.SocketListener]]) -> None:
        await server.serve_tcp(0, host="127.0.0.1", task_status=task_status)
        returned.set()

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(serve)
        address = listener.socket.getsockname()
        client = await connect(listener)
        await client.send_all(b"go")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        server.shutdown()
        assert server.shutting_down
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address)
        finishing.set()
        assert await client.receive_some() == b"done"
        await returned.wait()
        assert trio.current_time() - start == pytest.approx(2)
        await client.aclose()
    assert server.stats.completed == 1
    assert server.stats.cancelled == 0


class WrappingListener(trio.abc.Listener[trio.SocketStream]):
    """A listener over a socket listener, as trio.SSLListener is: closed only by aclose()."""

    def __init__(self, inner: trio.SocketListener) -> None:
        self.inner = inner

    async def accept(self) -> trio.SocketStream:
        return await self.inner.accept()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_shutdown_closes_wrapping_listeners_before_the_grace_period(
    autojump_clock: trio.abc.Clock,
) -> None:
    finishing = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        await stream.receive_some()
        await finishing.wait()
        await stream.send_all(b"done")

    server = trioserve.Server(handler, grace_period=5)
    async with trio.open_nursery() as nursery:
        [inner] = await trio.open_tcp_listeners(0, host="127.0.0.1")
        address = inner.socket.getsockname()
        await nursery.start(server.serve_listeners, [WrappingListener(inner)])
        client = await trio.open_tcp_stream(*address)
        await client.send_all(b"go")
        await trio.testing.wait_all_tasks_blocked()
        server.shutdown()
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address)
        finishing.set()
        assert await client.receive_some() == b"done"
        await client.aclose()
    assert server.stats.completed == 1


async def test_handlers_still_running_after_the_grace_period_are_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow(conn: trioserve.Connection) -> None:
        await conn.receive_some()
        await trio.sleep(100)  # virtual time: autojump clock
        await conn.send_all(b"never")

    async def quick(conn: trioserve.Connection) -> None:
        await conn.receive_some()
        await trio.sleep(1)  # virtual time: autojump clock
        await conn.send_all(b"quick")

    async def handler(conn: trioserve.Connection) -> None:
        data = await conn.receive_some(1)
        await (slow if data == b"s" else quick)(conn)

    server = trioserve.Server(handler, grace_period=3)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        clients = [await connect(listener) for _ in range(4)]
        for client, kind in zip(clients, [b"ss", b"qq", b"ss", b"qq"], strict=True):
            await client.send_all(kind)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        server.shutdown()
    assert trio.current_time() - start == pytest.approx(3)
    replies = [await client.receive_some() for client in clients]
    assert replies == [b"", b"quick", b"", b"quick"]
    for client in clients:
        await client.aclose()
    assert (server.stats.completed, server.stats.cancelled, server.stats.active) == (2, 2, 0)


async def test_a_keep_alive_handler_can_see_the_shutdown_and_finish(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def keep_alive(conn: trioserve.Connection) -> None:
        server = trioserve.current_server()
        while not server.shutting_down:
            request = await conn.receive_some()
            if not request:
                return
            await conn.send_all(b"reply to " + request)

    server = trioserve.Server(keep_alive, grace_period=math.inf)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        client = await connect(listener)
        assert await exchange(client, b"one") == b"reply to one"
        await trio.testing.wait_all_tasks_blocked()  # the handler waits for the next request
        server.shutdown()
        # The request in flight is answered; then the handler sees the shutdown and returns.
        assert await exchange(client, b"two") == b"reply to two"
        assert await client.receive_some() == b""
        await client.aclose()
    assert server.stats.completed == 1


async def test_wait_for_shutdown_wakes_handlers(autojump_clock: trio.abc.Clock) -> None:
    async def handler(conn: trioserve.Connection) -> None:
        await trioserve.current_server().wait_for_shutdown()
        await conn.send_all(b"bye")

    server = trioserve.Server(handler)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        async with await connect(listener) as client:
            await trio.testing.wait_all_tasks_blocked()
            server.shutdown()
            assert await client.receive_some() == b"bye"


async def test_shutdown_stops_every_endpoint_of_the_server(tmp_path: object) -> None:
    server = trioserve.Server(echo)
    path = f"{tmp_path}/s.sock"
    async with trio.open_nursery() as nursery:
        tcp = await nursery.start(server.serve_tcp, 0)
        unix = await nursery.start(server.serve_unix, path)
        memory = MemoryListener()
        await nursery.start(server.serve_listeners, [memory])
        for listener in [*tcp, *unix]:
            async with await connect(listener) as client:
                assert await exchange(client, b"x") == b"x"
        server.shutdown()
        server.shutdown()  # twice is harmless
    assert memory.closed
    assert all(listener.socket.fileno() == -1 for listener in [*tcp, *unix])


async def test_serving_after_shutdown_returns_at_once() -> None:
    server = trioserve.Server(echo)
    server.shutdown()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(server.serve_tcp, 0)
    assert listeners[0].socket.fileno() == -1


async def test_grace_period_applies_to_an_external_handler_nursery(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def stuck(conn: trioserve.Connection) -> None:
        await trio.sleep_forever()

    server = trioserve.Server(stuck, grace_period=2)
    async with trio.open_nursery() as handler_nursery:
        [listener] = await handler_nursery.start(
            partial(server.serve_tcp, 0, host="127.0.0.1", handler_nursery=handler_nursery)
        )
        async with await connect(listener) as client:
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            server.shutdown()
            assert await client.receive_some() == b""
            assert trio.current_time() - start == pytest.approx(2)
    assert server.stats.cancelled == 1


async def test_grace_period_zero_cancels_at_once(autojump_clock: trio.abc.Clock) -> None:
    async def stuck(conn: trioserve.Connection) -> None:
        await trio.sleep_forever()

    server = trioserve.Server(stuck, grace_period=0)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        async with await connect(listener) as client:
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            server.shutdown()
            assert await client.receive_some() == b""
    assert trio.current_time() == start
    assert server.stats.cancelled == 1


async def test_with_an_external_handler_nursery_serve_returns_after_the_handlers(
    autojump_clock: trio.abc.Clock,
) -> None:
    cleaned_up = trio.Event()

    async def slow_to_leave(conn: trioserve.Connection) -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(1)  # cleanup that outlives the cancellation (autojump clock)
                cleaned_up.set()

    server = trioserve.Server(slow_to_leave, grace_period=2)
    returned_after_cleanup: list[bool] = []

    async def serve(
        handler_nursery: trio.Nursery, task_status: trio.TaskStatus[list[trio.SocketListener]]
    ) -> None:
        await server.serve_tcp(
            0, host="127.0.0.1", handler_nursery=handler_nursery, task_status=task_status
        )
        returned_after_cleanup.append(cleaned_up.is_set())

    async with trio.open_nursery() as handler_nursery:
        [listener] = await handler_nursery.start(serve, handler_nursery)
        async with await connect(listener) as client:
            await trio.testing.wait_all_tasks_blocked()
            server.shutdown()
            assert await client.receive_some() == b""
    assert returned_after_cleanup == [True]
