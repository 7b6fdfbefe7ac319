"""The client that holds idle connections open, in a process of its own.

Usage::

    python -m benchmarks.hold PORT COUNT [COUNT ...]

Opens connections to 127.0.0.1:PORT until COUNT are open, waiting on each for the
server's one-byte greeting (so the server has accepted it and its handler runs), then
prints ``HELD <count>`` and waits for a line on stdin before going on to the next COUNT.
After the last one (or when stdin closes) it closes every connection and exits. A failure
prints ``ERROR <reason>`` and exits with status 1. The soft descriptor limit is raised to
the hard one first: 9,000 connections need more than the usual 1,024.
"""

from __future__ import annotations

import resource
import socket
import sys

HOST = "127.0.0.1"
#: Seconds one connect or greeting may take before the run counts as failed.
STEP_TIMEOUT = 20.0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write(__doc__ or "")
        return 2
    port = int(argv[0])
    targets = [int(count) for count in argv[1:]]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held: list[socket.socket] = []
    try:
        for target in targets:
            while len(held) < target:
                sock = socket.create_connection((HOST, port), timeout=STEP_TIMEOUT)
                held.append(sock)
                if sock.recv(1) != b"+":
                    raise ConnectionError("the server closed before its greeting")
            sys.stdout.write(f"HELD {len(held)}\n")
            sys.stdout.flush()
            if not sys.stdin.readline():
                break
    except OSError as exc:
        sys.stdout.write(f"ERROR after {len(held)} connections: {exc!r}\n")
        sys.stdout.flush()
        return 1
    finally:
        for sock in held:
            sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
