"""Small helpers shared by the contract classes: one copy each, used by every contract."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import pytest

T = TypeVar("T")

__all__ = ["BackgroundThread", "expect_error", "fixture_not_overridden", "run", "unique_token"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop (so the kit does not need pytest-asyncio)."""
    return asyncio.run(coro)


def unique_token() -> str:
    """A short random token that keeps keys of different tests apart."""
    return uuid.uuid4().hex[:12]


def fixture_not_overridden(test: object, contract: str, fixture: str, gives: str) -> NoReturn:
    """Fail the test because ``test``'s class did not override the contract's fixture.

    Every contract declares its fixture with this as the body, so an author who forgot
    the override reads which fixture to define and what it must give (``gives``), not a
    traceback from inside the kit.
    """
    pytest.fail(
        f"{type(test).__name__} subclasses {contract} but does not override the "
        f"`{fixture}` fixture; define `@pytest.fixture def {fixture}(self, ...)` in the "
        f"class, {gives}",
        pytrace=False,
    )


def expect_error(
    failures: list[str],
    what: str,
    call: Callable[[], object],
    error: type[Exception],
    hint: str = "",
) -> None:
    """Call ``call`` and note in ``failures`` unless it raised ``error``.

    The contracts check many inputs in one test and report every one that misbehaved,
    not only the first: ``what`` names the call in the note (``"read_path('..')"``),
    ``hint`` (if given) is appended to say what the author should do.
    """
    try:
        result = call()
    except error:
        return
    except Exception as exc:
        failures.append(f"{what} raised {exc!r}, not {error.__name__}{hint}")
    else:
        failures.append(f"{what} returned {result!r} instead of raising {error.__name__}{hint}")


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
