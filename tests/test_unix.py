from __future__ import annotations

import os
import socket
import stat
from functools import partial
from pathlib import Path

import pytest
import trio

import trioserve

from .helpers import connect, echo, exchange


async def test_echo_over_unix_and_the_file_is_removed_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "echo.sock"
    server = trioserve.Server(echo)
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(server.serve_unix, path)
        assert stat.S_ISSOCK(path.lstat().st_mode)
        async with await connect(listener) as client:
            assert await exchange(client, b"over unix") == b"over unix"
        server.shutdown()
    assert not path.exists()


async def test_a_relative_path_is_removed_after_the_program_changed_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "serving").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "serving")
    server = trioserve.Server(echo)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve_unix, "relative.sock")
        monkeypatch.chdir(tmp_path / "elsewhere")
        server.shutdown()
    assert not (tmp_path / "serving" / "relative.sock").exists()


async def test_the_file_is_removed_on_a_hard_stop_too(tmp_path: Path) -> None:
    path = tmp_path / "hard.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(trioserve.serve_unix, echo, str(path))
        nursery.cancel_scope.cancel()
    assert not path.exists()


async def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening, then closed: nobody answers
    assert path.exists()
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(trioserve.serve_unix, echo, path)
        async with await connect(listener) as client:
            assert await exchange(client, b"fresh") == b"fresh"
        nursery.cancel_scope.cancel()


async def test_a_live_socket_is_refused_and_left_serving(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(trioserve.serve_unix, echo, path)
        with pytest.raises(trioserve.AddressInUseError, match="in use by a running server"):
            await trioserve.serve_unix(echo, path)
        async with await connect(listener) as client:
            assert await exchange(client, b"still mine") == b"still mine"
        nursery.cancel_scope.cancel()


async def test_a_path_that_is_not_a_socket_is_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    with pytest.raises(trioserve.NotASocketError, match="is not a socket"):
        await trioserve.serve_unix(echo, path)
    assert path.read_text() == "keep me"
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(trioserve.NotASocketError):
        await trioserve.serve_unix(echo, directory)
    assert directory.is_dir()


async def test_mode_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "private.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(trioserve.serve_unix, echo, path, mode=0o600))
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        nursery.cancel_scope.cancel()
    with pytest.raises(ValueError, match="mode must be a permission mode"):
        await trioserve.serve_unix(echo, path, mode=0o17777)
    with pytest.raises(TypeError, match="mode must be an int"):
        await trioserve.serve_unix(echo, path, mode="600")  # type: ignore[arg-type]


async def test_a_file_rebound_by_someone_else_is_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "taken-over.sock"
    server = trioserve.Server(echo)
    with socket.socket(socket.AF_UNIX) as newcomer:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_unix, path)
            os.unlink(path)
            newcomer.bind(str(path))  # another server took the path over
            nursery.cancel_scope.cancel()
        assert path.exists()
    os.unlink(path)


async def test_abstract_namespace_socket(nursery: trio.Nursery) -> None:
    name = f"\0trioserve-test-{os.getpid()}"
    await nursery.start(trioserve.serve_unix, echo, name)
    async with await trio.open_unix_socket(name) as client:
        assert await exchange(client, b"abstract") == b"abstract"


async def test_bad_paths_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"path must be a str, bytes or os\.PathLike, not 3"):
        await trioserve.serve_unix(echo, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path must not be empty"):
        await trioserve.serve_unix(echo, "")
    with pytest.raises(ValueError, match=r"must not contain a NUL character, not 'a\\x00b'"):
        await trioserve.serve_unix(echo, "a\0b")
    with pytest.raises(ValueError, match=r"must not contain a NUL character, not b'a\\x00b'"):
        await trioserve.serve_unix_datagram(echo, b"a\0b")
    with pytest.raises(FileNotFoundError):
        await trioserve.serve_unix(echo, tmp_path / "no-such-dir" / "s.sock")
