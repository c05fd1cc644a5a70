"""The lock-manager contract and its shared rules (the backoff, expiry, holder checks).

A backend implements three primitives, all non-blocking:

- `try_acquire(key, holder, hold_timeout)`: take the lock if it is free, expired, or
  already held by ``holder`` (re-acquiring extends it);
- `release_lock(key, holder)`: free it, raising `LockError` if another holder has it;
- `lock_holder(key)`: the current, unexpired holder, asked of the backend.

The base class builds the blocking operations (`acquire_lock`, `wait_for_lock`) and
their async twins from those primitives with one shared backoff schedule, so sync and
async behave alike. Backends that can be told when a lock is freed (Redis pub/sub, a
condition variable) override `wait_until_free` / `await_until_free`.

Lock managers travel between processes: they pickle (with `pickle` and ``cloudpickle``)
as their configuration only, and two managers of one class with the same configuration
compare and hash equal (`LockManager.configuration_key`). What belongs to one process
(threading locks, client connections, background threads) is named in
`LockManager.process_state`, left out when pickling, and built again in the receiving
process.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, cast

from moorage.errors import ConfigurationError, LockError
from moorage.landing import land
from moorage.operations import Call, Op, in_thread, run_async, run_sync

__all__ = [
    "DEFAULT_HOLD_TIMEOUT",
    "IsolationLevel",
    "LockInfo",
    "LockManager",
    "backoff_delays",
    "comparable_hold_timeout",
    "expiry_from",
    "release_error",
]

#: Used when neither the call, the manager nor settings give a hold timeout (seconds).
DEFAULT_HOLD_TIMEOUT = 300.0


class IsolationLevel(StrEnum):
    """How a transaction isolates its key from concurrent writers."""

    #: Read the committed record if there is one; concurrent writers may race.
    READ_COMMITTED = "READ_COMMITTED"
    #: Hold the key's lock for the whole transaction (needs a lock manager).
    SERIALIZABLE = "SERIALIZABLE"


def backoff_delays(first: float = 0.002, cap: float = 0.1) -> Iterator[float]:
    """Sleep intervals for polling a lock: start short, double, stay below ``cap``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


