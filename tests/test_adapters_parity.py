"""Parity: the same scenario against the stdlib's ``socketserver`` and ``adapters``.

Each scenario takes the module to test and returns what a user could observe (replies,
the order of overridden method calls, errors seen by ``handle_error``). The test runs it
against both and asserts the observations agree, and agree with what the documentation
promises (so a scenario that observes nothing cannot pass).
"""

from __future__ import annotations

import asyncio
import os
import select
import selectors
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sniffio

import adapters

MODULES = [pytest.param(socketserver, id="stdlib"), pytest.param(adapters, id="adapters")]

Scenario = Callable[[ModuleType, Path], Any]


def both(scenario: Scenario, tmp_path: Path) -> Any:
    """Run ``scenario`` against both modules; return the observation they share."""
    stdlib_dir = tmp_path / "stdlib"
    adapters_dir = tmp_path / "adapters"
    stdlib_dir.mkdir()
    adapters_dir.mkdir()
    expected = scenario(socketserver, stdlib_dir)
    observed = scenario(adapters, adapters_dir)
    assert observed == expected
    return observed


@contextmanager
def serving(server: Any) -> Iterator[Any]:
    """Run ``server.serve_forever`` in a thread; shut down and close on the way out."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def address_for(family: int, directory: Path, name: str = "server.sock") -> Any:
    return ("127.0.0.1", 0) if family == socket.AF_INET else str(directory / name)


def stream_exchange(server: Any, payload: bytes) -> bytes:
    with socket.socket(server.address_family, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(server.server_address)
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := client.recv(4096):
            received += chunk
        return received


def datagram_exchange(server: Any, payload: bytes, directory: Path) -> bytes:
    with socket.socket(server.address_family, socket.SOCK_DGRAM) as client:
        client.settimeout(10)
        if server.address_family == socket.AF_UNIX:
            client.bind(str(directory / f"client-{len(payload)}.sock"))
        client.sendto(payload, server.server_address)
        data: bytes = client.recv(65536)
        return data


SERVER_KINDS = ["", "Threading", "Forking"]
FAMILIES = {"TCP": socket.AF_INET, "UnixStream": socket.AF_UNIX}
DGRAM_FAMILIES = {"UDP": socket.AF_INET, "UnixDatagram": socket.AF_UNIX}


def server_class(module: ModuleType, kind: str, base: str) -> Any:
    if kind == "":
        return getattr(module, f"{base}Server")
    mixin = getattr(module, f"{kind}MixIn")
    return type(f"{kind}{base}Server", (mixin, getattr(module, f"{base}Server")), {})


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("base", sorted(FAMILIES))
def test_stream_echo(kind: str, base: str, tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        class Upper(module.StreamRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                for line in self.rfile:
                    self.wfile.write(line.upper())

        cls = server_class(module, kind, base)
        server = cls(address_for(FAMILIES[base], directory), Upper)
        with serving(server):
            return [stream_exchange(server, b"hello\nworld %d\n" % n) for n in range(3)]

    assert both(scenario, tmp_path) == [b"HELLO\nWORLD %d\n" % n for n in range(3)]


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("base", sorted(DGRAM_FAMILIES))
def test_datagram_echo(kind: str, base: str, tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        class Reverse(module.DatagramRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                self.wfile.write(self.rfile.read()[::-1])

        cls = server_class(module, kind, base)
        server = cls(address_for(DGRAM_FAMILIES[base], directory), Reverse)
        with serving(server):
            return [datagram_exchange(server, b"abc" * n, directory) for n in (1, 2, 3)]

    assert both(scenario, tmp_path) == [b"cba", b"cbacba", b"cbacbacba"]


def recording_server(module: ModuleType, base: type, calls: list[Any]) -> type:
    """A subclass of ``base`` that records every overridable call it gets."""

    def record(name: str) -> Callable[..., Any]:
        parent = getattr(base, name)

        def method(self: Any, *args: Any) -> Any:
            entry: list[Any] = [name]
            if name == "handle_error":
                entry.append(repr(sys.exc_info()[1]))
            calls.append(tuple(entry))
            return parent(self, *args)

        return method

    names = [
        "get_request",
        "verify_request",
        "process_request",
        "finish_request",
        "shutdown_request",
        "close_request",
        "handle_error",
        "handle_timeout",
    ]
    return type("Recording", (base,), {name: record(name) for name in names})


def test_method_call_order(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        calls: list[Any] = []

        class Handler(module.StreamRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                line = self.rfile.readline()
                calls.append(("handle", line))
                if line == b"fail\n":
                    raise ValueError("asked to fail")
                self.wfile.write(line)

        cls = recording_server(module, module.TCPServer, calls)
        with cls(("127.0.0.1", 0), Handler) as server:
            server.handle_error = lambda request, address: calls.append(
                ("handle_error", repr(sys.exc_info()[1]))
            )
            for payload in (b"ok\n", b"fail\n"):
                with socket.create_connection(server.server_address) as client:
                    client.sendall(payload)
                    server.handle_request()
                    calls.append(("client got", client.recv(100)))
        return calls

    calls = both(scenario, tmp_path)
    assert calls[:7] == [
        ("get_request",),
        ("verify_request",),
        ("process_request",),
        ("finish_request",),
        ("handle", b"ok\n"),
        ("shutdown_request",),
        ("close_request",),
    ]
    assert ("handle_error", "ValueError('asked to fail')") in calls


def test_threading_method_call_order(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        calls: list[Any] = []

        class Handler(module.BaseRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                calls.append(("handle", self.request.recv(100)))
                raise KeyError("boom")

        cls = recording_server(module, module.ThreadingTCPServer, calls)
        server = cls(("127.0.0.1", 0), Handler)
        server.handle_error = lambda request, address: calls.append(
            ("handle_error", repr(sys.exc_info()[1]))
        )
        with socket.create_connection(server.server_address) as client:
            client.sendall(b"hi")
            server.handle_request()
            server.server_close()  # joins the handler thread
        return calls

    assert both(scenario, tmp_path) == [
        ("get_request",),
        ("verify_request",),
        ("process_request",),
        ("finish_request",),
        ("handle", b"hi"),
        ("handle_error", "KeyError('boom')"),
        ("shutdown_request",),
        ("close_request",),
    ]


def test_server_close_does_not_wait_for_daemon_threads(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        started = threading.Event()
        release = threading.Event()
        finished = threading.Event()
        handler_threads: list[threading.Thread] = []

        class Waiting(module.BaseRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                handler_threads.append(threading.current_thread())
                started.set()
                release.wait(10)
                finished.set()

        class Server(module.ThreadingTCPServer):  # type: ignore[name-defined,misc]
            daemon_threads = True

        server = Server(("127.0.0.1", 0), Waiting)
        with socket.create_connection(server.server_address):
            server.handle_request()
            assert started.wait(10)
            server.server_close()  # returns with the handler still waiting
            returned_first = not finished.is_set()
            release.set()
        if module is adapters:
            # The handler's thread is trio's, kept for reuse: wait until it is back.
            server._detached().join(None)
        else:
            handler_threads[0].join()
        return returned_first, handler_threads[0].daemon

    assert both(scenario, tmp_path) == (True, True)


def test_handle_request_timeout_calls_handle_timeout(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        calls: list[Any] = []
        cls: Any = recording_server(module, module.TCPServer, calls)
        cls.timeout = 0.01
        with cls(("127.0.0.1", 0), module.BaseRequestHandler) as server:
            result = server.handle_request()
        return calls, result

    assert both(scenario, tmp_path) == ([("handle_timeout",)], None)


def test_socket_timeout_bounds_handle_request(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        class Server(module.UDPServer):  # type: ignore[name-defined,misc]
            def handle_timeout(self) -> str:
                return "timed out"

        with Server(("127.0.0.1", 0), module.BaseRequestHandler) as server:
            server.socket.settimeout(0.01)
            return server.handle_request()

    assert both(scenario, tmp_path) == "timed out"


def wait_until_readable(server: Any) -> None:
    """Block until a request waits on ``server`` (a zero timeout must then find it)."""
    readable, _, _ = select.select([server], [], [], 10)
    assert readable, "the request never reached the server"


@pytest.mark.parametrize("zero", ["server timeout", "non-blocking socket"])
def test_handle_request_with_a_zero_timeout_takes_a_waiting_request(
    zero: str, tmp_path: Path
) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        class Hello(module.BaseRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                self.request.sendall(b"hello")

        calls: list[Any] = []
        cls = recording_server(module, module.TCPServer, calls)
        with (
            cls(("127.0.0.1", 0), Hello) as server,
            socket.create_connection(server.server_address, timeout=10) as client,
        ):
            if zero == "server timeout":
                server.timeout = 0
            else:
                server.socket.setblocking(False)
            wait_until_readable(server)
            server.handle_request()
            return ("handle_timeout",) in calls, client.recv(10)

    assert both(scenario, tmp_path) == (False, b"hello")


def test_serve_forever_with_a_zero_poll_interval_takes_requests(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        class Echo(module.StreamRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                self.wfile.write(self.rfile.readline())

        with module.TCPServer(("127.0.0.1", 0), Echo) as server:
            thread = threading.Thread(target=server.serve_forever, args=(0,))
            thread.start()
            try:
                return [stream_exchange(server, b"poll %d\n" % n) for n in range(3)]
            finally:
                server.shutdown()
                thread.join()

    assert both(scenario, tmp_path) == [b"poll %d\n" % n for n in range(3)]


def test_verify_request_rejects(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        calls: list[Any] = []

        class Handler(module.BaseRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                calls.append("handled")

        class Refusing(module.TCPServer):  # type: ignore[name-defined,misc]
            def verify_request(self, request: Any, client_address: Any) -> bool:
                calls.append("verify")
                return False

            def shutdown_request(self, request: Any) -> None:
                calls.append("shutdown_request")
                super().shutdown_request(request)

        with (
            Refusing(("127.0.0.1", 0), Handler) as server,
            socket.create_connection(server.server_address) as client,
        ):
            server.handle_request()
            calls.append(client.recv(10))
        return calls

    assert both(scenario, tmp_path) == ["verify", "shutdown_request", b""]


def test_default_handle_error_prints_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        class Handler(module.BaseRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                raise ZeroDivisionError("from the handler")

        with (
            module.TCPServer(("127.0.0.1", 0), Handler) as server,
            socket.create_connection(server.server_address),
        ):
            server.handle_request()
        err = capsys.readouterr().err
        lines = err.splitlines()
        return (
            lines[0],
            lines[1].startswith("Exception occurred during processing of request from ('127."),
            lines[-2],
            lines[-1],
        )

    assert both(scenario, tmp_path) == (
        "-" * 40,
        True,
        "ZeroDivisionError: from the handler",
        "-" * 40,
    )


def test_base_exception_leaves_handle_request(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        class Handler(module.BaseRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                raise SystemExit(3)

        with (
            module.TCPServer(("127.0.0.1", 0), Handler) as server,
            socket.create_connection(server.server_address) as client,
        ):
            with pytest.raises(SystemExit) as info:
                server.handle_request()
            return info.value.code, client.recv(10)

    assert both(scenario, tmp_path) == (3, b"")


@pytest.mark.parametrize("daemon_threads", [False, True])
@pytest.mark.parametrize("when", ["handler started", "request handed over"])
def test_an_error_ends_serve_forever_at_once_and_handler_threads_finish(
    daemon_threads: bool, when: str, tmp_path: Path
) -> None:
    """A hook that raises (as a Ctrl+C would) ends the loop; requests in hand go on.

    "request handed over": the error comes right after process_request, before the
    handler thread may have picked the request up.
    """

    def scenario(module: ModuleType, directory: Path) -> Any:
        started, go, handed_over = threading.Event(), threading.Event(), threading.Event()
        raised: list[BaseException] = []

        class Slow(module.BaseRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                started.set()
                go.wait(10)
                self.request.sendall(b"answer")

        class Server(module.ThreadingTCPServer):  # type: ignore[name-defined,misc]
            def process_request(self, request: Any, client_address: Any) -> None:
                super().process_request(request, client_address)
                handed_over.set()

            def service_actions(self) -> None:
                if (handed_over if when == "request handed over" else started).is_set():
                    raise RuntimeError("the loop ends here")

        def serve() -> None:
            try:
                server.serve_forever(poll_interval=0.01)
            except RuntimeError as exc:
                raised.append(exc)

        server = Server(("127.0.0.1", 0), Slow)
        server.daemon_threads = daemon_threads
        with server, socket.create_connection(server.server_address, timeout=10) as first:
            thread = threading.Thread(target=serve)
            thread.start()
            assert started.wait(10)
            thread.join(10)
            returned_while_busy = not thread.is_alive() and not go.is_set()
            go.set()
            reply = first.recv(100)
        return returned_while_busy, [str(exc) for exc in raised], reply

    assert both(scenario, tmp_path) == (True, ["the loop ends here"], b"answer")


def async_library() -> str:
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "none"


@pytest.mark.parametrize("entry", ["handle_request", "serve_forever"])
def test_a_plain_servers_handler_runs_in_no_async_library(entry: str, tmp_path: Path) -> None:
    """What anyio-based libraries look at to pick their backend, in a blocking handler."""

    def scenario(module: ModuleType, directory: Path) -> Any:
        seen: list[str] = []

        async def in_asyncio() -> str:
            return async_library()

        class Handler(module.BaseRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                seen.append(async_library())
                seen.append(asyncio.run(in_asyncio()))
                self.request.sendall(b"done")

        with module.TCPServer(("127.0.0.1", 0), Handler) as server:
            if entry == "handle_request":
                with socket.create_connection(server.server_address, timeout=10) as client:
                    server.handle_request()
                    reply = client.recv(10)
            else:
                with serving(server):
                    reply = stream_exchange(server, b"")
        return seen, reply

    assert both(scenario, tmp_path) == (["none", "asyncio"], b"done")


def test_service_actions_and_shutdown_from_another_thread(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        ran = threading.Event()

        class Server(module.TCPServer):  # type: ignore[name-defined,misc]
            def service_actions(self) -> None:
                ran.set()

        server = Server(("127.0.0.1", 0), module.BaseRequestHandler)
        with serving(server):
            ran_in_time = ran.wait(10)
        return ran_in_time, server.socket.fileno()

    assert both(scenario, tmp_path) == (True, -1)


def test_stream_handler_files(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        seen: list[Any] = []

        class Handler(module.StreamRequestHandler):  # type: ignore[name-defined,misc]
            wbufsize = 1024
            timeout = 5

            def handle(self) -> None:
                seen.append(self.request.gettimeout())
                seen.append(self.rfile.read(3))
                seen.append(self.rfile.readline())
                self.wfile.write(b"buffered ")
                self.wfile.write(b"until finish")

        server = module.TCPServer(("127.0.0.1", 0), Handler)
        with serving(server):
            seen.append(stream_exchange(server, b"abcdef\nrest"))
        return seen

    assert both(scenario, tmp_path) == [5.0, b"abc", b"def\n", b"buffered until finish"]


def test_empty_datagram_reply(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        server = module.UDPServer(("127.0.0.1", 0), module.DatagramRequestHandler)
        with serving(server):
            return datagram_exchange(server, b"ignored", directory)

    assert both(scenario, tmp_path) == b""


def test_failed_bind_closes_the_socket(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        with (
            module.TCPServer(("127.0.0.1", 0), module.BaseRequestHandler) as taken,
            pytest.raises(OSError, match="in use") as info,
        ):
            module.TCPServer(taken.server_address, module.BaseRequestHandler)
        return info.value.errno, len(os.listdir("/proc/self/fd"))

    stdlib_errno, stdlib_fds = scenario(socketserver, tmp_path)
    adapters_errno, adapters_fds = scenario(adapters, tmp_path)
    assert stdlib_errno == adapters_errno
    assert adapters_fds == stdlib_fds


def test_bind_and_activate_false(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        server = module.TCPServer(
            ("127.0.0.1", 0), module.BaseRequestHandler, bind_and_activate=False
        )
        before = server.socket.getsockname()
        server.allow_reuse_address = True
        server.server_bind()
        server.server_activate()
        reuse = server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        server.server_close()
        return before, reuse != 0, server.socket.fileno()

    assert both(scenario, tmp_path) == (("0.0.0.0", 0), True, -1)


@pytest.mark.parametrize("module", MODULES)
def test_forking_server_leaves_no_child(module: ModuleType, tmp_path: Path) -> None:
    class Handler(module.StreamRequestHandler):  # type: ignore[name-defined,misc]
        def handle(self) -> None:
            self.wfile.write(str(os.getpid()).encode())

    server = module.ForkingTCPServer(("127.0.0.1", 0), Handler)
    with serving(server):
        pids = {int(stream_exchange(server, b"")) for _ in range(3)}
    assert os.getpid() not in pids
    assert len(pids) == 3
    assert not server.active_children


ATTRIBUTES = {
    "TCPServer": [
        "address_family",
        "socket_type",
        "request_queue_size",
        "allow_reuse_address",
        "allow_reuse_port",
        "timeout",
    ],
    "UDPServer": ["socket_type", "max_packet_size", "allow_reuse_address"],
    "UnixStreamServer": ["address_family", "socket_type"],
    "UnixDatagramServer": ["address_family", "socket_type", "max_packet_size"],
    "ThreadingMixIn": ["daemon_threads", "block_on_close"],
    "ForkingMixIn": ["timeout", "active_children", "max_children", "block_on_close"],
    "StreamRequestHandler": ["rbufsize", "wbufsize", "timeout", "disable_nagle_algorithm"],
}


@pytest.mark.parametrize("name", sorted(ATTRIBUTES))
def test_class_attributes_match(name: str) -> None:
    stdlib_class = getattr(socketserver, name)
    # allow_reuse_port is 3.11's: on 3.10 adapters has it and the stdlib does not.
    present = [attribute for attribute in ATTRIBUTES[name] if hasattr(stdlib_class, attribute)]

    def values(module: ModuleType) -> list[Any]:
        cls = getattr(module, name)
        return [getattr(cls, attribute) for attribute in present]

    assert values(adapters) == values(socketserver)
    assert all(hasattr(getattr(adapters, name), attribute) for attribute in ATTRIBUTES[name])


@pytest.mark.parametrize("name", sorted(adapters.__all__))
def test_class_hierarchy_matches(name: str) -> None:
    def hierarchy(module: ModuleType) -> list[str]:
        return [cls.__name__ for cls in getattr(module, name).__mro__]

    stdlib = getattr(socketserver, name, None)
    if stdlib is None:  # the Forking Unix classes are 3.12+
        assert sys.version_info < (3, 12)
        assert hierarchy(adapters)[1] == "ForkingMixIn"
        return
    assert hierarchy(adapters) == hierarchy(socketserver)


@pytest.mark.parametrize("name", ["BaseServer", "TCPServer", "UDPServer", "ForkingMixIn"])
def test_documented_methods_exist(name: str) -> None:
    def methods(module: ModuleType) -> set[str]:
        cls = getattr(module, name)
        return {
            attr for attr in dir(cls) if not attr.startswith("_") and callable(getattr(cls, attr))
        }

    missing = methods(socketserver) - methods(adapters)
    assert missing == set()


def test_unix_bind_fails_when_the_path_exists(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        path = directory / "taken"
        path.write_text("not a socket")
        with pytest.raises(OSError, match="in use") as info:
            module.UnixStreamServer(str(path), module.BaseRequestHandler)
        return info.value.errno, path.read_text()

    assert both(scenario, tmp_path)[1] == "not a socket"


def test_serve_forever_again_after_shutdown(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        class Echo(module.StreamRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                self.wfile.write(self.rfile.readline())

        with module.TCPServer(("127.0.0.1", 0), Echo) as server:
            replies = []
            for n in range(2):
                thread = threading.Thread(target=server.serve_forever, args=(0.01,))
                thread.start()
                replies.append(stream_exchange(server, b"round %d\n" % n))
                server.shutdown()
                thread.join()
        return replies

    assert both(scenario, tmp_path) == [b"round 0\n", b"round 1\n"]


def test_shutdown_before_serve_forever_makes_it_return(tmp_path: Path) -> None:
    def scenario(module: ModuleType, directory: Path) -> Any:
        with module.TCPServer(("127.0.0.1", 0), module.BaseRequestHandler) as server:
            stopper = threading.Thread(target=server.shutdown)
            stopper.start()
            server.serve_forever(0.01)  # returns: the shutdown was asked for already
            stopper.join(10)
            return stopper.is_alive()

    assert both(scenario, tmp_path) is False


def test_one_selector_over_several_servers(tmp_path: Path) -> None:
    """The documented use of fileno(): a selector over several servers in one thread."""

    def scenario(module: ModuleType, directory: Path) -> Any:
        class Named(module.StreamRequestHandler):  # type: ignore[name-defined,misc]
            def handle(self) -> None:
                self.wfile.write(self.server.name + self.rfile.readline())

        servers = [
            module.TCPServer(("127.0.0.1", 0), Named),
            module.UnixStreamServer(str(directory / "second.sock"), Named),
        ]
        servers[0].name, servers[1].name = b"first: ", b"second: "
        replies: list[bytes] = []
        with selectors.DefaultSelector() as selector:
            for server in servers:
                selector.register(server, selectors.EVENT_READ)
            clients = [socket.socket(server.address_family) for server in servers]
            try:
                for client, server in zip(clients, servers, strict=True):
                    client.connect(server.server_address)
                    client.sendall(b"hi\n")
                pending = set(servers)
                while pending:
                    ready = selector.select(10)
                    assert ready, "no server became readable"
                    for key, _ in ready:
                        key.fileobj.handle_request()  # type: ignore[union-attr]
                        selector.unregister(key.fileobj)
                        pending.discard(key.fileobj)
                replies = [client.makefile("rb").readline() for client in clients]
            finally:
                for client in clients:
                    client.close()
                for server in servers:
                    server.server_close()
        return replies

    assert both(scenario, tmp_path) == [b"first: hi\n", b"second: hi\n"]
