"""UDP echo: every datagram is sent back to whoever sent it.

    python examples/udp_echo.py [PORT]        # default 7777; then: nc -u 127.0.0.1 7777

Each datagram runs the handler in a task of its own; ``max_connections`` caps how many
run at once (at the cap the server stops reading and the kernel buffers the rest).
"""

from __future__ import annotations

import signal
import sys
from functools import partial

import trio

import trioserve


async def echo(datagram: trioserve.Datagram) -> None:
    await datagram.reply(datagram.data)


async def main(port: int) -> None:
    server = trioserve.Server(echo, max_connections=100)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            sockets = await nursery.start(partial(server.serve_udp, port, host="127.0.0.1"))
            host, bound = sockets[0].getsockname()[:2]
            print(f"listening on udp://{host}:{bound}", flush=True)
            async for _ in signals:
                server.shutdown()
                break


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 7777)
