"""`RetentionCases`: what prune stands on: ``delete_paths`` (a batch of keys) and, for
backends that declare ``lists_expiration``, the expiry stamp kept with each object and
reported by the listing."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Protocol, cast

import pytest

from moorage.buffers import BytesLike
from moorage.errors import InvalidKey, RecordNotFound, WriteConflict
from moorage.storage import Storage, StorageEntry
from moorage.storage.entries import expiry_stamp
from moorage.testing._util import expect_error, run
from moorage.testing.storage.harness import StorageHarness
from moorage.testing.storage.keys import INVALID_KEYS

__all__ = ["RetentionCases"]

#: The moment the stamped writes below expire at (microseconds kept by the stamp).
MOMENT = dt.datetime(2031, 5, 17, 8, 30, 15, 250000, tzinfo=dt.UTC)


class _Stamping(Protocol):
    """The writes of a storage that declares ``lists_expiration``: they take ``expiry``."""

    def write_path(
        self, key: str, content: bytes, *, if_absent: bool = False, expiry: str | None = None
    ) -> str: ...

    def write_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
        expiry: str | None = None,
    ) -> str: ...

    async def awrite_path(self, key: str, content: bytes, *, expiry: str | None = None) -> str: ...

    async def awrite_parts(
        self, key: str, parts: Sequence[BytesLike], *, expiry: str | None = None
    ) -> str: ...


def _expiries(storage: Storage, prefix: str = "") -> dict[str, tuple[bool, dt.datetime | None]]:
    """``{key: (expiry_listed, expiration)}`` from ``list_entries(prefix)``."""
    return {e.key: (e.expiry_listed, e.expiration) for p in storage.list_entries(prefix) for e in p}


class RetentionCases(StorageHarness):
    """Batch deletes, sync and async: every key goes, missing keys are no error, a batch
    longer than the backend's own batches goes whole (`batch_delete_keys`), and a batch
    with one invalid key, or a plain string instead of a list, deletes nothing. Then the
    expiry stamps of a backend with ``lists_expiration``: a dated stamp, ``never`` and
    no stamp come back from the listing as written, for single and multi-part writes,
    conditional ones, and rewrites."""

    # -- delete_paths -------------------------------------------------------------------

    def _fill(self, storage: Storage, count: int, folder: str) -> list[str]:
        keys = [f"{folder}/{i:04d}" for i in range(count)]
        for key in keys:
            storage.write_path(key, key.encode())
        return keys

    def test_delete_paths(self, storage: Storage) -> None:
        keys = self._fill(storage, self.batch_delete_keys, "batch")
        storage.write_path("kept", b"k")
        storage.delete_paths([*keys, "batch/never-written", keys[0]])
        assert self._listed(storage) == ["kept"], "delete_paths left keys behind"
        for key in (keys[0], keys[-1]):
            with pytest.raises(RecordNotFound):
                storage.read_path(key)
        assert storage.read_path("kept") == b"k"

    def test_async_delete_paths(self, storage: Storage) -> None:
        keys = self._fill(storage, self.batch_delete_keys, "abatch")
        storage.write_path("kept", b"k")
        run(storage.adelete_paths((*keys, "abatch/never-written")))
        assert self._listed(storage) == ["kept"], "adelete_paths left keys behind"

    def test_delete_paths_of_nothing(self, storage: Storage) -> None:
        storage.write_path("kept", b"k")
        storage.delete_paths([])
        storage.delete_paths(["missing/a", "missing/b"])
        run(storage.adelete_paths(()))
        assert self._listed(storage) == ["kept"]

    def test_an_invalid_key_deletes_nothing(self, storage: Storage) -> None:
        storage.write_path("first", b"1")
        storage.write_path("last", b"2")
        failures: list[str] = []
        for key in INVALID_KEYS:
            batch = ["first", key, "last"]
            expect_error(
                failures,
                f"delete_paths({batch!r})",
                functools.partial(storage.delete_paths, batch),
                InvalidKey,
            )
            expect_error(
                failures,
                f"adelete_paths({batch!r})",
                functools.partial(run, storage.adelete_paths(batch)),
                InvalidKey,
            )
        assert not failures, "\n".join(failures)
        assert self._listed(storage) == ["first", "last"], "a batch with an invalid key deleted"

    def test_a_string_is_not_a_batch(self, storage: Storage) -> None:
        for key in ("a", "b", "ab"):
            storage.write_path(key, b"x")
        with pytest.raises(TypeError):
            storage.delete_paths("ab")
        with pytest.raises(TypeError):
            run(storage.adelete_paths("ab"))
        assert self._listed(storage) == ["a", "ab", "b"], "a string was taken for its letters"

    # -- lists_expiration ---------------------------------------------------------------

    def test_lists_expiration_is_declared_as_a_boolean(self, storage: Storage) -> None:
        value = storage.lists_expiration
        assert type(value) is bool, f"lists_expiration is {value!r}, not a bool"

    def _stamping(self, storage: Storage) -> _Stamping:
        if not storage.lists_expiration:
            pytest.skip(f"{type(storage).__name__} does not declare lists_expiration")
        return cast(_Stamping, storage)

    def test_listing_reports_each_write_s_expiry(self, storage: Storage) -> None:
        stamping = self._stamping(storage)
        stamp = expiry_stamp(MOMENT)
        large = self._large_payload()
        stamping.write_path("exp/dated", b"value", expiry=stamp)
        stamping.write_path("exp/never", b"value", expiry=expiry_stamp(None))
        stamping.write_path("exp/plain", b"value")
        stamping.write_parts("exp/parts", [b"val", memoryview(b"ue")], expiry=stamp)
        stamping.write_path("exp/empty", b"", expiry=stamp)
        # the large payload goes up in parts where the harness is tuned for it
        stamping.write_parts("exp/large", [large[:10], memoryview(large)[10:]], expiry=stamp)
        stamping.write_parts("exp/large-never", [large], expiry="never")
        stamping.write_parts("exp/large-plain", [large])
        assert _expiries(storage, "exp/") == {
            "exp/dated": (True, MOMENT),
            "exp/never": (True, None),
            "exp/plain": (False, None),
            "exp/parts": (True, MOMENT),
            "exp/empty": (True, MOMENT),
            "exp/large": (True, MOMENT),
            "exp/large-never": (True, None),
            "exp/large-plain": (False, None),
        }
        assert storage.read_path("exp/large") == large, "the stamp changed the bytes"
        assert storage.read_path("exp/parts") == b"value"

    def test_async_writes_and_listing_report_expiry(self, storage: Storage) -> None:
        stamping = self._stamping(storage)

        async def scenario() -> list[StorageEntry]:
            await stamping.awrite_path("aexp/dated", b"v", expiry=expiry_stamp(MOMENT))
            await stamping.awrite_parts("aexp/never", [b"v", b"w"], expiry="never")
            await stamping.awrite_parts("aexp/plain", [b"v"])
            return [e async for page in storage.alist_entries("aexp/") for e in page]

        found = {e.key: (e.expiry_listed, e.expiration) for e in run(scenario())}
        assert found == {
            "aexp/dated": (True, MOMENT),
            "aexp/never": (True, None),
            "aexp/plain": (False, None),
        }

    def test_a_rewrite_replaces_the_stamp(self, storage: Storage) -> None:
        stamping = self._stamping(storage)
        stamping.write_path("rexp", b"one", expiry=expiry_stamp(MOMENT))
        stamping.write_parts("rexp", [b"two"], expiry="never")
        assert _expiries(storage)["rexp"] == (True, None)
        stamping.write_path("rexp", b"three")
        assert _expiries(storage)["rexp"][0] is False, "an old stamp outlived its record"

    def test_conditional_writes_carry_the_stamp(self, storage: Storage) -> None:
        stamping = self._stamping(storage)
        if not (storage.conditional_create and storage.conditional_replace):
            pytest.skip(f"{type(storage).__name__} does not declare conditional writes")
        stamp = expiry_stamp(MOMENT)
        large = self._large_payload()
        for key, payload in (("cexp/small", b"first"), ("cexp/large", large)):
            stamping.write_parts(key, [payload], if_absent=True, expiry=stamp)
            with pytest.raises(WriteConflict):
                stamping.write_parts(key, [b"loser"], if_absent=True, expiry="never")
            assert _expiries(storage)[key] == (True, MOMENT), "a refused write changed it"
            version = storage.version_of(key)
            assert version is not None
            stamping.write_parts(key, [b"second"], if_version=version, expiry="never")
            assert _expiries(storage)[key] == (True, None)
            assert storage.read_path(key) == b"second"
