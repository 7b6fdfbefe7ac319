from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio

from .helpers import exchange

ROOT = Path(__file__).parent.parent
LISTENING = re.compile(rb"listening on (\S+)\n")


@attrs.define(eq=False)
class Cli:
    process: trio.Process
    stderr: bytearray = attrs.field(factory=bytearray)

    async def read_until(self, pattern: re.Pattern[bytes], count: int = 1) -> list[bytes]:
        assert self.process.stderr is not None
        while len(pattern.findall(self.stderr)) < count:
            chunk = await self.process.stderr.receive_some()
            assert chunk, f"the CLI exited early:\n{self.stderr.decode()}"
            self.stderr += chunk
        return pattern.findall(self.stderr)

    async def finish(self) -> int:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.receive_some():
            self.stderr += chunk
        return await self.process.wait()


@asynccontextmanager
async def cli(*args: str, cwd: Path = ROOT) -> AsyncIterator[Cli]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trioserve", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        with trio.fail_after(20):  # a safety net; the tests wait on output, not time
            yield Cli(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        assert process.stderr is not None
        await process.stderr.aclose()


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trioserve", *args],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def tcp_port(endpoint: bytes) -> int:
    return int(endpoint.rsplit(b":", 1)[1])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_echo_over_tcp_and_unix_then_a_signal_shuts_down(
    tmp_path: Path, sig: signal.Signals
) -> None:
    path = tmp_path / "cli.sock"
    async with cli("--tcp", "127.0.0.1:0", "--unix", str(path)) as run:
        endpoints = await run.read_until(LISTENING, count=2)
        assert endpoints[0].startswith(b"tcp://127.0.0.1:")
        assert endpoints[1] == b"unix:" + bytes(path)
        port = tcp_port(endpoints[0])
        assert port != 0
        async with await trio.open_tcp_stream("127.0.0.1", port) as client:
            assert await exchange(client, b"over tcp") == b"over tcp"
        async with await trio.open_unix_socket(str(path)) as client:
            assert await exchange(client, b"over unix") == b"over unix"
        run.process.send_signal(sig)
        assert await run.finish() == 0
    assert not path.exists()
    assert b"shutting down gracefully" in run.stderr
    assert b"Traceback" not in run.stderr


async def test_graceful_shutdown_waits_for_a_handler_then_a_second_signal_stops_at_once(
    tmp_path: Path,
) -> None:
    target = tmp_path / "slow.py"
    target.write_text(
        "import trio\n"
        "async def handler(conn):\n"
        "    await conn.send_all(b'started')\n"
        "    await trio.sleep_forever()\n"
    )
    async with cli(f"{target}:handler", "--tcp", "127.0.0.1:0", "--grace-period", "3600") as run:
        [endpoint] = await run.read_until(LISTENING)
        async with await trio.open_tcp_stream("127.0.0.1", tcp_port(endpoint)) as client:
            assert await client.receive_some() == b"started"
            run.process.send_signal(signal.SIGTERM)
            await run.read_until(re.compile(rb"waiting up to 3600.0 s for 1 handlers"))
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", tcp_port(endpoint)))
            run.process.send_signal(signal.SIGTERM)
            assert await run.finish() == 0
            assert await client.receive_some() == b""
    assert b"stopping at once" in run.stderr


async def test_a_target_given_as_module_and_attribute(tmp_path: Path) -> None:
    (tmp_path / "greeter.py").write_text(
        "class Handlers:\n"
        "    @staticmethod\n"
        "    async def hello(conn):\n"
        "        await conn.send_all(b'hello from a module')\n"
    )
    async with cli("greeter:Handlers.hello", "--tcp", "127.0.0.1:0", cwd=tmp_path) as run:
        [endpoint] = await run.read_until(LISTENING)
        async with await trio.open_tcp_stream("127.0.0.1", tcp_port(endpoint)) as client:
            assert await client.receive_some() == b"hello from a module"
        run.process.send_signal(signal.SIGINT)
        assert await run.finish() == 0


async def test_ipv6_endpoints_are_shown_in_brackets() -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError as exc:
        pytest.skip(f"::1 is not available here: {exc}")
    async with cli("--tcp", "[::1]:0") as run:
        [endpoint] = await run.read_until(LISTENING)
        assert endpoint.startswith(b"tcp://[::1]:")
        run.process.send_signal(signal.SIGINT)
        assert await run.finish() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one endpoint"),
        (["--tcp", "abc"], "port must be a number"),
        (["--tcp", "127.0.0.1:99999"], "port must be between 0 and 65535"),
        (["--tcp", "..:0"], "host must be a host name or address, not '..'"),
        (["--udp", "a" * 300 + ":0"], "host must be a host name or address"),
        (["--tcp", "0", "--max-connections", "0"], "max_connections must be at least 1"),
        (["--tcp", "0", "--idle-timeout", "-1"], "idle_timeout must be more than 0 seconds"),
        (["--tcp", "0", "--grace-period", "soon"], "invalid float value: 'soon'"),
        (["--tcp", "0", "--log-level", "chatty"], "invalid choice"),
        (["no_such_module:handler", "--tcp", "0"], "cannot load 'no_such_module:handler'"),
        (["os:no_such_attribute", "--tcp", "0"], "no attribute 'no_such_attribute'"),
        (["os:sep", "--tcp", "0"], "is not a handler"),
        (["just-a-name", "--tcp", "0"], "TARGET must be MODULE:ATTRIBUTE"),
        (["missing.py:handler", "--tcp", "0"], "no such file 'missing.py'"),
    ],
)
def test_bad_arguments_give_a_usage_error_and_status_2(args: Sequence[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "usage: trioserve" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("source", "attribute", "message"),
    [
        ("raise RuntimeError('broken at import')\n", "handler", "RuntimeError: broken at import"),
        ("raise SystemExit(3)\n", "handler", "': SystemExit: 3"),
        ("def handler(conn):\n    conn.send_all(b'x')\n", "handler", "is not an async function"),
        ("class Handler:\n    async def handle(self): ...\n", "Handler", "is a class, not an"),
    ],
    ids=["raises-on-import", "exits-on-import", "blocking-function", "class"],
)
def test_a_target_file_that_gives_no_handler_is_a_usage_error(
    tmp_path: Path, source: str, attribute: str, message: str
) -> None:
    (tmp_path / "target.py").write_text(source)
    result = run_cli(f"{tmp_path / 'target.py'}:{attribute}", "--tcp", "0")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_address_in_use_is_a_short_error_with_status_1() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli("--tcp", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_python_dash_m_and_the_console_script_agree() -> None:
    script = Path(sys.executable).with_name("trioserve")
    if not script.exists():
        pytest.skip(f"the console script is not installed at {script}")
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0
    assert result.stdout == run_cli("--help").stdout


async def test_a_target_file_imports_the_modules_beside_it(tmp_path: Path) -> None:
    (tmp_path / "shout.py").write_text("def shout(data):\n    return data.upper()\n")
    (tmp_path / "app.py").write_text(
        "from shout import shout\n\n"
        "async def handler(conn):\n"
        "    async for data in conn:\n"
        "        await conn.send_all(shout(data))\n"
    )
    async with cli(f"{tmp_path / 'app.py'}:handler", "--tcp", "127.0.0.1:0") as run:
        [endpoint] = await run.read_until(LISTENING)
        async with await trio.open_tcp_stream("127.0.0.1", tcp_port(endpoint)) as client:
            assert await exchange(client, b"quiet") == b"QUIET"
        run.process.send_signal(signal.SIGINT)
        assert await run.finish() == 0


async def test_a_signal_while_endpoints_start_is_a_clean_graceful_stop() -> None:
    # The second endpoint resolves "localhost" in a worker thread: the signal sent
    # once the first one listens arrives while the second one starts.
    async with cli("--tcp", "127.0.0.1:0", "--tcp", "localhost:0") as run:
        await run.read_until(LISTENING)
        run.process.send_signal(signal.SIGTERM)
        assert await run.finish() == 0
    assert "Traceback" not in run.stderr.decode()
