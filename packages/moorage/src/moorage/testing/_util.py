"""Small helpers shared by the contract classes."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["BackgroundThread", "run", "unique_token"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop (so the kit does not need pytest-asyncio)."""
    return asyncio.run(coro)


def unique_token() -> str:
    """A short random token that keeps keys of different tests apart."""
    return uuid.uuid4().hex[:12]


class BackgroundThread:
    """A thread that remembers what its target raised, so a test can re-raise it."""

    def __init__(self, target: Callable[[], object], name: str = "moorage-contract") -> None:
        self.error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:  # re-raised by join()
            self.error = exc

    def start(self) -> BackgroundThread:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        """Wait for the thread; fail if it is still running or raised."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(
                f"background thread {self._thread.name!r} still running after {timeout} s; "
                "a lock or storage call is probably hanging"
            )
        if self.error is not None:
            raise AssertionError(
                f"background thread {self._thread.name!r} raised {self.error!r}"
            ) from self.error
