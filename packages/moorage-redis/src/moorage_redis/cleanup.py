"""Undoing an acquire whose outcome is unknown.

An acquire that failed with a timeout or a broken connection may still run on the
server: a frozen server (a stopped process, a paused VM) finds the command in its socket
buffer when it resumes and takes the lock for a holder that was told it failed. That
lock would then block the key for its whole hold timeout.

So after such a failure `Cleanups.schedule` starts a small daemon thread that releases
the lock for that holder, with the release script (which deletes the key only while it
still names that holder, and announces the release to waiters):

- it tries at once, then again with a backoff from 50 ms doubling up to 2 s, each try
  bounded by the manager's socket timeouts and retries, for as long as the lock could
  live: the hold timeout, at most `MAX_WINDOW` seconds;
- once the server answered, it releases twice more, after `CONFIRM_DELAYS`, in case the
  stale acquire was still queued behind the first release.

A new acquire by the same holder on the same key (through this manager) cancels the
pending clean-up first, waiting for a release already on its way, so a lock the holder
then takes for real is never undone.

Clean-ups belong to one process: after ``fork()`` the child starts with none (their
threads stayed in the parent) and with a fresh guard lock.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from redis import exceptions as rex

from moorage_redis.clients import Clients
from moorage_redis.scripts import encode

__all__ = ["CONFIRM_DELAYS", "MAX_WINDOW", "Cleanups", "uncertain"]

#: The longest a clean-up keeps trying to reach the server (seconds).
MAX_WINDOW = 600.0
#: After the first answered release, release again after these many seconds.
CONFIRM_DELAYS = (0.25, 2.0)
_FIRST_DELAY, _MAX_DELAY = 0.05, 2.0


def uncertain(exc: BaseException) -> bool:
    """Whether a command that raised ``exc`` may still have run on the server."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return isinstance(cause, rex.ConnectionError | rex.TimeoutError | OSError | TimeoutError)


@dataclass(eq=False)
class _Cleanup:
    lock_key: bytes
    holder: str
    window: float
    cancelled: threading.Event = field(default_factory=threading.Event)
    busy: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)


class Cleanups:
    """The pending clean-ups of one lock manager, at most one per (lock key, holder)."""

    def __init__(self, clients: Clients) -> None:
        self._clients = clients
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._guard = threading.Lock()
        self._pending: dict[tuple[bytes, str], _Cleanup] = {}

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            self._start()  # the parent's threads and their locks stay behind

    def pending(self, lock_key: bytes, holder: str) -> bool:
        self._after_fork()
        return (lock_key, holder) in self._pending

    def schedule(self, lock_key: bytes, holder: str, hold_seconds: float | None) -> None:
        """Release ``lock_key`` for ``holder`` soon, in the background (best effort)."""
        self._after_fork()
        window = MAX_WINDOW if hold_seconds is None else min(hold_seconds, MAX_WINDOW)
        cleanup = _Cleanup(lock_key, holder, window)
        with self._guard:
            previous = self._pending.get((lock_key, holder))
            if previous is not None and not previous.done.is_set():
                return  # one is already on it
            self._pending[(lock_key, holder)] = cleanup
        thread = threading.Thread(
            target=self._run, args=(cleanup,), name="moorage-redis-cleanup", daemon=True
        )
        thread.start()

    def cancel(self, lock_key: bytes, holder: str) -> None:
        """Stop the pending clean-up of this pair, waiting for a release in flight."""
        self._after_fork()
        with self._guard:
            cleanup = self._pending.pop((lock_key, holder), None)
        if cleanup is not None:
            cleanup.cancelled.set()
            with cleanup.busy:  # a release already sent finishes before the new acquire
                pass

    def _release(self, cleanup: _Cleanup) -> bool:
        """One token-checked release; True if the server answered."""
        with cleanup.busy:
            if cleanup.cancelled.is_set():
                return False
            try:
                client = self._clients.sync()
                client.release(keys=[cleanup.lock_key], args=[encode(cleanup.holder)])
            except (rex.RedisError, rex.RedisClusterException, OSError):
                return False
            return True

    def _run(self, cleanup: _Cleanup) -> None:
        try:
            deadline = time.monotonic() + cleanup.window
            delay = _FIRST_DELAY
            while not cleanup.cancelled.is_set() and time.monotonic() < deadline:
                if self._release(cleanup):
                    for pause in CONFIRM_DELAYS:
                        if cleanup.cancelled.wait(pause):
                            return
                        self._release(cleanup)
                    return
                cleanup.cancelled.wait(delay)
                delay = min(delay * 2, _MAX_DELAY)
        finally:
            cleanup.done.set()
            with self._guard:
                if self._pending.get((cleanup.lock_key, cleanup.holder)) is cleanup:
                    del self._pending[(cleanup.lock_key, cleanup.holder)]
