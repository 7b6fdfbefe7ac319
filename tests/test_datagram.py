from __future__ import annotations

import errno
import inspect
import logging
import os
import select
import socket
import stat
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trioserve

from .datagram_client import DatagramClient, ipv6_unavailable


async def echo(datagram: trioserve.Datagram) -> None:
    await datagram.reply(datagram.data)


def unix_queue_length() -> int:
    try:
        return int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())
    except (OSError, ValueError):
        return 10


def udp_on(
    host: str, handler: Callable[[trioserve.Datagram], Awaitable[None]], **options: Any
) -> Any:
    return partial(trioserve.serve_udp, handler, 0, host=host, **options)


# --- echo over every kind of socket -------------------------------------------------


async def test_udp_echo_over_ipv4_delivers_addresses_and_empty_datagrams() -> None:
    seen: list[trioserve.Datagram] = []

    async def handler(datagram: trioserve.Datagram) -> None:
        seen.append(datagram)
        await datagram.reply(datagram.data)

    async with trio.open_nursery() as nursery:
        sockets = await nursery.start(udp_on("127.0.0.1", handler))
        [sock] = sockets
        assert isinstance(sock, trio.socket.SocketType)
        assert sock.type == socket.SOCK_DGRAM
        with DatagramClient.udp(sock) as client:
            assert await client.exchange(b"over udp") == b"over udp"
            assert await client.exchange(b"") == b""
            await client.send(b"from?")
            _, source = await client.receive()
            assert source == sock.getsockname()  # replies come from the server's socket
            assert [d.data for d in seen] == [b"over udp", b"", b"from?"]
            assert seen[0].remote_address == client.address
            assert seen[0].local_address == sock.getsockname()
        nursery.cancel_scope.cancel()
    assert sock.fileno() == -1


async def test_udp_echo_over_ipv6() -> None:
    reason = ipv6_unavailable()
    if reason is not None:
        pytest.skip(reason)
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(udp_on("::1", echo))
        assert sock.family == socket.AF_INET6
        with DatagramClient.udp(sock) as client:
            assert await client.exchange(b"over ipv6") == b"over ipv6"
        nursery.cancel_scope.cancel()


async def test_host_none_receives_on_every_interface_on_one_port() -> None:
    async with trio.open_nursery() as nursery:
        sockets = await nursery.start(trioserve.serve_udp, echo, 0)
        families = {sock.family for sock in sockets}
        assert socket.AF_INET in families
        assert len({sock.getsockname()[1] for sock in sockets}) == 1
        if ipv6_unavailable() is None:
            assert families == {socket.AF_INET, socket.AF_INET6}
        for sock in sockets:
            with DatagramClient.udp(sock) as client:
                assert await client.exchange(b"everywhere") == b"everywhere"
        nursery.cancel_scope.cancel()


async def test_a_taken_udp_port_is_an_error_and_nothing_is_left_open() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use") as caught:
            await trioserve.serve_udp(echo, port, host="127.0.0.1")
        assert caught.value.errno == errno.EADDRINUSE


async def test_unix_datagram_echo_and_the_file_is_removed_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "echo.sock"
    server = trioserve.Server(echo)
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(partial(server.serve_unix_datagram, path, mode=0o600))
        assert sock.family == socket.AF_UNIX
        assert sock.type == socket.SOCK_DGRAM
        info = path.lstat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            assert await client.exchange(b"over unix") == b"over unix"
            client.sock.sendto(b"from?", str(path))
            _, source = await client.receive()
            assert source == str(path)
        server.shutdown()
    assert not path.exists()
    assert sock.fileno() == -1
    assert server.stats.received == 2
    assert server.stats.completed == 2


async def test_the_unix_datagram_file_is_removed_on_a_hard_stop_too(tmp_path: Path) -> None:
    path = tmp_path / "hard.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(trioserve.serve_unix_datagram, echo, str(path))
        assert path.exists()
        nursery.cancel_scope.cancel()
    assert not path.exists()


async def test_a_stale_unix_datagram_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dead:
        dead.bind(str(path))  # bound, then closed: nobody receives there
    async with trio.open_nursery() as nursery:
        await nursery.start(trioserve.serve_unix_datagram, echo, path)
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            assert await client.exchange(b"fresh") == b"fresh"
        nursery.cancel_scope.cancel()


