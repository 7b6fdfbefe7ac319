"""The documented ``socketserver`` API, running on trio: ``import adapters as socketserver``.

Every name of the standard library's ``socketserver.__all__`` (Python 3.13's list) is
here, with the documented behaviour: existing servers, handlers and subclasses work
unchanged. Underneath, each request loop is a trio event loop; blocking handlers run on
trio worker threads with ``ThreadingMixIn``, in forked children with ``ForkingMixIn``,
and in the serving thread on a plain server, as in the stdlib; a handler whose
``handle`` is ``async def`` runs as a trio task. Beyond the stdlib, ``shutdown()`` works
from a handler, a shutdown unblocks handlers stuck in ``recv``, and
``await nursery.start(server.serve)`` runs a server inside a trio program.

Example::

    import adapters as socketserver

    class Echo(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(self.rfile.readline())

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) as server:
        server.serve_forever()
"""

from ._base import BaseServer as BaseServer
from ._classes import ForkingTCPServer as ForkingTCPServer
from ._classes import ForkingUDPServer as ForkingUDPServer
from ._classes import ForkingUnixDatagramServer as ForkingUnixDatagramServer
from ._classes import ForkingUnixStreamServer as ForkingUnixStreamServer
from ._classes import ThreadingTCPServer as ThreadingTCPServer
from ._classes import ThreadingUDPServer as ThreadingUDPServer
from ._classes import ThreadingUnixDatagramServer as ThreadingUnixDatagramServer
from ._classes import ThreadingUnixStreamServer as ThreadingUnixStreamServer
from ._forking import ForkingMixIn as ForkingMixIn
from ._handlers import BaseRequestHandler as BaseRequestHandler
from ._handlers import DatagramRequestHandler as DatagramRequestHandler
from ._handlers import StreamRequestHandler as StreamRequestHandler
from ._servers import TCPServer as TCPServer
from ._servers import UDPServer as UDPServer
from ._servers import UnixDatagramServer as UnixDatagramServer
from ._servers import UnixStreamServer as UnixStreamServer
from ._threading import ThreadingMixIn as ThreadingMixIn

__all__ = [
    "BaseRequestHandler",
    "BaseServer",
    "DatagramRequestHandler",
    "ForkingMixIn",
    "ForkingTCPServer",
    "ForkingUDPServer",
    "ForkingUnixDatagramServer",
    "ForkingUnixStreamServer",
    "StreamRequestHandler",
    "TCPServer",
    "ThreadingMixIn",
    "ThreadingTCPServer",
    "ThreadingUDPServer",
    "ThreadingUnixDatagramServer",
    "ThreadingUnixStreamServer",
    "UDPServer",
    "UnixDatagramServer",
    "UnixStreamServer",
]
