from __future__ import annotations

import math
import re

import pytest

import trioserve


async def handler(conn: trioserve.Connection) -> None:
    pass


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_connections": 0}, ValueError, "max_connections must be at least 1, not 0"),
        ({"max_connections": 2.5}, TypeError, "max_connections must be an int or None, not 2.5"),
        ({"max_connections": True}, TypeError, "max_connections must be an int or None, not True"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout must be more than 0 seconds, not 0"),
        (
            {"idle_timeout": "5"},
            TypeError,
            "idle_timeout must be a number of seconds or None, not '5'",
        ),
        (
            {"handler_timeout": -1},
            ValueError,
            "handler_timeout must be more than 0 seconds, not -1",
        ),
        (
            {"handler_timeout": math.nan},
            ValueError,
            "handler_timeout must be a number of seconds, not nan",
        ),
        (
            {"idle_timeout": 10**400},
            ValueError,
            "idle_timeout is too large to be a number of seconds: 1000",
        ),
        ({"grace_period": -0.5}, ValueError, "grace_period must be 0 or more seconds, not -0.5"),
        (
            {"grace_period": [1]},
            TypeError,
            "grace_period must be a number of seconds or None, not [1]",
        ),
    ],
)
def test_invalid_options_name_the_option_and_value(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        trioserve.Server(handler, **options)  # type: ignore[arg-type]


async def test_serve_functions_check_options_at_the_call() -> None:
    with pytest.raises(ValueError, match="max_connections must be at least 1, not -3"):
        await trioserve.serve_tcp(handler, 0, max_connections=-3)
    with pytest.raises(TypeError, match="port must be an int, not '80'"):
        await trioserve.serve_tcp(handler, "80")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port must be between 0 and 65535, not 70000"):
        await trioserve.serve_tcp(handler, 70000)
    with pytest.raises(TypeError, match="backlog must be an int or None, not 'x'"):
        await trioserve.serve_tcp(handler, 0, backlog="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"host must be a host name or address, not '\.\.'"):
        await trioserve.serve_tcp(handler, 0, host="..")
    with pytest.raises(ValueError, match="host must be a host name or address, not 'aaaa"):
        await trioserve.serve_udp(handler, 0, host="a" * 300)
    with pytest.raises(ValueError, match=r"host must not contain a NUL character, not b'::1\\x00'"):
        await trioserve.serve_tcp(handler, 0, host=b"::1\0")
    with pytest.raises(TypeError, match="handler must be an async callable, not 3"):
        await trioserve.serve_tcp(3, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="listeners must be a list of trio listeners"):
        await trioserve.serve_listeners(handler, "nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"handler_nursery must be a trio\.Nursery or None, not 1"):
        await trioserve.serve_tcp(handler, 0, handler_nursery=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_conections'"):
        await trioserve.serve_tcp(handler, 0, max_conections=3)  # type: ignore[call-arg]


def test_options_are_kept_validated() -> None:
    server = trioserve.Server(handler, max_connections=3, idle_timeout=2, grace_period=None)  # type: ignore[arg-type]
    assert server.options == trioserve.ServerOptions(
        max_connections=3, idle_timeout=2.0, handler_timeout=None, grace_period=math.inf
    )
