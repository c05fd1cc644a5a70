"""`HoldingCases`: acquire, re-acquire and release, and who may do which."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from moorage.errors import LockError
from moorage.locking import LockManager
from moorage.testing._util import BackgroundThread, run, unique_token
from moorage.testing.locks.harness import LockManagerHarness

__all__ = ["HoldingCases"]


class HoldingCases(LockManagerHarness):
    """One holder at a time, sync and async: a holder may re-acquire its lock, only the
    holder may release it, distinct keys are distinct locks, and threads contending for
    one key exclude each other (tuned by ``contention_threads`` and
    ``contention_rounds``)."""

    def test_is_a_lock_manager(self, lock_manager: LockManager) -> None:
        assert isinstance(lock_manager, LockManager), (
            f"{type(lock_manager).__name__} must subclass moorage.locking.base.LockManager"
        )
        assert lock_manager.hold_timeout == self.default_hold_timeout, (
            "the manager must keep the hold_timeout it was built with"
        )

    def test_unused_key_is_free(self, lock_manager: LockManager, lock_key: str) -> None:
        assert lock_manager.is_locked(lock_key) is False
        assert lock_manager.is_lock_holder(lock_key, "anyone") is False
        assert lock_manager.wait_for_lock(lock_key, timeout=self.wait_timeout) is True

    def test_acquire_and_release(self, lock_manager: LockManager, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=self.wait_timeout)
        assert lock_manager.is_locked(lock_key) is True
        assert lock_manager.is_lock_holder(lock_key, "alice") is True
        assert lock_manager.is_lock_holder(lock_key, "bob") is False
        lock_manager.release_lock(lock_key, "alice")
        assert lock_manager.is_locked(lock_key) is False
        assert lock_manager.is_lock_holder(lock_key, "alice") is False
        assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=self.wait_timeout)
        assert lock_manager.is_lock_holder(lock_key, "bob") is True
        lock_manager.release_lock(lock_key, "bob")

    def test_reacquire_by_same_holder(self, lock_manager: LockManager, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=self.wait_timeout)
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0) is True, (
            "re-acquiring a lock one holds must succeed at once"
        )
        assert lock_manager.is_lock_holder(lock_key, "alice") is True
        lock_manager.release_lock(lock_key, "alice")
        assert lock_manager.is_locked(lock_key) is False, "one release frees a re-acquired lock"

    def test_other_holder_cannot_acquire(self, lock_manager: LockManager, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=self.wait_timeout)
        try:
            assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0) is False
            assert lock_manager.acquire_lock(lock_key, "bob", acquire_timeout=0.2) is False
            assert lock_manager.is_lock_holder(lock_key, "alice") is True
            assert lock_manager.is_lock_holder(lock_key, "bob") is False
        finally:
            lock_manager.release_lock(lock_key, "alice")

    def test_release_by_other_holder_raises(self, lock_manager: LockManager, lock_key: str) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=self.wait_timeout)
        with pytest.raises(LockError):
            lock_manager.release_lock(lock_key, "bob")
        assert lock_manager.is_lock_holder(lock_key, "alice") is True, (
            "a refused release must leave the lock with its holder"
        )
        lock_manager.release_lock(lock_key, "alice")

    def test_release_unheld_raises(self, lock_manager: LockManager, lock_key: str) -> None:
        with pytest.raises(LockError):
            lock_manager.release_lock(lock_key, "alice")
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=self.wait_timeout)
        lock_manager.release_lock(lock_key, "alice")
        with pytest.raises(LockError):
            lock_manager.release_lock(lock_key, "alice")
        assert lock_manager.is_locked(lock_key) is False

    # -- keys ------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("my.key", "my.other"),
            ("my.key", "my_key"),
            ("a", "a/b"),
            ("a/b", "a"),
            ("x", "x.lock"),
            ("space key", "space-key"),
            ("ключ", "ключи"),
        ],
    )
    def test_distinct_keys_are_independent(
        self, lock_manager: LockManager, first: str, second: str
    ) -> None:
        token = unique_token()
        key1, key2 = f"{token}/{first}", f"{token}/{second}"
        assert lock_manager.acquire_lock(key1, "alice", acquire_timeout=0)
        try:
            assert lock_manager.is_locked(key2) is False, f"locking {first!r} locked {second!r}"
            assert lock_manager.acquire_lock(key2, "bob", acquire_timeout=0) is True
            assert lock_manager.is_lock_holder(key1, "alice") is True
            assert lock_manager.is_lock_holder(key2, "bob") is True
            lock_manager.release_lock(key2, "bob")
            assert lock_manager.is_lock_holder(key1, "alice") is True, (
                f"releasing {second!r} released {first!r}"
            )
        finally:
            lock_manager.release_lock(key1, "alice")
        assert lock_manager.is_locked(key1) is False
        assert lock_manager.is_locked(key2) is False

    # -- async twins ------------------------------------------------------------------------

    def test_async_acquire_and_release(self, lock_manager: LockManager, lock_key: str) -> None:
        async def scenario() -> None:
            assert await lock_manager.aacquire_lock(lock_key, "alice", acquire_timeout=0)
            assert await lock_manager.aacquire_lock(lock_key, "alice", acquire_timeout=0)
            assert await lock_manager.aacquire_lock(lock_key, "bob", acquire_timeout=0.2) is False
            with pytest.raises(LockError):
                await lock_manager.arelease_lock(lock_key, "bob")
            await lock_manager.arelease_lock(lock_key, "alice")
            with pytest.raises(LockError):
                await lock_manager.arelease_lock(lock_key, "alice")
            assert await lock_manager.aacquire_lock(lock_key, "bob", acquire_timeout=0)
            await lock_manager.arelease_lock(lock_key, "bob")

        run(scenario())
        assert lock_manager.is_locked(lock_key) is False

    # -- contention -----------------------------------------------------------------------

    def test_contending_threads_exclude_each_other(
        self, lock_manager: LockManager, lock_key: str
    ) -> None:
        counter = [0]
        rounds = self.contention_rounds
        start = threading.Barrier(self.contention_threads, timeout=self.wait_timeout)
        timeout = self.wait_timeout * 4

        def worker(holder: str) -> None:
            start.wait()
            for _ in range(rounds):
                assert lock_manager.acquire_lock(lock_key, holder, acquire_timeout=timeout), (
                    f"{holder} waited over {timeout} s for the lock"
                )
                try:
                    value = counter[0]
                    time.sleep(0.001)  # widen the window a broken lock would let through
                    counter[0] = value + 1
                finally:
                    lock_manager.release_lock(lock_key, holder)

        threads = [
            BackgroundThread(functools.partial(worker, f"worker-{i}"), name=f"worker-{i}").start()
            for i in range(self.contention_threads)
        ]
        for thread in threads:
            thread.join(timeout * rounds)
        assert counter[0] == self.contention_threads * rounds, (
            f"{counter[0]} increments instead of {self.contention_threads * rounds}: two "
            "holders had the lock at once"
        )
        assert lock_manager.is_locked(lock_key) is False
