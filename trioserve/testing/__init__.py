"""Real servers for tests: up before the test talks to them, gone afterwards.

:func:`open_test_server` serves a handler inside a trio test; :func:`serve_in_thread`
serves one (or a ``socketserver``-style server object) from a background thread for tests
of blocking code. Both listen on port 0 or in a fresh temporary directory, close
everything they opened when their block exits (passed, raised or cancelled), and raise
the handlers' errors in the test. ``kind="memory"`` tests a handler over in-memory
streams, without sockets.

Installing trioserve also installs a pytest plugin with the fixtures
``trioserve_server`` (async, for pytest-trio tests) and ``trioserve_thread_server``.
"""

from ._kinds import Address as Address
from ._kinds import Kind as Kind
from ._memory import MemoryListener as MemoryListener
from ._memory import MemoryStream as MemoryStream
from ._open import StartTestServer as StartTestServer
from ._open import TestServer as TestServer
from ._open import open_test_server as open_test_server
from ._thread import StartThreadedTestServer as StartThreadedTestServer
from ._thread import ThreadedTestServer as ThreadedTestServer
from ._thread import serve_in_thread as serve_in_thread

__all__ = [
    "Address",
    "Kind",
    "MemoryListener",
    "MemoryStream",
    "StartTestServer",
    "StartThreadedTestServer",
    "TestServer",
    "ThreadedTestServer",
    "open_test_server",
    "serve_in_thread",
]
