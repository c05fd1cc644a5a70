"""`ExpiryCases`: hold timeouts, the manager's default and a lock's own."""

from __future__ import annotations

import time

import pytest

from moorage.errors import LockError
from moorage.locking import LockManager
from moorage.testing._util import run
from moorage.testing.locks.harness import LockManagerFactory, LockManagerHarness

__all__ = ["ExpiryCases"]


class ExpiryCases(LockManagerHarness):
    """A lock lapses after its hold timeout (the one given to ``acquire_lock``, else the
    manager's default) and another holder may then take it; a long hold timeout keeps it.
    Tuned by ``short_hold_timeout`` and ``wait_timeout``."""

    def test_lock_is_free_after_hold_timeout(
        self, lock_manager: LockManager, lock_key: str
    ) -> None:
        short = self.short_hold_timeout
        started = time.monotonic()
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0, hold_timeout=short)
        if time.monotonic() - started < short / 3:  # only meaningful while surely unexpired
            assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0) is False
        assert lock_manager.wait_for_lock(lock_key, timeout=self.wait_timeout) is True, (
            f"a lock taken with hold_timeout={short} was still held {self.wait_timeout} s later"
        )
        assert lock_manager.is_locked(lock_key) is False
        assert lock_manager.is_lock_holder(lock_key, "alice") is False
        assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=self.wait_timeout)
        assert lock_manager.is_lock_holder(lock_key, "bob") is True
        with pytest.raises(LockError):
            lock_manager.release_lock(lock_key, "alice")  # its lock lapsed; bob holds it now
        lock_manager.release_lock(lock_key, "bob")

    def test_other_holder_takes_an_expired_lock(
        self, lock_manager: LockManager, lock_key: str
    ) -> None:
        short = self.short_hold_timeout
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0, hold_timeout=short)
        assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=self.wait_timeout), (
            f"bob could not take a lock whose hold_timeout ({short} s) had passed"
        )
        assert lock_manager.is_lock_holder(lock_key, "bob") is True
        lock_manager.release_lock(lock_key, "bob")

    def test_default_hold_timeout_applies(
        self, make_lock_manager: LockManagerFactory, lock_key: str
    ) -> None:
        short = self.short_hold_timeout
        manager = make_lock_manager(hold_timeout=short)
        try:
            assert manager.hold_timeout == short
            assert manager.acquire_lock(lock_key, "alice", acquire_timeout=0)  # no hold_timeout
            assert manager.acquire_lock(lock_key, "bob", acquire_timeout=self.wait_timeout), (
                f"a lock taken without hold_timeout did not lapse after the manager's "
                f"default ({short} s)"
            )
            manager.release_lock(lock_key, "bob")
        finally:
            manager.close()

    def test_explicit_hold_timeout_beats_default(
        self, make_lock_manager: LockManagerFactory, lock_key: str
    ) -> None:
        short = self.short_hold_timeout
        manager = make_lock_manager(hold_timeout=short)
        try:
            assert manager.acquire_lock(
                lock_key, "alice", acquire_timeout=0, hold_timeout=self.default_hold_timeout
            )
            time.sleep(short * 2)
            assert manager.acquire_lock(lock_key, "bob", acquire_timeout=0) is False, (
                "a lock taken with an explicit long hold_timeout lapsed after the default"
            )
            assert manager.is_lock_holder(lock_key, "alice") is True
            manager.release_lock(lock_key, "alice")
        finally:
            manager.close()

    def test_long_default_hold_timeout_keeps_lock(
        self, lock_manager: LockManager, lock_key: str
    ) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        time.sleep(self.short_hold_timeout * 2)
        assert lock_manager.is_lock_holder(lock_key, "alice") is True
        assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0) is False
        lock_manager.release_lock(lock_key, "alice")

    def test_async_hold_timeout(self, lock_manager: LockManager, lock_key: str) -> None:
        async def scenario() -> None:
            assert await lock_manager.aacquire_lock(
                lock_key, "alice", acquire_timeout=0, hold_timeout=self.short_hold_timeout
            )
            assert await lock_manager.aacquire_lock(
                lock_key, "bob", acquire_timeout=self.wait_timeout
            )
            assert lock_manager.is_lock_holder(lock_key, "bob") is True
            await lock_manager.arelease_lock(lock_key, "bob")

        run(scenario())
