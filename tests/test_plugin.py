"""The pytest plugin: registered by entry point, fixtures that start and stop servers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from trioserve.testing import StartTestServer, StartThreadedTestServer

from .helpers import echo, exchange


def test_the_plugin_is_loaded_by_its_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("trioserve")
    assert plugin is not None
    assert plugin.__name__ == "trioserve.testing._plugin"
    assert pytestconfig.pluginmanager.has_plugin("trio")  # pytest-trio alongside


async def test_the_async_fixture_starts_servers_of_any_kind(
    trioserve_server: StartTestServer,
) -> None:
    tcp = await trioserve_server(echo)
    memory = await trioserve_server(echo, kind="memory", max_connections=1)
    for test_server in (tcp, memory):
        client = await test_server.connect()
        assert await exchange(client, b"fixture") == b"fixture"
    assert memory.server.options.max_connections == 1


def test_the_thread_fixture_serves_blocking_clients(
    trioserve_thread_server: StartThreadedTestServer,
) -> None:
    test_server = trioserve_thread_server(echo, kind="unix")
    with test_server.connect() as sock:
        sock.sendall(b"blocking")
        assert sock.recv(100) == b"blocking"


SESSION = """
import trio
import trioserve

async def broken(conn: trioserve.Connection) -> None:
    await conn.receive_some()
    raise ZeroDivisionError("broken handler")

async def test_passes(trioserve_server) -> None:
    test_server = await trioserve_server(broken, kind="memory")
    assert test_server.kind == "memory"

async def test_breaks_the_handler(trioserve_server) -> None:
    test_server = await trioserve_server(broken)
    client = await test_server.connect()
    await client.send_all(b"x")
    assert await client.receive_some() == b""

def test_breaks_the_handler_in_a_thread(trioserve_thread_server) -> None:
    test_server = trioserve_thread_server(broken)
    with test_server.connect() as sock:
        sock.sendall(b"x")
        assert sock.recv(10) == b""
"""


def test_a_broken_handler_fails_the_test_that_used_the_fixture(tmp_path: Path) -> None:
    (tmp_path / "test_session.py").write_text(textwrap.dedent(SESSION))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "trio_mode=true"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The async fixture stops its servers inside the test's run (a failure); the thread
    # fixture in pytest's teardown (an error). Both tests' handlers were the cause.
    summary = result.stdout.splitlines()[-1]
    assert "1 failed, 2 passed, 1 error" in summary, result.stdout
    assert "FAILED test_session.py::test_breaks_the_handler - " in result.stdout
    assert "ERROR test_session.py::test_breaks_the_handler_in_a_thread - " in result.stdout
    assert "ZeroDivisionError: broken handler" in result.stdout
    assert result.returncode == 1


async def test_a_fixture_server_can_be_told_not_to_raise(
    trioserve_server: StartTestServer,
) -> None:
    async def broken(conn: trio.abc.Stream) -> None:
        raise ZeroDivisionError

    test_server = await trioserve_server(broken, kind="memory", raise_handler_errors=False)
    client = await test_server.connect()
    assert await client.receive_some() == b""
    assert [type(error) for error in test_server.handler_errors] == [ZeroDivisionError]
