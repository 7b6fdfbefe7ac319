"""Run the comparisons of issue 5, contenders in alternation, and write the results.

Every contender is a server process (``python -m benchmarks.servers``) started for one
measurement on 127.0.0.1, port 0, and killed and reaped afterwards whatever happens. Load
comes from ``wrk`` (HTTP/1.1), ``build/udpload`` (UDP, compiled here from udpload.c) and
``python -m benchmarks.hold`` (idle connections); all of it goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from .report import (
    Comparison,
    Series,
    Target,
    comparison_markdown,
    format_value,
    parse_key_values,
    parse_wrk,
    replace_marked,
    results_markdown,
    summarize_collapsed,
)

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"
RAW = RESULTS / "raw"
PROFILES = RESULTS / "profiles"
UDPLOAD_SOURCE = BENCHMARKS / "udpload.c"
UDPLOAD = BENCHMARKS / "build" / "udpload"
README = ROOT / "README.md"
README_START = "<!-- benchmarks:start -->"
README_END = "<!-- benchmarks:end -->"

HOST = "127.0.0.1"
#: Seconds a server may take to print READY (importing trio on a loaded machine is slow).
STARTUP_TIMEOUT = 30.0
#: Seconds a server gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0
#: Seconds a load generator may run beyond its planned duration before it counts as hung.
LOAD_SLACK = 30.0
#: Seconds to let a server settle (handlers reach their receive) before reading its RSS.
SETTLE = 0.5
#: Seconds the hold client may take for all its connections.
HOLD_TIMEOUT = 180.0
UDP_SIZE = 64
IDLE = "trioserve, idle handlers (cancelled at grace end)"
LEAVING = "trioserve, handlers leave on shutdown"
UDP_WINDOW = 32
UDP_TIMEOUT_MS = 200


class Unavailable(Exception):
    """A contender that cannot run here; its row shows n/a with the reason."""


class Failed(Exception):
    """One measurement went wrong; the row goes on with the other contenders."""


@dataclass(frozen=True)
class Settings:
    quick: bool
    rounds: int
    duration: int
    connections: int
    memory_rounds: int
    held_base: int
    held: int
    shutdown_connections: int
    shutdown_rounds: int
    grace: float

    @classmethod
    def create(cls, *, quick: bool, rounds: int | None, duration: int | None) -> Settings:
        if quick:
            settings = cls(True, 2, 1, 50, 1, 100, 1000, 200, 1, 0.5)
        else:
            settings = cls(False, 6, 2, 50, 1, 500, 9000, 1000, 3, 1.0)
        return cls(
            quick=settings.quick,
            rounds=rounds or settings.rounds,
            duration=duration or settings.duration,
            connections=settings.connections,
            memory_rounds=settings.memory_rounds,
            held_base=settings.held_base,
            held=settings.held,
            shutdown_connections=settings.shutdown_connections,
            shutdown_rounds=settings.shutdown_rounds,
            grace=settings.grace,
        )


@dataclass(frozen=True)
class Contender:
    label: str
    name: str  # the contender argument of benchmarks.servers
    mode: str
    extra: tuple[str, ...] = ()
    baseline: str | None = None


@dataclass
class Measurement:
    value: float
    extras: dict[str, float] = field(default_factory=dict)


class LineReader:
    """Lines from a child's stdout, each awaited with a deadline (a child may hang)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._fd = stream.fileno()
        self._buffer = b""

    def readline(self, timeout: float) -> str:
        """The next line without its newline; ``""`` at end of file.

        Raises:
            Failed: No full line came within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"no answer within {timeout:g} s")
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._fd, 65536)
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line.decode(errors="replace")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    output: LineReader
    log: Path
    stopped: bool = False  # the measurement ended the process on purpose

    def check_alive(self) -> None:
        """Raise Failed if the server died during the measurement (not if we stopped it)."""
        if self.process.poll() is not None and not self.stopped:
            raise Failed(
                f"server exited with status {self.process.returncode}; {log_tail(self.log)}"
            )


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " / ".join(text[-lines:]) if text else "log empty"


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the process, wait for it, kill it if it lingers; always reaps it."""
    try:
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def server_process(
    contender: Contender, log: Path, *, profile: Path | None = None
) -> Iterator[ServerProcess]:
    """Start a contender; yield it once it serves; kill and reap it on the way out."""
    command = [sys.executable, "-m", "benchmarks.servers", contender.name, contender.mode]
    command.extend(contender.extra)
    if profile is not None:
        command.extend(["--profile", str(profile)])
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file
        )
    try:
        assert process.stdout is not None
        output = LineReader(process.stdout)
        try:
            line = output.readline(STARTUP_TIMEOUT)
        except Failed as exc:
            raise Failed(f"server did not start: {exc}; {log_tail(log)}") from None
        if line.startswith("UNAVAILABLE "):
            raise Unavailable(line.removeprefix("UNAVAILABLE "))
        if not line.startswith("READY "):
            raise Failed(f"server did not start ({line!r}); {log_tail(log)}")
        yield ServerProcess(process, int(line.split()[1]), output, log)
    finally:
        stop_process(process, signal.SIGINT if profile is not None else signal.SIGTERM)


