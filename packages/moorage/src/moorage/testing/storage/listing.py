"""`ListingCases`: ``list_paths``, ``list_entries`` and their prefixes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from moorage.storage import LIST_PAGE_SIZE, Storage, StorageEntry
from moorage.testing._util import run
from moorage.testing.storage.harness import StorageHarness

__all__ = ["ListingCases"]


class ListingCases(StorageHarness):
    """Listings, sync and async: a prefix matches keys by their start, a prefix ending in
    ``/`` only the keys below that folder, and deleted keys (or their folders) vanish.
    ``list_entries`` gives the same keys in pages, with each object's size and
    modification time where the backend knows them."""

    def test_list_paths(self, storage: Storage) -> None:
        keys = ["a/b/c", "a/d", "ab", "x/y/z", "top"]
        for key in keys:
            storage.write_path(key, key.encode())
        assert self._listed(storage) == sorted(keys)
        assert self._listed(storage, "") == sorted(keys)
        assert self._listed(storage, "a/") == ["a/b/c", "a/d"]
        assert self._listed(storage, "a") == ["a/b/c", "a/d", "ab"]
        assert self._listed(storage, "a/b/") == ["a/b/c"]
        assert self._listed(storage, "a/b") == ["a/b/c"]
        assert self._listed(storage, "x/y/z") == ["x/y/z"]
        assert self._listed(storage, "to") == ["top"]
        assert self._listed(storage, "nope") == []
        assert self._listed(storage, "nope/") == []
        assert self._listed(storage, "top/") == [], "a key is not a folder"

    def test_list_paths_after_delete(self, storage: Storage) -> None:
        storage.write_path("folder/only", b"x")
        storage.write_path("other", b"y")
        storage.delete_path("folder/only")
        assert self._listed(storage) == ["other"], "a deleted key (or its folder) was listed"
        assert self._listed(storage, "folder/") == []

    def test_async_list_paths(self, storage: Storage) -> None:
        for key in ("a/b/c", "a/d", "ab", "top"):
            storage.write_path(key, b"x")

        async def scenario() -> dict[str, Any]:
            return {
                "": await storage.alist_paths(),
                "a/": await storage.alist_paths("a/"),
                "a": await storage.alist_paths("a"),
                "none/": await storage.alist_paths("none/"),
            }

        listed = run(scenario())
        assert sorted(listed[""]) == ["a/b/c", "a/d", "ab", "top"]
        assert sorted(listed["a/"]) == ["a/b/c", "a/d"]
        assert sorted(listed["a"]) == ["a/b/c", "a/d", "ab"]
        assert list(listed["none/"]) == []

    def test_list_entries_match_list_paths(self, storage: Storage) -> None:
        contents = {"e/one": b"1", "e/three": b"333", "e/sub/two": b"22", "f": b"ffff"}
        for key, data in contents.items():
            storage.write_path(key, data)
        for prefix in ("", "e/", "e/s", "nope/"):
            pages = list(storage.list_entries(prefix))
            assert all(0 < len(page) <= LIST_PAGE_SIZE for page in pages), (
                "an empty or oversized page"
            )
            entries = [entry for page in pages for entry in page]
            assert all(isinstance(entry, StorageEntry) for entry in entries)
            assert sorted(e.key for e in entries) == self._listed(storage, prefix)
            for entry in entries:
                assert entry.size in (None, len(contents[entry.key])), (
                    f"list_entries gave size {entry.size} for {entry.key!r}, which holds "
                    f"{len(contents[entry.key])} bytes"
                )
                if entry.modified is not None:
                    assert entry.modified.tzinfo is not None, "modified must be an aware time"
                    assert entry.modified.utcoffset() == dt.timedelta(0), "modified is in UTC"

    def test_async_list_entries(self, storage: Storage) -> None:
        for key in ("g/a", "g/b", "h"):
            storage.write_path(key, b"xy")

        async def scenario() -> list[str]:
            return [entry.key async for page in storage.alist_entries("g/") for entry in page]

        assert sorted(run(scenario())) == ["g/a", "g/b"]
