"""Every program in examples/ runs: start, one real exchange, a clean stop on SIGINT."""

from __future__ import annotations

import os
import signal
import ssl
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import h11
import pytest
import trio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Seconds an example may take to start (imports included) or to stop, on a busy machine.
PATIENCE = 30


@attrs.define
class Running:
    process: trio.Process
    address: str
    interrupted: bool = False
    stderr: bytes = b""

    def interrupt(self) -> None:
        """SIGINT, once: a second one while the example stops would stop it at once."""
        if not self.interrupted:
            self.interrupted = True
            self.process.send_signal(signal.SIGINT)

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    async def connect(self) -> trio.SocketStream:
        assert self.address.startswith("tcp://127.0.0.1:"), self.address
        return await trio.open_tcp_stream("127.0.0.1", self.port)


async def read_line(stream: trio.abc.ReceiveStream) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        data = await stream.receive_some(1)
        if not data:
            break
        line += data
    return line


async def receive_until(stream: trio.abc.ReceiveStream, end: bytes) -> bytes:
    received = b""
    while not received.endswith(end):
        data = await stream.receive_some()
        if not data:
            break
        received += data
    return received


async def send_forever(stream: trio.abc.SendStream, data: bytes) -> None:
    """Send ``data`` again and again: until cancelled, or the peer's hang-up breaks the stream."""
    while True:
        await stream.send_all(data)


