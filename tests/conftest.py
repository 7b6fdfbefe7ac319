from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from .leakcheck import Snapshot


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail any test that leaves a descriptor, a thread or a child process behind."""
    before = Snapshot.take()
    yield
    gc.collect()
    leaks = Snapshot.take().leaks_since(before)
    if leaks:
        pytest.fail("the test left behind:\n  " + "\n  ".join(leaks), pytrace=False)
