"""The ``trioserve`` command: serve a handler (or the built-in echo) until a signal."""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import inspect
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from ._echo import echo
from ._handlers import Handler, host_port
from ._listeners import check_host
from ._server import Server

LOGGER = logging.getLogger("trioserve")

STARTUP_ERROR = 1


class TargetError(Exception):
    """TARGET names nothing that can be loaded, or not a handler."""


@attrs.frozen
class Endpoint:
    """One ``--tcp``/``--unix``/``--udp``/``--unix-datagram`` endpoint of the command line."""

    kind: str
    host: str | None = None
    port: int = 0
    path: str = ""


def parse_host_port(text: str) -> tuple[str | None, int]:
    """Parse ``[HOST:]PORT``; IPv6 hosts go in brackets (``[::1]:8000``)."""
    host: str | None
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected [HOST]:PORT, got {text!r}")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    else:
        host, port_text = None, text
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {port_text!r}") from None
    if not 0 <= port <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    try:
        check_host(host)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return host or None, port


def _tcp_endpoint(text: str) -> Endpoint:
    host, port = parse_host_port(text)
    return Endpoint("tcp", host=host, port=port)


def _udp_endpoint(text: str) -> Endpoint:
    host, port = parse_host_port(text)
    return Endpoint("udp", host=host, port=port)


def _unix_endpoint(text: str) -> Endpoint:
    if not text:
        raise argparse.ArgumentTypeError("the path must not be empty")
    return Endpoint("unix", path=text)


def _unix_datagram_endpoint(text: str) -> Endpoint:
    if not text:
        raise argparse.ArgumentTypeError("the path must not be empty")
    return Endpoint("unix-datagram", path=text)


def load_target(target: str) -> Handler:
    """Load ``module:attribute`` or ``path/to/file.py:attribute`` (attribute may be dotted).

    Raises:
        TargetError: The module or attribute cannot be loaded, or is not callable.
    """
    location, sep, attribute = target.rpartition(":")
    if not sep or not location or not attribute:
        raise TargetError(f"TARGET must be MODULE:ATTRIBUTE or FILE.py:ATTRIBUTE, not {target!r}")
    try:
        if location.endswith(".py") or os.sep in location:
            name = os.path.splitext(os.path.basename(location))[0]
            spec = importlib.util.spec_from_file_location(name, location)
            if spec is None or spec.loader is None or not os.path.isfile(location):
                raise TargetError(f"cannot load {target!r}: no such file {location!r}")
            directory = os.path.dirname(os.path.abspath(location))
            if directory not in sys.path:
                sys.path.insert(0, directory)  # as `python FILE.py` does, for its imports
            module = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(name, module)
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(location)
    except TargetError:
        raise
    except (Exception, SystemExit) as exc:  # SystemExit: a module that exits on import
        raise TargetError(f"cannot load {target!r}: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"cannot load {target!r}: no attribute {attribute!r}") from None
    if not callable(obj):
        raise TargetError(f"{target!r} is not a handler: {obj!r} is not callable")
    if inspect.isclass(obj):
        raise TargetError(
            f"{target!r} is not a handler: {obj!r} is a class, not an async function "
            "(socketserver handler classes run on the adapters package)"
        )
    function = obj.func if isinstance(obj, functools.partial) else obj
    if inspect.isfunction(function) and not inspect.iscoroutinefunction(function):
        raise TargetError(f"{target!r} is not a handler: {obj!r} is not an async function")
    return obj  # type: ignore[no-any-return]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trioserve",
        description=(
            "Serve an async handler on sockets (a built-in echo without TARGET). The handler "
            "gets a trioserve.Connection from stream endpoints and a trioserve.Datagram from "
            "datagram endpoints."
        ),
        epilog="SIGINT or SIGTERM shuts down gracefully; a second one stops at once.",
    )
    parser.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="the handler, as module:attribute or path/to/file.py:attribute",
    )
    endpoints = parser.add_argument_group("endpoints (at least one)")
    endpoints.add_argument(
        "--tcp",
        dest="endpoints",
        action="append",
        type=_tcp_endpoint,
        metavar="[HOST:]PORT",
        help="listen on TCP (every interface without HOST; port 0 picks one)",
    )
    endpoints.add_argument(
        "--unix",
        dest="endpoints",
        action="append",
        type=_unix_endpoint,
        metavar="PATH",
        help="listen on a Unix stream socket",
    )
    endpoints.add_argument(
        "--udp",
        dest="endpoints",
        action="append",
        type=_udp_endpoint,
        metavar="[HOST:]PORT",
        help="receive UDP datagrams (every interface without HOST; port 0 picks one)",
    )
    endpoints.add_argument(
        "--unix-datagram",
        dest="endpoints",
        action="append",
        type=_unix_datagram_endpoint,
        metavar="PATH",
        help="receive datagrams on a Unix datagram socket",
    )
    options = parser.add_argument_group("server options")
    options.add_argument("--max-connections", type=int, metavar="N")
    options.add_argument("--idle-timeout", type=float, metavar="S")
    options.add_argument("--handler-timeout", type=float, metavar="S")
    options.add_argument("--grace-period", type=float, metavar="S", default=5.0)
    options.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )
    return parser


