"""Lapsed leases are taken over by compare-and-swap (one winner among many takers), and
a release leaves a free lock object behind that the next acquire replaces."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from moorage.errors import LockError, WriteConflict
from moorage.locking.objects import decode_lock, lock_object_name
from moorage.testing._util import BackgroundThread, unique_token

from .conftest import Place


def test_lapsed_lease_is_taken_over(place: Place) -> None:
    key = f"lapsed-{unique_token()}"
    alice, bob = place.manager(), place.manager()
    storage = place.storage()
    assert alice.acquire_lock(key, "alice", acquire_timeout=0, hold_timeout=0.3)
    before = storage.version_of(lock_object_name(key))
    assert bob.try_acquire(key, "bob", 60) is False, "taken while alice's lease ran"
    time.sleep(0.5)
    assert bob.try_acquire(key, "bob", 60) is True
    body = decode_lock(storage.read_path(lock_object_name(key)))
    assert body is not None
    assert body.holder == "bob"
    assert storage.version_of(lock_object_name(key)) != before, "replaced in place"
    with pytest.raises(LockError, match="held by 'bob'"):
        alice.release_lock(key, "alice")
    assert alice.lock_holder(key) == "bob"
    bob.release_lock(key, "bob")


def test_one_of_many_takers_wins_a_lapsed_lease(place: Place) -> None:
    key, takers = f"takers-{unique_token()}", 6
    first = place.manager()
    managers = [place.manager() for _ in range(takers)]
    assert first.acquire_lock(key, "crashed", acquire_timeout=0, hold_timeout=0.2)
    time.sleep(0.4)
    start = threading.Barrier(takers, timeout=30)
    won: list[str] = []
    guard = threading.Lock()

    def take(index: int) -> None:
        start.wait()
        if managers[index].try_acquire(key, f"taker-{index}", 60):
            with guard:
                won.append(f"taker-{index}")

    running = [
        BackgroundThread(functools.partial(take, i), name=f"taker-{i}").start()
        for i in range(takers)
    ]
    for thread in running:
        thread.join(60)
    assert len(won) == 1, f"winners of one lapsed lease: {won}"
    assert first.lock_holder(key) == won[0]
    first.release_lock(key, won[0])


def test_release_leaves_a_free_lock_object(place: Place) -> None:
    key = f"tombstone-{unique_token()}"
    locks, storage = place.manager(), place.storage()
    name = lock_object_name(key)
    assert locks.acquire_lock(key, "alice", acquire_timeout=0)
    locks.release_lock(key, "alice")
    body = decode_lock(storage.read_path(name))
    assert body is not None
    assert body.holder is None
    assert body.expires_at is None
    assert list(storage.list_paths(".moorage-locks/")) == [name]
    assert locks.is_locked(key) is False
    assert locks.acquire_lock(key, "bob", acquire_timeout=0), "a free object is taken over"
    assert locks.lock_holder(key) == "bob"
    locks.release_lock(key, "bob")


def test_deleted_lock_object_is_free(place: Place) -> None:
    """Deleting lock objects (the documented cleanup) frees their locks; nothing fails."""
    key = f"deleted-{unique_token()}"
    locks, storage = place.manager(), place.storage()
    assert locks.acquire_lock(key, "alice", acquire_timeout=0)
    storage.delete_path(lock_object_name(key))
    assert locks.lock_holder(key) is None
    with pytest.raises(LockError, match="not held"):
        locks.release_lock(key, "alice")
    assert locks.acquire_lock(key, "bob", acquire_timeout=0)
    locks.release_lock(key, "bob")


def test_replace_over_a_deleted_lock_object_is_refused(place: Place) -> None:
    """What makes deleting lock objects safe against an acquire in flight: the acquire's
    replace names the version it read, and the store refuses it once that is gone."""
    key = f"deleted-{unique_token()}"
    locks, storage = place.manager(), place.storage()
    name = lock_object_name(key)
    assert locks.acquire_lock(key, "alice", acquire_timeout=0)
    locks.release_lock(key, "alice")
    read = storage.version_of(name)
    assert read is not None
    storage.delete_path(name)
    with pytest.raises(WriteConflict):
        storage.write_path(name, b"{}", if_version=read)
    assert storage.version_of(name) is None
