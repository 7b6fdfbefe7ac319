"""The leak check every test runs under can fail."""

from __future__ import annotations

import socket
import threading

from .leakcheck import Snapshot


def test_a_socket_left_open_is_reported() -> None:
    before = Snapshot.take()
    sock = socket.socket()
    try:
        [leak] = Snapshot.take().leaks_since(before)
        assert leak.startswith(f"descriptor {sock.fileno()} -> socket:")
    finally:
        sock.close()
    assert Snapshot.take().leaks_since(before) == []


def test_a_thread_left_running_is_reported() -> None:
    before = Snapshot.take()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="left-behind")
    thread.start()
    try:
        assert Snapshot.take().leaks_since(before) == ["thread 'left-behind'"]
    finally:
        stop.set()
        thread.join()
    assert Snapshot.take().leaks_since(before) == []
