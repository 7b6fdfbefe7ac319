from __future__ import annotations

import signal
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from .datagram_client import DatagramClient, ipv6_unavailable
from .helpers import exchange
from .test_cli import LISTENING, cli, run_cli, tcp_port


def client_for(endpoint: bytes) -> DatagramClient:
    """A UDP client for a ``udp://HOST:PORT`` line (IPv4 loopback for a wildcard)."""
    host = endpoint.removeprefix(b"udp://").rsplit(b":", 1)[0].strip(b"[]").decode()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    loopback = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((loopback, 0))
    return DatagramClient(sock, (loopback, tcp_port(endpoint)))


async def test_the_echo_answers_udp_unix_datagrams_and_streams_then_stops_on_a_signal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cli.sock"
    args = ("--udp", "127.0.0.1:0", "--unix-datagram", str(path), "--tcp", "127.0.0.1:0")
    async with cli(*args) as run:
        endpoints = await run.read_until(LISTENING, count=3)
        assert endpoints[0].startswith(b"udp://127.0.0.1:")
        assert tcp_port(endpoints[0]) != 0
        assert endpoints[1] == b"unix-datagram:" + bytes(path)
        with client_for(endpoints[0]) as client:
            assert await client.exchange(b"over udp") == b"over udp"
            assert await client.exchange(b"") == b""
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            assert await client.exchange(b"over unix") == b"over unix"
        async with await trio.open_tcp_stream("127.0.0.1", tcp_port(endpoints[2])) as stream:
            assert await exchange(stream, b"over tcp") == b"over tcp"
        run.process.send_signal(signal.SIGTERM)
        assert await run.finish() == 0
    assert not path.exists()
    assert b"Traceback" not in run.stderr


async def test_udp_without_a_host_listens_on_every_interface() -> None:
    async with cli("--udp", "0") as run:
        expected = 1 if ipv6_unavailable() else 2
        endpoints = await run.read_until(LISTENING, count=expected)
        assert endpoints[0].startswith((b"udp://0.0.0.0:", b"udp://[::]:"))
        assert len({tcp_port(endpoint) for endpoint in endpoints}) == 1
        for endpoint in endpoints:
            with client_for(endpoint) as client:
                assert await client.exchange(b"anywhere") == b"anywhere"
        run.process.send_signal(signal.SIGINT)
        assert await run.finish() == 0


async def test_an_unanswerable_sender_is_skipped_quietly_and_the_echo_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cli.sock"
    async with cli("--unix-datagram", str(path)) as run:
        await run.read_until(LISTENING)
        with DatagramClient.unix(path, None) as unbound:
            await unbound.send(b"no return address")
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            assert await client.exchange(b"bound") == b"bound"
        run.process.send_signal(signal.SIGINT)
        assert await run.finish() == 0
    # Any local process could send these: no traceback, no ERROR line per datagram.
    assert b"NoReplyAddressError" not in run.stderr
    assert b"ERROR" not in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--udp", "abc"], "port must be a number"),
        (["--udp", "127.0.0.1:70000"], "port must be between 0 and 65535"),
        (["--unix-datagram", ""], "the path must not be empty"),
    ],
)
def test_bad_datagram_endpoints_give_a_usage_error(args: Sequence[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "usage: trioserve" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_udp_port_is_a_short_error_with_status_1() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_cli("--udp", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot listen on udp://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_live_unix_datagram_path_is_a_short_error_with_status_1(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as live:
        live.bind(str(path))
        result = run_cli("--unix-datagram", str(path))
    assert result.returncode == 1
    assert f"cannot listen on unix-datagram:{path}" in result.stderr
    assert "in use by a running server" in result.stderr


def test_help_lists_the_datagram_endpoints() -> None:
    result = run_cli("--help")
    assert "--udp [HOST:]PORT" in result.stdout
    assert "--unix-datagram PATH" in result.stdout
