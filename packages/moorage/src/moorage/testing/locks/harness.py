"""`LockManagerHarness`: what every group of lock manager contract cases stands on.

The ``make_lock_manager`` fixture that plugin authors override, the ``lock_manager``
and ``lock_key`` fixtures built on it, and the class attributes that tune timeouts and
contention. Each group of cases (holding, expiry, waiting, fairness, sharing) subclasses
it, and `LockManagerContract` combines the groups into the one class authors subclass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Protocol

import pytest

from moorage.locking import LockManager
from moorage.testing._util import fixture_not_overridden, unique_token

__all__ = ["LockManagerFactory", "LockManagerHarness"]


class LockManagerFactory(Protocol):
    """What the ``make_lock_manager`` fixture returns: builds a manager of your backend."""

    def __call__(self, *, hold_timeout: float | None) -> LockManager: ...


class LockManagerHarness:
    """The fixtures and tuning attributes of `LockManagerContract`."""

    #: Default hold timeout of the ``lock_manager`` fixture's manager (seconds).
    default_hold_timeout: ClassVar[float] = 60.0
    #: A hold timeout short enough to watch a lock lapse (seconds).
    short_hold_timeout: ClassVar[float] = 0.3
    #: Upper bound for waits that must succeed (seconds); generous on purpose.
    wait_timeout: ClassVar[float] = 15.0
    #: Threads and rounds of the contention test.
    contention_threads: ClassVar[int] = 4
    contention_rounds: ClassVar[int] = 10
    #: Whether two managers made by ``make_lock_manager`` in one test share their locks.
    shared_backend: ClassVar[bool] = True
    #: Whether the backend queues its waiters, so that a free lock goes to the first of
    #: them (`moorage.locking.base.LockManager.try_acquire_waiting`). A backend that only
    #: polls sets it False, which skips the ``test_fair_waiting_*`` cases.
    fair_waiting: ClassVar[bool] = True

    @pytest.fixture
    def make_lock_manager(self) -> LockManagerFactory:
        """Override: return ``make(*, hold_timeout) -> LockManager`` for your backend."""
        fixture_not_overridden(
            self,
            "LockManagerContract",
            "make_lock_manager",
            "returning a function `make(*, hold_timeout)` that builds your lock manager",
        )

    @pytest.fixture
    def lock_manager(self, make_lock_manager: LockManagerFactory) -> Iterator[LockManager]:
        """A fresh manager with `default_hold_timeout` (built by ``make_lock_manager``)."""
        manager = make_lock_manager(hold_timeout=self.default_hold_timeout)
        yield manager
        manager.close()

    @pytest.fixture
    def lock_key(self) -> str:
        """A key no other test uses."""
        return f"contract-{unique_token()}/lock"
