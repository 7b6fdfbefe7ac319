"""A socketserver handler moved to ``async def``: the same protocol at each step.

    python examples/async_handler.py [PORT]             # 3. trioserve, default 7779
    python examples/async_handler.py [PORT] --adapters  # 2. async def handle, on adapters
    python examples/async_handler.py [PORT] --blocking  # 1. the original, on socketserver

The protocol: each line the client sends comes back upper-cased, until it sends ``quit``.

1. ``UpperHandler`` is how it was written for ``socketserver``: a class, a blocking
   ``handle()``, a thread per connection (``import adapters as socketserver`` runs it
   unchanged on trioserve, see socketserver_migrated.py).
2. ``AsyncUpperHandler`` moves ``handle`` to ``async def`` on ``adapters``: the class stays,
   ``self.request`` becomes a :class:`trioserve.Connection`, every blocking call an
   ``await``, and the request runs as a trio task instead of a thread.
3. ``upper`` drops the class: the same body as a plain trioserve handler.

``self.rfile.readline()`` has no direct twin on a byte stream, so a small buffered reader
takes its place.
"""

from __future__ import annotations

import contextlib
import signal
import socketserver
import sys
from functools import partial

import trio

import adapters
import trioserve


class UpperHandler(socketserver.StreamRequestHandler):
    """Before: blocking, one thread per connection."""

    def handle(self) -> None:
        while line := self.rfile.readline(4096):
            if line.strip() == b"quit":
                return
            self.wfile.write(line.upper())


class LineReader:
    """``rfile.readline()`` for a trio stream: a line with its b"\\n", or b"" at the end."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def readline(self, limit: int) -> bytes:
        while self.buffer.find(b"\n", 0, limit) < 0 and len(self.buffer) < limit:
            data = await self.stream.receive_some()
            if not data:
                break
            self.buffer += data
        end = self.buffer.find(b"\n", 0, limit)
        size = end + 1 if end >= 0 else min(len(self.buffer), limit)
        line = bytes(self.buffer[:size])
        del self.buffer[:size]
        return line


async def upper(conn: trioserve.Connection) -> None:
    """After: the same loop, awaited; the server closes the connection when it returns."""
    rfile = LineReader(conn)
    while line := await rfile.readline(4096):
        if line.strip() == b"quit":
            return
        await conn.send_all(line.upper())


class AsyncUpperHandler(adapters.StreamRequestHandler):
    """Halfway: still a socketserver class, but ``handle`` is ``async def``: no thread."""

    async def handle(self) -> None:
        await upper(self.request)


def serve_blocking(port: int) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", port), UpperHandler) as server:
        server.daemon_threads = True
        host, bound = server.socket.getsockname()[:2]
        print(f"listening on tcp://{host}:{bound}", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C or SIGTERM: stop
            server.serve_forever()


def serve_adapters(port: int) -> None:
    with adapters.ThreadingTCPServer(("127.0.0.1", port), AsyncUpperHandler) as server:
        host, bound = server.server_address[:2]
        print(f"listening on tcp://{host}:{bound}", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


async def serve_async(port: int) -> None:
    server = trioserve.Server(upper)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(server.serve_tcp, port, host="127.0.0.1"))
            host, bound = listeners[0].socket.getsockname()[:2]
            print(f"listening on tcp://{host}:{bound}", flush=True)
            async for _ in signals:
                server.shutdown()
                break


if __name__ == "__main__":
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    port = int(arguments[0]) if arguments else 7779
    if "--blocking" in sys.argv:
        serve_blocking(port)
    elif "--adapters" in sys.argv:
        serve_adapters(port)
    else:
        trio.run(serve_async, port)
