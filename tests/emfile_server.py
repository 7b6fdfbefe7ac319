"""An echo server that runs out of descriptors: run by test_emfile.py in a subprocess.

It lowers its own RLIMIT_NOFILE so that only SPARE more descriptors can be opened,
then prints its port and serves until killed.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
from functools import partial

import trio

import trioserve


async def echo(conn: trioserve.Connection) -> None:
    async for data in conn:
        await conn.send_all(data)


async def main(spare: int) -> None:
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trioserve.serve_tcp, echo, 0, host="127.0.0.1"))
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1 + spare, hard))
        print(listener.socket.getsockname()[1], flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    trio.run(main, int(sys.argv[1]))