@contextlib.contextmanager
def hold_client(port: int, counts: Sequence[int]) -> Iterator[tuple[LineReader, IO[bytes]]]:
    """The connection-holding client (its own process, its own descriptor limit)."""
    command = [sys.executable, "-m", "benchmarks.hold", str(port), *map(str, counts)]
    process = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        yield LineReader(process.stdout), process.stdin
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
        stop_process(process)


def expect_held(output: LineReader, count: int) -> None:
    line = output.readline(HOLD_TIMEOUT)
    if line != f"HELD {count}":
        raise Failed(f"hold client: {line or 'exited'}")


def run_load(command: Sequence[str], seconds: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + LOAD_SLACK, check=False
        )
    except subprocess.TimeoutExpired:
        raise Failed(f"{command[0]} did not finish within {seconds + LOAD_SLACK:g} s") from None


# --- measurements ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After the command name: state is field 3 of proc(5), utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_wrk(server: ServerProcess, settings: Settings, *, close: bool) -> Measurement:
    command = [
        "wrk",
        "-t1",
        f"-c{settings.connections}",
        f"-d{settings.duration}s",
        "--timeout",
        "2s",
    ]
    if close:
        command.extend(["-H", "Connection: close"])
    command.append(f"http://{HOST}:{server.port}/")
    cpu_before = cpu_seconds(server.process.pid)
    done = run_load(command, settings.duration)
    cpu = cpu_seconds(server.process.pid) - cpu_before
    try:
        result = parse_wrk(done.stdout)
    except ValueError as exc:
        raise Failed(f"wrk: {exc}; {done.stderr.strip()[-200:]}") from None
    extras = {"errors": float(result.errors)}
    if cpu > 0:
        extras["per_cpu_second"] = result.requests / cpu
    return Measurement(result.requests_per_second, extras)


def measure_udp(server: ServerProcess, settings: Settings) -> Measurement:
    command = [
        str(UDPLOAD),
        str(server.port),
        str(settings.duration),
        str(UDP_SIZE),
        str(UDP_WINDOW),
        str(UDP_TIMEOUT_MS),
    ]
    cpu_before = cpu_seconds(server.process.pid)
    done = run_load(command, settings.duration)
    cpu = cpu_seconds(server.process.pid) - cpu_before
    if done.returncode != 0:
        raise Failed(f"udpload exited with {done.returncode}: {(done.stdout + done.stderr)[-200:]}")
    try:
        figures = parse_key_values(done.stdout)
    except ValueError as exc:
        raise Failed(f"udpload: {exc}") from None
    extras = {"lost": figures["lost"], "late": figures["late"]}
    if cpu > 0:
        extras["per_cpu_second"] = figures["received"] / cpu
    return Measurement(figures["rate"], extras)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise Failed(f"no VmRSS for process {pid}")


