"""ThreadingMixIn's fast path: a handler thread that has finished takes the next request itself.

Which thread takes a request depends on timing, so most tests here make the loop leave
every ready request to the holder (``LeavesToHolder``) to reach that path for sure, and
stretch how long a holder waits for the next request, so it keeps the role between
requests of a test client.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio

import adapters
from adapters import _taking

#: Seconds a test waits for something that should happen at once, before failing.
PATIENCE = 10
REQUESTS = 60


class LeavesToHolder:
    """Mixed in before a ThreadingMixIn server: once a handler thread holds the role of
    taking requests, the loop leaves every ready request to it (while ``force``)."""

    force = True

    async def _requests_to_take(self, run: Any) -> int:
        taker = run.taker
        if type(self).force and taker is not None and taker.holder is not None:
            await trio.sleep(_taking.STALL_SECONDS)  # real time: as the loop itself waits
            return 0
        return await super()._requests_to_take(run)  # type: ignore[misc,no-any-return]


class Echo(adapters.BaseRequestHandler):
    """Echoes one request (a datagram, or up to 100 bytes of a connection)."""

    threads: list[int]

    def handle(self) -> None:
        type(self).threads.append(threading.get_ident())
        if isinstance(self.request, tuple):
            data, sock = self.request
            sock.sendto(data, self.client_address)
        else:
            self.request.sendall(self.request.recv(100))


def echo_handler() -> type[Echo]:
    return type("EchoHandler", (Echo,), {"threads": []})


@pytest.fixture
def holder_keeps_role(monkeypatch: pytest.MonkeyPatch) -> None:
    # Long enough that a holder never gives the role up between two requests of a test.
    monkeypatch.setattr(_taking, "HOLD_SECONDS", 0.5)


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


def tcp_request(address: Any, data: bytes) -> bytes:
    with socket.create_connection(address, timeout=PATIENCE) as client:
        client.sendall(data)
        return client.recv(100)


def udp_request(client: socket.socket, address: Any, data: bytes) -> bytes:
    client.sendto(data, address)
    return client.recv(100)


def udp_echoes(address: Any) -> list[bytes]:
    """Send REQUESTS datagrams one after another; return what came back for each."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(PATIENCE)
        return [udp_request(client, address, b"%d" % number) for number in range(REQUESTS)]


class ForcedTCP(LeavesToHolder, adapters.ThreadingTCPServer):
    pass


class ForcedUDP(LeavesToHolder, adapters.ThreadingUDPServer):
    pass


@pytest.mark.usefixtures("holder_keeps_role")
@pytest.mark.parametrize("server_class", [ForcedTCP, ForcedUDP])
def test_handler_threads_take_the_requests_themselves(server_class: Any) -> None:
    handler = echo_handler()
    with server_class(("127.0.0.1", 0), handler) as server, serving_forever(server) as loop_thread:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_client:
            udp_client.settimeout(PATIENCE)
            for number in range(REQUESTS):
                data = b"request %d" % number
                if server_class is ForcedUDP:
                    assert udp_request(udp_client, server.server_address, data) == data
                else:
                    assert tcp_request(server.server_address, data) == data
        taker = server._run.taker
        assert taker is not None
        taken_by_threads = taker.taken
    assert len(handler.threads) == REQUESTS
    assert loop_thread.ident not in handler.threads
    # The loop took the first; a holder then took (nearly) all the rest.
    assert taken_by_threads >= REQUESTS // 2


@pytest.mark.usefixtures("holder_keeps_role")
def test_verify_request_error_in_a_handler_thread_ends_serve_forever() -> None:
    calls: list[int] = []

    class Refusing(ForcedTCP):
        def verify_request(self, request: Any, client_address: Any) -> bool:
            calls.append(threading.get_ident())
            if len(calls) == 3:
                raise ValueError("verify_request failed")
            return True

    handler = echo_handler()
    outcome: list[BaseException] = []

    def serve(server: Any) -> None:
        try:
            server.serve_forever(poll_interval=None)
        except BaseException as exc:
            outcome.append(exc)

    with Refusing(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=serve, args=(server,))
        thread.start()
        try:
            for number in range(2):
                assert tcp_request(server.server_address, b"%d" % number) == b"%d" % number
            with socket.create_connection(server.server_address, timeout=PATIENCE) as client:
                client.sendall(b"refused")
                assert client.recv(100) == b""  # closed, not answered
            thread.join(PATIENCE)
            assert not thread.is_alive()
        finally:
            server.shutdown()
            thread.join(PATIENCE)
    assert [type(exc) for exc in outcome] == [ValueError]
    assert calls[2] != thread.ident  # raised in a handler thread, reached serve_forever


