"""Run a copy of CPython's Lib/test/test_socketserver.py against ``adapters``.

Usage: ``python tests/cpython_socketserver.py PATH`` (run it in a scratch directory: the
suite creates files in the current one). ``adapters`` is put in
``sys.modules["socketserver"]`` before the copy is imported, so every test runs against
it as written, except ``MiscTestCase.test_all``: it compares ``__all__`` with the objects
whose ``__module__`` is "socketserver", which here reads "defined in the adapters
package". A copy newer than the running Python gets the few ``test.support`` helpers it
needs added (never edited). The last line printed is a JSON summary; the exit status is
0 when every test passed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import tempfile
import unittest
from typing import Any

import adapters

sys.modules["socketserver"] = adapters

socket_helper: Any = importlib.import_module("test.support.socket_helper")


def _create_unix_domain_name() -> str:
    """A short Unix socket path in the current directory (test.support 3.12+)."""
    return tempfile.mktemp(prefix="test_python_", suffix=".sock", dir=os.path.curdir)


def add_shims() -> None:
    """Add the test.support helpers that newer copies of the suite use."""
    if not hasattr(socket_helper, "create_unix_domain_name"):
        socket_helper.create_unix_domain_name = _create_unix_domain_name


def test_all_for_adapters(self: unittest.TestCase) -> None:
    """``test_all``, translated: public objects defined in the adapters package."""
    expected = [
        name
        for name in dir(adapters)
        if not name.startswith("_")
        and str(getattr(getattr(adapters, name), "__module__", "")).split(".")[0] == "adapters"
    ]
    self.assertCountEqual(adapters.__all__, expected)  # noqa: PT009 (the suite's own idiom)


def load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("test_socketserver", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_socketserver"] = module
    spec.loader.exec_module(module)
    module.MiscTestCase.test_all = test_all_for_adapters
    return module


def main() -> int:
    add_shims()
    module = load(sys.argv[1])
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    summary = {
        "run": result.testsRun,
        "failures": len(result.failures),
        "errors": len(result.errors),
        "skipped": len(result.skipped),
        "expected_failures": len(result.expectedFailures),
        "unexpected_successes": len(result.unexpectedSuccesses),
    }
    print(json.dumps(summary), flush=True)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