#: Endpoint kinds given a path rather than [HOST:]PORT.
PATH_KINDS = ("unix", "unix-datagram")


def describe_listener(kind: str, sockname: Any) -> str:
    if kind in PATH_KINDS:
        path = os.fsdecode(sockname) if isinstance(sockname, bytes) else sockname
        return f"{kind}:{path}"
    return f"{kind}://{host_port(sockname[0], sockname[1])}"


async def _watch_signals(signals: Any, server: Server, serving: trio.CancelScope) -> None:
    count = 0
    async for signum in signals:
        count += 1
        name = signal.Signals(signum).name
        if count == 1:
            LOGGER.info("%s received: shutting down gracefully (again to stop at once)", name)
            server.shutdown()
        else:
            LOGGER.warning("%s received again: stopping at once", name)
            serving.cancel()


def describe_endpoint(endpoint: Endpoint) -> str:
    if endpoint.kind in PATH_KINDS:
        return describe_listener(endpoint.kind, endpoint.path)
    return describe_listener(endpoint.kind, (endpoint.host or "*", endpoint.port))


def _serve_function(server: Server, endpoint: Endpoint) -> Callable[..., Awaitable[None]]:
    """The serve_* method of ``server`` for ``endpoint``, its address filled in."""
    if endpoint.kind == "tcp":
        return functools.partial(server.serve_tcp, endpoint.port, host=endpoint.host)
    if endpoint.kind == "udp":
        return functools.partial(server.serve_udp, endpoint.port, host=endpoint.host)
    if endpoint.kind == "unix":
        return functools.partial(server.serve_unix, endpoint.path)
    return functools.partial(server.serve_unix_datagram, endpoint.path)


async def run(server: Server, endpoints: Sequence[Endpoint]) -> str | None:
    """Serve every endpoint until SIGINT/SIGTERM; the first signal shuts down gracefully.

    Returns:
        ``None`` after a signal, or a message saying which endpoint could not listen
        (then nothing is served: the endpoints already listening are closed).
    """
    failure: str | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as outer:
            serving = trio.CancelScope()
            outer.start_soon(_watch_signals, signals, server, serving)
            with serving:
                async with trio.open_nursery() as nursery:
                    for endpoint in endpoints:
                        if server.shutting_down:
                            break  # a signal came while starting: start no more
                        try:
                            bound = await nursery.start(_serve_function(server, endpoint))
                        except OSError as exc:
                            failure = f"cannot listen on {describe_endpoint(endpoint)}: {exc}"
                            serving.cancel()
                            break
                        for listener_or_socket in bound:
                            sock = getattr(listener_or_socket, "socket", listener_or_socket)
                            if sock.fileno() == -1:
                                continue  # already closed by a shutdown while it started
                            sockname = sock.getsockname()
                            LOGGER.info(
                                "listening on %s", describe_listener(endpoint.kind, sockname)
                            )
            outer.cancel_scope.cancel()
    return failure


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status: 0 after a signal, 1 if listening failed."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.endpoints:
        parser.error(
            "give at least one endpoint: --tcp [HOST:]PORT, --unix PATH, "
            "--udp [HOST:]PORT or --unix-datagram PATH"
        )
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        handler = echo if args.target is None else load_target(args.target)
    except TargetError as exc:
        parser.error(str(exc))
    try:
        server = Server(
            handler,
            max_connections=args.max_connections,
            idle_timeout=args.idle_timeout,
            handler_timeout=args.handler_timeout,
            grace_period=args.grace_period,
        )
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    failure = trio.run(run, server, args.endpoints)
    if failure is not None:
        print(f"trioserve: error: {failure}", file=sys.stderr)
        return STARTUP_ERROR
    LOGGER.info("stopped")
    return 0
