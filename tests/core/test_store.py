"""ResultStore on memory and local storage: every method, sync and async."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moorage import (
    InvalidKey,
    LockError,
    RecordCorrupted,
    RecordExpired,
    RecordNotFound,
)
from moorage.format.native import MAGIC
from moorage.format.record import ResultRecord
from moorage.results import ResultStore
from moorage.store.memory_cache import ResultCache

MakeStorage = Callable[..., Any]


def make_store(make_storage: MakeStorage, **kwargs: Any) -> ResultStore:
    kwargs.setdefault("result_storage", make_storage())
    kwargs.setdefault("cache", ResultCache())
    return ResultStore(**kwargs)


VALUES = [0, "text", {"a": [1, 2, {"b": None}]}, b"\x00\xff" * 1000, None, [1.5, True]]


@pytest.mark.parametrize("cache", [True, False])
def test_write_read_roundtrip(make_storage: MakeStorage, cache: bool) -> None:
    store = make_store(make_storage, cache_result_in_memory=cache)
    for i, value in enumerate(VALUES):
        record = store.write(value, key=f"k{i}")
        assert record.metadata.storage_key == f"k{i}"
        assert store.read(f"k{i}").result == value
        assert store.exists(f"k{i}")
    assert not store.exists("missing")


def test_fresh_store_reads_from_storage_not_cache(make_storage: MakeStorage) -> None:
    storage = make_storage()
    make_store(make_storage, result_storage=storage).write({"v": 1}, key="shared")
    other = make_store(make_storage, result_storage=storage)
    assert len(other.cache) == 0
    assert other.read("shared").result == {"v": 1}


def test_default_key_is_random_hex(make_storage: MakeStorage) -> None:
    store = make_store(make_storage)
    first = store.write(1).metadata.storage_key
    second = store.write(2).metadata.storage_key
    assert first != second
    assert first is not None
    assert len(first) == 32
    int(first, 16)
    assert store.read(first).result == 1


async def test_async_twins(make_storage: MakeStorage) -> None:
    store = make_store(make_storage, cache_result_in_memory=False)
    await store.awrite({"x": 1}, key="a/b")
    assert (await store.aread("a/b")).result == {"x": 1}
    assert await store.aexists("a/b")
    assert not await store.aexists("a/c")
    record = store.create_result_record([1, 2], key="made")
    await store.apersist_result_record(record)
    assert store.read("made").result == [1, 2]
    with pytest.raises(RecordNotFound, match="a/c"):
        await store.aread("a/c")


async def test_many_concurrent_async_writes(make_storage: MakeStorage) -> None:
    store = make_store(make_storage, cache_result_in_memory=False)
    await asyncio.gather(*(store.awrite(i, key=f"c/{i}") for i in range(50)))
    values = await asyncio.gather(*(store.aread(f"c/{i}") for i in range(50)))
    assert [r.result for r in values] == list(range(50))


def test_persist_result_record_and_create(make_storage: MakeStorage) -> None:
    store = make_store(make_storage)
    record = store.create_result_record("v", key="p", expiration=dt.timedelta(hours=1))
    assert record.metadata.expiration is not None
    assert record.metadata.expiration > dt.datetime.now(dt.UTC)
    assert not store.exists("p")
    store.persist_result_record(record)
    assert store.exists("p")
    assert store.read("p").result == "v"


def test_read_missing_names_key(make_storage: MakeStorage) -> None:
    store = make_store(make_storage)
    with pytest.raises(RecordNotFound, match="nothing-here"):
        store.read("nothing-here")


# -- expiry ---------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [True, False])
def test_expired_record_does_not_exist(make_storage: MakeStorage, cache: bool) -> None:
    store = make_store(make_storage, cache_result_in_memory=cache)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    store.write("old", key="e", expiration=past)
    assert not store.exists("e")
    with pytest.raises(RecordExpired, match="'e'"):
        store.read("e")


def test_memory_cache_honours_expiry(make_storage: MakeStorage) -> None:
    store = make_store(make_storage, cache_result_in_memory=True)
    store.write("soon", key="e", expiration=dt.timedelta(seconds=0.3))
    assert store.read("e").result == "soon"
    assert len(store.cache) == 1
    time.sleep(0.4)
    with pytest.raises(RecordExpired):
        store.read("e")
    assert not store.exists("e")
    assert len(store.cache) == 0


def test_expiration_naive_datetime_is_utc(make_storage: MakeStorage) -> None:
    store = make_store(make_storage)
    naive = dt.datetime(2099, 1, 1, 12, 0)
    record = store.write(1, key="n", expiration=naive)
    assert record.metadata.expiration == dt.datetime(2099, 1, 1, 12, 0, tzinfo=dt.UTC)
    fresh = make_store(
        make_storage, result_storage=store.result_storage, cache_result_in_memory=False
    )
    assert fresh.read("n").metadata.expiration == record.metadata.expiration


# -- metadata in a separate storage ---------------------------------------------------


@pytest.mark.parametrize("cache", [True, False])
def test_metadata_storage_roundtrip(make_storage: MakeStorage, cache: bool) -> None:
    results, meta = make_storage("results"), make_storage("meta")
    store = make_store(
        make_storage, result_storage=results, metadata_storage=meta, cache_result_in_memory=cache
    )
    store.write({"split": True}, key="s/1", expiration=dt.timedelta(hours=1))
    # payload raw in result storage, a head-only native record in metadata storage
    assert results.read_path("s/1") == store.serializer.dumps({"split": True})
    assert meta.read_path("s/1").startswith(MAGIC)
    fresh = make_store(make_storage, result_storage=results, metadata_storage=meta)
    record = fresh.read("s/1")
    assert record.result == {"split": True}
    assert record.metadata.expiration is not None
    assert fresh.exists("s/1")
    results.delete_path("s/1")
    uncached = make_store(
        make_storage, result_storage=results, metadata_storage=meta, cache_result_in_memory=False
    )
    assert not uncached.exists("s/1")
    with pytest.raises(RecordNotFound, match="payload"):
        uncached.read("s/1")


def test_metadata_storage_expiry(make_storage: MakeStorage) -> None:
    store = make_store(
        make_storage,
        result_storage=make_storage("r"),
        metadata_storage=make_storage("m"),
        cache_result_in_memory=False,
    )
    store.write(1, key="x", expiration=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    assert not store.exists("x")
    with pytest.raises(RecordExpired):
        store.read("x")


# -- corruption -------------------------------------------------------------------------


def _tamper(storage: Any, key: str, change: Callable[[bytes], bytes]) -> None:
    storage.write_path(key, change(storage.read_path(key)))


def test_flipped_payload_byte_is_detected(make_storage: MakeStorage) -> None:
    store = make_store(make_storage, cache_result_in_memory=False)
    store.write(b"payload" * 100, key="c/flip")
    _tamper(store.result_storage, "c/flip", lambda b: b[:-10] + bytes([b[-10] ^ 0x01]) + b[-9:])
    with pytest.raises(RecordCorrupted, match="c/flip"):
        store.read("c/flip")


@pytest.mark.parametrize("keep", [3, 20, -5])
def test_truncated_record_is_detected(make_storage: MakeStorage, keep: int) -> None:
    store = make_store(make_storage, cache_result_in_memory=False)
    store.write(list(range(1000)), key="c/trunc")
    _tamper(store.result_storage, "c/trunc", lambda b: b[:keep])
    with pytest.raises(RecordCorrupted, match="c/trunc"):
        store.read("c/trunc")
    assert not store.exists("c/trunc")


# -- keys ------------------------------------------------------------------------------

BAD_KEYS = [
    "../escape",
    "a/../../b",
    "/etc/passwd",
    "nul\x00byte",
    "back\\slash",
    "",
    "a//b",
    "a/",
    ".",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_rejected(make_storage: MakeStorage, key: str) -> None:
    store = make_store(make_storage)
    with pytest.raises(InvalidKey):
        store.write("x", key=key)
    with pytest.raises(InvalidKey):
        store.read(key)
    with pytest.raises(InvalidKey):
        store.exists(key)


def test_nothing_written_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "inside" / "root"
    store = ResultStore(result_storage=root, cache=ResultCache())
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for key in BAD_KEYS:
        with pytest.raises(InvalidKey):
            store.write("x", key=key)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


# -- another process -----------------------------------------------------------------


def test_new_process_reads_what_this_one_wrote(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path / "shared", cache=ResultCache())
    store.write({"from": "parent", "n": [1, 2, 3]}, key="handoff")
    code = textwrap.dedent(
        f"""
        from moorage.results import ResultStore
        store = ResultStore(result_storage={str(tmp_path / "shared")!r})
        assert store.exists("handoff")
        print(store.read("handoff").result)
        store.write("from child", key="reply")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "{'from': 'parent', 'n': [1, 2, 3]}"
    assert store.read("reply").result == "from child"


