"""`StorageContract`: the tests every storage backend must pass."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar

import pytest

from moorage.errors import InvalidKey, RecordNotFound, WriteConflict
from moorage.storage.base import BytesLike, Storage
from moorage.testing._util import BackgroundThread, run

__all__ = ["INVALID_KEYS", "INVALID_PREFIXES", "StorageContract"]

#: Keys every key-taking storage method must refuse with `moorage.InvalidKey`.
INVALID_KEYS: tuple[str, ...] = (
    "",
    "..",
    ".",
    "../escape",
    "a/../../escape",
    "a/./b",
    "/abs",
    "/etc/passwd",
    "a//b",
    "a\\b",
    "..\\escape",
    "nul\x00byte",
    "trailing/",
    "/",
    "lone\udc80surrogate",
    "a/\ud800",
    "k" * 1025,
    "é" * 513,
    "long/" + "s" * 256,
    "/".join("d" * 129),
)

#: Listing prefixes `list_paths` must refuse: like `INVALID_KEYS`, except that the
#: empty prefix and a single trailing ``/`` are allowed for listings.
INVALID_PREFIXES: tuple[str, ...] = (
    *(p for p in INVALID_KEYS if p not in ("", "trailing/")),
    "a//",
)


def _expect_invalid(
    failures: list[str], name: str, call: Callable[[str], object], key: str
) -> None:
    try:
        call(key)
    except InvalidKey:
        return
    except Exception as exc:
        failures.append(f"{name}({key!r}) raised {exc!r}, not InvalidKey")
    else:
        failures.append(f"{name}({key!r}) did not raise InvalidKey")


def _describe(data: bytes) -> str:
    head = data[:24]
    return f"{len(data)} bytes starting {head!r}"


class StorageContract:
    """Contract tests for a `moorage.storage.base.Storage` backend.

    Subclass it in your own test suite (the subclass's name must start with ``Test`` so
    pytest collects it) and override the ``storage`` fixture so that it yields a fresh,
    empty storage for every test::

        import pytest
        from moorage.testing import StorageContract
        from my_plugin import MyStorage

        class TestMyStorage(StorageContract):
            @pytest.fixture
            def storage(self, tmp_path):
                store = MyStorage(tmp_path.as_uri().replace("file://", "my://"))
                yield store
                store.close()

    The fixture may request any other fixture (``tmp_path``, a server fixture...). Only
    ``storage`` has to be overridden. The class attributes below tune sizes; the async
    twins are driven with `asyncio.run` inside ordinary test methods, so
    pytest-asyncio is not needed.
    """

    #: Size of the large payload of the round-trip tests (about 5 MB).
    large_payload_size: ClassVar[int] = 5 * 1024 * 1024
    #: Threads writing one key at once in the concurrent-writers test.
    concurrent_writers: ClassVar[int] = 4
    #: Writes each of those threads makes.
    concurrent_rounds: ClassVar[int] = 8
    #: Size of each concurrent writer's payload.
    concurrent_payload_size: ClassVar[int] = 256 * 1024
    #: Seconds any background thread may take before the test fails as hung.
    thread_timeout: ClassVar[float] = 60.0
    #: Threads racing to create one key in the conditional-create race test.
    racing_creators: ClassVar[int] = 6

    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        """Override: yield a fresh, empty storage of your backend."""
        pytest.fail(
            f"{type(self).__name__} subclasses StorageContract but does not override the "
            "`storage` fixture; define `@pytest.fixture def storage(self, ...)` in the "
            "class, yielding a fresh, empty Storage",
            pytrace=False,
        )

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _listed(storage: Storage, prefix: str = "") -> list[str]:
        keys = list(storage.list_paths(prefix))
        for key in keys:
            assert isinstance(key, str), f"list_paths yielded {key!r}, not a str"
        assert len(keys) == len(set(keys)), f"list_paths({prefix!r}) repeated keys: {keys}"
        return sorted(keys)

    def _large_payload(self) -> bytes:
        return random.Random(1234).randbytes(self.large_payload_size)

    # -- the basics ------------------------------------------------------------------------

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

    def test_round_trip_large_payload(self, storage: Storage) -> None:
        content = self._large_payload()
        storage.write_path("large/payload", content)
        data = storage.read_path("large/payload")
        assert len(data) == len(content)
        assert data == content, "the large payload came back different"
        assert storage.read_head("large/payload", 1000) == content[:1000]

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

    def test_write_parts_equals_joined_parts(self, storage: Storage) -> None:
        parts: list[BytesLike] = [
            b"alpha-",
            bytearray(b"beta-"),
            memoryview(b"gamma-"),
            b"",
            b"delta",
        ]
        location = storage.write_parts("parts/mixed", parts)
        assert storage.read_path("parts/mixed") == b"alpha-beta-gamma-delta"
        assert location == storage.resolve_path("parts/mixed")

        storage.write_parts("parts/none", [])
        assert storage.read_path("parts/none") == b""

        big = self._large_payload()
        chunks = [big[i : i + 1_000_003] for i in range(0, len(big), 1_000_003)]
        storage.write_parts("parts/big", chunks)
        assert storage.read_path("parts/big") == big

    def test_write_parts_overwrites(self, storage: Storage) -> None:
        storage.write_path("parts/over", b"a much longer original value")
        storage.write_parts("parts/over", [b"new", b"er"])
        assert storage.read_path("parts/over") == b"newer"

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

    def test_keys_at_the_limits(self, storage: Storage) -> None:
        """The longest keys validation lets through can be written, listed and deleted."""
        deep = "/".join("d" * 128)  # 128 segments, the most a key may have
        wide = "/".join(["w" * 255, "é" * 127, "x" * 250])  # 761 bytes, full segments
        for key in (deep, wide):
            storage.write_path(key, key.encode())
            assert storage.read_path(key) == key.encode()
            assert storage.exists(key)
        assert self._listed(storage) == sorted([deep, wide])
        assert self._listed(storage, deep) == [deep]
        for key in (deep, wide):
            storage.delete_path(key)
        assert self._listed(storage) == []

    # -- invalid keys ----------------------------------------------------------------------

    def _sync_calls(self, storage: Storage) -> dict[str, Callable[[str], object]]:
        return {
            "read_path": storage.read_path,
            "read_head": lambda key: storage.read_head(key, 4),
            "write_path": lambda key: storage.write_path(key, b"must not be written"),
            "write_parts": lambda key: storage.write_parts(key, [b"must not", b" be written"]),
            "exists": storage.exists,
            "delete_path": storage.delete_path,
            "resolve_path": storage.resolve_path,
        }

    def test_invalid_keys_raise_invalid_key(self, storage: Storage) -> None:
        storage.write_path("sentinel", b"x")
        failures: list[str] = []
        for name, call in self._sync_calls(storage).items():
            for key in INVALID_KEYS:
                _expect_invalid(failures, name, call, key)
        for prefix in INVALID_PREFIXES:
            _expect_invalid(failures, "list_paths", lambda p: list(storage.list_paths(p)), prefix)
        assert not failures, "\n".join(failures)
        assert self._listed(storage) == ["sentinel"], "an invalid key wrote something"
        assert storage.read_path("sentinel") == b"x"

    def test_invalid_keys_raise_invalid_key_async(self, storage: Storage) -> None:
        calls: dict[str, Callable[[str], Awaitable[object]]] = {
            "aread_path": storage.aread_path,
            "aread_head": lambda key: storage.aread_head(key, 4),
            "awrite_path": lambda key: storage.awrite_path(key, b"must not be written"),
            "awrite_parts": lambda key: storage.awrite_parts(key, [b"must not", b" be written"]),
            "aexists": storage.aexists,
            "adelete_path": storage.adelete_path,
            "alist_paths": storage.alist_paths,
        }

        failures: list[str] = []
        for name, call in calls.items():
            keys = INVALID_PREFIXES if name == "alist_paths" else INVALID_KEYS
            for key in keys:
                _expect_invalid(failures, name, lambda k, c=call: run(c(k)), key)  # type: ignore[misc]
        assert not failures, "\n".join(failures)
        assert self._listed(storage) == [], "an invalid key wrote something"

    # -- concurrency -----------------------------------------------------------------------

    def test_concurrent_writers_leave_a_complete_value(self, storage: Storage) -> None:
        key = "contended/value"
        size = self.concurrent_payload_size
        payloads = [bytes([0x41 + i % 26]) * (size + i) for i in range(self.concurrent_writers)]
        valid = set(payloads)
        storage.write_path(key, payloads[0])
        start = threading.Barrier(self.concurrent_writers + 1, timeout=self.thread_timeout)
        writers_done = threading.Event()
        torn: list[str] = []
        reads = [0]

        def writer(payload: bytes) -> Callable[[], None]:
            def write() -> None:
                start.wait()
                for _ in range(self.concurrent_rounds):
                    storage.write_path(key, payload)

            return write

        def reader() -> None:
            start.wait()
            while not writers_done.is_set() or reads[0] == 0:
                data = storage.read_path(key)  # RecordNotFound here is a failure too
                reads[0] += 1
                if data not in valid:
                    torn.append(_describe(data))

        writers = [
            BackgroundThread(writer(p), name=f"writer-{i}").start() for i, p in enumerate(payloads)
        ]
        reading = BackgroundThread(reader, name="reader").start()
        try:
            for thread in writers:
                thread.join(self.thread_timeout)
        finally:
            writers_done.set()
            reading.join(self.thread_timeout)
        assert not torn, f"a reader saw partial values: {torn[:3]}"
        final = storage.read_path(key)
        assert final in valid, f"the final value is not one writer's: {_describe(final)}"
        assert self._listed(storage) == [key], "temporary files were left visible"

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

    def test_async_write_parts(self, storage: Storage) -> None:
        async def scenario() -> str:
            return await storage.awrite_parts(
                "async/parts", [b"one-", bytearray(b"two-"), memoryview(b"three")]
            )

        location = run(scenario())
        assert location == storage.resolve_path("async/parts")
        assert storage.read_path("async/parts") == b"one-two-three"

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

    def test_async_concurrent_writers_leave_a_complete_value(self, storage: Storage) -> None:
        payloads = [bytes([0x61 + i]) * (64 * 1024 + i) for i in range(8)]

        async def scenario() -> bytes:
            await asyncio.gather(*(storage.awrite_path("async/contended", p) for p in payloads))
            return await storage.aread_path("async/contended")

        final = run(scenario())
        assert final in set(payloads), f"the final value is not one writer's: {_describe(final)}"

    # -- conditional writes (for backends that declare them) -------------------------------

    def _needs(self, storage: Storage, capability: str) -> None:
        if not getattr(storage, capability):
            pytest.skip(f"{type(storage).__name__} does not declare {capability}")

    def test_capabilities_are_declared_as_booleans(self, storage: Storage) -> None:
        for name in ("conditional_create", "conditional_replace"):
            value = getattr(storage, name)
            assert type(value) is bool, f"{name} is {value!r}, not a bool"

    def test_if_absent_creates_a_missing_key(self, storage: Storage) -> None:
        self._needs(storage, "conditional_create")
        location = storage.write_path("cond/new", b"first", if_absent=True)
        assert location == storage.resolve_path("cond/new")
        assert storage.read_path("cond/new") == b"first"
        storage.write_parts("cond/parts", [b"a", memoryview(b"b")], if_absent=True)
        assert storage.read_path("cond/parts") == b"ab"

    def test_if_absent_refuses_an_existing_key(self, storage: Storage) -> None:
        self._needs(storage, "conditional_create")
        storage.write_path("cond/taken", b"winner")
        with pytest.raises(WriteConflict, match="cond/taken"):
            storage.write_path("cond/taken", b"loser", if_absent=True)
        with pytest.raises(WriteConflict):
            storage.write_parts("cond/taken", [b"lo", b"ser"], if_absent=True)
        with pytest.raises(WriteConflict):
            run(storage.awrite_parts("cond/taken", [b"async loser"], if_absent=True))
        assert storage.read_path("cond/taken") == b"winner"
        assert self._listed(storage) == ["cond/taken"], "a refused write left files behind"

    def test_if_absent_large_payload(self, storage: Storage) -> None:
        self._needs(storage, "conditional_create")
        large = self._large_payload()
        storage.write_parts("cond/large", [large[:10], memoryview(large)[10:]], if_absent=True)
        with pytest.raises(WriteConflict):
            storage.write_parts("cond/large", [b"x", large], if_absent=True)
        assert storage.read_path("cond/large") == large

    def test_if_absent_race_has_exactly_one_winner(self, storage: Storage) -> None:
        self._needs(storage, "conditional_create")
        count = self.racing_creators
        start = threading.Barrier(count, timeout=self.thread_timeout)
        won: list[bytes] = []
        lost: list[bytes] = []

        def creator(payload: bytes) -> Callable[[], None]:
            def create() -> None:
                start.wait()
                try:
                    storage.write_path("cond/raced", payload, if_absent=True)
                except WriteConflict:
                    lost.append(payload)
                else:
                    won.append(payload)

            return create

        payloads = [f"writer {i}".encode() * 1000 for i in range(count)]
        threads = [
            BackgroundThread(creator(p), name=f"creator-{i}").start()
            for i, p in enumerate(payloads)
        ]
        for thread in threads:
            thread.join(self.thread_timeout)
        assert len(won) == 1, f"{len(won)} of {count} racing creators succeeded, not exactly one"
        assert len(lost) == count - 1
        assert storage.read_path("cond/raced") == won[0], "the stored value is not the winner's"

    def test_async_if_absent_race_has_exactly_one_winner(self, storage: Storage) -> None:
        self._needs(storage, "conditional_create")

        async def scenario() -> list[object]:
            return await asyncio.gather(
                *(
                    storage.awrite_path("cond/araced", b"%d" % i, if_absent=True)
                    for i in range(self.racing_creators)
                ),
                return_exceptions=True,
            )

        outcomes = run(scenario())
        winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, str)]
        others = [o for o in outcomes if not isinstance(o, str)]
        assert len(winners) == 1, f"outcomes: {outcomes}"
        assert all(isinstance(o, WriteConflict) for o in others), f"outcomes: {outcomes}"
        assert storage.read_path("cond/araced") == b"%d" % winners[0]

    def test_version_of(self, storage: Storage) -> None:
        self._needs(storage, "conditional_replace")
        assert storage.version_of("cond/missing") is None
        storage.write_path("cond/v", b"one")
        first = storage.version_of("cond/v")
        assert isinstance(first, str), f"version_of returned {first!r}, not a str"
        assert first, "version_of returned an empty version"
        assert storage.version_of("cond/v") == first, "the version changed without a write"
        assert run(storage.aversion_of("cond/v")) == first
        storage.write_path("cond/v", b"two")
        assert storage.version_of("cond/v") != first, "a write kept the old version"

    def test_if_version_replaces_only_that_version(self, storage: Storage) -> None:
        self._needs(storage, "conditional_replace")
        storage.write_path("cond/v", b"one")
        seen = storage.version_of("cond/v")
        assert seen is not None
        storage.write_path("cond/v", b"two", if_version=seen)
        assert storage.read_path("cond/v") == b"two"
        with pytest.raises(WriteConflict, match="cond/v"):
            storage.write_path("cond/v", b"stale", if_version=seen)  # 'two' replaced 'one'
        with pytest.raises(WriteConflict):
            run(storage.awrite_parts("cond/v", [b"stale"], if_version=seen))
        assert storage.read_path("cond/v") == b"two"
        current = run(storage.aversion_of("cond/v"))
        assert current is not None
        run(storage.awrite_parts("cond/v", [b"thr", b"ee"], if_version=current))
        assert storage.read_path("cond/v") == b"three"

    def test_if_version_fails_on_a_deleted_key(self, storage: Storage) -> None:
        self._needs(storage, "conditional_replace")
        storage.write_path("cond/gone", b"one")
        seen = storage.version_of("cond/gone")
        assert seen is not None
        storage.delete_path("cond/gone")
        with pytest.raises(WriteConflict):
            storage.write_path("cond/gone", b"back", if_version=seen)
        assert not storage.exists("cond/gone")
