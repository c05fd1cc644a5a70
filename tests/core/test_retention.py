"""`ResultStore.prune`, `info` and `copy_to`, on every backend against its real server."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from moorage import RecordNotFound
from moorage.buffers import BytesLike
from moorage.locking import MemoryLockManager
from moorage.results import ResultStore
from moorage.storage import MemoryStorage, PruneReport, StorageEntry
from moorage.storage.entries import EXPIRY_METADATA_KEY, listed_entry
from moorage.store.memory_cache import ResultCache

MakeStorage = Callable[..., Any]
PAST = dt.timedelta(seconds=-1)
FUTURE = dt.timedelta(days=1)


@pytest.fixture(params=["memory", "local", "s3", "gcs", "azure"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every storage backend, each against its real server (see tests/servers)."""
    return str(request.param)


def _store(storage: Any, **options: Any) -> ResultStore:
    return ResultStore(result_storage=storage, serializer="json", cache=ResultCache(), **options)


def _fill(store: ResultStore) -> dict[str, int]:
    """Expired, unexpired, never-expiring, raw and damaged objects; the stored size of
    each expired record, by key."""
    store.write(1, key="old/1", expiration=PAST)
    store.write(2, key="old/2", expiration=PAST)
    store.write(3, key="new/1", expiration=FUTURE)
    store.write(4, key="new/2")
    storage = store._storage()
    storage.write_path("raw", b"[5]")
    storage.write_path("bad", b"\x89MOR\x02\x00\x00\x00not a record")
    return {key: len(storage.read_path(key)) for key in ("old/1", "old/2")}


def _keys(store: ResultStore) -> list[str]:
    return sorted(info.key for info in store.list())


def test_prune_removes_exactly_the_expired_records(make_storage: MakeStorage) -> None:
    store = _store(make_storage())
    sizes = _fill(store)
    seen: list[tuple[str, int, int | None]] = []

    preview = store.prune(dry_run=True, progress=lambda *event: seen.append(event))
    assert preview.dry_run
    assert sorted(preview.keys) == ["old/1", "old/2"]
    assert preview.records == 2
    assert preview.examined == 6
    assert _keys(store) == ["bad", "new/1", "new/2", "old/1", "old/2", "raw"], (
        "a dry run removes nothing"
    )
    assert seen[-1] == ("examining", 6, None)

    seen.clear()
    report = store.prune(progress=lambda *event: seen.append(event))
    assert sorted(report.keys) == ["old/1", "old/2"]
    assert (report.records, report.examined, report.dry_run) == (2, 6, False)
    entries = {e.key: e for page in store._storage().list_entries() for e in page}
    if all(e.size is not None for e in entries.values()):
        assert report.bytes == sum(sizes.values())
    assert _keys(store) == ["bad", "new/1", "new/2", "raw"]
    assert seen[-1] == ("removing", 2, 2)
    with pytest.raises(RecordNotFound):
        store.read("old/1")
    assert store.prune() == PruneReport(examined=4)


def test_aprune_is_the_same_in_async_code(make_storage: MakeStorage) -> None:
    store = _store(make_storage())
    _fill(store)
    report = asyncio.run(store.aprune(prefix="old/"))
    assert sorted(report.keys) == ["old/1", "old/2"]
    assert report.examined == 2, "only the prefix is listed"
    assert _keys(store) == ["bad", "new/1", "new/2", "raw"]


def test_prune_by_age_and_by_size(make_storage: MakeStorage) -> None:
    store = _store(make_storage())
    _fill(store)
    assert store.prune(expired=False, older_than=dt.timedelta(days=1)).records == 0
    assert store.prune(expired=False, max_bytes=10**9).records == 0, "everything fits"
    report = store.prune(expired=False, max_bytes=0, dry_run=True)
    assert sorted(report.keys) == ["bad", "new/1", "new/2", "old/1", "old/2", "raw"]
    assert store.prune(expired=False) == PruneReport(), "no rule, nothing listed or removed"
    gone = store.prune(expired=False, older_than=0, prefix="new/")
    assert sorted(gone.keys) == ["new/1", "new/2"]
    assert _keys(store) == ["bad", "old/1", "old/2", "raw"]


def test_max_bytes_removes_the_oldest_first(tmp_path: Path) -> None:
    store = _store(tmp_path / "results")
    for number in range(6):
        store.write("x" * 100, key=f"r/{number}")
    root = tmp_path / "results" / "r"
    size = (root / "0").stat().st_size
    base = 1_700_000_000
    for number, age in enumerate([5, 0, 4, 1, 3, 2]):  # r/0 oldest, then r/2, r/4, ...
        os.utime(root / str(number), (base - age * 60, base - age * 60))
    report = store.prune(expired=False, max_bytes=3 * size)
    assert report.keys == ("r/0", "r/2", "r/4")
    assert report.bytes == 3 * size
    assert _keys(store) == ["r/1", "r/3", "r/5"]


def test_prune_removes_split_records_whole(tmp_path: Path) -> None:
    store = _store(tmp_path / "payloads", metadata_storage=tmp_path / "meta")
    store.write(1, key="a", expiration=PAST)
    store.write(2, key="b")
    assert store.prune().keys == ("a",)
    assert list(store._storage().list_paths()) == ["b"]
    assert list(store.metadata_storage.list_paths()) == ["b"]  # type: ignore[union-attr]