async def test_a_live_unix_datagram_socket_is_refused_and_left_serving(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(trioserve.serve_unix_datagram, echo, path)
        with pytest.raises(trioserve.AddressInUseError, match="in use by a running server"):
            await trioserve.serve_unix_datagram(echo, path)
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            assert await client.exchange(b"still mine") == b"still mine"
        nursery.cancel_scope.cancel()


async def test_a_path_that_is_not_a_socket_is_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    with pytest.raises(trioserve.NotASocketError, match="is not a socket"):
        await trioserve.serve_unix_datagram(echo, path)
    assert path.read_text() == "keep me"


# --- load, failures, sizes -------------------------------------------------------------


async def test_a_thousand_datagrams_in_flight_from_one_client_are_all_answered() -> None:
    count = 1000
    running = 0
    most = 0
    all_running = trio.Event()
    # The client's receive buffer holds a few hundred small datagrams: let replies out
    # a few dozen per scheduling round, which the client drains between rounds.
    reply_gate = trio.Semaphore(32)

    async def handler(datagram: trioserve.Datagram) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if running == count:
            all_running.set()
        await all_running.wait()
        async with reply_gate:
            await datagram.reply(datagram.data)

    server = trioserve.Server(handler)
    expected = {b"datagram %d" % i for i in range(count)}
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(partial(server.serve_udp, 0, host="127.0.0.1"))
        with DatagramClient.udp(sock) as client:
            for data in expected:
                await client.send(data)
            replies = [(await client.receive())[0] for _ in range(count)]
        nursery.cancel_scope.cancel()
    assert most == count  # every one was in flight at once, each in a task of its own
    assert len(replies) == count
    assert set(replies) == expected
    assert server.stats.received == count
    assert server.stats.completed == count


async def test_raising_handlers_are_logged_and_counted_and_the_rest_are_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(datagram: trioserve.Datagram) -> None:
        if datagram.data.startswith(b"bad"):
            raise ValueError(f"cannot handle {datagram.data!r}")
        await datagram.reply(datagram.data)

    server = trioserve.Server(handler)
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(partial(server.serve_udp, 0, host="127.0.0.1"))
        with DatagramClient.udp(sock) as client:
            for i in range(20):
                await client.send(b"bad %d" % i if i % 4 == 0 else b"good %d" % i)
            replies = {(await client.receive())[0] for _ in range(15)}
            await trio.testing.wait_all_tasks_blocked()
            assert not client.pending()
        nursery.cancel_scope.cancel()
    assert replies == {b"good %d" % i for i in range(20) if i % 4}
    stats = server.stats
    assert (stats.received, stats.completed, stats.failed) == (20, 15, 5)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 5
    assert all("failed on a datagram from 127.0.0.1:" in r.getMessage() for r in failures)
    assert all(r.exc_info is not None and r.exc_info[0] is ValueError for r in failures)


async def test_a_datagram_larger_than_receive_size_is_dropped_logged_and_counted(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    server = trioserve.Server(echo)
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(
            partial(server.serve_udp, 0, host="127.0.0.1", receive_size=100)
        )
        with DatagramClient.udp(sock) as client:
            await client.send(b"x" * 101)
            await client.send(b"y" * 200)
            assert await client.exchange(b"z" * 100) == b"z" * 100  # exactly fits
            assert server.stats.dropped == 2
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            # One warning now; the next drop within DROP_WARNING_INTERVAL is only counted.
            assert warnings == [
                f"dropped a datagram from 127.0.0.1:{client.address[1]}: "
                "larger than receive_size (100 bytes)"
            ]
            await trio.sleep(10)  # virtual time: autojump clock
            await client.send(b"w" * 1000)
            assert await client.exchange(b"after") == b"after"
        nursery.cancel_scope.cancel()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[1].endswith("(100 bytes); 1 more dropped since the last warning")
    stats = server.stats
    assert (stats.received, stats.completed, stats.dropped) == (2, 2, 3)


async def test_a_unix_datagram_larger_than_the_default_receive_size_is_dropped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.sock"
    server = trioserve.Server(echo)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_unix_datagram, path)
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 18)
            await client.send(b"x" * 65537)
            assert await client.exchange(b"x" * 65536) == b"x" * 65536
        nursery.cancel_scope.cancel()
    assert server.stats.dropped == 1


