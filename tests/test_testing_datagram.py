"""trioserve.testing with the datagram kinds: udp and unix-datagram."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

import trioserve
from trioserve.testing import open_test_server, serve_in_thread

from .leakcheck import Snapshot

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

DATAGRAM_KINDS = ["udp", "unix-datagram"]


async def echo(datagram: trioserve.Datagram) -> None:
    await datagram.reply(datagram.data)


async def reply_then_fail(datagram: trioserve.Datagram) -> None:
    await datagram.reply(b"bye")
    raise ValueError("the datagram handler broke")


@pytest.mark.parametrize("kind", DATAGRAM_KINDS)
async def test_a_datagram_server_answers_and_is_gone_after_the_block(kind: str) -> None:
    before = Snapshot.take()
    async with open_test_server(echo, kind=kind) as test_server:  # type: ignore[arg-type]
        sock = await test_server.open_datagram_socket()
        await sock.send(b"ping")
        assert await sock.recv(100) == b"ping"
        with pytest.raises(TypeError, match="use open_datagram_socket"):
            await test_server.connect()
    assert Snapshot.take().leaks_since(before) == []
    assert test_server.stats.completed == 1
    if kind == "unix-datagram":
        assert not Path(test_server.path).parent.exists()
    else:
        assert test_server.host == "127.0.0.1"


@pytest.mark.parametrize("kind", DATAGRAM_KINDS)
async def test_datagram_handler_errors_fail_the_test(kind: str) -> None:
    async def exchange() -> None:
        async with open_test_server(reply_then_fail, kind=kind) as test_server:  # type: ignore[arg-type]
            sock = await test_server.open_datagram_socket()
            await sock.send(b"x")
            assert await sock.recv(100) == b"bye"

    with pytest.raises(ExceptionGroup, match=f"1 handler of the test server at {kind}") as info:
        await exchange()
    [error] = info.value.exceptions
    assert str(error) == "the datagram handler broke"


@pytest.mark.parametrize("kind", DATAGRAM_KINDS)
async def test_a_timeout_around_a_datagram_server_leaves_nothing(kind: str) -> None:
    async def slow(datagram: trioserve.Datagram) -> None:
        await datagram.reply(b"working")
        await trio.sleep_forever()

    before = Snapshot.take()
    with trio.move_on_after(60) as scope:
        async with open_test_server(slow, kind=kind) as test_server:  # type: ignore[arg-type]
            sock = await test_server.open_datagram_socket()
            await sock.send(b"x")
            assert await sock.recv(100) == b"working"
            # The timeout expires now (the autojump clock could jump before the server
            # reads from its real socket).
            scope.deadline = trio.current_time()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert test_server.stats.cancelled == 1
    assert Snapshot.take().leaks_since(before) == []


@pytest.mark.parametrize("kind", DATAGRAM_KINDS)
def test_a_blocking_client_talks_to_a_datagram_server_in_a_thread(kind: str) -> None:
    before = Snapshot.take()
    with serve_in_thread(echo, kind=kind) as test_server:  # type: ignore[arg-type]
        sock = test_server.open_datagram_socket()
        sock.send(b"from a thread")
        assert sock.recv(100) == b"from a thread"
        with pytest.raises(TypeError, match="use open_datagram_socket"):
            test_server.connect()
    assert sock.fileno() == -1
    assert Snapshot.take().leaks_since(before) == []
