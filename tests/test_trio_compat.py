"""A program written for trio.serve_tcp runs unchanged on trioserve.serve_tcp."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from functools import partial
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing

import trioserve


def program_written_for_trio(serve: ModuleType) -> Callable[[], Awaitable[list[bytes]]]:
    """The shape of a typical trio server program and its test, with `serve` for `trio`."""

    async def handler(stream: Any) -> None:
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert stream.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        peer = stream.socket.getpeername()
        async for data in stream:
            await stream.send_all(b"%s from %s" % (data.upper(), peer[0].encode()))
        await stream.send_eof()

    async def main() -> list[bytes]:
        replies = []
        async with trio.open_nursery() as nursery, trio.open_nursery() as handlers:
            listeners = await nursery.start(
                partial(serve.serve_tcp, handler, 0, host="127.0.0.1", handler_nursery=handlers)
            )
            for _ in range(3):
                stream = await trio.testing.open_stream_to_socket_listener(listeners[0])
                async with stream:
                    await stream.send_all(b"hello")
                    replies.append(await stream.receive_some())
                    await stream.send_eof()
                    replies.append(await stream.receive_some())
            nursery.cancel_scope.cancel()
        return replies

    return main


@pytest.mark.parametrize("module", [trio, trioserve], ids=["trio", "trioserve"])
async def test_the_same_program_gives_the_same_result(module: ModuleType) -> None:
    replies = await program_written_for_trio(module)()
    assert replies == [b"HELLO from 127.0.0.1", b""] * 3
