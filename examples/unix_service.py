"""A key-value service on a Unix socket, for processes of the same machine.

    python examples/unix_service.py [PATH]    # default /tmp/kv.sock
    printf 'SET colour blue\\nGET colour\\n' | nc -U /tmp/kv.sock

One command per line: ``SET key value`` answers ``OK``, ``GET key`` answers the value or
``(nil)``. The socket file is made with mode 0o600 (only this user may connect), a stale
one from a crashed run is replaced, and it is removed at exit.
"""

from __future__ import annotations

import signal
import sys
from functools import partial

import trio

import trioserve

store: dict[str, str] = {}


class LineReader:
    """Lines from a stream, one at a time (``None`` at the end, or on a line too long)."""

    def __init__(self, stream: trio.abc.ReceiveStream, max_line: int = 4096) -> None:
        self.stream = stream
        self.max_line = max_line
        self.buffer = bytearray()

    async def readline(self) -> str | None:
        while (end := self.buffer.find(b"\n")) < 0:
            data = await self.stream.receive_some()
            if not data or len(self.buffer) > self.max_line:
                return None
            self.buffer += data
        line = self.buffer[:end].decode(errors="replace").rstrip("\r")
        del self.buffer[: end + 1]
        return line


def execute(command: str) -> str:
    verb, _, rest = command.partition(" ")
    if verb == "SET" and " " in rest:
        key, value = rest.split(" ", 1)
        store[key] = value
        return "OK"
    if verb == "GET" and rest:
        return store.get(rest, "(nil)")
    return "ERR expected SET key value or GET key"


async def kv(conn: trioserve.Connection) -> None:
    lines = LineReader(conn)
    while (command := await lines.readline()) is not None:
        await conn.send_all(execute(command).encode() + b"\n")


async def main(path: str) -> None:
    server = trioserve.Server(kv, max_connections=64, idle_timeout=60)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(server.serve_unix, path, mode=0o600))
            print(f"listening on unix:{path}", flush=True)
            async for _ in signals:
                server.shutdown()
                break


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "/tmp/kv.sock")
