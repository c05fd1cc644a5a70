"""`ResultStore.list` and `alist`: what a store holds, from listings and heads only."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from moorage import InvalidKey
from moorage.results import ResultStore
from moorage.storage import MemoryStorage
from moorage.store.listing import RecordInfo
from moorage.store.memory_cache import ResultCache

MakeStorage = Callable[..., Any]


@pytest.fixture(params=["memory", "local", "s3", "gcs", "azure"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every storage backend, each against its real server (see tests/servers)."""
    return str(request.param)


def by_key(infos: list[RecordInfo]) -> dict[str, RecordInfo]:
    return {info.key: info for info in infos}


def test_list_describes_each_record_under_a_prefix(make_storage: MakeStorage) -> None:
    store = ResultStore(result_storage=make_storage(), serializer="json", cache=ResultCache())
    store.write({"n": 1}, key="day/1")
    store.write([2], key="day/2", expiration=dt.timedelta(seconds=-1))
    store.write("elsewhere", key="night/1")
    storage = store._storage()
    storage.write_path("day/raw", b"[3]")  # a value without metadata, as Prefect leaves
    storage.write_path("day/bad", b"\x89MOR\x02\x00\x00\x00not a record")

    infos = by_key(list(store.list("day/")))
    assert sorted(infos) == ["day/1", "day/2", "day/bad", "day/raw"]
    fresh, old = infos["day/1"], infos["day/2"]
    assert (fresh.format, fresh.serializer, fresh.expired, fresh.signed) == (
        "moorage",
        "json",
        False,
        False,
    )
    assert old.expired
    assert old.expiration is not None
    assert infos["day/raw"].format == "raw"
    assert infos["day/bad"].format == "damaged"
    assert infos["day/bad"].problem is not None
    assert "day/bad" in infos["day/bad"].problem
    for info in infos.values():
        stored = len(storage.read_path(info.key))
        assert info.size in (None, stored)
        assert info.last_modified is None or info.last_modified.tzinfo is not None
    assert [info.key for info in store.list("night/")] == ["night/1"]
    assert list(store.list("none/")) == []


def test_alist_is_the_async_twin(make_storage: MakeStorage) -> None:
    store = ResultStore(result_storage=make_storage(), cache=ResultCache())
    for n in range(5):
        store.write(n, key=f"a/{n}")

    async def scenario() -> list[str]:
        return [info.key async for info in store.alist("a/")]

    assert sorted(asyncio.run(scenario())) == [f"a/{n}" for n in range(5)]


def test_a_signing_store_reports_signed_records_and_refuses_unsigned_ones() -> None:
    storage = MemoryStorage("memory://listing-signed")
    unsigned = ResultStore(result_storage=storage, cache=ResultCache())
    signed = ResultStore(result_storage=storage, signing_key=b"k" * 32, cache=ResultCache())
    unsigned.write(1, key="plain")
    signed.write(2, key="sealed")
    infos = by_key(list(signed.list()))
    assert infos["sealed"].signed
    assert infos["sealed"].format == "moorage"
    assert infos["plain"].format == "damaged", "an unsigned head was believed"


def test_a_split_store_lists_its_metadata_storage() -> None:
    results = MemoryStorage("memory://listing-split-results")
    keys = MemoryStorage("memory://listing-split-keys")
    store = ResultStore(result_storage=results, metadata_storage=keys, cache=ResultCache())
    store.write("v", key="k/1")
    results.write_path("k/orphan", b"a payload without metadata")
    assert [info.key for info in store.list("k/")] == ["k/1"]


def test_list_pages_through_more_records_than_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("moorage.storage.memory.LIST_PAGE_SIZE", 3)
    storage = MemoryStorage("memory://listing-pages")
    store = ResultStore(result_storage=storage, cache=ResultCache())
    for n in range(10):
        store.write(n, key=f"p/{n:02d}")
    assert [len(page) for page in storage.list_entries("p/")] == [3, 3, 3, 1]
    assert [info.key for info in store.list("p/")] == [f"p/{n:02d}" for n in range(10)]


def test_list_checks_the_prefix() -> None:
    store = ResultStore(
        result_storage=MemoryStorage("memory://listing-prefix"), cache=ResultCache()
    )
    with pytest.raises(InvalidKey):
        list(store.list("../up"))
