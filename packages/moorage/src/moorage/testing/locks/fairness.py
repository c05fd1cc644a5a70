"""`FairWaitingCases`: a free lock goes to the waiter already waiting, not to whoever
asks again first, and a waiter that gave up does not keep the lock from anyone.

Fairness needs a queue of waiters in the backend (see
`moorage.locking.base.LockManager.try_acquire_waiting`). A backend without one sets
``fair_waiting = False`` on its contract subclass, which skips the cases named
``test_fair_waiting_*``; the case about a waiter that gave up runs for every backend.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from moorage.locking import LockManager
from moorage.testing._util import BackgroundThread, run
from moorage.testing.locks.harness import LockManagerHarness

__all__ = ["FairWaitingCases"]

#: How long the first waiter keeps the lock once it has it (seconds): long enough that
#: the releaser's second acquire is surely still waiting when the waiter is recorded.
_HOLD = 0.05


@contextmanager
def _attempts_seen(manager: LockManager, holder: str) -> Iterator[threading.Event]:
    """An event set once ``holder`` has completed an attempt of a waiting acquire on
    ``manager`` (sync or async): from then on the backend knows it waits. The manager's
    methods are wrapped on the instance for the duration and restored afterwards."""
    seen = threading.Event()
    sync_attempt = manager.try_acquire_waiting
    async_attempt = manager.atry_acquire_waiting

    def attempt(key: str, who: str, hold_timeout: float | None) -> bool:
        try:
            return sync_attempt(key, who, hold_timeout)
        finally:
            if who == holder:
                seen.set()

    async def aattempt(key: str, who: str, hold_timeout: float | None) -> bool:
        try:
            return await async_attempt(key, who, hold_timeout)
        finally:
            if who == holder:
                seen.set()

    wrapped: dict[str, Callable[..., object]] = {
        "try_acquire_waiting": attempt,
        "atry_acquire_waiting": aattempt,
    }
    for name, function in wrapped.items():
        setattr(manager, name, function)
    try:
        yield seen
    finally:
        for name in wrapped:
            delattr(manager, name)


class FairWaitingCases(LockManagerHarness):
    """Fair waiting, sync and async: while ``bob`` waits for ``alice``'s lock, ``alice``
    releases it and at once asks for it again; ``bob`` must get it first. Skipped when
    ``fair_waiting`` is False. And for every backend: a waiter whose ``acquire_timeout``
    passed leaves nothing behind that keeps the lock from the next acquirer."""

    def _skip_unless_fair(self) -> None:
        if not self.fair_waiting:
            pytest.skip("fair_waiting = False: this backend does not queue its waiters")

    def test_fair_waiting_serves_the_waiter_before_the_releaser(
        self, lock_manager: LockManager, lock_key: str
    ) -> None:
        self._skip_unless_fair()
        order: list[str] = []
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)

        def bob() -> None:
            assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=self.wait_timeout)
            order.append("bob")
            time.sleep(_HOLD)
            lock_manager.release_lock(lock_key, "bob")

        with _attempts_seen(lock_manager, "bob") as bob_waits:
            waiter = BackgroundThread(bob, name="waiter-bob").start()
            try:
                assert bob_waits.wait(self.wait_timeout), "bob's acquire never tried the lock"
                lock_manager.release_lock(lock_key, "alice")
                again = lock_manager.acquire_lock(
                    lock_key, "alice", acquire_timeout=self.wait_timeout
                )
                if again:
                    order.append("alice")
                    lock_manager.release_lock(lock_key, "alice")  # bob may go on if not done
            finally:
                waiter.join(self.wait_timeout * 2)
        assert again, f"alice could not take the lock back within {self.wait_timeout} s"
        assert order == ["bob", "alice"], (
            "alice released the lock and asked for it again at once, while bob was already "
            f"waiting, and the order of acquisitions was {order}: a free lock must go to the "
            "first waiter (queue waiters in try_acquire_waiting), or set fair_waiting = "
            "False on the contract subclass"
        )
        assert lock_manager.is_locked(lock_key) is False

    def test_fair_waiting_serves_the_async_waiter_before_the_releaser(
        self, lock_manager: LockManager, lock_key: str
    ) -> None:
        self._skip_unless_fair()
        order: list[str] = []

        async def bob() -> None:
            assert await lock_manager.aacquire_lock(
                lock_key, "bob", acquire_timeout=self.wait_timeout
            )
            order.append("bob")
            await asyncio.sleep(_HOLD)
            await lock_manager.arelease_lock(lock_key, "bob")

        async def scenario(bob_waits: threading.Event) -> None:
            assert await lock_manager.aacquire_lock(lock_key, "alice", acquire_timeout=0)
            waiter = asyncio.create_task(bob())
            deadline = time.monotonic() + self.wait_timeout
            while not bob_waits.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            assert bob_waits.is_set(), "bob's acquire never tried the lock"
            await lock_manager.arelease_lock(lock_key, "alice")
            try:
                assert await lock_manager.aacquire_lock(
                    lock_key, "alice", acquire_timeout=self.wait_timeout
                )
                order.append("alice")
                await lock_manager.arelease_lock(lock_key, "alice")  # bob may go on
            finally:
                await asyncio.wait_for(waiter, self.wait_timeout * 2)

        with _attempts_seen(lock_manager, "bob") as bob_waits:
            run(scenario(bob_waits))
        assert order == ["bob", "alice"], (
            f"async: the order of acquisitions was {order}, not the waiter first; queue "
            "waiters in atry_acquire_waiting too, or set fair_waiting = False"
        )

    def test_waiter_that_gave_up_does_not_block_the_lock(
        self, lock_manager: LockManager, lock_key: str
    ) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        try:
            assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0.2) is False
            assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0) is False

            async def give_up() -> bool:
                return await lock_manager.aacquire_lock(lock_key, "dave", acquire_timeout=0.2)

            assert run(give_up()) is False
        finally:
            lock_manager.release_lock(lock_key, "alice")
        assert lock_manager.is_locked(lock_key) is False
        assert lock_manager.acquire_lock(lock_key, "carol", acquire_timeout=self.wait_timeout), (
            f"bob and dave gave up waiting, alice released, and carol still could not take "
            f"the lock within {self.wait_timeout} s: a waiter that gives up must leave the "
            "queue (stop_waiting), or lose its place after a short grace"
        )
        assert lock_manager.is_lock_holder(lock_key, "carol") is True
        lock_manager.release_lock(lock_key, "carol")