async def test_max_connections_is_never_exceeded_and_the_rest_wait_in_the_kernel(
    autojump_clock: trio.abc.Clock,
) -> None:
    limit = 3
    running = 0
    most = 0
    full = trio.Event()

    async def handler(datagram: trioserve.Datagram) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if running == limit:
            full.set()
        try:
            await trio.sleep(1)  # busy for a while (autojump clock)
            await datagram.reply(datagram.data)
        finally:
            running -= 1

    server = trioserve.Server(handler, max_connections=limit)
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(partial(server.serve_udp, 0, host="127.0.0.1"))
        with DatagramClient.udp(sock) as client:
            for i in range(30):
                await client.send(b"%d" % i)
            await full.wait()
            await trio.testing.wait_all_tasks_blocked()
            # At the limit the server stops reading: the rest wait in the socket's buffer.
            assert server.stats.received == limit
            assert select.select([sock], [], [], 0)[0] == [sock]
            replies = {(await client.receive())[0] for _ in range(30)}
        nursery.cancel_scope.cancel()
    assert most == limit
    assert replies == {b"%d" % i for i in range(30)}


async def test_max_connections_is_shared_with_stream_endpoints(
    autojump_clock: trio.abc.Clock,
) -> None:
    held = trio.Event()

    async def handler(request: trioserve.Connection | trioserve.Datagram) -> None:
        if isinstance(request, trioserve.Connection):
            held.set()
            await request.receive_some()  # holds the only slot until the client closes
            return
        await request.reply(request.data)

    server = trioserve.Server(handler, max_connections=1)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        [sock] = await nursery.start(partial(server.serve_udp, 0, host="127.0.0.1"))
        stream = await trio.open_tcp_stream("127.0.0.1", listener.socket.getsockname()[1])
        await held.wait()
        with DatagramClient.udp(sock) as client:
            await client.send(b"waits")
            await trio.testing.wait_all_tasks_blocked()
            assert server.stats.received == 0
            await stream.aclose()
            assert (await client.receive())[0] == b"waits"
        nursery.cancel_scope.cancel()


