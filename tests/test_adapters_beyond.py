"""What adapters does beyond the stdlib: shutdown from handlers and with blocked handlers,
async handlers, serving inside a trio program, the thread and child limits.

(The stdlib deadlocks or hangs in most of these scenarios, so they run on adapters only.)
"""

from __future__ import annotations

import functools
import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

import adapters
import trioserve

#: Seconds a test waits for something that should happen at once, before failing.
PATIENCE = 10


@contextmanager
def serving_forever(server: Any) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": None})
    thread.start()
    try:
        yield thread
    finally:
        server.shutdown()
        thread.join(PATIENCE)
        assert not thread.is_alive()
        server.server_close()


class BlockedInRecv(adapters.BaseRequestHandler):
    """Tells the test it started, then blocks in recv until the connection ends."""

    started: threading.Event
    received: list[bytes]

    def handle(self) -> None:
        type(self).started.set()
        type(self).received.append(self.request.recv(100))


def blocked_handler() -> type[BlockedInRecv]:
    return type("Blocked", (BlockedInRecv,), {"started": threading.Event(), "received": []})


@pytest.mark.parametrize("server_class", [adapters.TCPServer, adapters.ThreadingTCPServer])
def test_shutdown_from_a_handler(server_class: Any) -> None:
    returned = threading.Event()
    loop_stopped_first: list[bool] = []

    class Stopper(adapters.StreamRequestHandler):
        def handle(self) -> None:
            self.server.shutdown()  # the stdlib deadlocks here
            loop_stopped_first.append(self.server._run.loop_stopped.is_set())
            returned.set()
            self.wfile.write(b"stopping\n")

    server = server_class(("127.0.0.1", 0), Stopper)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    with socket.create_connection(server.server_address, timeout=PATIENCE) as client:
        assert client.makefile("rb").readline() == b"stopping\n"
    thread.join(PATIENCE)
    assert not thread.is_alive()
    assert returned.is_set()
    assert loop_stopped_first == [True]  # it returned once no more requests were taken
    server.server_close()


