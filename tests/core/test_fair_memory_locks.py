"""MemoryLockManager's fair waiting: threads are served in the order they started
waiting, plain attempts never jump the queue, and waiters that went away give way."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from typing import ClassVar

import pytest

from moorage.locking import LockInfo, MemoryLockManager
from moorage.locking import memory as memory_locks


@pytest.fixture
def locks() -> MemoryLockManager:
    return MemoryLockManager("memory://", hold_timeout=30)


@pytest.fixture
def key() -> str:
    return f"fair-{uuid.uuid4().hex}"  # the manager is process-wide: a key of our own


def waiters(manager: MemoryLockManager, key: str) -> list[str]:
    with manager._cond:
        return list(manager._queues.get(key, {}))


def has_waiters(locks: MemoryLockManager, key: str, count: int) -> bool:
    return len(waiters(locks, key)) == count


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.002)


def test_threads_are_served_in_the_order_they_started_waiting(
    locks: MemoryLockManager, key: str
) -> None:
    assert locks.acquire_lock(key, "first")
    served: list[str] = []

    def wait_for_it(holder: str) -> None:
        assert locks.acquire_lock(key, holder, acquire_timeout=30)
        served.append(holder)
        locks.release_lock(key, holder)

    names = [f"waiter-{n}" for n in range(5)]
    threads = []
    for n, name in enumerate(names):
        thread = threading.Thread(target=wait_for_it, args=(name,))
        thread.start()
        threads.append(thread)
        wait_until(functools.partial(has_waiters, locks, key, n + 1), f"{name} to queue")
    locks.release_lock(key, "first")
    assert locks.acquire_lock(key, "first", acquire_timeout=30)  # behind all of them
    served.append("first")
    locks.release_lock(key, "first")
    for thread in threads:
        thread.join()
    assert served == [*names, "first"]
    assert waiters(locks, key) == []


def test_a_free_lock_is_kept_for_the_first_waiter(locks: MemoryLockManager, key: str) -> None:
    assert locks.acquire_lock(key, "alice")
    assert not locks.try_acquire_waiting(key, "bob", 30)
    assert not locks.try_acquire_waiting(key, "carol", 30)
    locks.release_lock(key, "alice")
    assert not locks.is_locked(key)
    assert not locks.try_acquire(key, "dave", 30), "a plain try_acquire jumped the queue"
    assert not locks.acquire_lock(key, "alice", acquire_timeout=0), "the releaser jumped it"
    assert not locks.try_acquire_waiting(key, "carol", 30), "the second waiter went first"
    assert waiters(locks, key) == ["bob", "carol"]  # dave never joined; alice gave up
    assert locks.try_acquire(key, "bob", 30), "the first waiter, even by a plain attempt"
    assert waiters(locks, key) == ["carol"]
    assert locks.try_acquire(key, "bob", 30), "the holder extends its lock"
    locks.release_lock(key, "bob")
    locks.stop_waiting(key, "carol")
    assert waiters(locks, key) == []
    assert locks.acquire_lock(key, "dave", acquire_timeout=0)
    locks.release_lock(key, "dave")


def test_a_waiter_that_went_silent_loses_its_place(
    locks: MemoryLockManager, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_locks, "QUEUE_GRACE", 0.3)
    assert locks.acquire_lock(key, "alice")
    assert not locks.try_acquire_waiting(key, "ghost", 30)  # and never tries again
    locks.release_lock(key, "alice")
    assert not locks.try_acquire(key, "bob", 30)
    assert locks.acquire_lock(key, "bob", acquire_timeout=15)
    assert waiters(locks, key) == []
    locks.release_lock(key, "bob")


async def test_async_waiters_queue_and_leave(locks: MemoryLockManager, key: str) -> None:
    assert await locks.aacquire_lock(key, "alice")
    assert not await locks.aacquire_lock(key, "bob", acquire_timeout=0.05)
    assert waiters(locks, key) == [], "a waiter that gave up left its place"
    assert not await locks.atry_acquire_waiting(key, "bob", 30)
    assert waiters(locks, key) == ["bob"]
    await locks.arelease_lock(key, "alice")
    assert not await locks.aacquire_lock(key, "carol", acquire_timeout=0)
    assert await locks.aacquire_lock(key, "bob", acquire_timeout=0)
    await locks.astop_waiting(key, "bob")  # not waiting any more: nothing to do
    await locks.arelease_lock(key, "bob")
    assert waiters(locks, key) == []


def test_a_subclass_with_its_own_locks_has_its_own_queues(key: str) -> None:
    class OtherLocks(MemoryLockManager):
        _locks: ClassVar[dict[str, LockInfo]] = {}
        _cond: ClassVar[threading.Condition] = threading.Condition()

    other = OtherLocks("memory://", hold_timeout=30)
    assert OtherLocks._queues is not MemoryLockManager._queues
    assert other.acquire_lock(key, "alice")
    assert not other.try_acquire_waiting(key, "bob", 30)
    assert waiters(MemoryLockManager("memory://"), key) == []
    shared = MemoryLockManager("memory://", hold_timeout=30)
    assert shared.acquire_lock(key, "carol", acquire_timeout=0)
    shared.release_lock(key, "carol")
    other.stop_waiting(key, "bob")
    other.release_lock(key, "alice")
