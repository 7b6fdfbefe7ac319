"""The contenders: one server per process, started and killed by the harness.

Usage::

    python -m benchmarks.servers CONTENDER MODE [--grace S] [--cooperative] [--daemon-threads]

The server listens on 127.0.0.1, port 0, and prints ``READY <port>`` on stdout once it
serves; a contender that cannot be imported (not built yet) prints
``UNAVAILABLE <reason>`` and exits with status 3. It then runs until the harness
terminates it, except in mode ``shutdown``, where SIGUSR1 starts a graceful shutdown
and the process prints ``RESULT <json>`` (seconds from ``shutdown()`` to return,
descriptors left) and exits.

Every contender runs the same handler logic over its own API:

- ``keepalive``: read until the end of a request head (``\\r\\n\\r\\n``), answer a fixed
  HTTP/1.1 response, loop until the client closes.
- ``close``: the same, but answer the first request and close (connection per request).
- ``hold``: send one greeting byte, then wait for bytes until the client closes (an idle
  connection, for the memory row).
- ``udp``: reply to each datagram with its own bytes.
- ``shutdown``: ``hold`` on a ``trioserve.Server``; see above.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import signal
import socket
import socketserver
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import trio

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
RESPONSE_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    b"Connection: close\r\n\r\nHello, world!"
)
GREETING = b"+"
RECEIVE_SIZE = 65536
HOST = "127.0.0.1"

STREAM_MODES = ("keepalive", "close", "hold")
UNAVAILABLE_STATUS = 3

STREAM_CONTENDERS = (
    "trioserve",
    "trio",
    "asyncio",
    "uvloop",
    "socketserver.ThreadingTCPServer",
    "socketserver.TCPServer",
    "adapters.ThreadingTCPServer",
    "adapters.TCPServer",
)
UDP_CONTENDERS = (
    "trioserve",
    "trio",
    "asyncio",
    "socketserver.UDPServer",
    "socketserver.ThreadingUDPServer",
    "adapters.UDPServer",
    "adapters.ThreadingUDPServer",
)


class Unavailable(Exception):
    """The contender cannot run here (not importable, not built yet)."""


def split_heads(buffer: bytes) -> tuple[int, bytes]:
    """Count the complete request heads in ``buffer``; return the count and the rest."""
    count = 0
    start = 0
    while True:
        end = buffer.find(b"\r\n\r\n", start)
        if end < 0:
            return count, buffer[start:] if start else buffer
        count += 1
        start = end + 4


def announce(port: int) -> None:
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()


def raise_descriptor_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def count_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


# --- trio streams: trioserve.Connection and trio.SocketStream share the handler ---------


async def http_trio(stream: trio.abc.Stream, *, close: bool) -> None:
    pending = b""
    try:
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                return
            count, pending = split_heads(pending + data)
            if count:
                if close:
                    await stream.send_all(RESPONSE_CLOSE)
                    return
                await stream.send_all(RESPONSE * count)
    except trio.BrokenResourceError:
        return


async def hold_trio(stream: trio.abc.Stream) -> None:
    try:
        await stream.send_all(GREETING)
        while await stream.receive_some(RECEIVE_SIZE):
            pass
    except trio.BrokenResourceError:
        return


def trio_stream_handler(mode: str) -> Callable[[Any], Awaitable[None]]:
    if mode == "hold":
        return hold_trio
    return partial(http_trio, close=mode == "close")


def run_trio_stream(contender: str, mode: str) -> None:
    handler = trio_stream_handler(mode)
    if contender == "trioserve":
        try:
            import trioserve
        except ImportError as exc:
            raise Unavailable(f"cannot import trioserve: {exc}") from None
        serve: Any = trioserve.serve_tcp
    else:
        serve = trio.serve_tcp

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(serve, handler, 0, host=HOST))
            announce(listeners[0].socket.getsockname()[1])

    trio.run(main)


# --- asyncio streams (uvloop: the same code on uvloop's event loop) ----------------------


async def http_asyncio(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, close: bool
) -> None:
    pending = b""
    try:
        while True:
            data = await reader.read(RECEIVE_SIZE)
            if not data:
                return
            count, pending = split_heads(pending + data)
            if count:
                writer.write(RESPONSE_CLOSE if close else RESPONSE * count)
                await writer.drain()
                if close:
                    return
    except ConnectionError:
        return
    finally:
        writer.close()


async def hold_asyncio(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(GREETING)
        await writer.drain()
        while await reader.read(RECEIVE_SIZE):
            pass
    except ConnectionError:
        return
    finally:
        writer.close()


def asyncio_runner(contender: str) -> Callable[[Any], None]:
    if contender == "asyncio":
        return asyncio.run
    try:
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        raise Unavailable("uvloop is not installed") from None
    return uvloop.run  # type: ignore[no-any-return]


def run_asyncio_stream(contender: str, mode: str) -> None:
    run = asyncio_runner(contender)
    handler: Any = hold_asyncio if mode == "hold" else partial(http_asyncio, close=mode == "close")

    async def main() -> None:
        server = await asyncio.start_server(handler, HOST, 0)
        announce(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    run(main())


# --- asyncio datagrams -------------------------------------------------------------------


class EchoProtocol(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.transport.sendto(data, addr)


def run_asyncio_udp(contender: str) -> None:
    run = asyncio_runner(contender)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(EchoProtocol, local_addr=(HOST, 0))
        try:
            announce(transport.get_extra_info("sockname")[1])
            await asyncio.Event().wait()
        finally:
            transport.close()

    run(main())


# --- trio datagrams ----------------------------------------------------------------------


def run_trio_udp(contender: str) -> None:
    if contender == "trioserve":
        try:
            import trioserve
        except ImportError as exc:
            raise Unavailable(f"cannot import trioserve: {exc}") from None
        name = "serve_udp"
        serve_udp: Any = getattr(trioserve, name, None)
        if serve_udp is None:
            raise Unavailable("trioserve has no serve_udp yet")

        async def reply(datagram: Any) -> None:
            await datagram.reply(datagram.data)

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                sockets = await nursery.start(partial(serve_udp, reply, 0, host=HOST))
                announce(sockets[0].getsockname()[1])

        trio.run(main)
        return

    async def send_back(sock: trio.socket.SocketType, data: bytes, address: Any) -> None:
        await sock.sendto(data, address)

    async def plain() -> None:
        # A plain trio datagram server: recvfrom in a loop, one task per datagram.
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            await sock.bind((HOST, 0))
            announce(sock.getsockname()[1])
            async with trio.open_nursery() as nursery:
                while True:
                    data, address = await sock.recvfrom(RECEIVE_SIZE)
                    nursery.start_soon(send_back, sock, data, address)

    trio.run(plain)


# --- socketserver and adapters: the same handler classes for both ------------------------


class HTTPHandler(socketserver.BaseRequestHandler):
    close = False

    def handle(self) -> None:
        sock: socket.socket = self.request
        pending = b""
        try:
            while True:
                data = sock.recv(RECEIVE_SIZE)
                if not data:
                    return
                count, pending = split_heads(pending + data)
                if count:
                    if self.close:
                        sock.sendall(RESPONSE_CLOSE)
                        return
                    sock.sendall(RESPONSE * count)
        except OSError:
            return


class HTTPCloseHandler(HTTPHandler):
    close = True


class HoldHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            sock.sendall(GREETING)
            while sock.recv(RECEIVE_SIZE):
                pass
        except OSError:
            return


class EchoDatagramHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(data, self.client_address)


def server_class(contender: str) -> Any:
    module_name, _, class_name = contender.partition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise Unavailable(f"cannot import {module_name}: {exc}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise Unavailable(f"{module_name} has no {class_name} yet")
    return cls


def run_socketserver(contender: str, mode: str, *, daemon_threads: bool = False) -> None:
    handlers: dict[str, type[socketserver.BaseRequestHandler]] = {
        "keepalive": HTTPHandler,
        "close": HTTPCloseHandler,
        "hold": HoldHandler,
        "udp": EchoDatagramHandler,
    }
    cls = server_class(contender)
    server = cls((HOST, 0), handlers[mode])
    if daemon_threads:
        # The stdlib keeps non-daemon threads in a list it scans on every new connection
        # (quadratic with 9,000 held); daemon threads skip the list, and cost the same memory.
        server.daemon_threads = True
    try:
        announce(server.server_address[1])
        server.serve_forever()
    finally:
        server.server_close()


# --- graceful shutdown of trioserve.Server -----------------------------------------------


async def cooperative_hold(stream: Any) -> None:
    """Hold the connection until the peer closes it or the server shuts down."""
    import trioserve

    server = trioserve.current_server()
    async with trio.open_nursery() as nursery:

        async def leave_on_shutdown() -> None:
            await server.wait_for_shutdown()
            nursery.cancel_scope.cancel()

        nursery.start_soon(leave_on_shutdown)
        await hold_trio(stream)
        nursery.cancel_scope.cancel()


def run_shutdown(grace: float, *, cooperative: bool) -> None:
    try:
        import trioserve
    except ImportError as exc:
        raise Unavailable(f"cannot import trioserve: {exc}") from None

    async def main() -> None:
        before = count_descriptors()
        server = trioserve.Server(
            cooperative_hold if cooperative else hold_trio, grace_period=grace
        )
        with trio.open_signal_receiver(signal.SIGUSR1) as signals:
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(partial(server.serve_tcp, 0, host=HOST))
                announce(listeners[0].socket.getsockname()[1])
                async for _ in signals:
                    break
                active = server.stats.active
                started = time.perf_counter()
                server.shutdown()
            seconds = time.perf_counter() - started
        left = count_descriptors() - before
        result = {"seconds": seconds, "descriptors_left": left, "active": active}
        sys.stdout.write(f"RESULT {json.dumps(result)}\n")
        sys.stdout.flush()

    trio.run(main)


def run(contender: str, mode: str, args: argparse.Namespace) -> None:
    if mode == "shutdown":
        if contender != "trioserve":
            raise SystemExit("mode shutdown is for contender trioserve only")
        run_shutdown(args.grace, cooperative=args.cooperative)
    elif contender.startswith(("socketserver.", "adapters.")):
        run_socketserver(contender, mode, daemon_threads=args.daemon_threads)
    elif mode == "udp":
        if contender in ("asyncio", "uvloop"):
            run_asyncio_udp(contender)
        else:
            run_trio_udp(contender)
    elif contender in ("asyncio", "uvloop"):
        run_asyncio_stream(contender, mode)
    else:
        run_trio_stream(contender, mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers")
    parser.add_argument("contender", choices=sorted({*STREAM_CONTENDERS, *UDP_CONTENDERS}))
    parser.add_argument("mode", choices=[*STREAM_MODES, "udp", "shutdown"])
    parser.add_argument("--grace", type=float, default=1.0, help="grace_period for shutdown")
    parser.add_argument("--cooperative", action="store_true", help="handlers leave on shutdown")
    parser.add_argument(
        "--daemon-threads", action="store_true", help="socketserver: set daemon_threads"
    )
    args = parser.parse_args(argv)
    contenders = UDP_CONTENDERS if args.mode == "udp" else STREAM_CONTENDERS
    if args.contender not in contenders:
        parser.error(f"contender {args.contender!r} has no mode {args.mode!r}")
    raise_descriptor_limit()
    try:
        run(args.contender, args.mode, args)
    except Unavailable as exc:
        sys.stdout.write(f"UNAVAILABLE {exc}\n")
        sys.stdout.flush()
        return UNAVAILABLE_STATUS
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
