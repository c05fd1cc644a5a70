"""The built-in ``memory://`` lock manager: locks shared by the threads and asyncio tasks
of one process (one manager per hold timeout), released in a forked child."""

from __future__ import annotations

import os
import threading
import time
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

__all__ = ["MemoryLockManager"]


class MemoryLockManager(LockManager):
    """Process-wide locks: ``memory://``. All managers in one process share the locks.

    ``MemoryLockManager()`` is the process-wide manager that ``memory://`` resolves to
    (the same object; one per hold timeout, so ``lock_hold_timeout`` still applies), and
    a `MemoryLockManager` unpickled in another process is that process's manager: the
    locks never cross processes. A child made by ``fork()`` starts with no locks and a
    fresh condition variable, since the parent's threads hold the parent's locks.

    Waiting threads are woken by a condition variable when a lock is released.
    """

    schemes = ("memory",)
    _locks: ClassVar[dict[str, LockInfo]] = {}
    _cond: ClassVar[threading.Condition] = threading.Condition()

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

    def try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        with self._cond:
            now = time.time()
            info = self._current(key, now)
            if info is not None and info.holder != holder:
                return False
            self._locks[key] = LockInfo(holder, expiry_from(now, hold_timeout))
            return True

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
        with self._cond:
            if key in self._locks:
                self._cond.wait(delay)

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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_memory_after_fork)
