"""The client that holds idle connections open, in a process of its own.

Usage::

    python -m benchmarks.hold PORT COUNT [COUNT ...]

Opens connections to 127.0.0.1:PORT until COUNT are open, waiting on each for the
server's one-byte greeting (so the server has accepted it and its handler runs; a few
connections wait for theirs at once), then
prints ``HELD <count>`` and waits for a line on stdin before going on to the next COUNT.
After the last one (or when stdin closes) it closes every connection and exits. A failure
prints ``ERROR <reason>`` and exits with status 1. The soft descriptor limit is raised to
the hard one first: 9,000 connections need more than the usual 1,024.
"""

from __future__ import annotations

import resource
import selectors
import socket
import sys

HOST = "127.0.0.1"
#: Seconds one connect or greeting may take before the run counts as failed.
STEP_TIMEOUT = 20.0
#: Connections waiting for their greeting at once: overlaps round trips, and stays below
#: socketserver's default listen backlog (5), so no SYN is ever dropped and retried.
WINDOW = 4


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write(__doc__ or "")
        return 2
    port = int(argv[0])
    targets = [int(count) for count in argv[1:]]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    opened: list[socket.socket] = []  # every socket, closed at the end whatever happens
    waiting = selectors.DefaultSelector()
    greeted = 0
    try:
        for target in targets:
            while greeted < target:
                while len(opened) < target and len(opened) - greeted < WINDOW:
                    sock = socket.create_connection((HOST, port), timeout=STEP_TIMEOUT)
                    opened.append(sock)
                    waiting.register(sock, selectors.EVENT_READ, sock)
                ready = waiting.select(STEP_TIMEOUT)
                if not ready:
                    raise TimeoutError(f"no greeting within {STEP_TIMEOUT:g} s")
                for key, _ in ready:
                    waiting.unregister(key.data)
                    if key.data.recv(1) != b"+":
                        raise ConnectionError("the server closed before its greeting")
                    greeted += 1
            sys.stdout.write(f"HELD {greeted}\n")
            sys.stdout.flush()
            if not sys.stdin.readline():
                break
    except OSError as exc:
        sys.stdout.write(f"ERROR after {greeted} connections: {exc!r}\n")
        sys.stdout.flush()
        return 1
    finally:
        waiting.close()
        for sock in opened:
            sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
