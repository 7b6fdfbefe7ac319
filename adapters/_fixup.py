"""Make the public classes say they come from ``adapters``, not from a private module."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound=type)


def public(cls: T) -> T:
    """Set ``cls.__module__`` to the package, where users import it from."""
    cls.__module__ = "adapters"
    return cls
