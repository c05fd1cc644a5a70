"""The built-in ``memory://`` lock manager: locks shared by the threads and asyncio tasks
of one process (one manager per hold timeout), released in a forked child.

Waiting is fair: a waiting `acquire_lock` joins the key's queue, and a free lock goes to
the first waiter in it, so threads are served in the order they started waiting and a
holder that releases and asks again at once waits behind them. A waiter that gives up
leaves the queue; one that has not tried for `QUEUE_GRACE` seconds loses its place.
"""

from __future__ import annotations

import os
import threading
import time
from contextvars import ContextVar
from typing import Any, ClassVar, Self, cast
from urllib.parse import urlsplit

from moorage.errors import ConfigurationError
from moorage.locking.base import (
    DEFAULT_HOLD_TIMEOUT,
    LockInfo,
    LockManager,
    comparable_hold_timeout,
    expiry_from,
    release_error,
)

__all__ = ["QUEUE_GRACE", "MemoryLockManager"]

#: Seconds a waiter keeps its place in a queue after its latest attempt. A waiting
#: thread tries again at least every 0.1 s (the shared backoff's cap), so only a waiter
#: that stopped without leaving (its thread stuck, a task dropped) is passed over.
QUEUE_GRACE = 2.0

#: The (key, holder) this thread's (or asyncio task's) waiting acquire waits as, so that
#: its waits know whether a free lock is its to take.
_waiting_as: ContextVar[tuple[str, str] | None] = ContextVar("moorage_waiting_as", default=None)


