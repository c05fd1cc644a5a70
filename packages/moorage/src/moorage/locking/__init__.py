"""Locking: the lock-manager contract (`LockManager`), its shared rules, and the
built-in ``memory://`` lock manager."""

from moorage.locking.base import (
    DEFAULT_HOLD_TIMEOUT,
    IsolationLevel,
    LockInfo,
    LockManager,
    backoff_delays,
    comparable_hold_timeout,
    expiry_from,
    release_error,
)
from moorage.locking.memory import MemoryLockManager
from moorage.locking.objects import ObjectStoreLockManager

__all__ = [
    "DEFAULT_HOLD_TIMEOUT",
    "IsolationLevel",
    "LockInfo",
    "LockManager",
    "MemoryLockManager",
    "ObjectStoreLockManager",
    "backoff_delays",
    "comparable_hold_timeout",
    "expiry_from",
    "release_error",
]