def expiry_from(now: float, hold_timeout: float | None) -> float | None:
    """The wall-clock time at which a lock taken at ``now`` lapses (None: never)."""
    if hold_timeout is None or hold_timeout == float("inf"):
        return None
    if not hold_timeout > 0:
        raise ConfigurationError(
            f"hold_timeout must be positive seconds or None, got {hold_timeout!r}"
        )
    return now + hold_timeout


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds a lock and until when (wall-clock seconds since the epoch, or None)."""

    holder: str
    expires_at: float | None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


class LockManager(ABC):
    """Base class of every lock manager.

    ``hold_timeout`` is the default lifetime of a lock taken without one; it comes from
    the ``lock_hold_timeout`` setting when the manager is built from configuration, so a
    crashed holder never blocks a key forever. Pass ``hold_timeout=None`` explicitly to
    `acquire_lock` only where a lock must never lapse.
    """

    url: str = ""
    schemes: ClassVar[tuple[str, ...]] = ()
    #: Instance attributes that belong to one process (threading locks, clients,
    #: background threads): left out when the manager is pickled, and built again by
    #: `start_process_state` in the process that unpickles it.
    process_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, hold_timeout: float | None = DEFAULT_HOLD_TIMEOUT) -> None:
        expiry_from(0.0, hold_timeout)  # validates
        self.hold_timeout = hold_timeout

    def __repr__(self) -> str:
        """Class, URL and hold timeout; a backend's `url` never shows a password."""
        return f"{type(self).__name__}({self.url!r}, hold_timeout={self.hold_timeout!r})"

    # -- identity and pickling ---------------------------------------------------------

    def configuration_key(self) -> tuple[object, ...]:
        """What makes two managers of one class interchangeable: their configuration,
        secrets included (it is compared and hashed, never shown). The default is the
        URL and the hold timeout; override it when more settings matter."""
        return (self.url, comparable_hold_timeout(self.hold_timeout))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LockManager):
            return NotImplemented
        return type(self) is type(other) and self.configuration_key() == other.configuration_key()

    def __hash__(self) -> int:
        return hash((type(self), self.configuration_key()))

    def __getstate__(self) -> dict[str, Any]:
        """The configuration: every attribute except those named in `process_state`."""
        return {k: v for k, v in vars(self).items() if k not in self.process_state}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self.start_process_state()

    def __reduce__(self) -> tuple[Any, ...]:
        """Unpickled through `moorage.landing.land`: a process that receives equal
        managers again and again (a worker running task after task) shares one, and
        with it one set of clients."""
        return (land, (type(self), self.__getstate__()))

    def start_process_state(self) -> None:  # noqa: B027 - optional hook
        """Build the attributes named in `process_state` (called after unpickling; call
        it from ``__init__`` too). Build connections lazily, on first use, and rebuild
        them after ``fork()`` by comparing ``os.getpid()``."""

    # -- primitives ------------------------------------------------------------------

    @abstractmethod
    def try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """Take the lock without waiting; True if ``holder`` holds it afterwards."""

    @abstractmethod
    def release_lock(self, key: str, holder: str) -> None:
        """Free the lock. Raise `LockError` if it is held by someone else or not held."""

    @abstractmethod
    def lock_holder(self, key: str) -> str | None:
        """The current holder of an unexpired lock on ``key``, else None."""

    # -- fair waiting: optional ----------------------------------------------------------

    def try_acquire_waiting(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """One attempt of a waiting `acquire_lock`. The default is `try_acquire`. A
        backend that queues its waiters (so that none starves) records ``holder`` as
        waiting when the lock is not granted, and grants a free lock only to the first
        waiter still alive; a plain `try_acquire` never joins the queue."""
        return self.try_acquire(key, holder, hold_timeout)

    def stop_waiting(self, key: str, holder: str) -> None:  # noqa: B027 - optional hook
        """Leave ``key``'s queue of waiters (called when a waiting acquire gives up)."""

    async def atry_acquire_waiting(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """Async twin of `try_acquire_waiting`; the default is `atry_acquire`, so a
        backend that overrides one of the two overrides both."""
        return await self.atry_acquire(key, holder, hold_timeout)

    async def astop_waiting(self, key: str, holder: str) -> None:  # noqa: B027 - optional
        """Async twin of `stop_waiting`; the default does nothing, as `stop_waiting`."""

    def effective_hold_timeout(self, hold_timeout: float | None) -> float | None:
        """What a call's ``hold_timeout`` means: None is this manager's default."""
        return self.hold_timeout if hold_timeout is None else hold_timeout

    # -- the contract, built on the primitives ------------------------------------------

    def _poll_op(
        self, attempt: Call[bool], until: bool, key: str, timeout: float | None
    ) -> Op[bool]:
        """Repeat ``attempt`` until it returns ``until``, pausing between tries with the
        shared backoff; False once ``timeout`` seconds have passed."""
        deadline = _deadline(timeout)
        delays = backoff_delays()
        while (yield from attempt) != until:
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                return False
            pause = _min(next(delays), remaining)
            yield from Call(self.wait_until_free, self.await_until_free, key, pause)
        return True

    def _acquire_op(
        self, key: str, holder: str, acquire_timeout: float | None, hold_timeout: float | None
    ) -> Op[bool]:
        hold = self.effective_hold_timeout(hold_timeout)
        attempt = Call(self.try_acquire_waiting, self.atry_acquire_waiting, key, holder, hold)
        acquired = False
        try:
            acquired = yield from self._poll_op(attempt, True, key, acquire_timeout)
        finally:
            if not acquired:  # timed out, or failed: leave the queue for the next waiter
                yield from Call(self.stop_waiting, self.astop_waiting, key, holder)
        return acquired

    def _locked_call(self, key: str) -> Call[bool]:
        return Call(self.is_locked, self.ais_locked, key)

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock, waiting up to ``acquire_timeout`` seconds (None: forever).

        ``hold_timeout`` None means the manager's default hold timeout; pass
        ``math.inf`` for a lock that never lapses.
        """
        return run_sync(self._acquire_op(key, holder, acquire_timeout, hold_timeout))

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Async twin of `acquire_lock`."""
        return await run_async(self._acquire_op(key, holder, acquire_timeout, hold_timeout))

    def is_locked(self, key: str) -> bool:
        return self.lock_holder(key) is not None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        return self.lock_holder(key) == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if ``timeout`` passed first."""
        return run_sync(self._poll_op(self._locked_call(key), False, key, timeout))

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Async twin of `wait_for_lock`."""
        return await run_async(self._poll_op(self._locked_call(key), False, key, timeout))

    # -- waiting and async primitives: override for native behaviour ---------------------

    def wait_until_free(self, key: str, delay: float) -> None:
        """Block for at most ``delay`` seconds, or until ``key`` may have been freed."""
        time.sleep(delay)

    async def await_until_free(self, key: str, delay: float) -> None:
        """Async twin of `wait_until_free`."""
        import asyncio

        await asyncio.sleep(delay)

    async def atry_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        return await in_thread(self.try_acquire, key, holder, hold_timeout)

    async def arelease_lock(self, key: str, holder: str) -> None:
        await in_thread(self.release_lock, key, holder)

    async def alock_holder(self, key: str) -> str | None:
        return await in_thread(self.lock_holder, key)

    async def ais_locked(self, key: str) -> bool:
        return await self.alock_holder(key) is not None

    async def ais_lock_holder(self, key: str, holder: str) -> bool:
        return await self.alock_holder(key) == holder

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections the manager holds."""


def comparable_hold_timeout(hold_timeout: float | None) -> float | None:
    """A hold timeout as compared: None and infinity both mean "never lapses"."""
    return None if expiry_from(0.0, hold_timeout) is None else float(cast(float, hold_timeout))


def _min(delay: float, remaining: float | None) -> float:
    return delay if remaining is None else max(0.0, min(delay, remaining))


def release_error(key: str, holder: str, current: str | None, where: str) -> LockError:
    """The `LockError` for releasing a lock one does not hold (shared by all backends)."""
    if current is None:
        return LockError(
            f"cannot release lock on key {key!r} in {where}: it is not held (it was never "
            f"taken, was released already, or its hold timeout passed); holder {holder!r}"
        )
    return LockError(
        f"cannot release lock on key {key!r} in {where}: it is held by {current!r}, "
        f"not by {holder!r}; only the holder may release it"
    )
