"""`LockManagerContract`: the tests every lock manager must pass."""

from __future__ import annotations

import asyncio
import functools
import pickle
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import ClassVar, Protocol

import cloudpickle
import pytest

from moorage.errors import LockError
from moorage.locking.base import LockManager
from moorage.testing._util import BackgroundThread, run, unique_token

__all__ = ["LockManagerContract", "LockManagerFactory"]


class LockManagerFactory(Protocol):
    """What the ``make_lock_manager`` fixture returns: builds a manager of your backend."""

    def __call__(self, *, hold_timeout: float | None) -> LockManager: ...


class LockManagerContract:
    """Contract tests for a `moorage.locking.base.LockManager` backend.

    Subclass it in your own test suite (name the subclass ``Test...``) and override the
    ``make_lock_manager`` fixture: it returns a function that builds a manager of your
    backend with the given default ``hold_timeout`` (seconds, or None)::

        import pytest
        from moorage.testing import LockManagerContract
        from my_plugin import MyLockManager

        class TestMyLockManager(LockManagerContract):
            @pytest.fixture
            def make_lock_manager(self, tmp_path):
                def make(*, hold_timeout):
                    return MyLockManager(tmp_path.as_uri(), hold_timeout=hold_timeout)
                return make

    The ``lock_manager`` fixture (the manager most tests use) is
    ``make_lock_manager(hold_timeout=default_hold_timeout)``; override it too only if
    you need something special. Managers made within one test must share one backend
    (two clients of one server or folder); set ``shared_backend = False`` if yours
    cannot, and the test that checks it is skipped. Managers the kit makes are closed
    after use. Keys carry a per-test random token, so process-wide backends need not be
    emptied between tests.

    Managers must pickle (with `pickle` and ``cloudpickle``) as their configuration, and
    the copy must compare and hash equal to the original and use the same backend; see
    `moorage.locking.base.LockManager.process_state`.

    No test asserts on speed: waits that should succeed get ``wait_timeout`` seconds and
    assert the outcome.
    """

    #: Default hold timeout of the ``lock_manager`` fixture's manager (seconds).
    default_hold_timeout: ClassVar[float] = 60.0
    #: A hold timeout short enough to watch a lock lapse (seconds).
    short_hold_timeout: ClassVar[float] = 0.3
    #: Upper bound for waits that must succeed (seconds); generous on purpose.
    wait_timeout: ClassVar[float] = 15.0
    #: Threads and rounds of the contention test.
    contention_threads: ClassVar[int] = 4
    contention_rounds: ClassVar[int] = 10
    #: Whether two managers made by ``make_lock_manager`` in one test share their locks.
    shared_backend: ClassVar[bool] = True

    @pytest.fixture
    def make_lock_manager(self) -> LockManagerFactory:
        """Override: return ``make(*, hold_timeout) -> LockManager`` for your backend."""
        pytest.fail(
            f"{type(self).__name__} subclasses LockManagerContract but does not override "
            "the `make_lock_manager` fixture; define `@pytest.fixture def "
            "make_lock_manager(self, ...)` returning a function `make(*, hold_timeout)` "
            "that builds your lock manager",
            pytrace=False,
        )

    @pytest.fixture
    def lock_manager(self, make_lock_manager: LockManagerFactory) -> Iterator[LockManager]:
        """A fresh manager with `default_hold_timeout` (built by ``make_lock_manager``)."""
        manager = make_lock_manager(hold_timeout=self.default_hold_timeout)
        yield manager
        manager.close()

    @pytest.fixture
    def lock_key(self) -> str:
        """A key no other test uses."""
        return f"contract-{unique_token()}/lock"

    # -- helpers -----------------------------------------------------------------------

    def _release_later(self, manager: LockManager, key: str, holder: str) -> BackgroundThread:
        def release() -> None:
            time.sleep(0.2)
            manager.release_lock(key, holder)

        return BackgroundThread(release, name=f"release-{holder}").start()

    # -- acquire and release -------------------------------------------------------------

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

    # -- hold timeouts ---------------------------------------------------------------------

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

    # -- waiting -----------------------------------------------------------------------------

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

    def test_managers_share_backend(
        self, make_lock_manager: LockManagerFactory, lock_key: str
    ) -> None:
        if not self.shared_backend:
            pytest.skip("shared_backend = False: managers of this backend do not share locks")
        first = make_lock_manager(hold_timeout=self.default_hold_timeout)
        second = make_lock_manager(hold_timeout=self.default_hold_timeout)
        try:
            assert first.acquire_lock(lock_key, "alice", acquire_timeout=0)
            assert second.is_locked(lock_key) is True
            assert second.is_lock_holder(lock_key, "alice") is True, (
                "is_lock_holder must ask the backend, not a memo of this manager"
            )
            assert second.acquire_lock(lock_key, "bob", acquire_timeout=0) is False
            with pytest.raises(LockError):
                second.release_lock(lock_key, "bob")
            second.release_lock(lock_key, "alice")  # the holder, not the manager, owns it
            assert first.is_locked(lock_key) is False
        finally:
            first.close()
            second.close()

    # -- pickling and equality ------------------------------------------------------------

    @pytest.mark.parametrize("pickler", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])
    def test_pickled_copy_is_equal_and_works(
        self, lock_manager: LockManager, lock_key: str, pickler: ModuleType
    ) -> None:
        assert lock_manager.acquire_lock(lock_key, "alice", acquire_timeout=0)
        try:
            data = pickler.dumps(lock_manager)
        except Exception as exc:  # any failure: the message says what to do
            pytest.fail(
                f"{type(lock_manager).__name__} does not pickle with {pickler.__name__} "
                f"({exc!r}): ship its configuration only, and name the attributes that "
                "belong to one process (threading locks, clients, threads) in "
                "`process_state`, rebuilt by `start_process_state`",
                pytrace=False,
            )
        copy = pickler.loads(data)
        try:
            assert type(copy) is type(lock_manager)
            assert copy == lock_manager, "a pickled copy must compare equal to its original"
            assert hash(copy) == hash(lock_manager), "equal managers must hash equal"
            assert copy.hold_timeout == lock_manager.hold_timeout
            assert copy.is_lock_holder(lock_key, "alice") is True, (
                "the copy must see the original's locks: it must use the same backend"
            )
            assert copy.acquire_lock(lock_key, "bob", acquire_timeout=0) is False
            copy.release_lock(lock_key, "alice")  # the holder, not the manager, owns it
            assert lock_manager.is_locked(lock_key) is False
            assert copy.acquire_lock(lock_key, "bob", acquire_timeout=0)
            assert lock_manager.is_lock_holder(lock_key, "bob") is True
            lock_manager.release_lock(lock_key, "bob")
        finally:
            if copy is not lock_manager:
                copy.close()

    def test_equal_by_configuration(
        self, make_lock_manager: LockManagerFactory, lock_manager: LockManager
    ) -> None:
        same = make_lock_manager(hold_timeout=self.default_hold_timeout)
        other = make_lock_manager(hold_timeout=self.short_hold_timeout)
        try:
            assert same == lock_manager, "managers with one configuration must compare equal"
            assert hash(same) == hash(lock_manager)
            assert len({same, lock_manager}) == 1
            assert other != lock_manager, "a different hold_timeout is a different manager"
            assert lock_manager != object()
        finally:
            for made in (same, other):
                if made is not lock_manager:
                    made.close()

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
