"""The leak check every test runs under can fail."""

from __future__ import annotations

import socket
import subprocess
import sys
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


def test_a_child_process_left_behind_is_reported() -> None:
    before = Snapshot.take()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        leaks = Snapshot.take().leaks_since(before)
        assert f"child process {child.pid}" in leaks
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    assert Snapshot.take().leaks_since(before) == []
