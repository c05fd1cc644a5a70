"""`ConditionalWriteCases`: ``if_absent`` and ``if_version`` writes, for backends that
declare ``conditional_create`` or ``conditional_replace``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from moorage.errors import WriteConflict
from moorage.storage import Storage
from moorage.testing._util import BackgroundThread, run
from moorage.testing.storage.harness import StorageHarness

__all__ = ["ConditionalWriteCases"]


class ConditionalWriteCases(StorageHarness):
    """Conditional writes: a create that loses to an existing key, a replace that loses
    to a newer version, and races among creators with exactly one winner. Each test is
    skipped unless the storage declares the capability it needs; the declarations
    themselves must be booleans."""

    def _needs(self, storage: Storage, capability: str) -> None:
        """Skip the test unless ``storage`` declares ``capability`` (an optional feature)."""
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