def measure_memory(server: ServerProcess, settings: Settings) -> Measurement:
    """RSS growth per connection between held_base and held idle connections."""
    base, held = settings.held_base, settings.held
    with hold_client(server.port, [base, held]) as (output, control):
        expect_held(output, base)
        time.sleep(SETTLE)  # real time: let the last handlers reach their receive
        before = rss_bytes(server.process.pid)
        control.write(b"go\n")
        control.flush()
        expect_held(output, held)
        time.sleep(SETTLE)  # real time: as above
        after = rss_bytes(server.process.pid)
        # Stop the server while the connections are still held: 9,000 threads of a
        # threading server woken at once by the closes would load the machine for seconds.
        stop_process(server.process)
        server.stopped = True
    per_connection = (after - before) / (held - base) / 1024
    return Measurement(per_connection, {"rss_mib": after / 2**20})


def measure_shutdown(server: ServerProcess, settings: Settings) -> Measurement:
    """Seconds from Server.shutdown() to serve_tcp returning, with connections held."""
    count = settings.shutdown_connections
    with hold_client(server.port, [count]) as (output, _):
        expect_held(output, count)
        os.kill(server.process.pid, signal.SIGUSR1)
        line = server.output.readline(settings.grace + 60)
    if not line.startswith("RESULT "):
        raise Failed(f"no result from the server ({line!r}); {log_tail(server.log)}")
    server.stopped = True  # it exits after reporting
    result = json.loads(line.removeprefix("RESULT "))
    if result["active"] != count:
        raise Failed(f"{result['active']} handlers were active at shutdown, not {count}")
    return Measurement(
        float(result["seconds"]), {"descriptors_left": float(result["descriptors_left"])}
    )


# --- the plan ----------------------------------------------------------------------------

Measure = Callable[[ServerProcess, Settings], Measurement]


@dataclass
class Plan:
    key: str
    comparison: Comparison
    contenders: list[Contender]
    measure: Measure
    rounds: int
    requires: str | None = None  # why none of it can run, if so


def wrk_missing() -> str | None:
    return None if shutil.which("wrk") else "wrk is not installed (make bench installs it)"


