"""The exceptions trioserve raises itself."""

from __future__ import annotations


class TrioserveError(Exception):
    """Base class of every error trioserve raises on its own account.

    Errors from the operating system keep their own types (:class:`OSError` and its
    subclasses); argument errors are :class:`TypeError` or :class:`ValueError`.
    """


class AddressInUseError(TrioserveError, OSError):
    """A Unix socket path is already served by a live process.

    Raised by :func:`trioserve.serve_unix` (and the datagram twin) when something
    answers on the path: the file is left alone.
    """


class NotASocketError(TrioserveError, OSError):
    """A path given for a Unix socket exists and is not a socket.

    The file is never deleted: the server refuses to start instead.
    """