async def test_handler_timeout_cancels_a_datagram_task(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trioserve")

    stopped = trio.Event()

    async def handler(datagram: trioserve.Datagram) -> None:
        if datagram.data == b"slow":
            try:
                await trio.sleep_forever()
            finally:
                stopped.set()
        await datagram.reply(datagram.data)

    server = trioserve.Server(handler, handler_timeout=5, idle_timeout=1)
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(partial(server.serve_udp, 0, host="127.0.0.1"))
        with DatagramClient.udp(sock) as client:
            await client.send(b"slow")
            start = trio.current_time()
            assert await client.exchange(b"quick") == b"quick"
            await stopped.wait()
            assert trio.current_time() - start == pytest.approx(5)  # idle_timeout: no effect
            await trio.testing.wait_all_tasks_blocked()
            assert server.stats.timed_out == 1
        nursery.cancel_scope.cancel()
    assert server.stats.completed == 1
    assert "handler for a datagram from 127.0.0.1:" in caplog.text
    assert "cancelled: handler_timeout expired" in caplog.text


# --- replies that cannot be sent -------------------------------------------------------


async def test_a_reply_to_an_unbound_unix_sender_raises_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[OSError] = []
    handled = trio.Event()

    async def handler(datagram: trioserve.Datagram) -> None:
        try:
            await datagram.reply(b"to nowhere")
        except OSError as exc:
            errors.append(exc)
        handled.set()

    path = tmp_path / "server.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(trioserve.serve_unix_datagram, handler, path)
        with DatagramClient.unix(path, None) as client:
            await client.send(b"unbound")
            await handled.wait()
        nursery.cancel_scope.cancel()
    [error] = errors
    assert isinstance(error, trioserve.NoReplyAddressError)
    assert isinstance(error, trioserve.TrioserveError)
    assert error.errno == errno.EDESTADDRREQ
    assert "bound to no path" in str(error)


async def test_a_failed_reply_fails_only_its_handler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clients_gone = trio.Event()

    async def handler(datagram: trioserve.Datagram) -> None:
        await clients_gone.wait()
        await datagram.reply(datagram.data)

    path = tmp_path / "server.sock"
    server = trioserve.Server(handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_unix_datagram, path)
        with DatagramClient.unix(path, None) as unbound:
            await unbound.send(b"unbound")
        gone = DatagramClient.unix(path, tmp_path / "gone.sock")
        await gone.send(b"then gone")
        gone.sock.close()  # its file stays, nobody receives there: ECONNREFUSED
        clients_gone.set()
        await trio.testing.wait_all_tasks_blocked()
        assert server.stats.failed == 2
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            assert await client.exchange(b"still serving") == b"still serving"
        gone.close()
        nursery.cancel_scope.cancel()
    failures = {
        r.exc_info[0]: r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and r.exc_info
    }
    assert set(failures) == {trioserve.NoReplyAddressError, ConnectionRefusedError}
    assert failures[trioserve.NoReplyAddressError].endswith(
        "failed on a datagram from an unnamed Unix socket"
    )


async def test_replies_wait_for_a_unix_client_that_reads_slowly(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    # A Unix datagram socket queues only a few datagrams (net.unix.max_dgram_qlen, often
    # 10); further replies meet EAGAIN and must wait for the client, not fail.
    count = unix_queue_length() + 40
    path = tmp_path / "server.sock"
    server = trioserve.Server(echo)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_unix_datagram, path)
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            for i in range(count):
                await client.send(b"%d" % i)
            await trio.testing.wait_all_tasks_blocked()
            assert server.stats.active > 0  # replies are waiting for room
            replies = {(await client.receive())[0] for _ in range(count)}
        nursery.cancel_scope.cancel()
    assert replies == {b"%d" % i for i in range(count)}
    assert server.stats.failed == 0


@pytest.mark.skipif(sys.platform != "linux", reason="IP_RECVERR is Linux's")
async def test_icmp_errors_reported_on_the_socket_do_not_stop_the_server() -> None:
    ip_recverr = 11  # from <linux/in.h>; the socket module does not export it
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(udp_on("127.0.0.1", echo))
        sock.setsockopt(socket.SOL_IP, ip_recverr, 1)
        gone = DatagramClient.udp(sock)
        gone.sock.sendto(b"then gone", gone.server)
        gone.close()
        # The reply meets a closed port; the ICMP error makes the server's next
        # receive fail with ECONNREFUSED, which the receive loop must step over.
        await trio.testing.wait_all_tasks_blocked()
        with DatagramClient.udp(sock) as client:
            assert await client.exchange(b"still serving") == b"still serving"
        nursery.cancel_scope.cancel()


async def test_reply_on_a_closed_socket_raises_closed_resource_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        datagram = trioserve.Datagram(b"late", ("127.0.0.1", 9), sock.getsockname(), sock)
    with pytest.raises(trio.ClosedResourceError):
        await datagram.reply(b"too late")


class _NoRoomSocket(socket.socket):
    """A socket whose first ``failures`` sends fail with ``error``: ENOBUFS as from a
    full interface queue, EAGAIN (BlockingIOError) as from a full send buffer."""

    failures = 0
    error = errno.ENOBUFS

    def sendto(self, data: Any, *args: Any) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError(self.error, os.strerror(self.error))
        return super().sendto(data, *args)


@contextmanager
def no_room_for(failures: int, error: int) -> Iterator[tuple[_NoRoomSocket, socket.socket]]:
    """A server-side socket whose first sends fail with ``error``, and a peer to reply to."""
    with (
        _NoRoomSocket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer,
    ):
        sock.failures, sock.error = failures, error
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        peer.bind(("127.0.0.1", 0))
        yield sock, peer


async def test_a_reply_that_meets_enobufs_is_tried_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    with no_room_for(3, errno.ENOBUFS) as (sock, peer):
        datagram = trioserve.Datagram(b"", peer.getsockname(), sock.getsockname(), sock)
        start = trio.current_time()
        await datagram.reply(b"at last")
        assert trio.current_time() > start  # it waited before trying again
        assert sock.failures == 0
        assert peer.recv(100) == b"at last"


async def test_replies_that_meet_a_full_send_buffer_together_all_wait_and_go(
    autojump_clock: trio.abc.Clock,
) -> None:
    with no_room_for(2, errno.EAGAIN) as (sock, peer):
        # Both replies find the buffer full; only one task at a time may wait for a
        # socket to become writable, so the second must wait another way.
        async with trio.open_nursery() as nursery:
            for text in (b"first", b"second"):
                datagram = trioserve.Datagram(b"", peer.getsockname(), sock.getsockname(), sock)
                nursery.start_soon(datagram.reply, text)
        assert sock.failures == 0
        assert sorted([peer.recv(100), peer.recv(100)]) == [b"first", b"second"]


async def test_a_reply_the_kernel_refuses_raises_its_oserror() -> None:
    errors: list[OSError] = []
    handled = trio.Event()

    async def handler(datagram: trioserve.Datagram) -> None:
        try:
            await datagram.reply(b"x" * 70000)  # more than any UDP datagram can hold
        except OSError as exc:
            errors.append(exc)
        await datagram.reply(b"small enough")
        handled.set()

    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(udp_on("127.0.0.1", handler))
        with DatagramClient.udp(sock) as client:
            assert await client.exchange(b"big reply?") == b"small enough"
        nursery.cancel_scope.cancel()
    [error] = errors
    assert error.errno == errno.EMSGSIZE


# --- shutdown --------------------------------------------------------------------------


async def test_shutdown_stops_reading_and_in_flight_handlers_still_reply(
    autojump_clock: trio.abc.Clock,
) -> None:
    in_flight = 3
    started = 0
    all_started = trio.Event()

    async def handler(datagram: trioserve.Datagram) -> None:
        nonlocal started
        started += 1
        if started == in_flight:
            all_started.set()
        await trio.sleep(2)  # work that fits in the grace period (autojump clock)
        await datagram.reply(b"done " + datagram.data)

    server = trioserve.Server(handler, grace_period=5)
    returned = trio.Event()

    async def serve(task_status: trio.TaskStatus[list[trio.socket.SocketType]]) -> None:
        await server.serve_udp(0, host="127.0.0.1", task_status=task_status)
        returned.set()

    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(serve)
        with DatagramClient.udp(sock) as client:
            for i in range(in_flight):
                await client.send(b"%d" % i)
            await all_started.wait()
            start = trio.current_time()
            server.shutdown()
            await client.send(b"too late")
            await returned.wait()
            assert trio.current_time() - start == pytest.approx(2)
            replies = {(await client.receive())[0] for _ in range(in_flight)}
            assert not client.pending()
    assert replies == {b"done 0", b"done 1", b"done 2"}
    assert sock.fileno() == -1
    stats = server.stats
    assert (stats.received, stats.completed, stats.cancelled) == (in_flight, in_flight, 0)


async def test_datagram_handlers_left_after_the_grace_period_are_cancelled(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    async def handler(datagram: trioserve.Datagram) -> None:
        await trio.sleep(100)  # virtual time: autojump clock
        await datagram.reply(b"never")

    path = tmp_path / "server.sock"
    server = trioserve.Server(handler, grace_period=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_unix_datagram, path)
        with DatagramClient.unix(path, tmp_path / "client.sock") as client:
            await client.send(b"a")
            await client.send(b"b")
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            server.shutdown()
            assert not path.exists()  # no new sender finds it
    assert trio.current_time() - start == pytest.approx(1)
    stats = server.stats
    assert (stats.received, stats.completed, stats.cancelled) == (2, 0, 2)


async def test_shutdown_stops_udp_and_stream_endpoints_of_one_server(tmp_path: Path) -> None:
    async def handler(request: trioserve.Connection | trioserve.Datagram) -> None:
        if isinstance(request, trioserve.Datagram):
            await request.reply(request.data)

    server = trioserve.Server(handler)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(server.serve_tcp, 0, host="127.0.0.1"))
        [sock] = await nursery.start(partial(server.serve_udp, 0, host="127.0.0.1"))
        await nursery.start(server.serve_unix_datagram, tmp_path / "d.sock")
        with DatagramClient.udp(sock) as client:
            assert await client.exchange(b"one server") == b"one server"
        server.shutdown()
    assert not (tmp_path / "d.sock").exists()


async def test_serve_udp_after_shutdown_returns_at_once() -> None:
    server = trioserve.Server(echo)
    server.shutdown()
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(partial(server.serve_udp, 0, host="127.0.0.1"))
    assert sock.fileno() == -1


async def test_handlers_run_in_the_handler_nursery_given() -> None:
    parents: list[trio.Nursery | None] = []

    async def handler(datagram: trioserve.Datagram) -> None:
        parents.append(trio.lowlevel.current_task().parent_nursery)
        await datagram.reply(datagram.data)

    async with trio.open_nursery() as handler_nursery:
        [sock] = await handler_nursery.start(
            partial(
                trioserve.serve_udp, handler, 0, host="127.0.0.1", handler_nursery=handler_nursery
            )
        )
        with DatagramClient.udp(sock) as client:
            assert await client.exchange(b"there") == b"there"
        handler_nursery.cancel_scope.cancel()
    assert parents == [handler_nursery]


async def test_current_server_is_the_datagram_server() -> None:
    servers: list[trioserve.Server] = []

    async def handler(datagram: trioserve.Datagram) -> None:
        servers.append(trioserve.current_server())
        await datagram.reply(b"ok")

    server = trioserve.Server(handler)
    async with trio.open_nursery() as nursery:
        [sock] = await nursery.start(partial(server.serve_udp, 0, host="127.0.0.1"))
        with DatagramClient.udp(sock) as client:
            assert await client.exchange(b"who serves?") == b"ok"
        nursery.cancel_scope.cancel()
    assert servers == [server]


# --- the receive loop itself -----------------------------------------------------------


async def test_the_receive_loop_yields_under_a_flood() -> None:
    # A sender faster than the server must not starve the handlers it started.
    from trioserve._datagram import RECEIVE_BURST, DatagramSocket
    from trioserve._stats import Counters

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        receiver = DatagramSocket(sock, 100, Counters())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(RECEIVE_BURST * 4):
                sender.sendto(b"x" * (200 if i % 2 else 1), sock.getsockname())
        other_ran = 0

        async def other() -> None:
            nonlocal other_ran
            while True:
                other_ran += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            received = [await receiver.receive() for _ in range(RECEIVE_BURST * 2)]
            # It yielded more than once (so the other task has run whatever the order
            # within a scheduling round), though it never waited for a datagram.
            assert other_ran > 0
            nursery.cancel_scope.cancel()
        assert [d.data for d in received] == [b"x"] * RECEIVE_BURST * 2
        assert receiver.counters.dropped == RECEIVE_BURST * 2 - 1


# --- arguments and the public surface --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"receive_size": 0}, ValueError, "receive_size must be between 1 and 16777216 bytes"),
        ({"receive_size": 2**63}, ValueError, "receive_size must be between 1 and 16777216 bytes"),
        ({"receive_size": 1.5}, TypeError, "receive_size must be an int, not 1.5"),
        ({"receive_size": True}, TypeError, "receive_size must be an int, not True"),
        ({"host": 1}, TypeError, "host must be a str, bytes or None, not 1"),
        ({"handler_nursery": 1}, TypeError, "handler_nursery must be a trio.Nursery or None"),
        ({"max_connections": 0}, ValueError, "max_connections must be at least 1, not 0"),
    ],
)
async def test_serve_udp_checks_its_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await trioserve.serve_udp(echo, 0, **kwargs)


