from __future__ import annotations

import inspect

import trio

import trioserve


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(trioserve) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(trioserve, name))}
    assert set(trioserve.__all__) == public - modules
    for name in trioserve.__all__:
        assert getattr(trioserve, name).__module__.startswith("trioserve")


def test_serve_tcp_accepts_every_argument_trio_serve_tcp_does() -> None:
    ours = inspect.signature(trioserve.serve_tcp).parameters
    for name, theirs in inspect.signature(trio.serve_tcp).parameters.items():
        assert name in ours, name
        assert ours[name].kind == theirs.kind, name
        assert ours[name].default == theirs.default, name


def test_serve_listeners_accepts_every_argument_trio_serve_listeners_does() -> None:
    ours = inspect.signature(trioserve.serve_listeners).parameters
    for name, theirs in inspect.signature(trio.serve_listeners).parameters.items():
        assert name in ours, name
        assert ours[name].kind == theirs.kind, name


def test_server_methods_match_the_module_functions() -> None:
    for name in ("serve_tcp", "serve_unix", "serve_listeners"):
        module_params = list(inspect.signature(getattr(trioserve, name)).parameters)
        method_params = list(inspect.signature(getattr(trioserve.Server, name)).parameters)
        options = list(inspect.signature(trioserve.Server).parameters)[1:]
        assert ["self", *[p for p in module_params if p not in ("handler", *options)]] == (
            method_params
        )
