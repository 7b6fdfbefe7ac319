"""trioserve.testing.open_test_server: start, exchange, errors, and nothing left behind."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trioserve
from trioserve.testing import MemoryListener, TestServer, open_test_server

from .helpers import echo, exchange
from .leakcheck import Snapshot

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


async def fail(conn: trio.abc.Stream) -> None:
    await conn.receive_some()
    raise ValueError("the handler broke")


async def hang(conn: trio.abc.Stream) -> None:
    await conn.send_all(b"hello")
    await trio.sleep_forever()


@pytest.mark.parametrize("kind", ["tcp", "unix", "memory"])
async def test_a_stream_server_answers_and_is_gone_after_the_block(kind: str) -> None:
    async with open_test_server(echo, kind=kind) as test_server:  # type: ignore[arg-type]
        assert test_server.kind == kind
        client = await test_server.connect()
        assert await exchange(client, b"ping") == b"ping"
        endpoints = test_server.endpoints
    assert test_server.stats.completed == 1
    assert test_server.stats.active == 0
    if kind != "memory":
        assert all(listener.socket.fileno() == -1 for listener in endpoints)


async def test_tcp_address_is_a_loopback_host_and_a_real_port() -> None:
    async with open_test_server(echo) as test_server:
        host, port = test_server.host, test_server.port
        assert test_server.address == (host, port) == ("127.0.0.1", port)
        assert port > 0
        async with await trio.open_tcp_stream(host, port) as client:
            assert await exchange(client, b"by address") == b"by address"
        with pytest.raises(AttributeError, match="no path"):
            getattr(test_server, "path")  # noqa: B009
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port)).close()


async def test_tcp_on_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")  # pragma: no cover
    async with open_test_server(echo, host="::1") as test_server:
        assert test_server.address == ("::1", test_server.port)
        client = await test_server.connect()
        assert await exchange(client, b"six") == b"six"


async def test_a_unix_server_lives_in_a_temporary_directory_removed_at_exit() -> None:
    async with open_test_server(echo, kind="unix") as test_server:
        path = trio.Path(test_server.path)
        assert await path.is_socket()
        directory = path.parent
        client = await test_server.connect()
        assert await exchange(client, b"unix") == b"unix"
        with pytest.raises(AttributeError, match="no port"):
            getattr(test_server, "port")  # noqa: B009
    assert not await directory.exists()


@pytest.mark.parametrize("stop", ["graceful", "cancelled"])
async def test_a_second_server_can_bind_the_same_unix_path_at_once(
    autojump_clock: trio.abc.Clock, tmp_path: Path, stop: str
) -> None:
    path = tmp_path / "again.sock"
    with trio.CancelScope() as scope:
        async with open_test_server(hang, kind="unix", path=path) as first:
            assert first.path == str(path)
            client = await first.connect()
            assert await client.receive_some() == b"hello"
            if stop == "cancelled":
                scope.cancel()
                await trio.lowlevel.checkpoint()
    assert not path.exists()
    async with open_test_server(echo, kind="unix", path=path) as second:
        client = await second.connect()
        assert await exchange(client, b"second") == b"second"
    assert not path.exists()


async def test_memory_kind_uses_no_sockets_and_runs_on_the_autojump_clock(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow(conn: trio.abc.Stream) -> None:
        await conn.receive_some()
        await trio.sleep(100)  # virtual time: autojump clock

    before = Snapshot.take()
    start = trio.current_time()
    async with open_test_server(slow, kind="memory", handler_timeout=30) as test_server:
        assert test_server.address is None
        assert Snapshot.take().leaks_since(before) == []
        client = await test_server.connect()
        await client.send_all(b"x")
        assert await client.receive_some() == b""  # the server closed it at the timeout
        assert trio.current_time() - start == pytest.approx(30)
    assert test_server.stats.timed_out == 1


async def break_handlers(times: int, **options: Any) -> None:
    """Serve `fail` and make it fail `times` times."""
    async with open_test_server(fail, **options) as test_server:
        for _ in range(times):
            client = await test_server.connect()
            await client.send_all(b"x")
            assert await client.receive_some() == b""
        assert len(test_server.handler_errors) == times


async def test_handler_errors_fail_the_test_at_exit() -> None:
    with pytest.raises(ExceptionGroup, match="1 handler of the test server at tcp://") as info:
        await break_handlers(1)
    [error] = info.value.exceptions
    assert isinstance(error, ValueError)
    assert str(error) == "the handler broke"


async def test_every_failed_handler_is_in_the_group() -> None:
    with pytest.raises(ExceptionGroup, match="2 handlers of the test server at memory") as info:
        await break_handlers(2, kind="memory")
    assert [type(error) for error in info.value.exceptions] == [ValueError, ValueError]


async def test_handler_errors_can_be_kept_instead_of_raised() -> None:
    async with open_test_server(fail, kind="memory", raise_handler_errors=False) as test_server:
        client = await test_server.connect()
        await client.send_all(b"x")
        assert await client.receive_some() == b""
    [error] = test_server.handler_errors
    assert isinstance(error, ValueError)


async def test_handler_errors_are_collected_whatever_the_logging_level() -> None:
    logger = logging.getLogger("trioserve")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with pytest.raises(ExceptionGroup, match="1 handler of the test server"):
            await break_handlers(1, kind="memory")
    finally:
        logger.setLevel(level)


async def test_errors_of_another_server_are_not_collected() -> None:
    async with trio.open_nursery() as nursery:
        [other] = await nursery.start(trioserve.serve_listeners, fail, [MemoryListener()])
        async with open_test_server(echo, kind="memory") as test_server:
            client = await other.connect()
            await client.send_all(b"x")
            assert await client.receive_some() == b""
        assert test_server.handler_errors == []
        nursery.cancel_scope.cancel()


async def test_the_blocks_own_exception_propagates_unchanged() -> None:
    async def broken_test() -> None:
        async with open_test_server(fail) as test_server:
            client = await test_server.connect()
            await client.send_all(b"x")
            assert await client.receive_some() == b""
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine") as info:
        await broken_test()
    if sys.version_info >= (3, 11):
        assert "handlers failed too" in info.value.__notes__[0]


async def test_a_timeout_around_the_block_stops_the_server_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    test_server: TestServer | None = None

    async def stuck_test() -> None:
        nonlocal test_server
        with trio.fail_after(10):
            async with open_test_server(hang, kind="memory", grace_period=100) as test_server:
                client = await test_server.connect()
                assert await client.receive_some() == b"hello"
                await trio.sleep_forever()

    with pytest.raises(trio.TooSlowError):
        await stuck_test()
    assert test_server is not None
    assert trio.current_time() == pytest.approx(10)
    assert test_server.stats.cancelled == 1
    assert test_server.stats.active == 0


async def test_the_grace_period_lets_a_handler_finish_then_cancels_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_test_server(hang, kind="memory", grace_period=3) as test_server:
        client = await test_server.connect()
        assert await client.receive_some() == b"hello"
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(3)
    assert test_server.stats.cancelled == 1


async def test_clients_left_open_are_closed_before_the_server_stops() -> None:
    async with open_test_server(echo) as test_server:
        client = await test_server.connect()
        await client.send_all(b"left open")
    assert test_server.stats.completed == 1  # the handler saw EOF and returned
    with pytest.raises(trio.ClosedResourceError):
        await client.send_all(b"after")


async def test_a_server_that_cannot_start_raises_its_error_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a-file"
    path.write_text("keep me")
    before = Snapshot.take()
    with pytest.raises(trioserve.NotASocketError):
        async with open_test_server(echo, kind="unix", path=path):
            pytest.fail("the block must not run")  # pragma: no cover
    assert Snapshot.take().leaks_since(before) == []
    assert path.read_text() == "keep me"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "carrier-pigeon"}, ValueError, "kind must be one of .* not 'carrier-pigeon'"),
        ({"kind": "unix", "host": "::1"}, ValueError, "host applies to the tcp and udp kinds"),
        ({"path": "/tmp/x.sock"}, ValueError, "path applies to the unix and unix-datagram"),
        ({"max_connections": 0}, ValueError, "max_connections must be at least 1, not 0"),
        ({"grace_period": "soon"}, TypeError, "grace_period must be a number"),
        ({"kind": "unix", "path": 123}, TypeError, "path must be a str, bytes or os.PathLike"),
    ],
)
async def test_invalid_arguments_are_refused_before_anything_opens(
    kwargs: dict[str, object],
    error: type[Exception],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(error, match=message):
        async with open_test_server(echo, **kwargs):  # type: ignore[arg-type]
            pytest.fail("the block must not run")  # pragma: no cover
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("crash", [SystemExit(3), KeyboardInterrupt()])
async def test_a_handler_that_stops_the_process_is_not_hidden_as_a_cancellation(
    crash: BaseException,
) -> None:
    async def stop_everything(conn: trio.abc.Stream) -> None:
        await conn.receive_some()
        raise crash

    raised: BaseException | None = None
    try:
        async with open_test_server(stop_everything) as test_server:
            client = await test_server.connect()
            await client.send_all(b"go")
            await trio.sleep_forever()
    except BaseException as exc:  # a Cancelled too: it must not get past the test
        raised = exc
    assert isinstance(raised, BaseExceptionGroup), repr(raised)
    assert raised.split(type(crash))[0] is not None


async def test_connect_and_datagram_sockets_are_for_their_own_kinds() -> None:
    async with open_test_server(echo, kind="memory") as test_server:
        with pytest.raises(TypeError, match="use connect"):
            await test_server.open_datagram_socket()


Outcome = Callable[[TestServer], Awaitable[None]]


async def _pass(test_server: TestServer) -> None:
    client = await test_server.connect()
    assert await client.receive_some() == b"hello"


async def _raise(test_server: TestServer) -> None:
    await _pass(test_server)
    raise RuntimeError("the test failed")


async def _time_out(test_server: TestServer) -> None:
    await _pass(test_server)
    with trio.fail_after(1):
        await trio.sleep_forever()


@pytest.mark.parametrize("kind", ["tcp", "unix", "memory"])
@pytest.mark.parametrize(
    ("body", "expected"),
    [(_pass, None), (_raise, RuntimeError), (_time_out, trio.TooSlowError)],
    ids=["passed", "raised", "timed-out"],
)
async def test_nothing_is_left_behind_whatever_the_block_did(
    autojump_clock: trio.abc.Clock,
    kind: str,
    body: Outcome,
    expected: type[Exception] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A temporary directory of this test's own (other test runs share the system's), and
    # a short one: a Unix socket path inside it must fit in 108 bytes.
    own_temp_dir = tempfile.mkdtemp(prefix="tsl-")
    monkeypatch.setattr(tempfile, "tempdir", own_temp_dir)
    before = Snapshot.take()
    servers: list[TestServer] = []

    async def run() -> None:
        async with open_test_server(hang, kind=kind) as test_server:  # type: ignore[arg-type]
            servers.append(test_server)
            assert Snapshot.take().leaks_since(before) != [] or kind == "memory"
            await body(test_server)

    if expected is None:
        await run()
    else:
        with pytest.raises(expected):
            await run()
    assert Snapshot.take().leaks_since(before) == []
    assert os.listdir(own_temp_dir) == []
    os.rmdir(own_temp_dir)
    assert servers[0].stats.active == 0


def test_all_lists_exactly_the_public_names_of_trioserve_testing() -> None:
    import inspect

    import trioserve.testing

    public = {name for name in vars(trioserve.testing) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(trioserve.testing, name))}
    assert set(trioserve.testing.__all__) == public - modules


def test_trioserve_testing_does_not_need_pytest() -> None:
    check = "import sys; sys.modules['pytest'] = None; import trioserve.testing"  # no pytest
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)


async def test_a_memory_listener_closes_what_nobody_accepted() -> None:
    listener = MemoryListener()
    accepted_client = await listener.connect()
    server_end = await listener.accept()
    waiting_client = await listener.connect()
    await listener.aclose()
    with pytest.raises(trio.ClosedResourceError, match="memory listener is closed"):
        await listener.connect()
    with pytest.raises(trio.ClosedResourceError, match="memory listener is closed"):
        await listener.accept()
    assert await waiting_client.receive_some() == b""  # its server end was closed
    await accepted_client.send_all(b"still open")
    assert await server_end.receive_some() == b"still open"
