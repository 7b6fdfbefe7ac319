"""trioserve: structured-concurrency socket servers on trio.

Every accepted connection (or datagram) runs as a task in a nursery; cancel scopes
carry timeouts and shutdown. Start with :func:`serve_tcp` or :class:`Server`.
"""

from ._connection import Connection as Connection
from ._datagram import Datagram as Datagram
from ._errors import AddressInUseError as AddressInUseError
from ._errors import NoReplyAddressError as NoReplyAddressError
from ._errors import NotASocketError as NotASocketError
from ._errors import TrioserveError as TrioserveError
from ._options import ServerOptions as ServerOptions
from ._serve import serve_listeners as serve_listeners
from ._serve import serve_tcp as serve_tcp
from ._serve import serve_udp as serve_udp
from ._serve import serve_unix as serve_unix
from ._serve import serve_unix_datagram as serve_unix_datagram
from ._server import Server as Server
from ._server import current_server as current_server
from ._stats import ServerStats as ServerStats

__version__ = "0.1.0"

__all__ = [
    "AddressInUseError",
    "Connection",
    "Datagram",
    "NoReplyAddressError",
    "NotASocketError",
    "Server",
    "ServerOptions",
    "ServerStats",
    "TrioserveError",
    "current_server",
    "serve_listeners",
    "serve_tcp",
    "serve_udp",
    "serve_unix",
    "serve_unix_datagram",
]
