"""A socketserver handler moved to ``async def``: the same protocol, before and after.

    python examples/async_handler.py [PORT]            # trioserve, default 7779
    python examples/async_handler.py [PORT] --blocking # the original, on socketserver

The protocol: each line the client sends comes back upper-cased, until it sends ``quit``.
``UpperHandler`` is how it was written for ``socketserver``: a class, a blocking
``handle()``, a thread per connection. ``upper`` is the same handler for trioserve: a
function of the connection, where every blocking call becomes an ``await``, and a task
instead of a thread. ``self.rfile.readline()`` has no direct twin on a byte stream, so a
small buffered reader takes its place.
"""

from __future__ import annotations

import contextlib
import signal
import socketserver
import sys
from functools import partial

import trio

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
    """After: the same loop, awaited; trioserve closes the connection when it returns."""
    rfile = LineReader(conn)
    while line := await rfile.readline(4096):
        if line.strip() == b"quit":
            return
        await conn.send_all(line.upper())


def serve_blocking(port: int) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", port), UpperHandler) as server:
        server.daemon_threads = True
        host, bound = server.socket.getsockname()[:2]
        print(f"listening on tcp://{host}:{bound}", flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C or SIGTERM: stop
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
    arguments = [argument for argument in sys.argv[1:] if argument != "--blocking"]
    port = int(arguments[0]) if arguments else 7779
    if "--blocking" in sys.argv:
        serve_blocking(port)
    else:
        trio.run(serve_async, port)