def test_prune_keeps_records_another_holder_has_locked() -> None:
    locks = MemoryLockManager()
    store = _store(MemoryStorage("memory://prune-locks"), lock_manager=locks)
    store.write(1, key="busy", expiration=PAST)
    store.write(2, key="idle", expiration=PAST)
    assert locks.acquire_lock("busy", "someone else")
    assert store.prune().keys == ("idle",)
    assert _keys(store) == ["busy"]


class StampingStorage(MemoryStorage):
    """A storage whose listing reports expiry (as GCS and Azure do), and which fails any
    head read, to show that prune decides from the listing alone."""

    lists_expiration = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.stamps: dict[str, str] = {}
        self.heads = 0

    def write_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
        expiry: str | None = None,
    ) -> str:
        location = super().write_parts(key, parts, if_absent=if_absent, if_version=if_version)
        if expiry is not None:
            self.stamps[key] = expiry
        else:
            self.stamps.pop(key, None)
        return location

    def read_head(self, key: str, n: int) -> bytes:
        self.heads += 1
        return super().read_head(key, n)

    def list_entries(self, prefix: str = "") -> Iterator[list[StorageEntry]]:
        for page in super().list_entries(prefix):
            yield [listed_entry(e.key, e.size, e.modified, self.stamps.get(e.key)) for e in page]


def test_prune_decides_expiry_from_a_listing_that_tells_it() -> None:
    storage = StampingStorage("memory://stamps")
    store = _store(storage)
    store.write(1, key="old", expiration=PAST)
    store.write(2, key="new", expiration=FUTURE)
    store.write(3, key="never")
    storage.write_path("foreign", b"[4]")  # written without a stamp: its head decides
    assert storage.stamps.keys() == {"old", "new", "never"}
    assert EXPIRY_METADATA_KEY == "moorage-expires"
    report = store.prune()
    assert report.keys == ("old",)
    assert storage.heads == 1, "only the unstamped object's head was read"
    assert asyncio.run(store.aprune()).keys == ()


def test_info_describes_one_record(make_storage: MakeStorage) -> None:
    store = _store(make_storage(), signing_key=b"k" * 32)
    store.write({"a": 1}, key="one", expiration=FUTURE)
    store.write({"a": 2}, key="one-more")
    info = store.info("one")
    assert (info.key, info.format, info.serializer, info.signed, info.expired) == (
        "one",
        "moorage",
        "json",
        True,
        False,
    )
    assert info.expiration is not None
    assert info.size in (None, len(store._storage().read_path("one")))
    assert asyncio.run(store.ainfo("one-more")).expiration is None
    with pytest.raises(RecordNotFound, match="'missing'"):
        store.info("missing")


def test_copy_to_goes_byte_for_byte_and_skips_what_is_there(make_storage: MakeStorage) -> None:
    source = _store(make_storage("source"), signing_key=b"s" * 32)
    target = _store(make_storage("target"), signing_key=b"s" * 32)
    source.write({"n": 1}, key="a", expiration=FUTURE)
    source.write({"n": 2}, key="b")
    source._storage().write_path("raw", b"[3]")
    source._storage().write_path("bad", b"\x89MOR\x02\x00\x00\x00not a record")

    report = source.copy_to(target)
    assert sorted(report.keys) == ["a", "b"]
    # With a signing key, unsigned objects are not records this store trusts.
    assert sorted(key for key, _ in report.skipped) == ["bad", "raw"]
    assert all(reason.startswith("damaged") for _, reason in report.skipped)
    for key in ("a", "b"):
        assert target._storage().read_path(key) == source._storage().read_path(key)
    assert target.info("a").signed
    assert target.info("a").expiration == source.info("a").expiration

    again = source.copy_to(target)
    assert (again.copied, again.identical, again.existing) == (0, 2, 0)
    source.write({"n": 20}, key="b")
    kept = source.copy_to(target)
    assert (kept.copied, kept.existing) == (0, 1)
    assert target.read("b").result == {"n": 2}
    assert source.copy_to(target, overwrite=True, dry_run=True).keys == ("b",)
    assert target.read("b").result == {"n": 2}, "a dry run writes nothing"
    assert asyncio.run(source.acopy_to(target, overwrite=True)).keys == ("b",)
    assert target.read("b").result == {"n": 20}


def test_copy_to_another_layout_writes_the_records_again(tmp_path: Path) -> None:
    source = _store(tmp_path / "combined")
    target = _store(tmp_path / "payloads", metadata_storage=tmp_path / "meta")
    source.write([1, 2], key="k", expiration=FUTURE)
    source._storage().write_path("raw", b"[3]")
    report = source.copy_to(target)
    assert sorted(report.keys) == ["k", "raw"]
    assert target._storage().read_path("raw") == b"[3]", "a raw payload goes as it is"
    assert target.read("k").result == [1, 2]
    assert target.info("k").expiration == source.info("k").expiration
    assert source.copy_to(target).existing == 1
    by_url = source.copy_to(str(tmp_path / "elsewhere"))
    assert sorted(by_url.keys) == ["k", "raw"]
    assert ResultStore(result_storage=tmp_path / "elsewhere").read("k").result == [1, 2]
