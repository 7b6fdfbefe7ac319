from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

import trioserve


def clog(sock: socket.socket) -> None:
    """Send until not even one more byte fits."""
    sock.setblocking(False)
    chunk = 65536
    while chunk:
        try:
            sock.send(b"x" * chunk)
        except BlockingIOError:
            chunk //= 2


def socketpair(*, clogged: bool = False) -> tuple[trioserve.Connection, trioserve.Connection]:
    left, right = socket.socketpair()
    for sock in (left, right):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        if clogged:
            clog(sock)
    return trioserve.Connection(left), trioserve.Connection(right)


def tcp_pair() -> tuple[trioserve.Connection, trioserve.Connection]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, address = listener.accept()
    return trioserve.Connection(client), trioserve.Connection(server, address)


async def make_pair() -> tuple[trioserve.Connection, trioserve.Connection]:
    return socketpair()


async def make_clogged_pair() -> tuple[trioserve.Connection, trioserve.Connection]:
    return socketpair(clogged=True)


async def make_tcp_pair() -> tuple[trioserve.Connection, trioserve.Connection]:
    return tcp_pair()


async def test_passes_trio_half_closeable_stream_checks_over_socketpairs() -> None:
    await trio.testing.check_half_closeable_stream(make_pair, make_clogged_pair)


async def test_passes_trio_half_closeable_stream_checks_over_tcp() -> None:
    # Loopback TCP frees send-buffer space behind our back (window updates), so it
    # cannot be kept reliably clogged: the clogged checks run over socketpairs above.
    await trio.testing.check_half_closeable_stream(make_tcp_pair, None)


async def test_every_async_method_is_a_checkpoint() -> None:
    left, right = socketpair()
    async with left, right:
        with trio.testing.assert_checkpoints():
            await left.send_all(b"ready")
        with trio.testing.assert_checkpoints():
            await right.receive_some(5)  # data was already there
        with trio.testing.assert_checkpoints():
            await left.send_all(b"")
        with trio.testing.assert_checkpoints():
            await left.wait_send_all_might_not_block()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(left.send_all, b"later")
            with trio.testing.assert_checkpoints():
                await right.receive_some(5)  # had to wait
        with trio.testing.assert_checkpoints():
            await left.send_eof()
        with trio.testing.assert_checkpoints():
            assert await right.receive_some() == b""
    with trio.testing.assert_checkpoints():
        await left.aclose()


async def test_cancelled_receive_loses_no_data() -> None:
    left, right = socketpair()
    async with left, right:
        with trio.CancelScope() as scope:
            scope.cancel()
            await left.send_all(b"lost?")  # cancelled before sending anything
        assert scope.cancelled_caught
        await left.send_all(b"kept")
        with trio.CancelScope() as scope:
            scope.cancel()
            await right.receive_some()
        assert scope.cancelled_caught
        assert await right.receive_some() == b"kept"


async def test_closed_connection_raises_closed_resource_error() -> None:
    left, right = socketpair()
    await left.aclose()
    await left.aclose()  # closing twice is harmless
    with pytest.raises(trio.ClosedResourceError):
        await left.send_all(b"x")
    with pytest.raises(trio.ClosedResourceError):
        await left.receive_some()
    await right.aclose()


async def test_peer_reset_raises_broken_resource_error() -> None:
    client, server = tcp_pair()
    async with server:
        client.socket.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        await client.aclose()  # RST instead of FIN
        with pytest.raises(trio.BrokenResourceError) as info:
            await server.receive_some()
        assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_concurrent_receives_are_refused() -> None:
    left, right = socketpair()
    async with left, right, trio.open_nursery() as nursery:
        nursery.start_soon(right.receive_some)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await right.receive_some()
        await left.send_all(b"x")


async def test_addresses_and_trio_socket() -> None:
    client, server = tcp_pair()
    async with client, server:
        assert server.remote_address == client.local_address
        assert client.remote_address == server.local_address
        assert server.socket.getsockname() == server.local_address
        assert server.socket.fileno() == server.socket.fileno() != -1


def test_constructor_checks_its_argument() -> None:
    with pytest.raises(TypeError, match=r"expected a socket\.socket"):
        trioserve.Connection("nope")  # type: ignore[arg-type]
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        pytest.raises(ValueError, match="expected a SOCK_STREAM socket"),
    ):
        trioserve.Connection(udp)
    with pytest.raises(ValueError, match="max_bytes must be at least 1"):
        trio.run(_receive_zero)


async def _receive_zero() -> None:
    left, right = socketpair()
    async with left, right:
        await left.receive_some(0)
