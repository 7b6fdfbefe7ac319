"""Opening sockets to serve on: TCP or UDP on every address of a host, and Unix stream paths."""

from __future__ import annotations

import errno
import socket as stdlib_socket

import trio

from ._unix import SocketFile, bind_unix_socket

#: What ``backlog=None`` asks for; the kernel caps it (``net.core.somaxconn`` on Linux).
DEFAULT_BACKLOG = 0xFFFF


def check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {port!r}")
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port must be between 0 and 65535, not {port!r}")
    return port


def check_backlog(backlog: object) -> int:
    if backlog is None:
        return DEFAULT_BACKLOG
    if isinstance(backlog, bool) or not isinstance(backlog, int):
        raise TypeError(f"backlog must be an int or None, not {backlog!r}")
    if backlog < 0:
        raise ValueError(f"backlog must be 0 or more, not {backlog!r}")
    return min(backlog, DEFAULT_BACKLOG)


def check_host(host: object) -> str | bytes | None:
    if host is not None and not isinstance(host, (str, bytes)):
        raise TypeError(f"host must be a str, bytes or None, not {host!r}")
    encoded: bytes | None
    if isinstance(host, str):
        try:
            encoded = host.encode("idna")  # what getaddrinfo() does with it, failing late
        except UnicodeError as exc:
            raise ValueError(f"host must be a host name or address, not {host!r}: {exc}") from None
    else:
        encoded = host
    if encoded is not None and b"\0" in encoded:  # the C resolver would stop reading there
        raise ValueError(f"host must not contain a NUL character, not {host!r}")
    return host


async def open_tcp_sockets(
    port: int, host: str | bytes | None, backlog: int
) -> list[stdlib_socket.socket]:
    """Listen on ``port`` at every address ``host`` resolves to (every interface for None).

    When ``port`` is 0 and there are several addresses, the others get the port the
    first one was given where it is free there too (so one number usually reaches the
    server over IPv4 and IPv6); where it is not, the kernel picks another.

    Returns:
        Non-blocking listening sockets; the caller closes them.

    Raises:
        OSError: Resolving or binding failed; no socket is left open.
    """
    return await _open_inet_sockets(port, host, stdlib_socket.SOCK_STREAM, backlog)


async def open_udp_sockets(port: int, host: str | bytes | None) -> list[stdlib_socket.socket]:
    """Bind UDP sockets on ``port`` at every address of ``host``, as :func:`open_tcp_sockets`.

    Unlike TCP, no ``SO_REUSEADDR``: on a UDP socket it would let a second server bind
    the same port and quietly take datagrams meant for this one.
    """
    return await _open_inet_sockets(port, host, stdlib_socket.SOCK_DGRAM, None)


async def _open_inet_sockets(
    port: int, host: str | bytes | None, sock_type: int, backlog: int | None
) -> list[stdlib_socket.socket]:
    addresses = await trio.socket.getaddrinfo(
        host, port, type=sock_type, flags=stdlib_socket.AI_PASSIVE
    )
    stream = sock_type == stdlib_socket.SOCK_STREAM
    sockets: list[stdlib_socket.socket] = []
    unsupported: OSError | None = None
    try:
        for family, type_, proto, _, sockaddr in addresses:
            try:
                sock = stdlib_socket.socket(family, type_, proto)
            except OSError as exc:
                if exc.errno == errno.EAFNOSUPPORT:
                    unsupported = exc  # e.g. IPv6 turned off on this machine
                    continue
                raise
            sockets.append(sock)
            sock.setblocking(False)
            if stream:
                sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
            if family == stdlib_socket.AF_INET6:
                sock.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                shared = sockets[0].getsockname()[1]
                try:
                    sock.bind((sockaddr[0], shared, *sockaddr[2:]))
                except OSError:
                    sock.bind(sockaddr)
            else:
                sock.bind(sockaddr)
            if backlog is not None:
                sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        what = "listen" if stream else "bind"
        raise unsupported or OSError(f"no address to {what} on for host {host!r}")
    return sockets


def open_unix_socket(
    path: str | bytes, backlog: int, mode: int | None
) -> tuple[stdlib_socket.socket, SocketFile | None]:
    """Listen on a Unix stream socket at ``path`` (see :func:`bind_unix_socket`)."""
    return bind_unix_socket(path, stdlib_socket.SOCK_STREAM, mode=mode, backlog=backlog)
