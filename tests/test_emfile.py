from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import trio

from .helpers import exchange

SERVER = Path(__file__).with_name("emfile_server.py")
CLIENTS = 20


async def read_until(stream: trio.abc.ReceiveStream, needle: bytes, seen: bytearray) -> None:
    while needle not in seen:
        chunk = await stream.receive_some()
        assert chunk, f"the server exited before saying {needle!r}: {bytes(seen)!r}"
        seen += chunk


async def test_running_out_of_descriptors_backs_off_and_serves_everyone_afterwards() -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, str(SERVER), "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = bytearray()
    try:
        with trio.fail_after(20):  # a safety net only: nothing here waits on time
            stdout = bytearray()
            await read_until(process.stdout, b"\n", stdout)
            port = int(stdout)
            clients = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(CLIENTS)]
            for client in clients:
                await client.send_all(b"ping")
            await read_until(process.stderr, b"EMFILE", stderr)
            # The server is out of descriptors with connections still queued. Each one
            # closed frees a descriptor; every queued connection must still be served.
            for client in clients:
                assert await client.receive_some(4) == b"ping"
                await client.aclose()
            async with await trio.open_tcp_stream("127.0.0.1", port) as late:
                assert await exchange(late, b"after") == b"after"
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
        while chunk := await process.stderr.receive_some():
            stderr += chunk
        await process.stdout.aclose()
        await process.stderr.aclose()
    warnings = stderr.count(b"accept failed with EMFILE")
    assert 1 <= warnings < 100, stderr.decode()  # it backed off instead of spinning
