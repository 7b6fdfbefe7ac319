"""The handler the CLI serves when no TARGET is given."""

from __future__ import annotations

import trio

from ._datagram import Datagram


async def echo(request: trio.abc.Stream | Datagram) -> None:
    """Send back what arrives: a stream's bytes until the peer's EOF, a datagram as it is.

    One handler serves every kind of endpoint: it is given a stream by ``--tcp`` and
    ``--unix`` endpoints and a :class:`~trioserve.Datagram` by ``--udp`` and
    ``--unix-datagram`` ones. A TARGET that serves both kinds tells them apart the
    same way. A datagram from an unbound Unix socket, which has no address to answer
    to, is received and not answered.
    """
    if isinstance(request, Datagram):
        if request.remote_address:  # an unbound Unix sender cannot be answered
            await request.reply(request.data)
        return
    async for data in request:
        await request.send_all(data)