def build_udpload() -> str | None:
    """Compile the UDP load generator if needed; the reason when that is impossible."""
    if UDPLOAD.exists() and UDPLOAD.stat().st_mtime >= UDPLOAD_SOURCE.stat().st_mtime:
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "no C compiler to build udpload"
    UDPLOAD.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(UDPLOAD), str(UDPLOAD_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"building udpload failed: {done.stderr.strip()[-200:]}"
    return None


def stream_contenders(mode: str, *, threading_only: bool = False) -> list[Contender]:
    base = "trio.serve_tcp"
    everyone = [
        Contender("trioserve.serve_tcp", "trioserve", mode, baseline=base),
        Contender(base, "trio", mode),
        Contender("asyncio streams", "asyncio", mode, baseline=base),
        Contender("uvloop streams", "uvloop", mode, baseline=base),
        Contender("socketserver.ThreadingTCPServer", "socketserver.ThreadingTCPServer", mode,
                  baseline=base),
    ]  # fmt: skip
    if threading_only:
        # For 9,000 held connections: see servers.run_socketserver on daemon_threads.
        held = [c for c in everyone[:-1] if c.name != "uvloop"]
        label = "socketserver.ThreadingTCPServer (daemon_threads)"
        threaded = Contender(label, "socketserver.ThreadingTCPServer", mode, ("--daemon-threads",),
                             baseline=base)  # fmt: skip
        return [*held, threaded]
    return everyone


def twins(names: Sequence[str], mode: str) -> list[Contender]:
    contenders = []
    for name in names:
        twin = f"socketserver.{name}"
        contenders.append(Contender(f"adapters.{name}", f"adapters.{name}", mode, baseline=twin))
        contenders.append(Contender(twin, twin, mode))
    return contenders


def make_plans(settings: Settings, *, udp_reason: str | None) -> list[Plan]:
    wrk_reason = wrk_missing()
    conns, seconds, rounds = settings.connections, settings.duration, settings.rounds
    wrk_setup = f"wrk -t1 -c{conns} -d{seconds}s, {rounds} rounds in alternation"
    close_setup = wrk_setup + ', header "Connection: close" (server answers and closes)'
    udp_setup = (
        f"udpload: {UDP_SIZE}-byte datagrams, window {UDP_WINDOW}, {seconds} s, "
        f"{rounds} rounds in alternation"
    )

    def keepalive(server: ServerProcess, s: Settings) -> Measurement:
        return measure_wrk(server, s, close=False)

    def close(server: ServerProcess, s: Settings) -> Measurement:
        return measure_wrk(server, s, close=True)

    def plan(
        key: str,
        number: str,
        title: str,
        unit: str,
        setup: str,
        contenders: list[Contender],
        measure: Measure,
        *,
        rounds: int = rounds,
        targets: Sequence[Target] = (),
        higher_is_better: bool = True,
        requires: str | None = None,
    ) -> Plan:
        series = [Series(c.label, baseline=c.baseline) for c in contenders]
        comparison = Comparison(number, title, unit, setup, series, higher_is_better, list(targets))
        if measure in (keepalive, close, measure_udp):
            comparison.secondary = ("per_cpu_second", f"{unit.split('/')[0]} per server CPU-s")
        return Plan(key, comparison, contenders, measure, rounds, requires)

    trio_base = "trio.serve_tcp"
    udp_base = "trio recvfrom loop"
    grace = settings.grace
    shutdown_extra = ("--grace", f"{grace:g}")
    held = settings.held
    return [
        plan("keepalive", "1", "Keep-alive requests/s", "req/s", wrk_setup,
             stream_contenders("keepalive"), keepalive, requires=wrk_reason,
             targets=[Target("trioserve.serve_tcp", "ratio_at_least", 1.5, trio_base)]),
        plan("close", "2", "Connections/s (one request each)", "conn/s", close_setup,
             stream_contenders("close"), close, requires=wrk_reason,
             targets=[Target("trioserve.serve_tcp", "ratio_at_least", 2.0, trio_base)]),
        plan("udp", "3", "UDP datagrams/s", "datagrams/s", udp_setup, [
                Contender("trioserve.serve_udp", "trioserve", "udp", baseline=udp_base),
                Contender(udp_base, "trio", "udp"),
                Contender("asyncio DatagramProtocol", "asyncio", "udp", baseline=udp_base),
                Contender("socketserver.UDPServer", "socketserver.UDPServer", "udp",
                          baseline=udp_base),
                Contender("socketserver.ThreadingUDPServer", "socketserver.ThreadingUDPServer",
                          "udp", baseline=udp_base),
             ], measure_udp, requires=udp_reason,
             targets=[Target("trioserve.serve_udp", "ratio_at_least", 1.8, udp_base)]),
        plan("memory", "4", f"Memory per idle connection ({held:,} held)", "KiB/conn",
             f"server RSS growth from {settings.held_base:,} to {held:,} held connections "
             f"(client in its own process), {settings.memory_rounds} round(s) in alternation "
             "(the figures repeat within 1% between rounds)",
             stream_contenders("hold", threading_only=True), measure_memory,
             rounds=settings.memory_rounds, higher_is_better=False,
             targets=[Target("trioserve.serve_tcp", "diff_at_most", 1.0, trio_base)]),
        plan("shutdown", "5",
             f"Graceful shutdown, {settings.shutdown_connections:,} open connections", "s",
             f"trioserve.Server(grace_period={grace:g}): seconds from shutdown() to serve_tcp "
             f"returning, and descriptors left; {settings.shutdown_rounds} round(s)",
             [Contender(IDLE, "trioserve", "shutdown",
                        shutdown_extra),
              Contender(LEAVING, "trioserve", "shutdown",
                        (*shutdown_extra, "--cooperative"))],
             measure_shutdown, rounds=settings.shutdown_rounds, higher_is_better=False,
             targets=[
                 Target(IDLE, "at_most", grace + 0.5),
                 Target(IDLE, "at_most", 0,
                        metric="descriptors_left", stat="max", unit="fds"),
                 Target(LEAVING, "at_most", grace + 0.5),
                 Target(LEAVING, "at_most", 0,
                        metric="descriptors_left", stat="max", unit="fds"),
             ]),
        plan("adapters-keepalive", "6a", "adapters: keep-alive requests/s",
             "req/s", wrk_setup, twins(["ThreadingTCPServer", "TCPServer"], "keepalive"),
             keepalive, requires=wrk_reason,
             targets=[
                 Target("adapters.ThreadingTCPServer", "ratio_at_least", 1.0,
                        "socketserver.ThreadingTCPServer"),
                 Target("adapters.TCPServer", "ratio_at_least", 0.5, "socketserver.TCPServer"),
             ]),
        plan("adapters-close", "6b", "adapters: connections/s", "conn/s",
             close_setup, twins(["ThreadingTCPServer", "TCPServer"], "close"), close,
             requires=wrk_reason,
             targets=[
                 Target("adapters.ThreadingTCPServer", "ratio_at_least", 2.0,
                        "socketserver.ThreadingTCPServer"),
                 Target("adapters.TCPServer", "ratio_at_least", 0.5, "socketserver.TCPServer"),
             ]),
        plan("adapters-udp", "6c", "adapters: UDP datagrams/s", "datagrams/s",
             udp_setup, twins(["UDPServer", "ThreadingUDPServer"], "udp"), measure_udp,
             requires=udp_reason,
             targets=[
                 Target("adapters.UDPServer", "ratio_at_least", 0.5, "socketserver.UDPServer"),
                 Target("adapters.ThreadingUDPServer", "ratio_at_least", 3.0,
                        "socketserver.ThreadingUDPServer"),
             ]),
    ]  # fmt: skip


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def run_plan(plan: Plan, settings: Settings, logs: Path) -> Comparison:
    """Run every contender of ``plan`` once per round, alternating the order each round."""
    comparison = plan.comparison
    started = time.monotonic()
    print(f"\n== {comparison.number}. {comparison.title}", flush=True)
    if plan.requires is not None:
        for series in comparison.series:
            series.unavailable = plan.requires
        print(f"   n/a: {plan.requires}", flush=True)
        return comparison
    for number in range(plan.rounds):
        order = plan.contenders if number % 2 == 0 else plan.contenders[::-1]
        for contender in order:
            series = comparison.get(contender.label)
            if series.unavailable is not None:
                continue
            log = logs / f"{plan.key}-{slug(contender.label)}-{number + 1}.log"
            prefix = f"   round {number + 1}/{plan.rounds} {contender.label}:"
            try:
                with server_process(contender, log) as server:
                    measurement = plan.measure(server, settings)
                    server.check_alive()
            except Unavailable as exc:
                series.unavailable = str(exc)
                print(f"{prefix} n/a ({exc})", flush=True)
            except (Failed, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
                series.failures.append(str(exc))
                print(f"{prefix} failed: {exc}", flush=True)
            else:
                series.record(number, measurement.value, **measurement.extras)
                shown = format_value(measurement.value, comparison.unit)
                extras = ", ".join(f"{k} {v:g}" for k, v in measurement.extras.items())
                print(f"{prefix} {shown} {comparison.unit} ({extras})", flush=True)
    add_notes(comparison)
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return comparison


def add_notes(comparison: Comparison) -> None:
    """Turn load generators' error counts into notes next to the figures."""
    for series in comparison.series:
        errors = max(series.extras.get("errors", {}).values(), default=0)
        if errors:
            series.notes.append(f"wrk errors up to {errors:,.0f}/run")
        lost = max(series.extras.get("lost", {}).values(), default=0)
        if lost:
            series.notes.append(f"lost up to {lost:,.0f} datagrams/run")
        if series.failures and series.values:
            series.notes.append(f"{len(series.failures)} round(s) failed")


# --- profiles ----------------------------------------------------------------------------


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def run_profiles(settings: Settings, logs: Path, udp_reason: str | None) -> list[Path]:
    """Sample trioserve, trio and adapters under load with py-spy (from outside the process).

    For each job it writes the collapsed stacks (``*.collapsed``, for flame graph tools)
    and a summary of where the CPU time goes (``*.txt``) under results/profiles/.
    """
    spy = py_spy()
    if spy is None:
        print("no py-spy: make bench installs it", flush=True)
        return []
    PROFILES.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Contender, Measure]] = []

    def close_load(server: ServerProcess, s: Settings) -> Measurement:
        return measure_wrk(server, s, close=True)

    if wrk_missing() is None:
        for mode, close in (("keepalive", False), ("close", True)):
            for name in ("trioserve", "trio"):

                def load(server: ServerProcess, s: Settings, close: bool = close) -> Measurement:
                    return measure_wrk(server, s, close=close)

                jobs.append((Contender(f"{name}-{mode}", name, mode), load))
        for name in ("adapters.ThreadingTCPServer", "adapters.TCPServer"):
            jobs.append((Contender(f"{name}-close", name, "close"), close_load))
    if udp_reason is None:
        for name in ("trioserve", "trio", "adapters.UDPServer", "adapters.ThreadingUDPServer"):
            jobs.append((Contender(f"{name}-udp", name, "udp"), measure_udp))
    written = []
    for contender, measure in jobs:
        collapsed = PROFILES / f"{contender.label}.collapsed"
        summary = PROFILES / f"{contender.label}.txt"
        log = logs / f"profile-{contender.label}.log"
        try:
            with server_process(contender, log) as server:
                command = [spy, "record", "--pid", str(server.process.pid), "--duration",
                           str(settings.duration), "--rate", "250", "--nonblocking",
                           "--function", "--format", "raw", "--output", str(collapsed)]  # fmt: skip
                sampler = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )  # fmt: skip
                try:
                    measurement = measure(server, settings)
                finally:
                    try:
                        _, errors = sampler.communicate(timeout=settings.duration + LOAD_SLACK)
                    except subprocess.TimeoutExpired:
                        sampler.kill()
                        _, errors = sampler.communicate()
                if sampler.returncode != 0:
                    raise Failed(f"py-spy failed: {errors.decode(errors='replace')[-300:]}")
        except (Unavailable, Failed, OSError, subprocess.SubprocessError) as exc:
            print(f"   profile {contender.label}: skipped ({exc})", flush=True)
            continue
        rate = f"{measurement.value:,.0f}/s under the sampler"
        text = summarize_collapsed(collapsed.read_text(encoding="utf-8"), title=contender.label)
        summary.write_text(f"{text}\n\nthroughput: {rate}\n", encoding="utf-8")
        print(f"   profile {contender.label}: {rate} -> {summary.relative_to(ROOT)}", flush=True)
        written.append(summary)
    return written


