"""The handler the CLI serves when no TARGET is given."""

from __future__ import annotations

import trio


async def echo(stream: trio.abc.Stream) -> None:
    """Send back every byte received until the peer closes its side."""
    async for data in stream:
        await stream.send_all(data)
