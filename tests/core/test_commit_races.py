"""Two writers commit one key: the storage decides, exactly one value wins, and both
transactions return it. With ``overwrite=True`` the last writer wins. Run on every
backend against its real server, and on a plugin without conditional writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moorage import ResultStore, WriteConflict
from moorage.storage import Storage

MakeStorage = Callable[..., Storage]


def _store(storage: Storage, **options: Any) -> ResultStore:
    return ResultStore(result_storage=storage, **options)


def _race(storage: Storage, **options: Any) -> tuple[Any, Any]:
    """Two stores' transactions on one key, both begun before either commits; A commits
    first, then B. Returns the records each transaction ends with."""
    a = _store(storage).transaction("k", **options)
    b = _store(storage).transaction("k", **options)
    a.begin()
    b.begin()
    assert not a.is_committed()
    assert not b.is_committed()
    a.stage("A")
    b.stage("B")
    a.commit()
    b.commit()
    assert a.is_committed()
    assert b.is_committed()
    assert a.record is not None
    assert b.record is not None
    assert b.read() is b.record
    return a.record.result, b.record.result


def test_losing_commit_returns_the_winner(make_storage: MakeStorage) -> None:
    storage = make_storage("race")
    assert _race(storage) == ("A", "A")
    assert _store(storage, cache_result_in_memory=False).read("k").result == "A"


def test_losing_async_commit_returns_the_winner(make_storage: MakeStorage) -> None:
    storage = make_storage("arace")

    async def scenario() -> tuple[Any, Any]:
        a = _store(storage).transaction("k")
        b = _store(storage).transaction("k")
        await a.abegin()
        await b.abegin()
        b.stage("B")
        a.stage("A")
        await b.acommit()
        await a.acommit()
        assert a.record is not None
        assert b.record is not None
        return a.record.result, b.record.result

    assert asyncio.run(scenario()) == ("B", "B")
    assert _store(storage, cache_result_in_memory=False).read("k").result == "B"


def test_threads_racing_agree_on_one_value(make_storage: MakeStorage) -> None:
    storage = make_storage("threads")
    count = 4
    everyone_began = threading.Barrier(count, timeout=60)
    returned: list[Any] = []
    errors: list[BaseException] = []

    def writer(value: str) -> None:
        try:
            with _store(storage).transaction("k") as txn:
                everyone_began.wait()
                assert not txn.is_committed()
                txn.stage(value)
            assert txn.record is not None
            returned.append(txn.record.result)
        except BaseException as exc:  # reported below, with the thread's value
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"v{i}",)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(returned) == count
    assert len(set(returned)) == 1, f"transactions returned different values: {returned}"
    assert _store(storage, cache_result_in_memory=False).read("k").result == returned[0]


def test_overwrite_last_writer_wins(make_storage: MakeStorage) -> None:
    storage = make_storage("overwrite")
    assert _race(storage, overwrite=True) == ("A", "B")
    assert _store(storage, cache_result_in_memory=False).read("k").result == "B"


def test_expired_record_is_replaced(make_storage: MakeStorage) -> None:
    import datetime as dt

    storage = make_storage("expired")
    store = _store(storage)
    store.write("old", key="k", expiration=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    with store.transaction("k") as txn:
        assert not txn.is_committed()
        txn.stage("new")
    assert _store(storage, cache_result_in_memory=False).read("k").result == "new"


def test_serializable_commit_is_conditional_on_the_version_it_began_on(
    make_storage: MakeStorage,
) -> None:
    storage = make_storage("lapsed")
    if not storage.conditional_replace:
        pytest.skip(f"{type(storage).__name__} has no object versions")
    store = _store(storage, lock_manager="memory://")
    store.write("first", key="k")
    txn = store.transaction("k", "SERIALIZABLE", overwrite=True)
    txn.begin()
    txn.stage("stale")
    # The lock lapses and another writer commits meanwhile (simulated by a direct write
    # that bypasses the lock, as a holder of a newer lease would).
    _store(storage).write("newer", key="k")
    with pytest.raises(WriteConflict, match="'k'"):
        txn.commit()
    assert _store(storage, cache_result_in_memory=False).read("k").result == "newer"
    assert not store.is_locked("k"), "the failed commit kept the lock"


def test_plugin_without_conditional_writes_falls_back_to_the_lock(tmp_path: Path) -> None:
    from moorage_example import ExampleStorage

    storage = ExampleStorage(f"example://{tmp_path.as_posix()}")
    assert not storage.conditional_create
    assert _race(storage) == ("A", "A")
    assert ResultStore(result_storage=storage, cache_result_in_memory=False).read("k").result == "A"


def test_fallback_keeps_a_lock_the_holder_took_itself(tmp_path: Path) -> None:
    from moorage_example import ExampleStorage

    storage = ExampleStorage(f"example://{tmp_path.as_posix()}")
    store = _store(storage, lock_manager="memory://")
    assert store.acquire_lock("k", holder="me")
    with store.transaction("k", holder="me") as txn:
        txn.stage("mine")
    assert store.is_lock_holder("k", holder="me"), "the commit released the caller's lock"
    store.release_lock("k", holder="me")
    assert txn.record is not None
    assert txn.record.result == "mine"


def test_split_records_race_and_an_orphan_payload_is_replaced(tmp_path: Path) -> None:
    data, meta = tmp_path / "data", tmp_path / "meta"

    def split() -> ResultStore:
        return ResultStore(result_storage=data, metadata_storage=meta)

    a, b = split().transaction("k"), split().transaction("k")
    a.begin()
    b.begin()
    a.stage("A")
    b.stage("B")
    a.commit()
    b.commit()
    assert b.record is not None
    assert b.record.result == "A"
    fresh = ResultStore(result_storage=data, metadata_storage=meta, cache_result_in_memory=False)
    assert fresh.read("k").result == "A"

    # A writer that died between its payload and its metadata leaves a payload alone;
    # the next commit replaces it rather than taking it for a winner.
    (data / "orphan").write_bytes(b"payload of a writer that died")
    with split().transaction("orphan") as txn:
        assert not txn.is_committed()
        txn.stage("new")
    assert txn.record is not None
    assert txn.record.result == "new"
    assert fresh.read("orphan").result == "new"
