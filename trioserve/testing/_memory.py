"""A listener whose connections are in-memory stream pairs: handler tests without sockets."""

from __future__ import annotations

import math

import trio
from trio.testing import MemoryReceiveStream, MemorySendStream, memory_stream_pair

#: One end of an in-memory connection, as :func:`trio.testing.memory_stream_pair` makes it.
MemoryStream = trio.StapledStream[MemorySendStream, MemoryReceiveStream]


class MemoryListener(trio.abc.Listener[MemoryStream]):
    """Hands out the server ends of :func:`trio.testing.memory_stream_pair` pairs.

    :meth:`connect` makes a pair, queues the server end for :meth:`accept` and returns
    the client end. Closing the listener closes the server ends nobody accepted; the
    ones already accepted belong to whoever accepted them.
    """

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[MemoryStream](math.inf)

    async def connect(self) -> MemoryStream:
        """Open a connection and return its client end.

        Raises:
            trio.ClosedResourceError: The listener was closed.
        """
        await trio.lowlevel.checkpoint()
        client, server = memory_stream_pair()
        try:
            self._send.send_nowait(server)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise trio.ClosedResourceError("the memory listener is closed") from None
        return client

    async def accept(self) -> MemoryStream:
        try:
            return await self._receive.receive()
        except (trio.ClosedResourceError, trio.EndOfChannel):
            raise trio.ClosedResourceError("the memory listener is closed") from None

    async def aclose(self) -> None:
        self._send.close()
        while True:
            try:
                stream = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            await trio.aclose_forcefully(stream)
        self._receive.close()
        await trio.lowlevel.checkpoint()