@pytest.mark.parametrize("server_class", [adapters.TCPServer, adapters.ThreadingTCPServer])
def test_server_close_from_a_handler_ends_serve_forever(server_class: Any) -> None:
    class Closer(adapters.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(b"bye")
            self.server.server_close()

    server = server_class(("127.0.0.1", 0), Closer)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.serve_forever()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(server.server_address, timeout=PATIENCE) as client:
        assert client.recv(10) == b"bye"
    thread.join(PATIENCE)
    assert not thread.is_alive()
    assert errors == []


@pytest.mark.parametrize(
    ("server_class", "options"),
    [
        (adapters.TCPServer, {"grace_period": 0}),
        (adapters.ThreadingTCPServer, {"grace_period": 0}),
        # daemon threads are unblocked at once, whatever the grace period.
        (adapters.ThreadingTCPServer, {"grace_period": None, "daemon_threads": True}),
    ],
)
def test_shutdown_unblocks_handlers_stuck_in_recv(server_class: Any, options: Any) -> None:
    handler = blocked_handler()
    server = type("Server", (server_class,), options)(("127.0.0.1", 0), handler)
    with (
        serving_forever(server),
        socket.create_connection(server.server_address) as client,
    ):
        assert handler.started.wait(PATIENCE)
        server.shutdown()  # returns although the client never sends nor closes
        assert handler.received == [b""]
        assert client.recv(10) == b""


def test_shutdown_waits_for_a_handler_within_the_grace_period() -> None:
    release = threading.Event()
    started = threading.Event()

    class Slow(adapters.StreamRequestHandler):
        def handle(self) -> None:
            started.set()
            release.wait(PATIENCE)
            self.wfile.write(b"finished properly\n")

    class Server(adapters.ThreadingTCPServer):
        grace_period = None

    server = Server(("127.0.0.1", 0), Slow)
    with serving_forever(server), socket.create_connection(server.server_address) as client:
        assert started.wait(PATIENCE)
        run = server._run
        assert run is not None
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        assert run.loop_stopped.wait(PATIENCE)  # no more requests are taken...
        assert stopper.is_alive()  # ...but shutdown() waits for the handler
        release.set()
        stopper.join(PATIENCE)
        assert not stopper.is_alive()
        assert client.makefile("rb").readline() == b"finished properly\n"


@pytest.mark.parametrize("daemon_threads", [False, True])
def test_shutdown_leaves_a_handler_blocked_on_something_else_running(
    daemon_threads: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The common "server.shutdown(); stop.set()": shutdown() must not wait for stop."""
    monkeypatch.setattr(adapters._base, "UNBLOCKED_SECONDS", 0.05)
    started = threading.Event()
    stop = threading.Event()
    finished = threading.Event()

    class Waiting(adapters.BaseRequestHandler):
        def handle(self) -> None:
            started.set()
            stop.wait(PATIENCE)
            finished.set()

    class Server(adapters.ThreadingTCPServer):
        grace_period = 0

    Server.daemon_threads = daemon_threads
    server = Server(("127.0.0.1", 0), Waiting)
    loop_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": None})
    loop_thread.start()
    with socket.create_connection(server.server_address):
        assert started.wait(PATIENCE)
        run = server._run
        assert run is not None
        pool = run.pool
        assert pool is not None
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        stopper.join(PATIENCE)
        loop_thread.join(PATIENCE)
        returned_first = not (stopper.is_alive() or loop_thread.is_alive() or finished.is_set())
        stop.set()  # the handler now ends after its trio run has
        assert finished.wait(PATIENCE)
        stopper.join()
        loop_thread.join()
    server.server_close()  # waits for the handler's thread, unless it is a daemon
    if daemon_threads:
        pool.join()
    assert returned_first
    assert capsys.readouterr().err == ""  # nothing called into the finished run


def test_handle_request_leaves_the_thread_running_and_server_close_waits() -> None:
    handler = blocked_handler()
    server = adapters.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.grace_period = 0
    with socket.create_connection(server.server_address):
        server.handle_request()  # returns while the handler is blocked, as in the stdlib
        assert handler.started.wait(PATIENCE)
        assert len(server._threads) == 1
        server.server_close()  # unblocks it after the grace period, and waits
    assert handler.received == [b""]
    assert server._threads == []


def test_server_close_from_another_thread_stops_serve_forever() -> None:
    looping = threading.Event()

    class Server(adapters.TCPServer):
        def service_actions(self) -> None:
            looping.set()

    server = Server(("127.0.0.1", 0), adapters.BaseRequestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    assert looping.wait(PATIENCE)
    server.server_close()
    thread.join(PATIENCE)
    assert not thread.is_alive()
    assert server.socket.fileno() == -1


def test_system_exit_in_a_handler_thread_goes_to_threading_excepthook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_type))

    class Exiting(adapters.BaseRequestHandler):
        def handle(self) -> None:
            raise SystemExit

    server = adapters.ThreadingTCPServer(("127.0.0.1", 0), Exiting)
    with serving_forever(server), socket.create_connection(server.server_address) as client:
        assert client.recv(10) == b""
    assert seen == [SystemExit]


def test_thread_limiter_bounds_concurrent_handlers() -> None:
    lock = threading.Lock()
    running = 0
    most = 0
    first_started = threading.Event()
    release = threading.Event()

    class Counting(adapters.StreamRequestHandler):
        def handle(self) -> None:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            first_started.set()
            release.wait(PATIENCE)
            self.wfile.write(self.rfile.readline())
            with lock:
                running -= 1

    class Server(adapters.ThreadingTCPServer):
        max_threads = 1

    server = Server(("127.0.0.1", 0), Counting)
    assert server.thread_limiter.total_tokens == 1
    with serving_forever(server):
        clients = [socket.create_connection(server.server_address) for _ in range(3)]
        try:
            for n, client in enumerate(clients):
                client.sendall(b"client %d\n" % n)
            assert first_started.wait(PATIENCE)
            release.set()
            replies = [client.makefile("rb").readline() for client in clients]
        finally:
            for client in clients:
                client.close()
    assert replies == [b"client %d\n" % n for n in range(3)]
    assert most == 1


def test_threading_server_reuses_threads_but_never_queues_a_request() -> None:
    together = threading.Barrier(3, timeout=PATIENCE)
    threads: list[int] = []

    class Echo(adapters.DatagramRequestHandler):
        def handle(self) -> None:
            data = self.rfile.read()
            if data == b"together":
                together.wait()  # only if all three run at once, each on its own thread
            threads.append(threading.get_ident())
            self.wfile.write(data)

    server = adapters.ThreadingUDPServer(("127.0.0.1", 0), Echo)
    with (
        serving_forever(server),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(PATIENCE)
        for _ in range(3):
            client.sendto(b"together", server.server_address)
        assert [client.recv(100) for _ in range(3)] == [b"together"] * 3
        for n in range(20):
            client.sendto(b"%d" % n, server.server_address)
            assert client.recv(100) == b"%d" % n
    # One request at a time needs no new thread: the three of the start are reused.
    assert len(set(threads)) == 3


class AsyncEcho(adapters.BaseRequestHandler):
    async def handle(self) -> None:
        self.server.handler_threads.add(threading.current_thread())
        async for data in self.request:
            await self.request.send_all(data)


@pytest.mark.parametrize("server_class", [adapters.TCPServer, adapters.ThreadingTCPServer])
@pytest.mark.parametrize("wrap", [lambda cls: cls, functools.partial], ids=["class", "partial"])
def test_async_handler_runs_as_a_task_in_the_loop_thread(server_class: Any, wrap: Any) -> None:
    server = server_class(("127.0.0.1", 0), wrap(AsyncEcho))
    server.handler_threads = set()
    with serving_forever(server) as loop_thread:
        for n in range(3):
            with socket.create_connection(server.server_address) as client:
                client.sendall(b"async %d" % n)
                client.shutdown(socket.SHUT_WR)
                assert client.recv(100) == b"async %d" % n
    assert server.handler_threads == {loop_thread}


def test_a_handler_class_swapped_between_requests_is_run_as_what_it_is() -> None:
    class BlockingEcho(adapters.BaseRequestHandler):
        def handle(self) -> None:
            self.server.handler_threads.add(threading.current_thread())
            self.request.sendall(b"blocking " + self.request.recv(100))

    server: Any = adapters.TCPServer(("127.0.0.1", 0), BlockingEcho)
    server.handler_threads = set()
    with server:
        for handler_class, expected in [
            (BlockingEcho, b"blocking 0"),
            (AsyncEcho, b"1"),
            (BlockingEcho, b"blocking 2"),
        ]:
            server.RequestHandlerClass = handler_class
            with socket.create_connection(server.server_address) as client:
                client.sendall(expected[-1:])
                client.shutdown(socket.SHUT_WR)
                server.handle_request()
                assert client.recv(100) == expected
    assert server.handler_threads == {threading.current_thread()}


LEFT_RUNNING_AT_EXIT = """
import sys, threading, time
import adapters

class Slow(adapters.BaseRequestHandler):
    def handle(self):
        self.server.started.set()
        time.sleep(0.5)  # real time: still at work when the program ends
        self.request.sendall(b"finished")

class Server(adapters.ThreadingTCPServer):
    def service_actions(self):
        if self.started.is_set():
            raise RuntimeError("the loop ends here")

server = Server(("127.0.0.1", 0), Slow)
server.started = threading.Event()
print(server.server_address[1], flush=True)
if sys.argv[1] == "handle_request":
    server.handle_request()  # its thread outlives the call, as in the stdlib
else:
    try:
        server.serve_forever(poll_interval=0.01)
    except RuntimeError:
        pass
# The program ends here, without server_close().
"""


@pytest.mark.parametrize("entry", ["handle_request", "serve_forever"])
def test_a_handler_thread_left_running_finishes_before_the_program_exits(entry: str) -> None:
    """As the stdlib's non-daemon threads do (trio's worker threads are daemon threads)."""
    with subprocess.Popen(
        [sys.executable, "-c", LEFT_RUNNING_AT_EXIT, entry],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    ) as process:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as client:
            assert process.wait(PATIENCE) == 0
            assert client.recv(100) == b"finished"


def test_server_close_ends_a_handler_left_stuck_in_recv_after_its_grace_period() -> None:
    handler = blocked_handler()

    class Failing(adapters.ThreadingTCPServer):
        grace_period = 0

        def service_actions(self) -> None:
            if handler.started.is_set():
                raise RuntimeError("the loop ends here")

    server = Failing(("127.0.0.1", 0), handler)
    with socket.create_connection(server.server_address, timeout=PATIENCE):
        with pytest.raises(RuntimeError, match="the loop ends here"):
            server.serve_forever(poll_interval=0.01)
        closing = threading.Thread(target=server.server_close)
        closing.start()
        closing.join(PATIENCE)
        assert not closing.is_alive()  # its connection was shut down: recv saw EOF
    assert handler.received == [b""]


def test_async_stream_request_handler_gets_a_trio_stream() -> None:
    class Upper(adapters.StreamRequestHandler):
        async def handle(self) -> None:
            assert isinstance(self.stream, trioserve.Connection)
            async for data in self.stream:
                await self.stream.send_all(data.upper())

    server = adapters.ThreadingTCPServer(("127.0.0.1", 0), Upper)
    with serving_forever(server), socket.create_connection(server.server_address) as client:
        client.sendall(b"quiet")
        client.shutdown(socket.SHUT_WR)
        assert client.recv(100) == b"QUIET"


def test_forking_server_runs_an_async_handler_as_a_task() -> None:
    server: Any = adapters.ForkingTCPServer(("127.0.0.1", 0), AsyncEcho)
    server.handler_threads = set()
    with (
        serving_forever(server) as loop_thread,
        socket.create_connection(server.server_address) as client,
    ):
        client.sendall(b"not forked")
        client.shutdown(socket.SHUT_WR)
        assert client.recv(100) == b"not forked"
    assert server.handler_threads == {loop_thread}
    assert not server.active_children


def test_async_datagram_handler(tmp_path: Path) -> None:
    class Reverse(adapters.DatagramRequestHandler):
        async def handle(self) -> None:
            self.wfile.write(self.rfile.read()[::-1])

    server = adapters.UnixDatagramServer(str(tmp_path / "dgram.sock"), Reverse)
    with serving_forever(server), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
        client.bind(str(tmp_path / "client.sock"))
        client.sendto(b"stressed", server.server_address)
        assert client.recv(100) == b"desserts"


def test_async_handler_error_goes_to_handle_error() -> None:
    errors: list[Any] = []

    class Failing(adapters.BaseRequestHandler):
        async def handle(self) -> None:
            raise ValueError("async failure")

    class Server(adapters.TCPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            errors.append(repr(sys.exc_info()[1]))

    with (
        Server(("127.0.0.1", 0), Failing) as server,
        socket.create_connection(server.server_address) as client,
    ):
        server.handle_request()
        assert client.recv(10) == b""
    assert errors == ["ValueError('async failure')"]


async def test_serve_inside_a_trio_nursery() -> None:
    class Echo(adapters.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    server = adapters.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        for n in range(3):
            stream = await trio.open_tcp_stream(*server.server_address)
            async with stream:
                await stream.send_all(b"line %d\n" % n)
                assert await stream.receive_some(100) == b"line %d\n" % n
        server.shutdown()  # from a task of this run: asks, does not wait
    server.server_close()
    assert server.socket.fileno() == -1


async def test_cancelling_serve_unblocks_stuck_handler_threads() -> None:
    handler = blocked_handler()
    server = adapters.ThreadingTCPServer(("127.0.0.1", 0), handler)
    stream = await trio.open_tcp_stream(*server.server_address)
    async with stream, trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        await trio.to_thread.run_sync(handler.started.wait, PATIENCE)
        nursery.cancel_scope.cancel()  # a hard stop: no grace period
    assert handler.received == [b""]
    server.server_close()


async def test_serve_twice_at_once_is_an_error() -> None:
    server = adapters.TCPServer(("127.0.0.1", 0), adapters.BaseRequestHandler)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        with pytest.raises(RuntimeError, match="already running a request loop"):
            await server.serve()
        server.shutdown()
    server.server_close()


def test_forking_server_honours_max_children() -> None:
    class Pid(adapters.StreamRequestHandler):
        def handle(self) -> None:
            self.rfile.readline()  # hold the child until the client says go
            self.wfile.write(str(os.getpid()).encode())

    class Server(adapters.ForkingTCPServer):
        max_children = 1

    server = Server(("127.0.0.1", 0), Pid)
    with serving_forever(server):
        clients = [socket.create_connection(server.server_address) for _ in range(2)]
        try:
            for client in clients:
                client.sendall(b"go\n")
                client.shutdown(socket.SHUT_WR)
            pids = [int(client.recv(100)) for client in clients]
        finally:
            for client in clients:
                client.close()
    assert len(set(pids)) == 2
    assert not server.active_children


def test_public_names_match_the_stdlib_and_come_from_adapters() -> None:
    stdlib_313 = {
        "BaseServer", "TCPServer", "UDPServer", "ForkingUDPServer", "ForkingTCPServer",
        "ThreadingUDPServer", "ThreadingTCPServer", "BaseRequestHandler",
        "StreamRequestHandler", "DatagramRequestHandler", "ThreadingMixIn", "ForkingMixIn",
        "UnixStreamServer", "UnixDatagramServer", "ThreadingUnixStreamServer",
        "ThreadingUnixDatagramServer", "ForkingUnixStreamServer", "ForkingUnixDatagramServer",
    }  # fmt: skip
    assert set(adapters.__all__) == stdlib_313
    for name in adapters.__all__:
        assert getattr(adapters, name).__module__ == "adapters"


@pytest.mark.parametrize(
    "bases",
    [
        (adapters.ThreadingMixIn, socketserver.TCPServer),
        (socketserver.ThreadingMixIn, adapters.TCPServer),
        (adapters.ForkingMixIn, socketserver.TCPServer),
    ],
    ids=["adapters-mixin-on-stdlib-server", "stdlib-mixin-on-adapters-server", "forking"],
)
def test_mixins_mix_with_stdlib_classes_during_a_migration(bases: Any) -> None:
    class Echo(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    server = type("Mixed", bases, {})(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        for n in range(2):
            with socket.create_connection(server.server_address) as client:
                client.sendall(b"mixed %d\n" % n)
                assert client.makefile("rb").readline() == b"mixed %d\n" % n
    finally:
        server.shutdown()
        thread.join(PATIENCE)
        server.server_close()


async def upper_body(conn: trioserve.Connection) -> None:
    """A handler body written once, run by adapters and by trioserve alike."""
    async for data in conn:
        await conn.send_all(data.upper())


async def test_an_async_handler_body_moves_onto_trioserve_unchanged() -> None:
    class Upper(adapters.BaseRequestHandler):
        async def handle(self) -> None:
            await upper_body(self.request)

    async def ask(host: str, port: int) -> bytes:
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(b"same body")
            await stream.send_eof()
            reply = b""
            while chunk := await stream.receive_some():
                reply += chunk
            return reply

    server = adapters.ThreadingTCPServer(("127.0.0.1", 0), Upper)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        listeners = await nursery.start(
            functools.partial(trioserve.serve_tcp, upper_body, 0, host="127.0.0.1")
        )
        from_adapters = await ask(*server.server_address)
        from_trioserve = await ask("127.0.0.1", listeners[0].socket.getsockname()[1])
        server.shutdown()
        nursery.cancel_scope.cancel()
    server.server_close()
    assert from_adapters == from_trioserve == b"SAME BODY"
