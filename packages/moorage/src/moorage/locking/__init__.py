"""The lock-manager contract and the in-memory lock manager."""

from moorage.locking.base import (
    DEFAULT_HOLD_TIMEOUT,
    IsolationLevel,
    LockInfo,
    LockManager,
    MemoryLockManager,
    backoff_delays,
    expiry_from,
)

__all__ = [
    "DEFAULT_HOLD_TIMEOUT",
    "IsolationLevel",
    "LockInfo",
    "LockManager",
    "MemoryLockManager",
    "backoff_delays",
    "expiry_from",
]
