"""LocalStorage.list_entries (issue 14): the keys of list_paths, in pages, each with the
file's size and modification time from ``stat``; lazy, so memory stays flat."""

from __future__ import annotations

import datetime as dt
import errno
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

import moorage.storage.entries as pages
from moorage import StorageError
from moorage.storage import LIST_PAGE_SIZE, StorageEntry
from moorage_local import LocalStorage
from moorage_local.temp_files import STALE_TEMP_AGE, TEMP_PREFIX

KEYS = ["a.b", "a/b.c", "a/b/c", "a/bc", "ab", "abc/x", "b/a", "z", "é/ü"]


def entries_of(storage: LocalStorage, prefix: str = "") -> list[StorageEntry]:
    return [entry for page in storage.list_entries(prefix) for entry in page]


def stat_time(path: Path) -> dt.datetime:
    """The file's modification time as a UTC datetime, computed here independently."""
    ns = os.stat(path, follow_symlinks=False).st_mtime_ns
    return dt.datetime.fromtimestamp(ns // 1000 / 1_000_000, tz=dt.UTC).replace(
        microsecond=ns // 1000 % 1_000_000
    )


@pytest.fixture
def listed(storage: LocalStorage) -> LocalStorage:
    for n, key in enumerate(KEYS):
        storage.write_path(key, key.encode() * (n + 1))
    return storage


# -- what each entry says ----------------------------------------------------------------


def test_sizes_and_times_match_stat(listed: LocalStorage, root: Path) -> None:
    found = entries_of(listed)
    assert [entry.key for entry in found] == KEYS
    for entry in found:
        path = root / entry.key
        assert entry.size == path.stat().st_size, entry
        assert entry.modified == stat_time(path), entry
        assert entry.modified is not None
        assert entry.modified.utcoffset() == dt.timedelta(0)


def test_a_known_modification_time_comes_back_exactly_in_utc(
    storage: LocalStorage, root: Path
) -> None:
    storage.write_path("old", b"12345")
    storage.write_path("pre-1970", b"")
    when = dt.datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=dt.UTC)
    ns = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000
    os.utime(root / "old", ns=(ns, ns + 789))  # sub-microsecond part is dropped
    before = -86_400 * 1_000_000_000 - 500  # a day and half a microsecond before 1970
    os.utime(root / "pre-1970", ns=(before, before))
    assert entries_of(storage) == [
        StorageEntry("old", 5, when),
        StorageEntry("pre-1970", 0, dt.datetime(1969, 12, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)),
    ]


# -- the same keys as list_paths ---------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    ["", "a", "a/", "a/b", "a/b/", "a/b/c", "ab", "abc/", "ab/", "b", "c", "nope/", "z/", "é"],
)
def test_keys_are_list_paths_keys_in_the_same_order(listed: LocalStorage, prefix: str) -> None:
    keys = [entry.key for entry in entries_of(listed, prefix)]
    assert keys == list(listed.list_paths(prefix))
    assert keys == [key for key in KEYS if key.startswith(prefix)]


def test_a_missing_root_lists_no_pages(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "never-created")
    assert list(storage.list_entries()) == []
    assert list(storage.list_entries("a/")) == []


def test_temporary_files_links_and_special_files_are_skipped(
    storage: LocalStorage, root: Path, tmp_path: Path
) -> None:
    storage.write_path("real", b"1")
    storage.write_path("sub/real", b"22")
    (root / f"{TEMP_PREFIX}abc").write_bytes(b"partial")
    (root / "sub" / f"{TEMP_PREFIX}def").write_bytes(b"partial")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not a key of this storage")
    (root / "file-link").symlink_to(outside / "secret")
    (root / "inner-link").symlink_to(root / "real")
    (root / "folder-link").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "sub" / "fifo")
    expected = [StorageEntry("real", 1, stat_time(root / "real"))]
    expected.append(StorageEntry("sub/real", 2, stat_time(root / "sub" / "real")))
    assert entries_of(storage) == expected
    assert [entry.key for entry in expected] == list(storage.list_paths())
    assert entries_of(storage, TEMP_PREFIX[:5]) == []


def test_stale_temporary_files_are_removed_as_list_paths_removes_them(
    storage: LocalStorage, root: Path
) -> None:
    storage.write_path("sub/real", b"1")
    stale = root / "sub" / f"{TEMP_PREFIX}gone-host-1-abcd-0"
    stale.write_bytes(b"partial")
    old = time.time() - STALE_TEMP_AGE - 60
    os.utime(stale, (old, old))
    assert [entry.key for entry in entries_of(storage)] == ["sub/real"]
    assert not stale.exists()


