"""A socketserver program, migrated to trioserve by changing one import.

    python examples/socketserver_migrated.py [PORT]   # default 7780; then: nc 127.0.0.1 7780

Below is an ordinary ``socketserver`` program: a threading TCP server whose handler
answers each line upper-cased. Its first import was ``import socketserver``; with
``import adapters as socketserver`` the same classes run on trioserve, blocking
``handle()`` methods included (on trio worker threads). Nothing else changed. The next
step, moving the handler to ``async def``, is shown in ``async_handler.py``.
"""

from __future__ import annotations

import contextlib
import sys

import adapters as socketserver  # was: import socketserver


class UpperHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line.upper())


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7780
    with socketserver.ThreadingTCPServer(("127.0.0.1", port), UpperHandler) as server:
        host, bound = server.server_address[:2]
        print(f"listening on tcp://{host}:{bound}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: stop serving, then close
            server.serve_forever()
