"""Lock objects are untrusted input: whatever is stored under a lock's name that is not a
lock of this format counts as held, until the same version has been seen unchanged for
the manager's hold timeout; then it is taken over by compare-and-swap."""

from __future__ import annotations

import json
import time

import pytest

from moorage.errors import LockError
from moorage.locking.objects import MAX_LOCK_BYTES, decode_lock, lock_object_name
from moorage.testing._util import unique_token

from .conftest import Place

_VALID = {
    "moorage_lock": 1,
    "holder": "alice",
    "expires_at": None,
    "created_at": 1.0,
    "nonce": "ab",
}

BODIES = {
    "garbage": b"\x00\xffnot a lock",
    "not an object": b"[1, 2, 3]",
    "holder not a str": json.dumps({**_VALID, "holder": 5}).encode(),
    "expiry not a number": json.dumps({**_VALID, "expires_at": "soon"}).encode(),
    "expiry not finite": json.dumps({**_VALID, "expires_at": 1e400}).encode(),
    "future format": json.dumps({**_VALID, "moorage_lock": 2}).encode(),
    "no nonce": json.dumps({k: v for k, v in _VALID.items() if k != "nonce"}).encode(),
    "too long": json.dumps({**_VALID, "pad": "x" * MAX_LOCK_BYTES}).encode(),
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_unreadable_bodies_are_refused(body: bytes) -> None:
    assert decode_lock(body) is None
    assert decode_lock(json.dumps(_VALID).encode()) is not None


@pytest.mark.parametrize("kind", ["garbage", "too long", "future format"])
def test_unreadable_lock_object_is_held_then_taken_over(place: Place, kind: str) -> None:
    key = f"unreadable-{unique_token()}"
    hold = 0.5
    locks, storage = place.manager(hold_timeout=hold), place.storage()
    storage.write_path(lock_object_name(key), BODIES[kind])
    holder = locks.lock_holder(key)
    assert holder is not None
    assert holder.startswith("<unreadable lock object ")
    assert locks.try_acquire(key, "alice", 60) is False
    with pytest.raises(LockError):
        locks.release_lock(key, "alice")
    time.sleep(hold * 1.5)
    assert locks.try_acquire(key, "alice", 60) is True, "unchanged for the hold timeout"
    assert locks.lock_holder(key) == "alice"
    locks.release_lock(key, "alice")
    assert decode_lock(storage.read_path(lock_object_name(key))) is not None


def test_unreadable_lock_object_never_lapses_without_hold_timeout(place: Place) -> None:
    key = f"unreadable-{unique_token()}"
    locks, storage = place.manager(hold_timeout=None), place.storage()
    storage.write_path(lock_object_name(key), b"garbage")
    assert locks.try_acquire(key, "alice", None) is False
    time.sleep(0.3)
    assert locks.try_acquire(key, "alice", None) is False
    assert locks.is_locked(key) is True


def test_rewritten_unreadable_object_starts_its_wait_again(place: Place) -> None:
    """The wait is per version: an object rewritten (still unreadable) is a new one."""
    key = f"unreadable-{unique_token()}"
    hold = 0.5
    locks, storage = place.manager(hold_timeout=hold), place.storage()
    storage.write_path(lock_object_name(key), b"garbage one")
    assert locks.try_acquire(key, "alice", 60) is False
    time.sleep(hold * 1.5)
    storage.write_path(lock_object_name(key), b"garbage two")
    assert locks.try_acquire(key, "alice", 60) is False, "a new version, seen just now"
    time.sleep(hold * 1.5)
    assert locks.try_acquire(key, "alice", 60) is True
    locks.release_lock(key, "alice")