# -- locks -----------------------------------------------------------------------------


@pytest.fixture(params=["memory", "file"])
def lock_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else (tmp_path / "locks").as_uri()


def test_replacing_a_record_locked_by_another_holder_raises(
    make_storage: MakeStorage, lock_url: str
) -> None:
    store = make_store(make_storage, lock_manager=lock_url)
    store.write("first", key="locked", holder="alice")
    assert store.acquire_lock("locked", holder="alice")
    try:
        assert store.is_locked("locked")
        assert store.is_lock_holder("locked", "alice")
        assert not store.is_lock_holder("locked", "bob")
        with pytest.raises(LockError, match="alice"):
            store.write("bob's", key="locked", holder="bob")
        assert store.read("locked", holder="alice").result == "first"
        store.write("alice's", key="locked", holder="alice")
        assert store.read("locked", holder="alice").result == "alice's"
    finally:
        store.release_lock("locked", holder="alice")
    assert not store.is_locked("locked")
    store.write("anyone", key="locked", holder="bob")


def test_creating_under_another_holders_lock_wins_over_its_commit(
    make_storage: MakeStorage, lock_url: str
) -> None:
    """A new record needs nobody's lock (no lock-manager round trip): the holder's
    transaction commits conditionally, so it finds the record and returns it."""
    store = make_store(make_storage, lock_manager=lock_url, cache_result_in_memory=False)
    with store.transaction("fresh", "SERIALIZABLE", holder="alice") as txn:
        assert not txn.is_committed()
        store.write("bob's", key="fresh", holder="bob")
        txn.stage("alice's")
    assert txn.record is not None
    assert txn.record.result == "bob's", "the first commit stays; alice's returns it"
    assert store.read("fresh").result == "bob's"


