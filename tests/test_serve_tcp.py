from __future__ import annotations

import logging
import socket
import sys
from functools import partial

import pytest
import trio
import trio.testing

import trioserve

from .helpers import MemoryListener, connect, echo, exchange

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


async def test_echo_over_tcp(nursery: trio.Nursery) -> None:
    listeners = await nursery.start(trioserve.serve_tcp, echo, 0)
    assert all(isinstance(listener, trio.SocketListener) for listener in listeners)
    client = await trio.testing.open_stream_to_socket_listener(listeners[0])
    async with client:
        assert await exchange(client, b"hello") == b"hello"
        assert await exchange(client, b"again") == b"again"


async def test_port_zero_on_every_interface_shares_one_port(nursery: trio.Nursery) -> None:
    listeners = await nursery.start(trioserve.serve_tcp, echo, 0)
    ports = {listener.socket.getsockname()[1] for listener in listeners}
    assert len(ports) == 1
    for listener in listeners:
        async with await connect(listener) as client:
            assert await exchange(client, b"x") == b"x"


async def test_the_handler_gets_a_connection_with_addresses(nursery: trio.Nursery) -> None:
    seen: list[trioserve.Connection] = []
    local_addresses: list[object] = []

    async def handler(conn: trioserve.Connection) -> None:
        seen.append(conn)
        local_addresses.append(conn.local_address)
        await conn.send_all(repr(conn.remote_address).encode())

    listeners = await nursery.start(partial(trioserve.serve_tcp, handler, 0, host="127.0.0.1"))
    async with await connect(listeners[0]) as client:
        reply = await client.receive_some()
        assert reply == repr(client.socket.getsockname()).encode()
        assert await client.receive_some() == b""  # closed when the handler returned
    [conn] = seen
    assert isinstance(conn, trioserve.Connection)
    assert isinstance(conn, trio.abc.HalfCloseableStream)
    assert local_addresses == [listeners[0].socket.getsockname()]
    with pytest.raises(trio.ClosedResourceError):
        await conn.send_all(b"closed already")


async def test_a_raising_handler_is_logged_and_the_others_go_on(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(conn: trioserve.Connection) -> None:
        async for data in conn:
            if data == b"boom":
                raise ValueError("handler exploded")
            await conn.send_all(data)

    server = trioserve.Server(handler)
    listeners = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
    healthy = [await connect(listeners[0]) for _ in range(5)]
    for round_ in range(3):
        async with await connect(listeners[0]) as bad:
            await bad.send_all(b"boom")
            assert await bad.receive_some() == b""  # its connection was closed
        for client in healthy:
            assert await exchange(client, b"ok%d" % round_) == b"ok%d" % round_
    for client in healthy:
        await client.aclose()
    await trio.testing.wait_all_tasks_blocked()
    stats = server.stats
    assert stats.failed == 3
    assert stats.accepted == 8
    failures = [r for r in caplog.records if r.name == "trioserve" and r.levelno == logging.ERROR]
    assert len(failures) == 3
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], ValueError)
    assert "127.0.0.1" in failures[0].getMessage()


async def test_exception_groups_from_a_handler_are_logged_not_raised(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async def fail(message: str) -> None:
        raise RuntimeError(message)

    async def handler(conn: trioserve.Connection) -> None:
        async with trio.open_nursery() as inner:
            inner.start_soon(fail, "one")
            inner.start_soon(fail, "two")

    server = trioserve.Server(handler)
    listeners = await nursery.start(server.serve_tcp, 0)
    for _ in range(2):
        async with await connect(listeners[0]) as client:
            assert await client.receive_some() == b""
    assert server.stats.failed == 2
    [record, _] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ExceptionGroup)


async def test_cancellation_and_keyboard_interrupt_are_not_swallowed() -> None:
    async def handler(conn: trioserve.Connection) -> None:
        raise KeyboardInterrupt

    with pytest.raises(BaseExceptionGroup) as info:  # noqa: PT012
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trioserve.serve_tcp, handler, 0)
            async with await connect(listeners[0]) as client:
                await client.receive_some()
    assert info.group_contains(KeyboardInterrupt)


async def test_hard_stop_cancels_handlers_and_closes_everything() -> None:
    started = trio.Event()
    cancelled = trio.Event()

    async def handler(conn: trioserve.Connection) -> None:
        started.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.set()
            raise

    server = trioserve.Server(handler)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(server.serve_tcp, 0)
        client = await connect(listeners[0])
        await started.wait()
        nursery.cancel_scope.cancel()
    assert cancelled.is_set()
    assert listeners[0].socket.fileno() == -1
    assert await client.receive_some() == b""
    await client.aclose()
    assert server.stats.cancelled == 1
    assert server.stats.active == 0


