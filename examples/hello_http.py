"""A minimal HTTP/1.1 keep-alive responder on trioserve (the benchmarks' handler logic).

Run it with ``python examples/hello_http.py`` and try ``curl http://127.0.0.1:8000/``. It
answers every request head with the same small response and never parses more than it
needs: the point is the serving, not HTTP (use h11 over the connection for real HTTP).
"""

from __future__ import annotations

from functools import partial

import trio

import trioserve

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"


async def hello(conn: trioserve.Connection) -> None:
    """Answer each request head (ended by a blank line) until the client closes."""
    pending = b""
    async for data in conn:
        pending += data
        heads = pending.count(b"\r\n\r\n")
        if heads:
            pending = pending.rpartition(b"\r\n\r\n")[2]
            await conn.send_all(RESPONSE * heads)


if __name__ == "__main__":
    trio.run(partial(trioserve.serve_tcp, hello, 8000, host="127.0.0.1"))
