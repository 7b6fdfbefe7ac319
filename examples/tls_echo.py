"""TLS echo with a throwaway certificate authority made at start (trustme).

    python examples/tls_echo.py [PORT] [CA_FILE]     # default 7443 and ./echo-ca.pem
    openssl s_client -connect 127.0.0.1:7443 -CAfile echo-ca.pem

trioserve hands the handler a plain :class:`trioserve.Connection`; the handler wraps it in a
:class:`trio.SSLStream`, so TLS is a few lines of the handler, not a server option. The CA
certificate is written to CA_FILE for clients to trust; it is valid for this run only.
"""

from __future__ import annotations

import signal
import ssl
import sys
from functools import partial

import trio
import trustme

import trioserve


def make_server_context(ca_file: str) -> ssl.SSLContext:
    """A server context for localhost/127.0.0.1, signed by a CA that is written to ca_file."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(ca_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


async def tls_echo(context: ssl.SSLContext, conn: trioserve.Connection) -> None:
    stream = trio.SSLStream(conn, context, server_side=True)
    try:
        async for data in stream:
            await stream.send_all(data)
        await stream.unwrap()  # answer the client's close_notify
    except trio.BrokenResourceError:
        pass  # a client that hangs up without closing TLS, or fails the handshake


async def main(port: int, ca_file: str) -> None:
    server = trioserve.Server(partial(tls_echo, make_server_context(ca_file)), idle_timeout=60)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(server.serve_tcp, port, host="127.0.0.1"))
            host, bound = listeners[0].socket.getsockname()[:2]
            print(f"listening on tcp://{host}:{bound}", flush=True)
            async for _ in signals:
                server.shutdown()
                break


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7443
    trio.run(main, port, sys.argv[2] if len(sys.argv) > 2 else "echo-ca.pem")