def test_reader_waits_for_lock(make_storage: MakeStorage, lock_url: str) -> None:
    store = make_store(make_storage, lock_manager=lock_url, cache_result_in_memory=False)
    store.write("v1", key="w")
    store.acquire_lock("w", holder="writer")
    released = threading.Event()

    def finish() -> None:
        time.sleep(0.3)
        store.write("v2", key="w", holder="writer")
        released.set()
        store.release_lock("w", holder="writer")

    thread = threading.Thread(target=finish)
    thread.start()
    value = store.read("w", holder="reader").result
    thread.join()
    assert released.is_set()
    assert value == "v2"


async def test_async_locks(make_storage: MakeStorage, lock_url: str) -> None:
    store = make_store(make_storage, lock_manager=lock_url)
    assert await store.aacquire_lock("k", holder="h1")
    assert not await store.aacquire_lock("k", holder="h2", timeout=0.1)
    await store.arelease_lock("k", holder="h1")
    assert await store.await_for_lock("k", timeout=1)
    assert store.wait_for_lock("k", timeout=1)


def test_store_without_lock_manager(make_storage: MakeStorage) -> None:
    from moorage import ConfigurationError

    store = make_store(make_storage)
    assert store.supports_isolation_level("READ_COMMITTED")
    assert not store.supports_isolation_level("SERIALIZABLE")
    with pytest.raises(ConfigurationError, match="lock manager"):
        store.acquire_lock("k")
    locked = make_store(make_storage, lock_manager="memory://")
    assert locked.supports_isolation_level("SERIALIZABLE")


async def test_default_holder_is_distinct_per_task() -> None:
    async def holder() -> str:
        await asyncio.sleep(0)
        return ResultStore.generate_default_holder()

    holders = await asyncio.gather(holder(), holder())
    outside = await asyncio.to_thread(ResultStore.generate_default_holder)
    assert len({*holders, outside}) == 3
    import os

    assert all(f":{os.getpid()}:" in h for h in holders)


# -- signing ---------------------------------------------------------------------------


def test_signed_records(make_storage: MakeStorage) -> None:
    storage = make_storage()
    store = make_store(
        make_storage, result_storage=storage, signing_key=b"k1", cache_result_in_memory=False
    )
    store.write({"safe": True}, key="s")
    assert store.read("s").result == {"safe": True}
    other_key = make_store(
        make_storage, result_storage=storage, signing_key=b"k2", cache_result_in_memory=False
    )
    with pytest.raises(RecordCorrupted, match="signature"):
        other_key.read("s")
    unsigned = make_store(make_storage, result_storage=storage, cache_result_in_memory=False)
    unsigned.write({"safe": False}, key="u")
    with pytest.raises(RecordCorrupted, match="not signed"):
        store.read("u")


