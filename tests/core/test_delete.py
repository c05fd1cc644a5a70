"""`ResultStore.delete`: a record removed from every backend, split records included,
the memory cache forgotten, locks respected."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from moorage import InvalidKey, LockError, RecordNotFound
from moorage.locking import MemoryLockManager
from moorage.results import ResultStore
from moorage.storage import MemoryStorage
from moorage.store.memory_cache import ResultCache

MakeStorage = Callable[..., Any]


@pytest.fixture(params=["memory", "local", "s3", "gcs", "azure"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every storage backend, each against its real server (see tests/servers)."""
    return str(request.param)


def make_store(make_storage: MakeStorage, **kwargs: Any) -> ResultStore:
    kwargs.setdefault("cache", ResultCache())
    return ResultStore(result_storage=make_storage(), **kwargs)


def test_delete_removes_the_record_and_says_it_was_there(make_storage: MakeStorage) -> None:
    store = make_store(make_storage)
    store.write({"n": 1}, key="gone/soon")
    store.write("kept", key="gone/kept")
    assert store.delete("gone/soon") is True
    assert not store.exists("gone/soon")
    with pytest.raises(RecordNotFound, match="gone/soon"):
        store.read("gone/soon")
    assert store.read("gone/kept").result == "kept"
    assert store.delete("gone/soon") is False  # nothing there any more


def test_delete_forgets_the_memory_cache(make_storage: MakeStorage) -> None:
    store = make_store(make_storage)
    store.write(41, key="cached")
    assert store.read("cached").result == 41  # now in the memory cache
    store.delete("cached")
    with pytest.raises(RecordNotFound):
        store.read("cached")


def test_adelete_is_the_async_twin(make_storage: MakeStorage) -> None:
    store = make_store(make_storage)

    async def scenario() -> tuple[bool, bool, bool]:
        await store.awrite("x", key="async-gone")
        first = await store.adelete("async-gone")
        second = await store.adelete("async-gone")
        return first, second, await store.aexists("async-gone")

    assert asyncio.run(scenario()) == (True, False, False)


def test_delete_of_a_split_record_removes_metadata_then_payload() -> None:
    results = MemoryStorage("memory://delete-split-results")
    keys = MemoryStorage("memory://delete-split-keys")
    store = ResultStore(result_storage=results, metadata_storage=keys, cache=ResultCache())
    store.write([1, 2, 3], key="split")
    assert keys.exists("split")
    assert results.exists("split")
    assert store.delete("split") is True
    assert not keys.exists("split")
    assert not results.exists("split")


def test_delete_of_a_payload_left_without_metadata_removes_it() -> None:
    results = MemoryStorage("memory://delete-orphan-results")
    keys = MemoryStorage("memory://delete-orphan-keys")
    store = ResultStore(result_storage=results, metadata_storage=keys, cache=ResultCache())
    results.write_path("orphan", b"payload of a writer that died")
    assert store.delete("orphan") is True
    assert not results.exists("orphan")


def test_delete_refuses_a_key_another_holder_locked() -> None:
    store = ResultStore(
        result_storage=MemoryStorage("memory://delete-locked"),
        lock_manager=MemoryLockManager(),
        cache=ResultCache(),
    )
    store.write("v", key="locked")
    assert store.acquire_lock("locked", holder="someone-else")
    try:
        with pytest.raises(LockError, match=r"cannot delete record 'locked'.*someone-else"):
            store.delete("locked", holder="me")
        assert store.read("locked", holder="someone-else").result == "v"
        assert store.delete("locked", holder="someone-else") is True
    finally:
        store.release_lock("locked", holder="someone-else")


def test_delete_checks_the_key_before_any_io() -> None:
    store = ResultStore(result_storage=MemoryStorage("memory://delete-keys"), cache=ResultCache())
    with pytest.raises(InvalidKey):
        store.delete("../outside")
