"""Configuration and the rules around the requests: storages without conditional writes
are refused, hold timeouts from URLs, holder names, a write retried after it had
succeeded, and async operations that never go through a worker thread."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

import pytest

import moorage.locking.base
import moorage.storage.base
from moorage.errors import ConfigurationError, WriteConflict
from moorage.locking import ObjectStoreLockManager
from moorage.locking.objects import MAX_HOLDER_CHARS, decode_lock, lock_object_name
from moorage.plugins.resolve import lock_manager_from
from moorage.storage.memory import MemoryStorage
from moorage.testing._util import unique_token

from .conftest import Place


def _memory() -> MemoryStorage:
    return MemoryStorage(f"memory://object-locks-{uuid.uuid4().hex}")


class CreateOnly(MemoryStorage):
    """A storage that cannot replace a version: too weak for locks."""

    conditional_replace: ClassVar[bool] = False


class RetriedAfterSuccess(MemoryStorage):
    """Each conditional write lands, then answers `WriteConflict`: what a client sees
    when its first attempt succeeded unseen and its retry was refused because of it."""

    def write_path(
        self, key: str, content: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        condition: dict[str, Any] = {"if_absent": True} if if_absent else {}
        if if_version is not None:
            condition = {"if_version": if_version}
        super().write_path(key, content, **condition)
        raise WriteConflict(f"record {key!r} in {self.url} changed (the retry was refused)")


def test_storage_without_conditional_writes_is_refused() -> None:
    storage = CreateOnly(f"memory://weak-{uuid.uuid4().hex}")
    with pytest.raises(ConfigurationError, match=rf"{storage.url}.*conditional_replace"):
        ObjectStoreLockManager(storage)


def test_options_go_with_a_url_not_a_storage_object() -> None:
    with pytest.raises(ConfigurationError, match="give them to the storage"):
        ObjectStoreLockManager(_memory(), endpoint_url="http://127.0.0.1:1")


@pytest.mark.parametrize(
    ("given", "expected"), [("30", 30.0), ("0.5", 0.5), ("none", None), ("inf", float("inf"))]
)
def test_hold_timeout_as_text(given: str, expected: float | None) -> None:
    assert ObjectStoreLockManager(_memory(), hold_timeout=given).hold_timeout == expected


@pytest.mark.parametrize("given", ["soon", "-1", "0"])
def test_bad_hold_timeout_is_refused(given: str) -> None:
    with pytest.raises(ConfigurationError, match="hold_timeout"):
        ObjectStoreLockManager(_memory(), hold_timeout=given)


def test_long_holder_is_refused() -> None:
    locks = ObjectStoreLockManager(_memory())
    with pytest.raises(ConfigurationError, match="holder"):
        locks.try_acquire("k", "h" * (MAX_HOLDER_CHARS + 1), 60)
    assert locks.try_acquire("k", "h" * MAX_HOLDER_CHARS, 60) is True


def test_lock_object_names_are_one_hashed_segment() -> None:
    names = {lock_object_name(k) for k in ["a", "a/b", "x.lock", "ключ", "\udc80", "k" * 5000]}
    assert len(names) == 6
    assert all(name.startswith(".moorage-locks/") and name.count("/") == 1 for name in names)


def test_own_write_is_recognised_after_a_refused_retry() -> None:
    storage = RetriedAfterSuccess(f"memory://retried-{uuid.uuid4().hex}")
    locks = ObjectStoreLockManager(storage)
    assert locks.try_acquire("k", "alice", 60) is True, "created, though the answer was 412"
    assert locks.try_acquire("k", "alice", 60) is True, "extended likewise"
    assert locks.try_acquire("k", "bob", 60) is False
    locks.release_lock("k", "alice")
    body = decode_lock(storage.read_path(lock_object_name("k")))
    assert body is not None
    assert body.holder is None


def test_hold_timeout_from_the_url_query(place: Place) -> None:
    locks = lock_manager_from(f"{place.url}?hold_timeout=0.25", **place.options_for(None))
    place.made.append(locks)
    assert locks.hold_timeout == 0.25
    assert lock_manager_from(place.url, **place.options_for(None)).hold_timeout == 300.0


def test_async_operations_use_no_worker_thread(
    place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an async lock operation went through a worker thread")

    # The lock manager's and the storage's fallbacks to a worker thread (the client
    # library may still use threads of its own, for DNS lookups say).
    monkeypatch.setattr(moorage.locking.base, "in_thread", refuse)
    monkeypatch.setattr(moorage.storage.base, "in_thread", refuse)
    locks, key = place.manager(), f"async-{unique_token()}"

    async def scenario() -> None:
        assert await locks.aacquire_lock(key, "alice", acquire_timeout=0)
        assert await locks.alock_holder(key) == "alice"
        assert await locks.aacquire_lock(key, "bob", acquire_timeout=0.1) is False
        await locks.arelease_lock(key, "alice")
        assert await locks.ais_locked(key) is False

    asyncio.run(scenario())
