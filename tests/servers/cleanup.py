"""Leaving nothing behind between tests: the SDKs' environment variables a test must not
see, and the storages (or clients) a test built."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, Protocol, TypeVar

import pytest

__all__ = ["clear_environment", "closing_all"]


class _Closable(Protocol):
    def close(self) -> object: ...


P = ParamSpec("P")
T = TypeVar("T", bound=_Closable)


def clear_environment(monkeypatch: pytest.MonkeyPatch, *prefixes: str) -> None:
    """Unset, for this test, every environment variable whose name starts with a prefix."""
    for name in list(os.environ):
        if name.startswith(prefixes):
            monkeypatch.delenv(name)


@contextmanager
def closing_all(build: Callable[P, T]) -> Iterator[Callable[P, T]]:
    """``build`` as it is, except that everything it made is closed on the way out."""
    made: list[T] = []

    def make(*args: P.args, **kwargs: P.kwargs) -> T:
        thing = build(*args, **kwargs)
        made.append(thing)
        return thing

    try:
        yield make
    finally:
        for thing in made:
            thing.close()
