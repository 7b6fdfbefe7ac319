"""The options every serve_* function and :class:`trioserve.Server` share."""

from __future__ import annotations

import math
from typing import Any

import attrs

#: How long in-flight handlers may run after :meth:`Server.shutdown` unless told otherwise.
DEFAULT_GRACE_PERIOD = 5.0


def _check_limit(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value!r}")
    return value


def check_seconds(name: str, value: object, *, allow_zero: bool) -> float | None:
    """Return ``value`` as seconds, or raise an error that names the option and the value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {value!r}")
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large to be a number of seconds: {value!r}") from None
    if math.isnan(seconds):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "more than 0"
        raise ValueError(f"{name} must be {bound} seconds, not {value!r}")
    return seconds


@attrs.frozen(kw_only=True)
class ServerOptions:
    """Validated serving options.

    Attributes:
        max_connections: At most this many handlers run at once (``None``: no limit).
            At the limit the server stops accepting (or reading datagrams) until a
            handler finishes, so the kernel's backlog holds the rest.
        idle_timeout: Seconds a connection may wait for bytes from the peer before its
            handler is cancelled and the connection closed (``None``: forever). It
            watches :class:`Connection` receives; streams from listeners that are not
            socket listeners (TLS, memory) are bounded by ``handler_timeout`` only.
        handler_timeout: Seconds a handler may run in all (``None``: no limit).
        grace_period: Seconds in-flight handlers may still run after a graceful
            shutdown begins before they are cancelled (``math.inf``: wait for them).
    """

    max_connections: int | None = None
    idle_timeout: float | None = None
    handler_timeout: float | None = None
    grace_period: float = DEFAULT_GRACE_PERIOD

    @classmethod
    def create(
        cls,
        *,
        max_connections: Any = None,
        idle_timeout: Any = None,
        handler_timeout: Any = None,
        grace_period: Any = DEFAULT_GRACE_PERIOD,
    ) -> ServerOptions:
        """Check each value and build the options.

        Raises:
            TypeError: A value has the wrong type (``True`` is not a number here).
            ValueError: A value is out of range: a limit below 1, a timeout of 0 or less,
                a negative grace period, or NaN.
        """
        grace = check_seconds("grace_period", grace_period, allow_zero=True)
        return cls(
            max_connections=_check_limit("max_connections", max_connections),
            idle_timeout=check_seconds("idle_timeout", idle_timeout, allow_zero=False),
            handler_timeout=check_seconds("handler_timeout", handler_timeout, allow_zero=False),
            grace_period=math.inf if grace is None else grace,
        )
