"""A line-based chat room: every line a client sends goes to every other client.

    python examples/chat.py [PORT]            # default 7778; then, in two terminals:
    nc 127.0.0.1 7778

Each connection runs two tasks in a nursery of its own: one reads the client's lines and
broadcasts them, the other writes what the room sends it. The room hands lines to each
client through a memory channel, so a slow client never blocks the others: when its
channel is full it is dropped.
"""

from __future__ import annotations

import signal
import sys
from functools import partial

import trio

import trioserve

#: Lines a client may have waiting before the room gives up on it.
BACKLOG = 100


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


class Room:
    def __init__(self) -> None:
        self.members: dict[str, trio.MemorySendChannel[str]] = {}
        self.joined = 0

    def join(self) -> tuple[str, trio.MemoryReceiveChannel[str]]:
        self.joined += 1
        name = f"guest{self.joined}"
        send, receive = trio.open_memory_channel[str](BACKLOG)
        send.send_nowait(f"welcome, {name}")
        self.broadcast(f"* {name} joined")
        self.members[name] = send
        return name, receive

    def leave(self, name: str) -> None:
        channel = self.members.pop(name, None)
        if channel is not None:
            channel.close()
            self.broadcast(f"* {name} left")

    def broadcast(self, line: str, *, sender: str | None = None) -> None:
        for name, channel in list(self.members.items()):
            if name == sender:
                continue
            try:
                channel.send_nowait(line)
            except trio.WouldBlock:
                self.leave(name)  # too slow: its writer sees the channel closed and hangs up
            except trio.BrokenResourceError:
                self.leave(name)  # its writer is gone already


room = Room()


async def write_lines(conn: trioserve.Connection, lines: trio.MemoryReceiveChannel[str]) -> None:
    """Write what the room sends; when the room drops this client, tell it by EOF."""
    async with lines:
        try:
            async for line in lines:
                await conn.send_all(line.encode() + b"\n")
            await conn.send_eof()
        except trio.BrokenResourceError:
            pass  # the client vanished: that is how chats end, not an error


async def read_lines(conn: trioserve.Connection, name: str) -> None:
    reader = LineReader(conn)
    try:
        while (line := await reader.readline()) is not None:
            room.broadcast(f"{name}: {line}", sender=name)
    except trio.BrokenResourceError:
        pass


async def chat(conn: trioserve.Connection) -> None:
    name, inbox = room.join()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_lines, conn, inbox)
            await read_lines(conn, name)
            nursery.cancel_scope.cancel()  # the client left: stop writing to it
    finally:
        room.leave(name)


async def main(port: int) -> None:
    server = trioserve.Server(chat, max_connections=1000, grace_period=1)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(server.serve_tcp, port, host="127.0.0.1"))
            host, bound = listeners[0].socket.getsockname()[:2]
            print(f"listening on tcp://{host}:{bound}", flush=True)
            async for _ in signals:
                room.broadcast("* the server is shutting down")
                server.shutdown()
                break


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 7778)