# --- output ------------------------------------------------------------------------------


def version_of(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "not installed"


def preamble(settings: Settings, started: datetime, elapsed: float) -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mode = "quick (smoke test)" if settings.quick else "full"
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Measured {started:%Y-%m-%d %H:%M} UTC by `make bench` ({mode} run, "
            f"{elapsed / 60:.1f} min), on {os.cpu_count()} CPUs ({cpu}), Linux "
            f"{platform.release()}, Python {platform.python_version()}, trio "
            f"{version_of('trio')}, uvloop {version_of('uvloop')}; load average at the end "
            f"{load} (1, 5, 15 min).",
            "",
            "Each row starts every contender as its own server process on 127.0.0.1 and runs "
            "them in alternation (A B C, then C B A, ...), one fresh process per round. The "
            "figure is the median over rounds; a ratio is the median of the per-round ratios "
            "of two contenders measured side by side. Throughput rows also show the work done "
            "per CPU-second of the server process (all its threads), with its paired ratio in "
            "brackets: steadier than rates per second when other jobs share the machine. The "
            "machine is small and may be shared, so read the ratios, not the absolute figures. "
            "![chart](chart.png)",
        ]
    )


def write_outputs(
    comparisons: Sequence[Comparison], settings: Settings, started: datetime, directory: Path
) -> tuple[Path, Path | None]:
    directory.mkdir(parents=True, exist_ok=True)
    elapsed = (datetime.now(timezone.utc) - started).total_seconds()
    markdown = results_markdown(comparisons, preamble(settings, started, elapsed))
    results = directory / "RESULTS.md"
    results.write_text(markdown, encoding="utf-8")
    chart: Path | None = directory / "chart.png"
    try:
        from .chart import write_chart
    except ImportError as exc:
        print(f"no chart: {exc} (make bench installs matplotlib)")
        chart = None
    else:
        assert chart is not None
        write_chart(comparisons, chart, title=f"trioserve benchmarks, {started:%Y-%m-%d}")
    raw = {
        comparison.number: {
            series.label: {
                "values": series.values,
                "extras": series.extras,
                "failures": series.failures,
                "unavailable": series.unavailable,
            }
            for series in comparison.series
        }
        for comparison in comparisons
    }
    RAW.mkdir(parents=True, exist_ok=True)
    (RAW / f"results-{'quick' if settings.quick else 'full'}.json").write_text(
        json.dumps(raw, indent=1), encoding="utf-8"
    )
    return results, chart