# -- pages ---------------------------------------------------------------------------


def test_pages_hold_at_most_list_page_size(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"k{n:02d}" for n in range(5)] + [f"d/k{n:02d}" for n in range(5)]
    for key in keys:
        storage.write_path(key, b"x")
    assert [len(page) for page in storage.list_entries()] == [10]
    assert LIST_PAGE_SIZE >= 10  # the default page held them all
    monkeypatch.setattr(pages, "LIST_PAGE_SIZE", 3)
    listed = list(storage.list_entries())
    assert [len(page) for page in listed] == [3, 3, 3, 1]
    assert [entry.key for page in listed for entry in page] == sorted(keys)
    monkeypatch.setattr(pages, "LIST_PAGE_SIZE", 5)
    assert [len(page) for page in storage.list_entries()] == [5, 5]
    assert [len(page) for page in storage.list_entries("d/")] == [5]


def test_pages_are_made_as_they_are_asked_for(
    storage: LocalStorage, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file is stat-ed when its page is made: what changes after the first page
    shows in the later ones (a list built up front would not see it)."""
    for n in range(9):
        storage.write_path(f"k{n}", b"x")
    monkeypatch.setattr(pages, "LIST_PAGE_SIZE", 3)
    listing = storage.list_entries()
    assert [entry.key for entry in next(listing)] == ["k0", "k1", "k2"]
    storage.write_path("k3", b"grown")
    storage.delete_path("k4")
    (root / "k5").unlink()
    (root / "k5").symlink_to(root / "k0")  # a link now: skipped
    (root / "k6").unlink()
    (root / "k6").mkdir()  # a folder now: skipped
    rest = [entry for page in listing for entry in page]
    assert [(entry.key, entry.size) for entry in rest] == [("k3", 5), ("k7", 1), ("k8", 1)]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_listing_left_unfinished_closes_its_folders(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing dropped after its first page lets go of the folders it holds open."""
    for n in range(6):
        storage.write_path(f"a/b/k{n}", b"x")
    monkeypatch.setattr(pages, "LIST_PAGE_SIZE", 2)
    list(storage.list_entries())  # the root's descriptor stays open for the storage
    before = len(os.listdir("/proc/self/fd"))
    listing = storage.list_entries()
    next(listing)
    assert len(os.listdir("/proc/self/fd")) > before  # the walk holds a, a/b open
    del listing
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


# -- errors --------------------------------------------------------------------------


def test_a_failing_stat_is_a_storage_error_naming_key_and_url(
    storage: LocalStorage, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage.write_path("d/bad", b"x")
    storage.write_path("d/good", b"x")
    real_stat = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if path == "bad":
            raise OSError(errno.EIO, "Input/output error", "bad")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(StorageError) as caught:
        entries_of(storage)
    message = str(caught.value)
    assert "'d/bad'" in message, message
    assert storage.url in message, message
    assert str(root / "d" / "bad") in message, message
    assert isinstance(caught.value.__cause__, OSError)


# -- the async twin ------------------------------------------------------------------


async def test_async_twin_gives_the_same_pages(
    listed: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "LIST_PAGE_SIZE", 4)
    for prefix in ("", "a", "a/b/", "nope/"):
        pages_async = [page async for page in listed.alist_entries(prefix)]
        assert pages_async == list(listed.list_entries(prefix)), prefix
    assert [len(page) for page in [page async for page in listed.alist_entries()]] == [4, 4, 1]


# -- memory --------------------------------------------------------------------------


def test_listing_many_files_keeps_memory_flat(
    storage: LocalStorage, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 empty files in 200 folders: iterating their entries peaks far below what
    the entries would take held whole, so memory does not grow with the file count."""
    count, folders = 20_000, 200
    for folder in range(folders):
        target = root / f"f{folder:03d}"
        target.mkdir(parents=True)
        for n in range(count // folders):
            os.close(os.open(target / f"k{n:04d}", os.O_CREAT | os.O_WRONLY, 0o644))
    monkeypatch.setattr(pages, "LIST_PAGE_SIZE", 100)
    sample = StorageEntry("f000/k0000", 0, dt.datetime.now(dt.UTC))
    # The least a whole listing takes: each entry, its datetime and a list slot (the
    # keys, sizes and the list's own header not even counted).
    held_whole = count * (sys.getsizeof(sample) + sys.getsizeof(sample.modified) + 8)
    tracemalloc.start()
    try:
        seen = largest = 0
        for page in storage.list_entries():
            seen += len(page)
            largest = max(largest, len(page))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert largest == 100
    assert peak < held_whole / 10, (peak, held_whole)
