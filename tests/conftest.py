from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import trio
import trio.testing

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


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """pytest-trio's autojump clock, jumping only after 50 ms of real idleness.

    Many tests here run real loopback sockets under the virtual clock. On a loaded
    machine the kernel can deliver loopback bytes a little after send() returns; a
    clock that jumped the moment every task blocked could then fire a timeout while
    the bytes that would have prevented it are still on their way.
    """
    return trio.testing.MockClock(autojump_threshold=0.05)
