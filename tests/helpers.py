"""Small tools the tests share."""

from __future__ import annotations

import attrs
import trio

import trioserve


async def echo(conn: trio.abc.Stream) -> None:
    async for data in conn:
        await conn.send_all(data)


async def exchange(stream: trio.abc.Stream, data: bytes) -> bytes:
    """Send ``data`` and read until as many bytes came back."""
    await stream.send_all(data)
    received = b""
    while len(received) < len(data):
        chunk = await stream.receive_some()
        if not chunk:
            break
        received += chunk
    return received


async def connect(listener: trio.SocketListener) -> trio.SocketStream:
    sockname = listener.socket.getsockname()
    if listener.socket.family == trio.socket.AF_UNIX:
        return await trio.open_unix_socket(sockname)
    host = "::1" if listener.socket.family == trio.socket.AF_INET6 else "127.0.0.1"
    return await trio.open_tcp_stream(host, sockname[1])


@attrs.define(eq=False)
class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose connections are memory stream pairs (for tests without sockets)."""

    _send: trio.MemorySendChannel[trio.abc.Stream] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[trio.abc.Stream] = attrs.field(init=False)
    closed: bool = False

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel(100)

    async def connect(self) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        await self._send.send(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        try:
            return await self._receive.receive()
        except trio.ClosedResourceError:
            raise trio.ClosedResourceError("listener closed") from None

    async def aclose(self) -> None:
        self.closed = True
        await self._receive.aclose()


def stats_of(server: trioserve.Server) -> dict[str, int]:
    return attrs.asdict(server.stats)
