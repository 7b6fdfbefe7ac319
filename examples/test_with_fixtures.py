"""Testing handlers with trioserve's pytest fixtures (installed with trioserve).

    .venv/bin/pytest examples/test_with_fixtures.py    # in this repository (trio_mode is on)
    pytest -o trio_mode=true test_with_fixtures.py     # elsewhere, with pytest-trio installed

``trioserve_server`` starts a server inside a trio test and ``trioserve_thread_server`` one
in a background thread for blocking clients; both stop their servers when the test ends,
and a handler that raised fails the test. ``kind="memory"`` needs no sockets at all, so the
autojump clock can fast-forward a handler's timeouts.
"""

from __future__ import annotations

import socket

import trio
from async_handler import upper
from chat import chat
from tcp_echo import echo

from trioserve.testing import StartTestServer, StartThreadedTestServer


async def test_echo_over_tcp(trioserve_server: StartTestServer) -> None:
    test_server = await trioserve_server(echo)
    client = await test_server.connect()
    await client.send_all(b"ping")
    assert await client.receive_some() == b"ping"


async def test_upper_in_memory_with_a_timeout(
    trioserve_server: StartTestServer, autojump_clock: trio.abc.Clock
) -> None:
    test_server = await trioserve_server(upper, kind="memory", handler_timeout=30)
    client = await test_server.connect()
    await client.send_all(b"shout\n")
    assert await client.receive_some() == b"SHOUT\n"
    assert await client.receive_some() == b""  # 30 s later: closed (at once, in real time)
    assert test_server.stats.timed_out == 1


async def test_chat_relays_between_two_clients(trioserve_server: StartTestServer) -> None:
    test_server = await trioserve_server(chat, kind="memory")
    alice, bob = await test_server.connect(), await test_server.connect()
    assert (await alice.receive_some()).startswith(b"welcome")
    assert (await bob.receive_some()).startswith(b"welcome")
    assert (await alice.receive_some()).endswith(b"joined\n")  # bob
    await alice.send_all(b"hi bob\n")
    assert (await bob.receive_some()).endswith(b": hi bob\n")


def test_echo_for_a_blocking_client(trioserve_thread_server: StartThreadedTestServer) -> None:
    test_server = trioserve_thread_server(echo, kind="unix")
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(test_server.path)
        client.sendall(b"from a plain socket")
        assert client.recv(100) == b"from a plain socket"