class MemoryLockManager(LockManager):
    """Process-wide locks: ``memory://``. All managers in one process share the locks.

    ``MemoryLockManager()`` is the process-wide manager that ``memory://`` resolves to
    (the same object; one per hold timeout, so ``lock_hold_timeout`` still applies), and
    a `MemoryLockManager` unpickled in another process is that process's manager: the
    locks never cross processes. A child made by ``fork()`` starts with no locks and a
    fresh condition variable, since the parent's threads hold the parent's locks.

    Waiting threads are woken by a condition variable when a lock is released, and a
    free lock goes to the first of them that started waiting (see the module's notes).
    """

    schemes = ("memory",)
    _locks: ClassVar[dict[str, LockInfo]] = {}
    #: Per key, its waiters in arrival order, each with the monotonic time it last tried.
    _queues: ClassVar[dict[str, dict[str, float]]] = {}
    _cond: ClassVar[threading.Condition] = threading.Condition()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that keeps its own locks (its own ``_locks``) gets its own queues."""
        super().__init_subclass__(**kwargs)
        if "_locks" in vars(cls) and "_queues" not in vars(cls):
            cls._queues = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if cls is not MemoryLockManager:  # subclasses build their instances as usual
            return super().__new__(cls)
        return cast(Self, _shared_memory_manager(*args, **kwargs))

    def __init__(
        self, url: str = "memory://", hold_timeout: float | None = DEFAULT_HOLD_TIMEOUT
    ) -> None:
        if type(self) is MemoryLockManager:
            return  # the shared instance, configured once by _shared_memory_manager
        super().__init__(hold_timeout)
        _check_memory_url(url)
        self.url = "memory://"

    def __reduce_ex__(self, protocol: Any) -> str | tuple[Any, ...]:
        if type(self) is MemoryLockManager:  # unpickled: the receiving process's manager
            return (MemoryLockManager, ("memory://", self.hold_timeout))
        return super().__reduce_ex__(protocol)

    def _current(self, key: str, now: float) -> LockInfo | None:
        info = self._locks.get(key)
        if info is not None and info.expired(now):
            del self._locks[key]
            self._cond.notify_all()
            return None
        return info

    def _live_queue(self, key: str) -> dict[str, float]:
        """``key``'s waiters tried within `QUEUE_GRACE` seconds, first first (the others
        are dropped); an empty dict when nobody waits."""
        queue = self._queues.get(key)
        if queue is None:
            return {}
        now = time.monotonic()
        stale = [holder for holder, seen in queue.items() if now - seen >= QUEUE_GRACE]
        for holder in stale:
            del queue[holder]
        if not queue:
            del self._queues[key]
        elif stale:
            self._cond.notify_all()  # a new first waiter may take a free lock
        return queue

    def try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """Take the lock without waiting: if ``holder`` holds it (extending it), or it is
        free and nobody waits for it or ``holder`` waits first. Never joins the queue."""
        with self._cond:
            now = time.time()
            info = self._current(key, now)
            queue = self._live_queue(key)
            if info is not None and info.holder != holder:
                return False
            if info is None and queue and next(iter(queue)) != holder:
                return False  # free, but kept for the first waiter
            self._locks[key] = LockInfo(holder, expiry_from(now, hold_timeout))
            if queue.pop(holder, None) is not None and not queue:
                del self._queues[key]
            return True

    def try_acquire_waiting(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """One attempt of a waiting acquire: `try_acquire`, and if refused, ``holder``
        joins the end of the queue or refreshes its place."""
        if self.try_acquire(key, holder, hold_timeout):
            _waiting_as.set(None)
            return True
        with self._cond:
            self._queues.setdefault(key, {})[holder] = time.monotonic()
        _waiting_as.set((key, holder))
        return False

    def stop_waiting(self, key: str, holder: str) -> None:
        """Leave ``key``'s queue and wake the others: one of them may be first now."""
        _waiting_as.set(None)
        with self._cond:
            queue = self._queues.get(key)
            if queue is not None and queue.pop(holder, None) is not None:
                if not queue:
                    del self._queues[key]
                self._cond.notify_all()

    async def atry_acquire_waiting(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        return self.try_acquire_waiting(key, holder, hold_timeout)

    async def astop_waiting(self, key: str, holder: str) -> None:
        self.stop_waiting(key, holder)

    def release_lock(self, key: str, holder: str) -> None:
        with self._cond:
            info = self._current(key, time.time())
            if info is None or info.holder != holder:
                raise release_error(key, holder, None if info is None else info.holder, self.url)
            del self._locks[key]
            self._cond.notify_all()

    def lock_holder(self, key: str) -> str | None:
        with self._cond:
            info = self._current(key, time.time())
            return None if info is None else info.holder

    def wait_until_free(self, key: str, delay: float) -> None:
        """Wait on the condition for at most ``delay`` unless the lock is free for this
        waiter: free and, if others wait, this thread's waiting holder is the first."""
        with self._cond:
            if self._current(key, time.time()) is not None or not self._free_for_me(key):
                self._cond.wait(delay)

    def _free_for_me(self, key: str) -> bool:
        """Whether a free ``key`` may be taken by the caller (called under the condition):
        nobody waits, the caller is not a waiting acquire (`wait_for_lock`), or it is the
        first waiter."""
        waiting = _waiting_as.get()
        if waiting is None or waiting[0] != key:
            return True
        queue = self._live_queue(key)
        return not queue or next(iter(queue)) == waiting[1]

    async def atry_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        return self.try_acquire(key, holder, hold_timeout)

    async def arelease_lock(self, key: str, holder: str) -> None:
        self.release_lock(key, holder)

    async def alock_holder(self, key: str) -> str | None:
        return self.lock_holder(key)


def _check_memory_url(url: str) -> None:
    if urlsplit(url).scheme not in ("memory", ""):
        raise ConfigurationError(f"MemoryLockManager takes memory:// URLs, not {url!r}")


_memory_managers: dict[float | None, MemoryLockManager] = {}
_memory_managers_lock = threading.Lock()


def _shared_memory_manager(
    url: str = "memory://", hold_timeout: float | None = DEFAULT_HOLD_TIMEOUT
) -> MemoryLockManager:
    """This process's `MemoryLockManager` with ``hold_timeout``, made on first use."""
    _check_memory_url(url)
    key = comparable_hold_timeout(hold_timeout)  # validates
    with _memory_managers_lock:
        manager = _memory_managers.get(key)
        if manager is None:
            manager = object.__new__(MemoryLockManager)
            LockManager.__init__(manager, hold_timeout)
            manager.url = "memory://"
            _memory_managers[key] = manager
        return manager


def _memory_after_fork() -> None:
    """In a forked child: no locks (the parent's threads hold them) and fresh thread
    primitives (a parent thread may have held them at the fork)."""
    global _memory_managers_lock
    _memory_managers_lock = threading.Lock()
    pending: list[type[MemoryLockManager]] = [MemoryLockManager]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "_cond" in vars(cls):
            cls._cond = threading.Condition()
        if "_locks" in vars(cls):
            cls._locks.clear()
        if "_queues" in vars(cls):
            cls._queues.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_memory_after_fork)
