"""An HTTP/1.1 server on h11, with keep-alive and a graceful shutdown.

    python examples/http_server.py [PORT]     # default 8080; then: curl -v localhost:8080/hi

h11 parses and produces the bytes; the handler only moves them between it and the
connection. A connection serves requests one after another (keep-alive) until the client
closes it. On Ctrl+C the server stops accepting; a request in progress gets its response
(with ``Connection: close``), and idle keep-alive connections are closed at once.
"""

from __future__ import annotations

import signal
import sys
from functools import partial

import h11
import trio

import trioserve

MAX_BODY = 1 << 20


async def receive_unless_shut_down(
    conn: trioserve.Connection, server: trioserve.Server
) -> bytes | None:
    """Bytes from the client; None if the server starts shutting down first."""
    received: bytes | None = None
    async with trio.open_nursery() as nursery:

        async def hang_up_on_shutdown() -> None:
            await server.wait_for_shutdown()
            nursery.cancel_scope.cancel()  # a cancelled receive loses no bytes

        nursery.start_soon(hang_up_on_shutdown)
        received = await conn.receive_some()
        nursery.cancel_scope.cancel()
    return received


async def next_event(
    conn: trioserve.Connection, http: h11.Connection, server: trioserve.Server | None = None
) -> h11.Event | None:
    """The next HTTP event from the client; None when it closed the connection.

    With ``server``, waiting for the client also ends (with None) when the server starts
    shutting down. h11's parse errors (RemoteProtocolError) come out as they are.
    """
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            if server is None:
                data: bytes | None = await conn.receive_some()
            else:
                data = await receive_unless_shut_down(conn, server)
            if data is None:
                return None
            http.receive_data(data)
            continue
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        assert isinstance(event, h11.Event)
        return event


async def next_request(
    conn: trioserve.Connection, http: h11.Connection, server: trioserve.Server
) -> h11.Request | None:
    """Wait for the next request; None if the client leaves or the server shuts down first."""
    event = await next_event(conn, http, server)
    return event if isinstance(event, h11.Request) else None


def respond(request: h11.Request, body: bytes) -> tuple[int, bytes]:
    """The status and content for a request; a HEAD gets the GET's (``send`` drops the body)."""
    if request.method not in (b"GET", b"HEAD", b"POST"):
        return 405, b"method not allowed\n"
    if request.method == b"POST":
        return 200, body
    return 200, b"hello from " + request.target + b"\n"


async def send(
    conn: trioserve.Connection,
    http: h11.Connection,
    status: int,
    content: bytes,
    *,
    head: bool = False,
) -> None:
    """Send a response; to a HEAD request (``head``), the same headers and no body."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(content))]
    if trioserve.current_server().shutting_down:
        headers.append((b"connection", b"close"))
    for event in (
        h11.Response(status_code=status, headers=headers),
        h11.Data(data=b"" if head else content),
        h11.EndOfMessage(),
    ):
        await conn.send_all(http.send(event) or b"")


async def http_handler(conn: trioserve.Connection) -> None:
    server = trioserve.current_server()
    http = h11.Connection(h11.SERVER)
    head = False  # whether the request being answered is a HEAD (h11 refuses it a body)
    try:
        while (request := await next_request(conn, http, server)) is not None:
            head = request.method == b"HEAD"
            body = b""
            while isinstance(event := await next_event(conn, http), h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    await send(conn, http, 413, b"too large\n", head=head)
                    return
            await send(conn, http, *respond(request, body), head=head)
            if http.our_state is h11.MUST_CLOSE or http.their_state is h11.MUST_CLOSE:
                return
            http.start_next_cycle()
            head = False
    except h11.RemoteProtocolError as exc:
        if http.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await send(conn, http, exc.error_status_hint, b"bad request\n", head=head)


async def main(port: int) -> None:
    server = trioserve.Server(http_handler, idle_timeout=30, grace_period=5)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(server.serve_tcp, port, host="127.0.0.1"))
            host, bound = listeners[0].socket.getsockname()[:2]
            print(f"listening on tcp://{host}:{bound}", flush=True)
            async for _ in signals:
                server.shutdown()
                break


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 8080)