def test_cache_does_not_vouch_across_signing_keys(make_storage: MakeStorage) -> None:
    storage, cache = make_storage(), ResultCache()
    unsigned = make_store(make_storage, result_storage=storage, cache=cache)
    unsigned.write("unsigned", key="u")
    signed = make_store(make_storage, result_storage=storage, cache=cache, signing_key=b"k")
    with pytest.raises(RecordCorrupted, match="not signed"):
        signed.read("u")


def test_prefect_format_cannot_be_signed(make_storage: MakeStorage) -> None:
    from moorage import ConfigurationError

    store = make_store(make_storage, signing_key=b"k", record_format="prefect")
    with pytest.raises(ConfigurationError, match="signature"):
        store.write(1, key="p")
    assert not store.exists("p")


def test_tampered_signed_record_refused_before_unpickling(make_storage: MakeStorage) -> None:
    import hashlib
    import pickle
    import struct

    from moorage.format.integrity import crc32c

    storage = make_storage()
    store = make_store(
        make_storage, result_storage=storage, signing_key=b"secret", cache_result_in_memory=False
    )
    record = store.write("harmless", key="t")
    data = storage.read_path("t")
    evil = pickle.dumps("evil")
    # rewrite payload, length, digest and head CRC consistently: only the MAC can tell
    digest = f"sha256:{hashlib.sha256(evil).hexdigest()}"
    meta = record.metadata.model_copy(update={"payload_length": len(evil), "checksum": digest})
    meta_bytes = meta.dump_bytes()
    prefix = bytearray(data[:12])
    prefix[8:12] = len(meta_bytes).to_bytes(4, "big")
    header = bytes(prefix) + struct.pack(">I", crc32c([bytes(prefix), meta_bytes]))
    storage.write_path("t", header + data[16:48] + meta_bytes + evil)
    assert not store.exists("t")
    with pytest.raises(RecordCorrupted, match="signature"):
        store.read("t")


# -- parameters, derived stores ---------------------------------------------------------------


async def test_store_and_read_parameters(make_storage: MakeStorage) -> None:
    import uuid

    store = make_store(make_storage)
    ident = uuid.uuid4()
    store.store_parameters(ident, {"x": 1, "y": [2]})
    assert store.read_parameters(ident) == {"x": 1, "y": [2]}
    assert store.result_storage is not None
    assert store.result_storage.exists(f"parameters/{ident}")
    await store.astore_parameters("other", {"z": 3})
    assert await store.aread_parameters("other") == {"z": 3}
    assert store.result_storage_block_id is None


def test_sync_calls_never_start_an_event_loop(
    make_storage: MakeStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(make_storage, lock_manager="memory://", cache_result_in_memory=False)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a sync call started an event loop")

    monkeypatch.setattr(asyncio, "new_event_loop", forbidden)
    monkeypatch.setattr(asyncio, "run", forbidden)
    monkeypatch.setattr(asyncio, "get_event_loop", forbidden)
    store.write(1, key="sync")
    assert store.read("sync").result == 1
    assert store.exists("sync")
    assert store.acquire_lock("sync")
    store.release_lock("sync")


def test_record_bytes_roundtrip_without_store() -> None:
    record = ResultRecord(result={"x": 1}, metadata={"storage_key": "k", "serializer": "json"})
    data = record.serialize()
    assert data.startswith(MAGIC)
    again = ResultRecord.deserialize(data)
    assert again.result == {"x": 1}
    assert again.metadata.serializer.type == "json"
    split = ResultRecord.deserialize_from_result_and_metadata(
        record.serialize_result(), record.serialize()
    )
    assert split.result == {"x": 1}


def test_one_store_from_several_event_loops_and_threads(make_storage: MakeStorage) -> None:
    """Clients of async backends belong to an event loop; a store must not care which
    loop (or thread) calls it, nor whether the last one has closed."""
    store = make_store(make_storage, cache_result_in_memory=False)
    for i in range(3):  # each asyncio.run is a new loop; the previous one is closed
        asyncio.run(store.awrite(i, key=f"loop/{i}"))
        assert asyncio.run(store.aread(f"loop/{i}")).result == i
    assert store.read("loop/2").result == 2
    seen: dict[str, Any] = {}

    def in_thread() -> None:
        seen["value"] = asyncio.run(store.aread("loop/1")).result
        seen["exists"] = store.exists("loop/0")

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    assert seen == {"value": 1, "exists": True}
