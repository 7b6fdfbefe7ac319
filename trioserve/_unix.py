"""The life of a Unix socket file: replace a stale one, refuse a live one, remove our own."""

from __future__ import annotations

import contextlib
import errno
import os
import socket as stdlib_socket
import stat
from typing import Union

import attrs

from ._errors import AddressInUseError, NotASocketError

UnixPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def check_unix_path(path: object) -> str | bytes:
    """Return ``path`` as ``str`` or ``bytes``, or raise TypeError/ValueError naming it."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str, bytes or os.PathLike, not {path!r}")
    fspath = os.fspath(path)
    if not fspath:
        raise ValueError("path must not be empty")
    if not _is_abstract(fspath) and ("\0" if isinstance(fspath, str) else b"\0") in fspath:
        raise ValueError(f"path must not contain a NUL character, not {fspath!r}")
    return fspath


def check_mode(mode: object) -> int | None:
    if mode is None:
        return None
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"mode must be an int (such as 0o660) or None, not {mode!r}")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode must be a permission mode between 0 and 0o7777, not {oct(mode)}")
    return mode


def _is_abstract(path: str | bytes) -> bool:
    return path[:1] in ("\0", b"\0")


def _someone_answers(path: str | bytes, sock_type: int) -> bool:
    """Whether a process is serving the socket file at ``path`` now."""
    with stdlib_socket.socket(stdlib_socket.AF_UNIX, sock_type) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except BlockingIOError:
            return True  # the listener's backlog is full: it is alive, just busy
        except OSError as exc:
            if exc.errno == errno.EPROTOTYPE:
                return True  # a live socket of the other type (stream vs datagram)
            raise
        return True


def clear_stale_socket_file(path: str | bytes, sock_type: int) -> None:
    """Make ``path`` free to bind, deleting it only when it is a socket nobody serves.

    Raises:
        AddressInUseError: A process answers on ``path``.
        NotASocketError: ``path`` exists and is not a socket; it is left alone.
        OSError: The path cannot be examined (permissions, a missing directory, ...).
    """
    if _is_abstract(path):
        return
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise NotASocketError(
            errno.EEXIST,
            f"{os.fsdecode(path)!r} exists and is not a socket; refusing to replace it",
        )
    if _someone_answers(path, sock_type):
        raise AddressInUseError(
            errno.EADDRINUSE, f"{os.fsdecode(path)!r} is in use by a running server"
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@attrs.frozen
class SocketFile:
    """The socket file a server bound, identified by device and inode.

    :meth:`remove` deletes the path only if it is still this file, so a server never
    removes a socket that another process has since bound at the same path.
    """

    path: str | bytes
    device: int
    inode: int

    @classmethod
    def of(cls, path: str | bytes) -> SocketFile | None:
        """Record the file a socket was just bound to (``None`` for abstract names).

        A relative path is recorded as absolute, so the file is found again after the
        program changes its working directory.
        """
        if _is_abstract(path):
            return None
        info = os.lstat(path)
        return cls(os.path.abspath(path), info.st_dev, info.st_ino)

    def remove(self) -> None:
        """Delete the socket file if it is still ours; any error is ignored."""
        try:
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == (self.device, self.inode):
                os.unlink(self.path)
        except OSError:
            pass


def bind_unix_socket(
    path: str | bytes, sock_type: int, *, mode: int | None, backlog: int | None = None
) -> tuple[stdlib_socket.socket, SocketFile | None]:
    """Bind a new non-blocking Unix socket at ``path`` with the lifecycle rules above.

    ``mode`` is applied before the socket listens (when ``backlog`` is given), so
    nobody connects through looser permissions. The caller owns the returned socket
    and, when done with it, closes it and calls ``SocketFile.remove()``. On any error
    nothing is left open or on disk.
    """
    clear_stale_socket_file(path, sock_type)
    sock = stdlib_socket.socket(stdlib_socket.AF_UNIX, sock_type)
    socket_file: SocketFile | None = None
    try:
        sock.setblocking(False)
        sock.bind(path)
        socket_file = SocketFile.of(path)
        if mode is not None and socket_file is not None:
            os.chmod(path, mode)
        if backlog is not None:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        if socket_file is not None:
            socket_file.remove()
        raise
    return sock, socket_file
