"""The stdlib's socketserver-based modules, and its handler classes, on ``adapters``."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import adapters

SCRIPT = Path(__file__).with_name("stdlib_on_adapters.py")


def run_script(directory: Path, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), str(directory), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return results


def without_origin(results: Any) -> Any:
    """``results`` without the ``is_adapters`` entries (they differ by design)."""
    if isinstance(results, dict):
        return {k: without_origin(v) for k, v in results.items() if k != "is_adapters"}
    return results


def test_http_xmlrpc_wsgiref_servers_built_on_adapters(tmp_path: Path) -> None:
    (tmp_path / "adapters").mkdir()
    (tmp_path / "stdlib").mkdir()
    on_adapters = run_script(tmp_path / "adapters")
    on_stdlib = run_script(tmp_path / "stdlib", "stdlib")
    assert on_adapters["http.server"] == {
        name: {"is_adapters": True, "body": "hello from a file\n", "missing": 404}
        for name in ("HTTPServer", "ThreadingHTTPServer")
    }
    assert on_adapters["xmlrpc.server"]["is_adapters"] is True
    assert on_adapters["xmlrpc.server"]["calls"] == [1024, "trio"]
    assert on_adapters["wsgiref.simple_server"] == {"is_adapters": True, "body": "GET /some/path"}
    assert on_adapters["threads_left"] == []
    assert on_stdlib["xmlrpc.server"]["is_adapters"] is False
    assert without_origin(on_adapters) == without_origin(on_stdlib)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("server_class", [adapters.TCPServer, adapters.ThreadingTCPServer])
def test_stdlib_handler_class_on_adapters_server(server_class: Any, tmp_path: Path) -> None:
    """http.server's handler, built on the real socketserver, runs on adapters' servers."""
    (tmp_path / "page.html").write_text("<p>served</p>")
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    with server_class(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/page.html"
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.read() == b"<p>served</p>"
            with pytest.raises(urllib.error.HTTPError, match="404") as info:
                urllib.request.urlopen(url + "x", timeout=10)
            info.value.close()
        finally:
            server.shutdown()
            thread.join()
