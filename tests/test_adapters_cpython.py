"""CPython's own socketserver test suite, run against ``adapters`` (3.11 and 3.13 copies).

Each copy is loaded from its interpreter's standard library at test time (never copied
into this repository) and run in a subprocess by ``tests/cpython_socketserver.py`` with
the project's Python, ``adapters`` standing in for ``socketserver``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("cpython_socketserver.py")

COPIES = {
    "3.11": Path("/root/.pyenv/versions/3.11.7/lib/python3.11/test/test_socketserver.py"),
    "3.13": Path("/root/.pyenv/versions/3.13.0/lib/python3.13/test/test_socketserver.py"),
}

#: Tests in each copy; all of them must pass, as they do against the stdlib.
EXPECTED_TESTS = 27


@pytest.mark.parametrize("version", sorted(COPIES))
def test_cpython_suite_passes_against_adapters(version: str, tmp_path: Path) -> None:
    path = COPIES[version]
    if not path.exists():
        pytest.skip(f"CPython {version}'s test_socketserver.py is not on this machine: {path}")
    completed = subprocess.run(
        [sys.executable, str(RUNNER), str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary == {
        "run": EXPECTED_TESTS,
        "failures": 0,
        "errors": 0,
        "skipped": 0,
        "expected_failures": 0,
        "unexpected_successes": 0,
    }, output
    assert completed.returncode == 0, output
    # The suite printed the server classes it ran: they must be adapters', not the stdlib's.
    assert "CLASS = <class 'adapters.ThreadingUnixDatagramServer'>" in output, output
    assert "CLASS = <class 'socketserver." not in output, output
