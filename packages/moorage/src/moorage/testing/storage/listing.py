"""`ListingCases`: ``list_paths`` and its prefixes."""

from __future__ import annotations

from typing import Any

from moorage.storage import Storage
from moorage.testing._util import run
from moorage.testing.storage.harness import StorageHarness

__all__ = ["ListingCases"]


class ListingCases(StorageHarness):
    """Listings, sync and async: a prefix matches keys by their start, a prefix ending in
    ``/`` only the keys below that folder, and deleted keys (or their folders) vanish."""

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
