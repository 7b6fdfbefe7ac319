"""A line-based chat room: every line a client sends goes to every other client.

    python examples/chat.py [PORT]            # default 7778; then, in two terminals:
    nc 127.0.0.1 7778

Each connection runs two tasks in a nursery of its own: one reads the client's lines and
broadcasts them, the other writes what the room sends it. The room hands lines to each
client through a memory channel, so a slow client never blocks the others: when its
channel is full it is dropped, which cancels its two tasks and so closes its connection.
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
        #: Each member's inbox, and the cancel scope of its connection's tasks.
        self.members: dict[str, tuple[trio.MemorySendChannel[str], trio.CancelScope]] = {}
        self.joined = 0

    def join(self, tasks: trio.CancelScope) -> tuple[str, trio.MemoryReceiveChannel[str]]:
        """A name and an inbox for a new member; leaving cancels ``tasks``."""
        self.joined += 1
        name = f"guest{self.joined}"
        send, receive = trio.open_memory_channel[str](BACKLOG)
        send.send_nowait(f"welcome, {name}")
        self.broadcast(f"* {name} joined")
        self.members[name] = (send, tasks)
        return name, receive

    def leave(self, name: str) -> None:
        member = self.members.pop(name, None)
        if member is not None:
            inbox, tasks = member
            inbox.close()
            tasks.cancel()  # its reader and writer stop, and the server closes the connection
            self.broadcast(f"* {name} left")

    def broadcast(self, line: str, *, sender: str | None = None) -> None:
        for name, (inbox, _) in list(self.members.items()):
            if name == sender:
                continue
            try:
                inbox.send_nowait(line)
            except (trio.WouldBlock, trio.BrokenResourceError):
                self.leave(name)  # too slow to keep up, or its writer is gone already


room = Room()


async def write_lines(conn: trioserve.Connection, lines: trio.MemoryReceiveChannel[str]) -> None:
    """Write what the room sends, until the client leaves the room (which cancels this)."""
    async with lines:
        try:
            async for line in lines:
                await conn.send_all(line.encode() + b"\n")
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
    async with trio.open_nursery() as nursery:
        name, inbox = room.join(nursery.cancel_scope)
        nursery.start_soon(write_lines, conn, inbox)
        try:
            await read_lines(conn, name)
        finally:
            room.leave(name)  # the client left (else the room dropped it): stop writing to it


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
