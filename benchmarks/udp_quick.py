"""Datagrams/s: trioserve.serve_udp against a plain trio recvfrom + start_soon loop.

Both servers run the same echo in a task per datagram, in this process, one after the
other (A B A B ...). The client is a separate process (this file with ``client``) that
keeps a window of datagrams in flight over loopback and counts the replies. Besides
replies per second of wall-clock time, each round reports replies per CPU-second of
this process (the server's), which holds steadier on a machine shared with other work.

    python benchmarks/udp_quick.py [--rounds 3] [--seconds 3] [--window 32] [--size 64]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial

import trio

import trioserve

Server = Callable[[trio.TaskStatus[int]], Awaitable[None]]


async def plain_trio(task_status: trio.TaskStatus[int]) -> None:
    """The baseline: what a trio program writes today without trioserve."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await sock.bind(("127.0.0.1", 0))

        async def handle(data: bytes, address: tuple[str, int]) -> None:
            await sock.sendto(data, address)

        async with trio.open_nursery() as nursery:
            task_status.started(sock.getsockname()[1])
            while True:
                data, address = await sock.recvfrom(65536)
                nursery.start_soon(handle, data, address)


async def echo(datagram: trioserve.Datagram) -> None:
    await datagram.reply(datagram.data)


async def with_trioserve(task_status: trio.TaskStatus[int]) -> None:
    async with trio.open_nursery() as nursery:
        sockets = await nursery.start(partial(trioserve.serve_udp, echo, 0, host="127.0.0.1"))
        task_status.started(sockets[0].getsockname()[1])


SERVERS: dict[str, Server] = {"plain trio": plain_trio, "serve_udp": with_trioserve}


async def one_round(server: Server, args: argparse.Namespace) -> tuple[float, float]:
    """Return replies per second and replies per CPU-second of the server."""
    cpu_start = time.process_time()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server)
        command = [
            sys.executable,
            __file__,
            "client",
            str(port),
            str(args.seconds),
            str(args.window),
            str(args.size),
        ]
        result = await trio.run_process(command, capture_stdout=True)
        nursery.cancel_scope.cancel()
    cpu = time.process_time() - cpu_start
    rate, lost, total = result.stdout.decode().split()
    if int(lost):
        print(f"  (the client refilled its window after losing {lost} datagrams)")
    return float(rate), int(total) / cpu


def client(port: int, seconds: float, window: int, size: int) -> None:
    """Keep ``window`` datagrams in flight; print replies/s over ``seconds`` and losses."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.5)
    payload = b"x" * size
    lost = 0

    def exchange(count: int) -> None:
        nonlocal lost
        for _ in range(count):
            try:
                sock.recv(65536)
            except TimeoutError:  # the kernel dropped some: refill the window
                lost += window
                for _ in range(window):
                    sock.send(payload)
            sock.send(payload)

    for _ in range(window):
        sock.send(payload)
    warmup = 0
    warm_until = time.perf_counter() + 0.5
    while time.perf_counter() < warm_until:
        exchange(256)
        warmup += 256
    replies = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        exchange(256)
        replies += 256
    rate = replies / (time.perf_counter() - start)
    print(f"{rate:.0f} {lost} {warmup + replies + window}")


def main() -> None:
    if sys.argv[1:2] == ["client"]:
        port, seconds, window, size = sys.argv[2:6]
        client(int(port), float(seconds), int(window), int(size))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    per_cpu: dict[str, list[float]] = {name: [] for name in SERVERS}
    for round_number in range(args.rounds):
        for name, server in SERVERS.items():
            rate, cpu_rate = trio.run(partial(one_round, server, args))
            rates[name].append(rate)
            per_cpu[name].append(cpu_rate)
            print(
                f"round {round_number + 1}: {name:>10}: {rate:9.0f} datagrams/s"
                f" {cpu_rate:9.0f} per CPU-second",
                flush=True,
            )
    for label, results in (("datagrams/s", rates), ("per CPU-second", per_cpu)):
        medians = {name: statistics.median(values) for name, values in results.items()}
        ratio = medians["serve_udp"] / medians["plain trio"]
        print(
            f"median {label}: plain trio {medians['plain trio']:.0f},"
            f" serve_udp {medians['serve_udp']:.0f}: {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
