"""`ReadWriteCases`: write, read, read a head, check, resolve and delete single keys."""

from __future__ import annotations

import pytest

from moorage.errors import RecordNotFound
from moorage.storage import Storage
from moorage.testing._util import run
from moorage.testing.storage.harness import StorageHarness

__all__ = ["ReadWriteCases"]


class ReadWriteCases(StorageHarness):
    """The basic life of one key, sync and async: round trips, overwrites, missing keys,
    ``read_head``, ``resolve_path``, ``exists`` and ``delete_path``."""

    def test_is_a_storage(self, storage: Storage) -> None:
        assert isinstance(storage, Storage), (
            f"{type(storage).__name__} must subclass moorage.storage.base.Storage, which "
            "validates keys and provides the async twins"
        )
        assert isinstance(storage.url, str)

    def test_fresh_storage_is_empty(self, storage: Storage) -> None:
        assert self._listed(storage) == [], "the `storage` fixture must yield an empty storage"

    def test_round_trip(self, storage: Storage) -> None:
        storage.write_path("greeting", b"hello")
        data = storage.read_path("greeting")
        assert type(data) is bytes, f"read_path returned a {type(data).__name__}, not bytes"
        assert data == b"hello"

    def test_round_trip_empty_bytes(self, storage: Storage) -> None:
        storage.write_path("empty", b"")
        assert storage.read_path("empty") == b""
        assert storage.exists("empty")
        assert self._listed(storage) == ["empty"]

    def test_round_trip_every_byte_value(self, storage: Storage) -> None:
        content = bytes(range(256)) * 4 + b"\r\n\n\r\x00"
        storage.write_path("binary/all-bytes", content)
        assert storage.read_path("binary/all-bytes") == content

    def test_overwrite(self, storage: Storage) -> None:
        storage.write_path("key", b"first version, rather long")
        storage.write_path("key", b"second")
        assert storage.read_path("key") == b"second", "a shorter overwrite must not keep old bytes"
        storage.write_path("key", b"third version, longer than the second")
        assert storage.read_path("key") == b"third version, longer than the second"
        assert self._listed(storage) == ["key"]

    def test_read_missing_raises_record_not_found(self, storage: Storage) -> None:
        with pytest.raises(RecordNotFound):
            storage.read_path("missing")
        with pytest.raises(RecordNotFound):
            storage.read_path("missing/nested/key")
        with pytest.raises(RecordNotFound):
            storage.read_head("missing", 10)

    def test_read_after_delete_raises_record_not_found(self, storage: Storage) -> None:
        storage.write_path("gone", b"x")
        storage.delete_path("gone")
        with pytest.raises(RecordNotFound):
            storage.read_path("gone")

    def test_read_head(self, storage: Storage) -> None:
        content = b"0123456789"
        storage.write_path("head", content)
        for n in (0, 1, 4, 9, 10, 11, 1000):
            head = storage.read_head("head", n)
            assert type(head) is bytes, f"read_head returned a {type(head).__name__}"
            assert head == content[:n], f"read_head(key, {n}) gave {head!r}"

    def test_write_path_returns_resolved_location(self, storage: Storage) -> None:
        location = storage.write_path("dir/sub/key", b"x")
        assert isinstance(location, str)
        assert location
        assert location == storage.resolve_path("dir/sub/key"), (
            "write_path must return the same location as resolve_path"
        )

    def test_resolve_path(self, storage: Storage) -> None:
        keys = ["a", "a/b", "a/b/c", "ab", "my.key"]
        locations = [storage.resolve_path(key) for key in keys]
        for key, location in zip(keys, locations, strict=True):
            assert isinstance(location, str)
            assert location.endswith(key), f"resolve_path({key!r}) = {location!r}"
            assert storage.key_for_location(location) == key, (
                f"key_for_location(resolve_path({key!r})) gave "
                f"{storage.key_for_location(location)!r}"
            )
        assert len(set(locations)) == len(keys), f"distinct keys share a location: {locations}"
        assert storage.resolve_path("a") == storage.resolve_path("a"), "must be deterministic"
        assert self._listed(storage) == [], "resolve_path must not create anything"

    def test_exists(self, storage: Storage) -> None:
        assert storage.exists("thing") is False
        storage.write_path("thing", b"content")
        assert storage.exists("thing") is True
        assert storage.exists("thin") is False, "exists must not match a prefix"
        assert storage.exists("thing/more") is False
        storage.write_path("nested/deep/thing", b"x")
        assert storage.exists("nested/deep/thing") is True
        assert storage.exists("nested") is False, "a folder of keys is not a key"
        assert storage.exists("nested/deep") is False

    def test_delete_path(self, storage: Storage) -> None:
        storage.write_path("doomed", b"x")
        storage.write_path("kept", b"y")
        storage.delete_path("doomed")
        assert storage.exists("doomed") is False
        assert storage.read_path("kept") == b"y"
        assert self._listed(storage) == ["kept"]

    def test_delete_missing_is_not_an_error(self, storage: Storage) -> None:
        storage.delete_path("never-written")
        storage.delete_path("never/written/nested")
        storage.write_path("twice", b"x")
        storage.delete_path("twice")
        storage.delete_path("twice")
        assert storage.exists("twice") is False

    # -- async twins -----------------------------------------------------------------------

    def test_async_round_trip(self, storage: Storage) -> None:
        large = self._large_payload()

        async def scenario() -> None:
            location = await storage.awrite_path("async/key", b"async bytes")
            assert location == storage.resolve_path("async/key")
            data = await storage.aread_path("async/key")
            assert type(data) is bytes
            assert data == b"async bytes"
            await storage.awrite_path("async/key", b"new")
            assert await storage.aread_path("async/key") == b"new"

            await storage.awrite_path("async/empty", b"")
            assert await storage.aread_path("async/empty") == b""
            assert await storage.aexists("async/empty") is True

            await storage.awrite_path("async/large", large)
            assert await storage.aread_path("async/large") == large

        run(scenario())
        assert storage.read_path("async/key") == b"new", "async and sync views disagree"
        assert storage.read_path("async/large") == large

    def test_async_read_head(self, storage: Storage) -> None:
        storage.write_path("head", b"0123456789")

        async def scenario() -> None:
            for n in (0, 1, 5, 10, 50):
                assert await storage.aread_head("head", n) == b"0123456789"[:n]
            with pytest.raises(RecordNotFound):
                await storage.aread_head("missing", 5)

        run(scenario())

    def test_async_missing_and_delete(self, storage: Storage) -> None:
        async def scenario() -> None:
            with pytest.raises(RecordNotFound):
                await storage.aread_path("missing")
            assert await storage.aexists("missing") is False
            await storage.adelete_path("missing")  # not an error
            await storage.awrite_path("doomed", b"x")
            assert await storage.aexists("doomed") is True
            await storage.adelete_path("doomed")
            assert await storage.aexists("doomed") is False
            with pytest.raises(RecordNotFound):
                await storage.aread_path("doomed")

        run(scenario())
        assert self._listed(storage) == []
