"""What a test server can serve, and how it finds its address."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Literal

from .._handlers import host_port
from .._unix import check_unix_path

#: The kinds of endpoint a test server can open.
Kind = Literal["tcp", "unix", "udp", "unix-datagram", "memory"]

KINDS: tuple[Kind, ...] = ("tcp", "unix", "udp", "unix-datagram", "memory")
INET_KINDS = frozenset({"tcp", "udp"})
UNIX_KINDS = frozenset({"unix", "unix-datagram"})
STREAM_KINDS = frozenset({"tcp", "unix", "memory"})
DATAGRAM_KINDS = frozenset({"udp", "unix-datagram"})

#: Where a test server listens: ``(host, port)``, a Unix path, or ``None`` for "memory".
Address = tuple[str, int] | str | None

#: The grace period a test server gives its handlers at exit unless told otherwise:
#: enough for a handler to finish the exchange in flight, short enough not to slow a suite.
TEST_GRACE_PERIOD = 1.0

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def check_kind(kind: object, *, allowed: tuple[str, ...] = KINDS) -> Kind:
    if kind not in allowed:
        choices = ", ".join(repr(k) for k in allowed)
        raise ValueError(f"kind must be one of {choices}, not {kind!r}")
    return kind  # type: ignore[return-value]  # checked against the literal values above


def check_host_and_path(kind: Kind, host: str | None, path: object) -> None:
    if host is not None and kind not in INET_KINDS:
        raise ValueError(f"host applies to the tcp and udp kinds, not to kind={kind!r}")
    if path is not None and kind not in UNIX_KINDS:
        raise ValueError(f"path applies to the unix and unix-datagram kinds, not to kind={kind!r}")
    if path is not None:
        check_unix_path(path)


def inet_address(sockname: Any) -> tuple[str, int]:
    """``(host, port)`` a client can connect to, from a bound socket's name."""
    host, port = sockname[0], sockname[1]
    return _WILDCARDS.get(host, host), port


def describe(kind: Kind, address: Address) -> str:
    """``tcp://127.0.0.1:8080``, ``unix:/path``, ``memory``: where a server is, for messages."""
    if isinstance(address, tuple):
        return f"{kind}://{host_port(*address)}"
    if address is None:
        return kind
    return f"{kind}:{address}"


def make_temp_dir() -> str:
    """A fresh private directory for Unix socket files (removed by :func:`remove_dir`)."""
    return tempfile.mkdtemp(prefix="trioserve-test-")


def remove_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def unix_path(temp_dir: str, name: str) -> str:
    return os.path.join(temp_dir, name)


class AddressParts:
    """``host``, ``port`` and ``path`` of a test server's ``address``, for its ``kind``."""

    __slots__ = ()
    kind: Kind
    address: Address

    @property
    def host(self) -> str:
        """The host of a tcp or udp server (a loopback address unless ``host`` was given)."""
        if not isinstance(self.address, tuple):
            raise AttributeError(f"a {self.kind} test server has no host")
        return self.address[0]

    @property
    def port(self) -> int:
        """The port of a tcp or udp server."""
        if not isinstance(self.address, tuple):
            raise AttributeError(f"a {self.kind} test server has no port")
        return self.address[1]

    @property
    def path(self) -> str:
        """The socket path of a unix or unix-datagram server."""
        if not isinstance(self.address, str):
            raise AttributeError(f"a {self.kind} test server has no path")
        return self.address
