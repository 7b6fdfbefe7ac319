"""A datagram client for tests: a plain non-blocking socket driven from trio."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
import trio


def ipv6_unavailable() -> str | None:
    """Why UDP over ``::1`` cannot be tested here, or ``None`` if it can."""
    if not socket.has_ipv6:
        return "this Python has no IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        return f"::1 is not available here: {exc}"
    return None


@attrs.define(eq=False)
class DatagramClient:
    """Sends to one server address and reads whatever comes back.

    :meth:`receive` does not yield while datagrams are waiting, so a test can drain
    replies as fast as a server sends them and keep the kernel's buffer from filling.
    """

    sock: socket.socket
    server: Any
    path: Path | None = None

    @classmethod
    def udp(cls, server_socket: trio.socket.SocketType) -> DatagramClient:
        family = server_socket.family
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((host, 0))
        return cls(sock, (host, server_socket.getsockname()[1]))

    @classmethod
    def unix(cls, server_path: str | os.PathLike[str], path: Path | None) -> DatagramClient:
        """A Unix datagram client, bound to ``path`` (or unbound, for ``None``)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        if path is not None:
            sock.bind(str(path))
        return cls(sock, os.fspath(server_path), path)

    @property
    def address(self) -> Any:
        return self.sock.getsockname()

    async def send(self, data: bytes) -> None:
        while True:
            try:
                self.sock.sendto(data, self.server)
                break
            except BlockingIOError:
                # A full Unix datagram peer: the kernel gives no wake-up, try again soon.
                await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint()

    async def receive(self) -> tuple[bytes, Any]:
        while True:
            try:
                return self.sock.recvfrom(70000)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.sock)

    async def exchange(self, data: bytes) -> bytes:
        await self.send(data)
        reply, _ = await self.receive()
        return reply

    def pending(self) -> bool:
        """Whether a datagram is waiting to be read now."""
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def __enter__(self) -> DatagramClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
