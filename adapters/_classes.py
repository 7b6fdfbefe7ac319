"""The ready-made combinations of a mix-in and a server, as the stdlib defines them."""

from __future__ import annotations

from ._fixup import public
from ._forking import ForkingMixIn
from ._servers import TCPServer, UDPServer, UnixDatagramServer, UnixStreamServer
from ._threading import ThreadingMixIn


@public
class ForkingUDPServer(ForkingMixIn, UDPServer):
    """A UDP server forking a child per datagram."""


@public
class ForkingTCPServer(ForkingMixIn, TCPServer):
    """A TCP server forking a child per connection."""


@public
class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    """A UDP server handling each datagram on a trio worker thread."""


@public
class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    """A TCP server handling each connection on a trio worker thread."""


@public
class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
    """A Unix stream server handling each connection on a trio worker thread."""


@public
class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
    """A Unix datagram server handling each datagram on a trio worker thread."""


@public
class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer):
    """A Unix stream server forking a child per connection."""


@public
class ForkingUnixDatagramServer(ForkingMixIn, UnixDatagramServer):
    """A Unix datagram server forking a child per datagram."""
