"""trioserve.testing.serve_in_thread: a test server for blocking code."""

from __future__ import annotations

import math
import socket
import socketserver
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

import adapters
import trioserve
from trioserve.testing import serve_in_thread

from .helpers import echo
from .leakcheck import Snapshot

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


async def fail(conn: trio.abc.Stream) -> None:
    await conn.receive_some()
    raise ValueError("the handler broke")


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("trioserve test server")]


def exchange(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_a_blocking_client_talks_to_a_trioserve_handler(kind: str) -> None:
    with serve_in_thread(echo, kind=kind) as test_server:  # type: ignore[arg-type]
        [thread] = server_threads()
        with test_server.connect() as sock:
            assert exchange(sock, b"from a thread") == b"from a thread"
        assert test_server.stats.accepted == 1
    assert not thread.is_alive()
    assert test_server.stats.completed == 1  # the final counters, once the thread is gone
    assert server_threads() == []
    if kind == "unix":
        assert not Path(test_server.path).exists()


def test_the_address_is_ready_for_the_standard_library() -> None:
    with serve_in_thread(echo) as test_server:
        host, port = test_server.host, test_server.port
        assert test_server.address == (host, port) == ("127.0.0.1", port)
        with socket.create_connection((host, port)) as sock:
            assert exchange(sock, b"plain socket") == b"plain socket"


def test_a_client_left_open_is_hung_up_without_a_reset() -> None:
    with serve_in_thread(echo) as test_server:
        sock = test_server.connect()
        sock.sendall(b"never read back")
    assert sock.fileno() == -1
    assert test_server.handler_errors == []


def test_clients_are_hung_up_with_an_unlimited_grace_period_too() -> None:
    with serve_in_thread(echo, grace_period=math.inf) as test_server:
        socks = [test_server.connect() for _ in range(2)]
        for sock in socks:
            sock.sendall(b"never read back")
    assert [sock.fileno() for sock in socks] == [-1, -1]
    assert test_server.handler_errors == []


def break_handler(target: Any, **options: Any) -> list[Exception]:
    """Serve `target` and send it what makes the handlers of these tests fail."""
    with serve_in_thread(target, **options) as test_server, test_server.connect() as sock:
        sock.sendall(b"boom")
        assert sock.recv(10) == b""
    return test_server.handler_errors


def test_handler_errors_are_raised_in_the_test_at_exit() -> None:
    with pytest.raises(
        ExceptionGroup, match=r"1 handler of the test server at tcp://127\.0\.0\.1:\d+ failed"
    ) as info:
        break_handler(fail)
    [error] = info.value.exceptions
    assert isinstance(error, ValueError)
    assert server_threads() == []


def test_handler_errors_can_be_kept_instead() -> None:
    errors = break_handler(fail, raise_handler_errors=False)
    assert [type(error) for error in errors] == [ValueError]


@pytest.mark.parametrize("exception", [RuntimeError("the test failed"), KeyboardInterrupt()])
def test_the_thread_is_joined_when_the_block_raises_or_is_interrupted(
    exception: BaseException,
) -> None:
    before = Snapshot.take()
    clients: list[socket.socket] = []

    def interrupted_test() -> None:
        with serve_in_thread(echo) as test_server:
            clients.append(test_server.connect())
            clients[0].sendall(b"in flight")
            raise exception

    with pytest.raises(type(exception)):
        interrupted_test()
    assert server_threads() == []
    assert clients[0].fileno() == -1
    assert Snapshot.take().leaks_since(before) == []


def test_a_server_that_cannot_start_raises_at_entry_and_leaves_no_thread(
    tmp_path: Path,
) -> None:
    path = tmp_path / "not-a-socket"
    path.touch()
    with pytest.raises(trioserve.NotASocketError), serve_in_thread(echo, kind="unix", path=path):
        pytest.fail("the block must not run")  # pragma: no cover
    assert server_threads() == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "memory"}, ValueError, "kind must be one of 'tcp', 'unix', 'udp'"),
        ({"kind": "tcp", "path": "x"}, ValueError, "path applies to the unix"),
        ({"idle_timeout": -1}, ValueError, "idle_timeout must be more than 0 seconds, not -1"),
    ],
)
def test_invalid_arguments_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message), serve_in_thread(echo, **kwargs):  # type: ignore[arg-type]
        pytest.fail("the block must not run")  # pragma: no cover
    assert server_threads() == []


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            if data == b"boom":
                raise OSError("the stdlib handler broke")
            self.request.sendall(data)


# The standard library's own server stands in for an `adapters` server: serve_in_thread
# uses nothing but the socketserver API both share.
def test_a_socketserver_style_server_runs_and_is_closed_at_exit() -> None:
    server = socketserver.TCPServer(("127.0.0.1", 0), EchoHandler)
    with serve_in_thread(server) as test_server:
        assert test_server.kind == "tcp"
        assert test_server.address == server.server_address
        with test_server.connect() as sock:
            assert exchange(sock, b"stdlib") == b"stdlib"
        left_open = test_server.connect()  # TCPServer serves one at a time: EOF frees it
        left_open.sendall(b"bye")
        with pytest.raises(AttributeError, match="trioserve servers only"):
            getattr(test_server, "stats")  # noqa: B009
    assert server.socket.fileno() == -1
    assert server_threads() == []


def test_a_unix_socketserver_is_recognised(tmp_path: Path) -> None:
    path = str(tmp_path / "stdlib.sock")
    server = socketserver.UnixStreamServer(path, EchoHandler)
    try:
        with serve_in_thread(server) as test_server:
            assert (test_server.kind, test_server.path) == ("unix", path)
            with test_server.connect() as sock:
                assert exchange(sock, b"unix stdlib") == b"unix stdlib"
    finally:
        Path(path).unlink()


def test_a_socketserver_handlers_errors_are_collected_through_handle_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = socketserver.TCPServer(("127.0.0.1", 0), EchoHandler)
    with pytest.raises(ExceptionGroup) as info:
        break_handler(server)
    [error] = info.value.exceptions
    assert str(error) == "the stdlib handler broke"
    assert "the stdlib handler broke" in capsys.readouterr().err  # handle_error still ran
    assert "handle_error" not in vars(server)


def test_options_are_refused_for_a_socketserver_style_server() -> None:
    server = socketserver.TCPServer(("127.0.0.1", 0), EchoHandler)
    try:
        with (
            pytest.raises(TypeError, match="kind, max_connections apply to trioserve handlers"),
            serve_in_thread(server, kind="tcp", max_connections=3),
        ):
            pytest.fail("the block must not run")  # pragma: no cover
    finally:
        server.server_close()


# An adapters server through serve_in_thread: the same duck-typed path as socketserver's.
@pytest.mark.parametrize("server_class", ["TCPServer", "ThreadingTCPServer"])
def test_an_adapters_server_runs_in_a_thread(server_class: str) -> None:
    class AdaptedEcho(adapters.BaseRequestHandler):
        def handle(self) -> None:
            while data := self.request.recv(65536):
                if data == b"boom":
                    raise OSError("the adapted handler broke")
                self.request.sendall(data)

    server = getattr(adapters, server_class)(("127.0.0.1", 0), AdaptedEcho)
    with serve_in_thread(server) as test_server, test_server.connect() as sock:
        assert exchange(sock, b"adapted") == b"adapted"
    assert server.socket.fileno() == -1
    server = getattr(adapters, server_class)(("127.0.0.1", 0), AdaptedEcho)
    with pytest.raises(ExceptionGroup) as info:
        break_handler(server)
    assert [str(error) for error in info.value.exceptions] == ["the adapted handler broke"]
    assert server_threads() == []
