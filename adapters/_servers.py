"""The four concrete servers: TCP, UDP and their Unix socket twins."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

from ._base import BaseServer
from ._fixup import public


@public
class TCPServer(BaseServer):
    """A server on a stream socket (``address_family``, ``socket_type``).

    The constructor creates :attr:`socket` and, if ``bind_and_activate``, calls
    :meth:`server_bind` and :meth:`server_activate`; if either raises, the socket is
    closed before the error propagates. ``self.request`` in handlers is the accepted,
    blocking stdlib socket; :meth:`shutdown_request` shuts its sending side down and
    closes it.

    Example::

        class Upper(adapters.StreamRequestHandler):
            def handle(self):
                self.wfile.write(self.rfile.readline().upper())

        with adapters.TCPServer(("127.0.0.1", 0), Upper) as server:
            server.serve_forever()
    """

    address_family = socket.AF_INET
    socket_type = socket.SOCK_STREAM
    request_queue_size = 5
    allow_reuse_address = False
    allow_reuse_port = False

    def __init__(
        self,
        server_address: Any,
        RequestHandlerClass: Callable[..., Any],
        bind_and_activate: bool = True,
    ) -> None:
        BaseServer.__init__(self, server_address, RequestHandlerClass)
        self.socket = socket.socket(self.address_family, self.socket_type)
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    def server_bind(self) -> None:
        """Set the reuse options asked for, bind, and store the bound address."""
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if (
            self.allow_reuse_port
            and hasattr(socket, "SO_REUSEPORT")
            and self.address_family in (socket.AF_INET, socket.AF_INET6)
        ):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Listen, with a backlog of ``request_queue_size``."""
        self.socket.listen(self.request_queue_size)

    def server_close(self) -> None:
        """Stop a running loop (see :meth:`BaseServer.server_close`), close the socket."""
        super().server_close()
        self.socket.close()

    def fileno(self) -> int:
        """The listening socket's descriptor."""
        return int(self.socket.fileno())

    def get_request(self) -> tuple[Any, Any]:
        """Accept a connection: ``(socket, client_address)``."""
        return self.socket.accept()  # type: ignore[no-any-return]

    def shutdown_request(self, request: Any) -> None:
        """Shut the connection's sending side down (the peer sees EOF), then close it."""
        with contextlib.suppress(OSError):  # ENOTCONN: closing is all that is left
            request.shutdown(socket.SHUT_WR)
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Close the connection."""
        request.close()


@public
class UDPServer(TCPServer):
    """A server on a datagram socket: one request per datagram.

    ``self.request`` in handlers is ``(data, server_socket)``; replies are sent with
    ``server_socket.sendto(reply, self.client_address)``. At most ``max_packet_size``
    bytes of each datagram are read.
    """

    allow_reuse_address = False
    allow_reuse_port = False
    socket_type = socket.SOCK_DGRAM
    max_packet_size = 8192

    def get_request(self) -> tuple[Any, Any]:
        """Read one datagram: ``((data, socket), client_address)``."""
        data, client_addr = self.socket.recvfrom(self.max_packet_size)
        return (data, self.socket), client_addr

    def server_activate(self) -> None:
        """Nothing: datagram sockets do not listen."""

    def shutdown_request(self, request: Any) -> None:
        """Nothing to shut down: the socket is the server's."""
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        """Nothing to close: the socket is the server's."""


@public
class UnixStreamServer(TCPServer):
    """A stream server on a Unix socket; ``server_address`` is its path.

    As in the stdlib, binding fails if the path exists, and the socket file is left
    in place by :meth:`server_close`.
    """

    address_family = socket.AF_UNIX


@public
class UnixDatagramServer(UDPServer):
    """A datagram server on a Unix socket; ``server_address`` is its path."""

    address_family = socket.AF_UNIX
