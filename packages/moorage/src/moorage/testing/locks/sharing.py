"""`SharingCases`: managers that share a backend, pickled copies, equality."""

from __future__ import annotations

import pickle
from types import ModuleType

import cloudpickle
import pytest

from moorage.errors import LockError
from moorage.locking import LockManager
from moorage.testing.locks.harness import LockManagerFactory, LockManagerHarness

__all__ = ["SharingCases"]


class SharingCases(LockManagerHarness):
    """Locks live in the backend, not in one manager object: two managers of one backend
    see each other's locks, a manager travels to other processes as its configuration
    (pickle and cloudpickle) and the copy still sees the same locks, and managers compare
    and hash by configuration. ``shared_backend = False`` skips the two-manager test."""

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