def update_readme(comparisons: Sequence[Comparison]) -> bool:
    """Copy the target summary into README.md between its benchmark markers."""
    from .report import summary_markdown

    try:
        text = README.read_text(encoding="utf-8")
        updated = replace_marked(text, README_START, README_END, summary_markdown(comparisons))
    except (OSError, ValueError) as exc:
        print(f"README.md not updated: {exc}")
        return False
    README.write_text(updated, encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="trioserve against its peers, in one run."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="a short smoke run (also BENCH_QUICK=1); writes under results/raw/quick",
    )
    parser.add_argument("--only", help="comma-separated row numbers, e.g. 1,3,6a")
    parser.add_argument("--rounds", type=int, help="rounds per throughput row")
    parser.add_argument("--duration", type=int, help="seconds per load run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only sample trioserve, trio and adapters under load with py-spy",
    )
    args = parser.parse_args(argv)
    settings = Settings.create(quick=args.quick, rounds=args.rounds, duration=args.duration)
    started = datetime.now(timezone.utc)
    logs = RAW / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    udp_reason = build_udpload()
    if args.profile:
        written = run_profiles(settings, logs, udp_reason)
        return 0 if written else 1
    plans = make_plans(settings, udp_reason=udp_reason)
    if args.only:
        wanted = {part.strip() for part in args.only.split(",")}
        plans = [p for p in plans if p.comparison.number in wanted or p.key in wanted]
        if not plans:
            parser.error(f"--only {args.only!r} names no row")
    comparisons = [run_plan(plan, settings, logs) for plan in plans]
    print()
    for comparison in comparisons:
        print(comparison_markdown(comparison), end="\n\n")
    complete = not settings.quick and not args.only and not args.rounds and not args.duration
    directory = RESULTS if complete else RAW / ("quick" if settings.quick else "partial")
    results, chart = write_outputs(comparisons, settings, started, directory)
    print(
        f"wrote {results.relative_to(ROOT)}" + (f" and {chart.relative_to(ROOT)}" if chart else "")
    )
    if complete and update_readme(comparisons):
        print("updated the table in README.md")
    return 0