async def test_handler_nursery_runs_handlers_there(nursery: trio.Nursery) -> None:
    tasks: list[trio.lowlevel.Task] = []

    async def handler(conn: trioserve.Connection) -> None:
        task = trio.lowlevel.current_task()
        tasks.append(task)
        await conn.send_all(b"hi")

    async with trio.open_nursery() as handler_nursery:
        listeners = await nursery.start(
            partial(trioserve.serve_tcp, handler, 0, handler_nursery=handler_nursery)
        )
        async with await connect(listeners[0]) as client:
            assert await client.receive_some() == b"hi"
        [task] = tasks
        assert task.parent_nursery is handler_nursery
        nursery.cancel_scope.cancel()


async def test_current_server_is_the_server_running_the_handler(nursery: trio.Nursery) -> None:
    found: list[trioserve.Server] = []

    async def handler(conn: trioserve.Connection) -> None:
        found.append(trioserve.current_server())

    server = trioserve.Server(handler)
    listeners = await nursery.start(server.serve_tcp, 0)
    async with await connect(listeners[0]) as client:
        assert await client.receive_some() == b""
    assert found == [server]
    with pytest.raises(RuntimeError, match="from a trioserve handler"):
        trioserve.current_server()


async def test_serve_listeners_with_a_trio_socket_listener_gives_connections(
    nursery: trio.Nursery,
) -> None:
    kinds: list[type] = []

    async def handler(conn: trio.abc.Stream) -> None:
        kinds.append(type(conn))
        await echo(conn)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    started = await nursery.start(trioserve.serve_listeners, handler, listeners)
    assert started == listeners
    async with await connect(listeners[0]) as client:
        assert await exchange(client, b"abc") == b"abc"
    assert kinds == [trioserve.Connection]


async def test_serve_listeners_with_memory_listeners_closes_them(autojump_clock: object) -> None:
    listener = MemoryListener()
    server = trioserve.Server(echo)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_listeners, [listener])
        client = await listener.connect()
        assert await exchange(client, b"memory") == b"memory"
        await client.aclose()
        server.shutdown()
    assert listener.closed
    assert server.stats.completed == 1


async def test_accept_error_that_is_not_about_resources_stops_the_server() -> None:
    class BrokenListener(MemoryListener):
        async def accept(self) -> trio.abc.Stream:
            raise OSError(22, "Invalid argument")

    with pytest.raises(BaseExceptionGroup) as info:
        await trioserve.serve_listeners(echo, [BrokenListener()])
    assert info.group_contains(OSError)


async def test_a_client_that_hangs_up_mid_request_does_not_hurt(nursery: trio.Nursery) -> None:
    async def handler(conn: trioserve.Connection) -> None:
        await conn.receive_some()
        await conn.send_all(b"x" * 1_000_000)

    server = trioserve.Server(handler)
    listeners = await nursery.start(server.serve_tcp, 0)
    sock = socket.create_connection(listeners[0].socket.getsockname()[:2])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.sendall(b"go")
    sock.close()
    async with await connect(listeners[0]) as client:
        await client.send_all(b"go")
        assert await client.receive_some(10) == b"x" * 10
    while server.stats.active:
        await trio.testing.wait_all_tasks_blocked()
    assert server.stats.accepted == 2


async def test_a_peer_that_resets_is_a_disconnect_not_a_failure(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trioserve")
    reset = trio.Event()

    async def handler(conn: trioserve.Connection) -> None:
        await reset.wait()
        await conn.receive_some()

    server = trioserve.Server(handler)
    listeners = await nursery.start(server.serve_tcp, 0)
    sock = socket.create_connection(listeners[0].socket.getsockname()[:2])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # an RST, as load generators do at the end of a run
    while server.stats.accepted == 0:
        await trio.testing.wait_all_tasks_blocked()
    reset.set()
    while server.stats.active:
        await trio.testing.wait_all_tasks_blocked()
    assert (server.stats.disconnected, server.stats.failed) == (1, 0)
    [record] = [r for r in caplog.records if "broken" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert record.exc_info is None


async def test_a_peer_gone_inside_a_handlers_nursery_is_a_disconnect_too(
    nursery: trio.Nursery,
) -> None:
    async def handler(conn: trioserve.Connection) -> None:
        async def pump() -> None:
            while True:
                await conn.send_all(b"x" * 65536)

        async with trio.open_nursery() as inner:
            inner.start_soon(pump)
            inner.start_soon(trio.sleep_forever)

    server = trioserve.Server(handler)
    listeners = await nursery.start(server.serve_tcp, 0)
    sock = socket.create_connection(listeners[0].socket.getsockname()[:2])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    while server.stats.accepted == 0:
        await trio.testing.wait_all_tasks_blocked()
    sock.close()  # reset while the handler's nursery is sending
    while server.stats.active:
        await trio.testing.wait_all_tasks_blocked()
    assert (server.stats.disconnected, server.stats.failed) == (1, 0)
