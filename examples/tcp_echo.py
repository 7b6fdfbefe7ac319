"""TCP echo: every connection gets back what it sends.

    python examples/tcp_echo.py [PORT]        # default 7777; then: nc 127.0.0.1 7777

Each connection is a task of its own; Ctrl+C (or SIGTERM) shuts down gracefully.
"""

from __future__ import annotations

import signal
import sys
from functools import partial

import trio

import trioserve


async def echo(conn: trioserve.Connection) -> None:
    """Send back every chunk until the client closes its side."""
    async for data in conn:
        await conn.send_all(data)


async def main(port: int) -> None:
    server = trioserve.Server(echo, idle_timeout=300)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(server.serve_tcp, port, host="127.0.0.1"))
            host, bound = listeners[0].socket.getsockname()[:2]
            print(f"listening on tcp://{host}:{bound}", flush=True)
            async for _ in signals:
                server.shutdown()  # stop accepting; open connections get the grace period
                break


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 7777)
