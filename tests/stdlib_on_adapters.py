"""Serve with the stdlib's socketserver-based modules, ``adapters`` standing in for it.

Usage: ``python tests/stdlib_on_adapters.py DIRECTORY [stdlib]``. ``adapters`` is put in
``sys.modules["socketserver"]`` before http.server, xmlrpc.server and
wsgiref.simple_server are imported, so their servers are built on adapters' classes;
each is then used by a real client (urllib, xmlrpc.client). With ``stdlib`` the real
socketserver is used instead, to compare. Prints one JSON object with what each client
got; exits with status 0 only if every check ran.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import urllib.request
import xmlrpc.client
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import adapters

if sys.argv[2:] != ["stdlib"]:
    sys.modules["socketserver"] = adapters

import http.server
import wsgiref.simple_server
import xmlrpc.server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_in_thread(server: Any) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return thread


def stop(server: Any, thread: threading.Thread) -> None:
    server.shutdown()
    thread.join()
    server.server_close()


def check_http_server(directory: Path) -> dict[str, Any]:
    (directory / "hello.txt").write_text("hello from a file\n")
    handler = functools.partial(QuietHandler, directory=str(directory))
    results: dict[str, Any] = {}
    for cls in (http.server.HTTPServer, http.server.ThreadingHTTPServer):
        server = cls(("127.0.0.1", 0), handler)
        thread = serve_in_thread(server)
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/hello.txt"
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read().decode()
            try:
                urllib.request.urlopen(url + ".missing", timeout=10)
                status = 200
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.close()
        finally:
            stop(server, thread)
        results[cls.__name__] = {
            "is_adapters": isinstance(server, adapters.TCPServer),
            "body": body,
            "missing": status,
        }
    return results


def check_xmlrpc_server() -> dict[str, Any]:
    server = xmlrpc.server.SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False)
    server.register_function(lambda base, exponent: base**exponent, "pow")
    server.register_function(lambda a, b: a + b, "add")
    server.register_introspection_functions()
    thread = serve_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with xmlrpc.client.ServerProxy(url) as proxy:
            calls = [proxy.pow(2, 10), proxy.add("tri", "o")]
            methods: Any = proxy.system.listMethods()
            methods = sorted(methods)
            try:
                proxy.nope()
                fault = None
            except xmlrpc.client.Fault as exc:
                fault = exc.faultString
    finally:
        stop(server, thread)
    return {
        "is_adapters": isinstance(server, adapters.TCPServer),
        "calls": calls,
        "methods": methods,
        "fault": fault,
    }


def check_wsgiref() -> dict[str, Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()]

    class QuietWSGIHandler(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=QuietWSGIHandler)
    thread = serve_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/some/path"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
    finally:
        stop(server, thread)
    return {"is_adapters": isinstance(server, adapters.TCPServer), "body": body}


def main() -> int:
    directory = Path(sys.argv[1])
    results = {
        "http.server": check_http_server(directory),
        "xmlrpc.server": check_xmlrpc_server(),
        "wsgiref.simple_server": check_wsgiref(),
        "threads_left": sorted(
            thread.name
            for thread in threading.enumerate()
            if thread is not threading.main_thread() and not thread.name.startswith("Trio ")
        ),
    }
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