@asynccontextmanager
async def running(script: str, *args: str) -> AsyncIterator[Running]:
    """Run an example; yield once it says where it listens; then SIGINT it: it exits 0."""
    process = await trio.lowlevel.open_process(
        [sys.executable, str(EXAMPLES / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        with trio.fail_after(PATIENCE):
            line = (await read_line(process.stdout)).decode()
        assert line.startswith("listening on "), line
        example = Running(process, line.removeprefix("listening on ").strip())
        yield example
        example.interrupt()
        with trio.fail_after(PATIENCE):
            while chunk := await process.stderr.receive_some():
                example.stderr += chunk
            assert await process.wait() == 0, example.stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(PATIENCE, shield=True):
                await process.wait()
        await trio.aclose_forcefully(process.stdout)
        await trio.aclose_forcefully(process.stderr)


async def test_tcp_echo() -> None:
    async with running("tcp_echo.py", "0") as example, await example.connect() as client:
        await client.send_all(b"hello echo")
        assert await receive_until(client, b"echo") == b"hello echo"


async def test_unix_service(tmp_path: Path) -> None:
    path = tmp_path / "kv.sock"
    async with running("unix_service.py", str(path)) as example:
        assert example.address == f"unix:{path}"
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        async with await trio.open_unix_socket(str(path)) as client:
            await client.send_all(b"SET colour blue\nGET colour\nGET shape\n")
            assert await receive_until(client, b"(nil)\n") == b"OK\nblue\n(nil)\n"
        async with await trio.open_unix_socket(str(path)) as client:
            await client.send_all(b"GET colour\n")
            assert await receive_until(client, b"\n") == b"blue\n"
    assert not path.exists()


async def test_chat() -> None:
    async with running("chat.py", "0") as example, await example.connect() as alice:
        assert await read_line(alice) == b"welcome, guest1\n"
        async with await example.connect() as bob:
            assert await read_line(bob) == b"welcome, guest2\n"
            assert await read_line(alice) == b"* guest2 joined\n"
            await alice.send_all(b"hi bob\n")
            assert await read_line(bob) == b"guest1: hi bob\n"
            await bob.send_all(b"hi alice\n")
            assert await read_line(alice) == b"guest2: hi alice\n"
        assert await read_line(alice) == b"* guest2 left\n"


async def test_chat_hangs_up_on_a_client_too_slow_to_keep_up() -> None:
    async with running("chat.py", "0") as example, await example.connect() as alice:
        assert await read_line(alice) == b"welcome, guest1\n"
        async with await example.connect() as bob:
            assert await read_line(bob) == b"welcome, guest2\n"
            async with trio.open_nursery() as nursery:  # more than alice's backlog and buffers
                nursery.start_soon(send_forever, bob, b"x" * 1000 + b"\n")
                with trio.fail_after(PATIENCE):  # alice never reads, so the room drops her
                    assert await read_line(bob) == b"* guest1 left\n"
                nursery.cancel_scope.cancel()
            # The server hung up on alice: what she still says bounces.
            with trio.fail_after(PATIENCE), pytest.raises(trio.BrokenResourceError):
                await send_forever(alice, b"still here\n")
            await bob.send_eof()
            assert await receive_until(bob, b"never") == b""  # nothing of alice's was relayed


async def http_exchange(
    stream: trio.abc.Stream,
    http: h11.Connection,
    target: bytes,
    body: bytes = b"",
    *,
    method: bytes | None = None,
) -> tuple[h11.Response, bytes]:
    method = method or (b"POST" if body else b"GET")
    headers = [(b"host", b"127.0.0.1"), (b"content-length", b"%d" % len(body))]
    request = h11.Request(method=method, target=target, headers=headers)
    for message in (request, h11.Data(data=body), h11.EndOfMessage()):
        await stream.send_all(http.send(message) or b"")
    response: h11.Response | None = None
    content = b""
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(bytes(await stream.receive_some()))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            content += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return response, content


async def test_http_server_keeps_alive_then_shuts_down_gracefully() -> None:
    async with running("http_server.py", "0") as example, await example.connect() as client:
        http = h11.Connection(h11.CLIENT)
        response, content = await http_exchange(client, http, b"/first")
        assert (response.status_code, content) == (200, b"hello from /first\n")
        http.start_next_cycle()  # the same connection, kept alive
        response, content = await http_exchange(client, http, b"/echo", b"posted")
        assert (response.status_code, content) == (200, b"posted")
        http.start_next_cycle()
        example.interrupt()
        with trio.fail_after(PATIENCE):  # the idle keep-alive connection is closed at once
            assert await client.receive_some() == b""


async def test_http_server_answers_a_malformed_request_with_400() -> None:
    async with running("http_server.py", "0") as example:
        async with await example.connect() as client:
            await client.send_all(b"GARBAGE\r\n\r\n")
            reply = await receive_until(client, b"bad request\n")
            assert reply.startswith(b"HTTP/1.1 400 ")
        async with await example.connect() as client:  # and the server goes on
            response, content = await http_exchange(client, h11.Connection(h11.CLIENT), b"/ok")
            assert (response.status_code, content) == (200, b"hello from /ok\n")
        example.interrupt()
    assert b"Traceback" not in example.stderr


async def test_http_server_answers_head_like_get_without_the_body() -> None:
    async with running("http_server.py", "0") as example:
        async with await example.connect() as client:
            http = h11.Connection(h11.CLIENT)
            get, content = await http_exchange(client, http, b"/page")
            assert (get.status_code, content) == (200, b"hello from /page\n")
            http.start_next_cycle()
            head, content = await http_exchange(client, http, b"/page", method=b"HEAD")
            assert (head.status_code, head.headers, content) == (200, get.headers, b"")
            http.start_next_cycle()  # no stray body bytes: the connection goes on
            response, content = await http_exchange(client, http, b"/after")
            assert (response.status_code, content) == (200, b"hello from /after\n")
        example.interrupt()
    assert b"Traceback" not in example.stderr


async def test_tls_echo(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    async with running("tls_echo.py", "0", str(ca_file)) as example:
        context = ssl.create_default_context(cafile=str(ca_file))
        async with await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", example.port, ssl_context=context
        ) as client:
            await client.send_all(b"over TLS")
            assert await receive_until(client, b"TLS") == b"over TLS"
            assert client.getpeercert() is not None


@pytest.mark.parametrize(
    "mode", [[], ["--adapters"], ["--blocking"]], ids=["trioserve", "adapters", "blocking"]
)
async def test_async_handler_and_its_blocking_original(mode: list[str]) -> None:
    async with (
        running("async_handler.py", "0", *mode) as example,
        await example.connect() as client,
    ):
        await client.send_all(b"quiet please\nand again\n")
        assert await receive_until(client, b"AGAIN\n") == b"QUIET PLEASE\nAND AGAIN\n"
        await client.send_all(b"quit\n")
        assert await receive_until(client, b"never") == b""


async def test_the_fixtures_example_passes_under_pytest() -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_with_fixtures.py"],
        cwd=EXAMPLES,
        capture_stdout=True,
        check=False,
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output
    assert "4 passed" in output


async def test_socketserver_program_migrated_with_one_import() -> None:
    source = await trio.Path(EXAMPLES / "socketserver_migrated.py").read_text()
    assert "import adapters as socketserver  # was: import socketserver" in source
    async with (
        running("socketserver_migrated.py", "0") as example,
        await example.connect() as client,
    ):
        await client.send_all(b"one import\n")
        assert await receive_until(client, b"\n") == b"ONE IMPORT\n"


async def test_udp_echo() -> None:
    async with running("udp_echo.py", "0") as example:
        assert example.address.startswith("udp://127.0.0.1:"), example.address
        with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as sock:
            await sock.connect(("127.0.0.1", example.port))
            await sock.send(b"over udp")
            with trio.fail_after(PATIENCE):
                assert await sock.recv(100) == b"over udp"