@pytest.mark.parametrize(
    ("path", "kwargs", "error", "message"),
    [
        ("", {}, ValueError, "path must not be empty"),
        (3, {}, TypeError, "path must be a str, bytes or os.PathLike, not 3"),
        ("x.sock", {"mode": "rw"}, TypeError, "mode must be an int"),
        ("x.sock", {"receive_size": -1}, ValueError, "receive_size must be between 1 and"),
    ],
)
async def test_serve_unix_datagram_checks_its_arguments(
    tmp_path: Path, path: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    if path == "x.sock":
        path = tmp_path / path
    with pytest.raises(error, match=message):
        await trioserve.serve_unix_datagram(echo, path, **kwargs)
    assert not (tmp_path / "x.sock").exists()


async def test_serve_udp_port_is_checked() -> None:
    with pytest.raises(ValueError, match="port must be between 0 and 65535, not 70000"):
        await trioserve.serve_udp(echo, 70000)


def test_server_datagram_methods_match_the_module_functions() -> None:
    options = list(inspect.signature(trioserve.Server).parameters)[1:]
    for name in ("serve_udp", "serve_unix_datagram"):
        module_params = list(inspect.signature(getattr(trioserve, name)).parameters)
        method_params = list(inspect.signature(getattr(trioserve.Server, name)).parameters)
        assert ["self", *[p for p in module_params if p not in ("handler", *options)]] == (
            method_params
        )
        assert inspect.signature(getattr(trioserve, name)).parameters["receive_size"].default == (
            65536
        )


def test_a_datagram_repr_is_short() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        datagram = trioserve.Datagram(b"x" * 1000, ("127.0.0.1", 9), ("0.0.0.0", 7), sock)
        text = repr(datagram)
    assert len(text) < 200
    assert "(1000 bytes)" in text
    assert "remote_address=('127.0.0.1', 9)" in text