def test_get_request_and_verify_request_never_run_at_once() -> None:
    inside: list[int] = []
    most_inside = [0]
    verified_in: set[int] = set()

    class Checked(adapters.ThreadingTCPServer):
        def get_request(self) -> tuple[Any, Any]:
            inside.append(1)
            most_inside[0] = max(most_inside[0], len(inside))
            try:
                return super().get_request()
            finally:
                inside.pop()

        def verify_request(self, request: Any, client_address: Any) -> bool:
            inside.append(1)
            most_inside[0] = max(most_inside[0], len(inside))
            try:
                verified_in.add(threading.get_ident())
                return True
            finally:
                inside.pop()

    handler = echo_handler()
    clients = 20
    with Checked(("127.0.0.1", 0), handler) as server, serving_forever(server):

        def client(number: int) -> None:
            for round_ in range(5):
                data = b"%d.%d" % (number, round_)
                assert tcp_request(server.server_address, data) == data

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PATIENCE)
            assert not thread.is_alive()
    assert len(handler.threads) == clients * 5
    assert most_inside == [1]


@pytest.mark.usefixtures("holder_keeps_role")
def test_a_holder_blocked_in_its_handler_does_not_hold_up_other_requests() -> None:
    release = threading.Event()
    blocked: list[bool] = []

    class Forced(ForcedTCP):
        pass

    class Handler(adapters.BaseRequestHandler):
        def handle(self) -> None:
            data = self.request.recv(100)
            if data == b"block":
                taker = self.server._run.taker
                blocked.append(taker.holder == threading.get_ident())
                # The loop decides again from now on: the holder is stuck here.
                Forced.force = False
                release.wait(3 * PATIENCE)  # longer than the test waits for answers
            self.request.sendall(data)

    with Forced(("127.0.0.1", 0), Handler) as server, serving_forever(server):
        for number in range(5):
            assert tcp_request(server.server_address, b"%d" % number) == b"%d" % number
        with socket.create_connection(server.server_address, timeout=PATIENCE) as stuck:
            stuck.sendall(b"block")
            try:
                # Answered while the holder is blocked in its handler.
                for number in range(5):
                    data = b"meanwhile %d" % number
                    assert tcp_request(server.server_address, data) == data
            finally:
                release.set()
            assert stuck.recv(100) == b"block"
    assert blocked == [True]


def test_an_overridden_process_request_is_called_for_every_request_in_the_loop() -> None:
    called_in: list[int] = []

    class Overriding(adapters.ThreadingUDPServer):
        def process_request(self, request: Any, client_address: Any) -> None:
            called_in.append(threading.get_ident())
            super().process_request(request, client_address)

    handler = echo_handler()
    with Overriding(("127.0.0.1", 0), handler) as server, serving_forever(server) as loop_thread:
        assert udp_echoes(server.server_address) == [b"%d" % n for n in range(REQUESTS)]
        assert server._run.taker is None
    assert called_in == [loop_thread.ident] * REQUESTS


@pytest.mark.usefixtures("holder_keeps_role")
@pytest.mark.parametrize("hook", ["process_request", "service_actions"])
def test_a_hook_set_on_the_instance_is_called_for_every_request_in_the_loop(hook: str) -> None:
    called_in: list[int] = []
    handler = echo_handler()
    with ForcedUDP(("127.0.0.1", 0), handler) as server:
        original = getattr(server, hook)

        def recording(*args: Any) -> None:  # what mock.patch.object(server, hook) does
            called_in.append(threading.get_ident())
            original(*args)

        setattr(server, hook, recording)
        with serving_forever(server) as loop_thread:
            assert udp_echoes(server.server_address) == [b"%d" % n for n in range(REQUESTS)]
            assert server._run.taker is None
    assert called_in == [loop_thread.ident] * REQUESTS
