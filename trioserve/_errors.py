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


class NoReplyAddressError(TrioserveError, OSError):
    """A datagram's sender cannot be answered: it has no address to send to.

    Raised by :meth:`trioserve.Datagram.reply` when the datagram came from a Unix
    datagram socket that was never bound to a path. Its ``errno`` is ``EDESTADDRREQ``,
    so a handler that ignores failed replies with ``except OSError`` ignores it too.
    """
