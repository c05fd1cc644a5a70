"""`WaitingCases`: ``wait_for_lock`` and an ``acquire_lock`` that waits for a release."""

from __future__ import annotations

import asyncio
import time

from moorage.locking import LockManager
from moorage.testing._util import BackgroundThread, run
from moorage.testing.locks.harness import LockManagerHarness

__all__ = ["WaitingCases"]


class WaitingCases(LockManagerHarness):
    """Waiting, sync and async: a wait ends with True when the holder releases, False
    when its timeout passes first; an acquire with a timeout waits for the release."""

    def _release_later(self, manager: LockManager, key: str, holder: str) -> BackgroundThread:
        """A started thread that releases ``holder``'s lock on ``key`` in 0.2 seconds."""

        def release() -> None:
            time.sleep(0.2)
            manager.release_lock(key, holder)

        return BackgroundThread(release, name=f"release-{holder}").start()

    def test_wait_for_lock_returns_true_when_released(
        self, lock_manager: LockManager, lock_key: str
    ) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        releaser = self._release_later(lock_manager, lock_key, "alice")
        try:
            assert lock_manager.wait_for_lock(lock_key, timeout=self.wait_timeout) is True
        finally:
            releaser.join(self.wait_timeout)
        assert lock_manager.is_locked(lock_key) is False

    def test_wait_for_lock_times_out(self, lock_manager: LockManager, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        try:
            assert lock_manager.wait_for_lock(lock_key, timeout=0.2) is False
            assert lock_manager.is_lock_holder(lock_key, "alice") is True
        finally:
            lock_manager.release_lock(lock_key, "alice")

    def test_acquire_waits_for_release(self, lock_manager: LockManager, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        releaser = self._release_later(lock_manager, lock_key, "alice")
        try:
            assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=self.wait_timeout)
        finally:
            releaser.join(self.wait_timeout)
        assert lock_manager.is_lock_holder(lock_key, "bob") is True
        lock_manager.release_lock(lock_key, "bob")

    def test_async_wait_for_lock(self, lock_manager: LockManager, lock_key: str) -> None:
        async def release_later() -> None:
            await asyncio.sleep(0.2)
            await lock_manager.arelease_lock(lock_key, "alice")

        async def scenario() -> None:
            assert await lock_manager.await_for_lock(lock_key, timeout=0) is True
            assert await lock_manager.aacquire_lock(lock_key, "alice", acquire_timeout=0)
            assert await lock_manager.await_for_lock(lock_key, timeout=0.2) is False
            releaser = asyncio.create_task(release_later())
            assert await lock_manager.await_for_lock(lock_key, timeout=self.wait_timeout)
            await releaser
            assert await lock_manager.aacquire_lock(lock_key, "alice", acquire_timeout=0)
            releaser = asyncio.create_task(release_later())
            assert await lock_manager.aacquire_lock(
                lock_key, "bob", acquire_timeout=self.wait_timeout
            )
            await releaser
            await lock_manager.arelease_lock(lock_key, "bob")

        run(scenario())
        assert lock_manager.is_locked(lock_key) is False
