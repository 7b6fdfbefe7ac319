"""CPython's own socketserver test suite, run against ``adapters`` (3.11 and 3.13 copies).

Each copy is loaded from its interpreter's standard library at test time (never copied
into this repository) and run in a subprocess by ``tests/cpython_socketserver.py`` with
the project's Python, ``adapters`` standing in for ``socketserver``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("cpython_socketserver.py")

VERSIONS = ("3.11", "3.13")
SUITE = Path("test", "test_socketserver.py")


def places_to_look(version: str) -> list[Path]:
    """Where CPython ``version``'s copy of the suite may be, best guess first."""
    places = []
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        places.append(Path(sysconfig.get_paths()["stdlib"]) / SUITE)
    interpreter = shutil.which(f"python{version}")
    if interpreter is not None:
        stdlib = subprocess.run(
            [interpreter, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.strip()
        if stdlib:
            places.append(Path(stdlib) / SUITE)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    places += sorted(pyenv_root.glob(f"versions/{version}.*/lib/python{version}/{SUITE}"))
    return places


def find_copy(version: str) -> Path:
    places = places_to_look(version)
    for place in places:
        if place.exists():
            return place
    looked = ", ".join(str(place) for place in places) or "no interpreter or pyenv copy found"
    pytest.skip(f"CPython {version}'s {SUITE} is not on this machine (looked in: {looked})")


#: Tests in each copy; all of them must pass, as they do against the stdlib.
EXPECTED_TESTS = 27


@pytest.mark.parametrize("version", VERSIONS)
def test_cpython_suite_passes_against_adapters(version: str, tmp_path: Path) -> None:
    if sys.version_info < (3, 11):
        pytest.skip("the 3.11 and 3.13 copies need test.support helpers that 3.10 lacks")
    path = find_copy(version)
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
