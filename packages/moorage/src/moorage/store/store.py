"""`ResultStore`: writes values as records, reads them back, and coordinates writers.

The public API, sync and async. Each method runs one operation of
`moorage.store.reading` or `moorage.store.writing` (written once, see
`moorage.operations`) with blocking calls or with the backends' async methods, so
encoding, key checks, expiry and lock rules have one implementation shared by both APIs,
and a sync call never starts an event loop. What a store is made of is `StoreBase`.
"""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Self, Unpack

from moorage.format.record import ResultRecord
from moorage.locking import IsolationLevel
from moorage.operations import run_async, run_sync
from moorage.serializers.base import Serializer
from moorage.storage import PruneReport, Storage, validate_key
from moorage.store.base import StoreBase
from moorage.store.copying import CopyReport, copy_op
from moorage.store.defaults import DEFAULT_STORAGE_KEY_FN, generate_default_holder
from moorage.store.deriving import flow_update, task_update
from moorage.store.listing import RecordInfo, alist_records, list_records, record_info_op
from moorage.store.reading import exists_op, read_op
from moorage.store.retention import Progress, PruneRules, prune_op
from moorage.store.stats import StoreStats
from moorage.store.writing import delete_op, persist_op

if TYPE_CHECKING:
    from moorage.store.persisted import PersistedResult
    from moorage.store.transaction import Transaction, TransactionOptions

__all__ = ["DEFAULT_STORAGE_KEY_FN", "ResultStore"]


class ResultStore(StoreBase):
    """Writes Python values as result records, reads them back, and locks keys.

    Fields accept objects, URLs or names:

    ```python
    ResultStore(result_storage="s3://bucket/results", serializer="json",
                lock_manager="redis://localhost:6379/0")
    ```

    Defaults come from settings (`moorage.config.settings`).
    """

    # -- records ------------------------------------------------------------------------

    def create_result(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
    ) -> PersistedResult:
        """Deprecated, as in Prefect 3: write ``obj`` and return a `PersistedResult` for it.
        Use `create_result_record` and `persist_result_record` (or `write`)."""
        from moorage.store.persisted import create_result  # the deprecated API, on use

        return create_result(self, obj, key, expiration, stacklevel=3)

    async def acreate_result(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
    ) -> PersistedResult:
        """`create_result`, for async code (deprecated too)."""
        from moorage.store.persisted import acreate_result  # the deprecated API, on use

        return await acreate_result(self, obj, key, expiration, stacklevel=3)

    def write(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
        holder: str | None = None,
    ) -> ResultRecord[Any]:
        """Write ``obj`` as a record; return the record. See `persist_result_record`."""
        record = self.new_record(obj, key, expiration)
        run_sync(persist_op(self, record, holder))
        return record

    async def awrite(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
        holder: str | None = None,
    ) -> ResultRecord[Any]:
        record = self.new_record(obj, key, expiration)
        await run_async(persist_op(self, record, holder))
        return record

    def persist_result_record(
        self, result_record: ResultRecord[Any], holder: str | None = None
    ) -> None:
        """Write a record. Raises `LockError` if another holder has locked its key."""
        run_sync(persist_op(self, result_record, holder))

    async def apersist_result_record(
        self, result_record: ResultRecord[Any], holder: str | None = None
    ) -> None:
        await run_async(persist_op(self, result_record, holder))

    def read(
        self,
        key: str,
        holder: str | None = None,
        *,
        allow: Callable[[Serializer], bool] | None = None,
    ) -> ResultRecord[Any]:
        """Read the record under ``key``.

        Waits while another holder has the key locked. Raises `RecordNotFound`,
        `RecordExpired`, `RecordCorrupted` (naming the key) as the case may be.
        ``allow`` is asked about the serializer a stored value would be decoded with,
        after the record's checks and before any decoding: ``allow=Serializer.runs_no_code``
        reads json and msgpack records of an untrusted storage and refuses the pickle
        family with `DecodeRefused`, since unpickling runs code the record names.
        """
        return run_sync(read_op(self, key, holder, allow=allow))

    async def aread(
        self,
        key: str,
        holder: str | None = None,
        *,
        allow: Callable[[Serializer], bool] | None = None,
    ) -> ResultRecord[Any]:
        return await run_async(read_op(self, key, holder, allow=allow))

    def exists(self, key: str) -> bool:
        """Whether an unexpired record is stored under ``key``; reads only its head."""
        return run_sync(exists_op(self, key))

    async def aexists(self, key: str) -> bool:
        return await run_async(exists_op(self, key))

    def delete(self, key: str, holder: str | None = None) -> bool:
        """Remove the record under ``key`` (metadata and payload); return whether one
        was stored there. Raises `LockError` if another holder has the key locked."""
        return run_sync(delete_op(self, key, holder))

    async def adelete(self, key: str, holder: str | None = None) -> bool:
        """Async twin of `delete`."""
        return await run_async(delete_op(self, key, holder))

    def info(self, key: str) -> RecordInfo:
        """What is stored under ``key`` (format, serializer, expiration, whether it is
        signed, size and last modification), from the record's head and the listing,
        without reading or decoding its value. `RecordNotFound` if nothing is there."""
        return run_sync(record_info_op(self, key))

    async def ainfo(self, key: str) -> RecordInfo:
        """Async twin of `info`."""
        return await run_async(record_info_op(self, key))

    def list(self, prefix: str = "") -> Iterator[RecordInfo]:
        """Each record stored under ``prefix`` (its key, size, last modification,
        expiration, serializer, format and whether it is signed), read from the storage's
        listing a page at a time and from each record's head, never its payload."""
        return list_records(self, prefix)

    def alist(self, prefix: str = "") -> AsyncIterator[RecordInfo]:
        """Async twin of `list`: ``async for info in store.alist(prefix)``."""
        return alist_records(self, prefix)

    # -- locks --------------------------------------------------------------------

    def acquire_lock(
        self,
        key: str,
        holder: str | None = None,
        timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Lock ``key`` for ``holder`` (default: this thread or asyncio task).

        Waits up to ``timeout`` seconds (None: until the lock is free) and returns whether
        the lock was taken. The lock lapses after ``hold_timeout`` seconds (None: the lock
        manager's default, from the ``lock_hold_timeout`` setting).
        """
        return self.require_lock_manager().acquire_lock(
            validate_key(key), holder or generate_default_holder(), timeout, hold_timeout
        )

    async def aacquire_lock(
        self,
        key: str,
        holder: str | None = None,
        timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Async twin of `acquire_lock`."""
        return await self.require_lock_manager().aacquire_lock(
            validate_key(key), holder or generate_default_holder(), timeout, hold_timeout
        )

    def release_lock(self, key: str, holder: str | None = None) -> None:
        """Release ``key``; `LockError` if ``holder`` does not hold it."""
        self.require_lock_manager().release_lock(
            validate_key(key), holder or generate_default_holder()
        )

    async def arelease_lock(self, key: str, holder: str | None = None) -> None:
        """Async twin of `release_lock`."""
        await self.require_lock_manager().arelease_lock(
            validate_key(key), holder or generate_default_holder()
        )

    def is_locked(self, key: str) -> bool:
        """Whether any holder has an unexpired lock on ``key``."""
        return self.require_lock_manager().is_locked(validate_key(key))

    def is_lock_holder(self, key: str, holder: str | None = None) -> bool:
        """Whether ``holder`` (default: this thread or task) holds the lock, per the backend."""
        return self.require_lock_manager().is_lock_holder(
            validate_key(key), holder or generate_default_holder()
        )

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if ``timeout`` seconds passed first."""
        return self.require_lock_manager().wait_for_lock(validate_key(key), timeout)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Async twin of `wait_for_lock`."""
        return await self.require_lock_manager().await_for_lock(validate_key(key), timeout)

    # -- transactions -----------------------------------------------------------------

    def transaction(
        self,
        key: str,
        isolation_level: IsolationLevel | str = IsolationLevel.READ_COMMITTED,
        **options: Unpack[TransactionOptions],
    ) -> Transaction:
        """A transaction on ``key``: ``with store.transaction(key) as txn:`` (or ``async
        with``). See `moorage.store.transaction`.

        Options: ``overwrite`` recomputes even when a record is committed;
        ``lock_timeout`` bounds the wait for the lock (SERIALIZABLE; None waits until it
        is free); ``hold_timeout`` is how long the lock lasts if this process dies;
        ``holder`` names the lock holder; ``expiration`` is given to the record the
        commit writes.
        """
        # Imported on first use, not with the store: most programs never open one.
        from moorage.store.transaction import Transaction

        return Transaction(self, key, isolation_level, **options)

    # -- housekeeping -----------------------------------------------------------------

    def _pruned_storages(self) -> builtins.list[Storage]:
        storages = [self._storage()]
        if self.metadata_storage is not None and self.metadata_storage.url != storages[0].url:
            storages.append(self.metadata_storage)
        return storages

    def prune(
        self,
        *,
        expired: bool = True,
        older_than: dt.timedelta | float | None = None,
        prefix: str = "",
        max_bytes: int | None = None,
        dry_run: bool = False,
        temp: bool = False,
        progress: Progress | None = None,
    ) -> PruneReport:
        """Remove records under ``prefix`` and report what went (or, with ``dry_run``,
        what would go) and the bytes freed: the ``expired`` ones (default), those last
        modified more than ``older_than`` ago (a timedelta or seconds), and then, while
        the rest holds more than ``max_bytes``, the oldest of the rest. ``temp=True``
        also removes the temporary files of writers killed mid-write (local storage).

        The listing is read a page at a time; expiry comes from the listing where the
        backend keeps it there (GCS, Azure), else from each record's head, read
        concurrently on object stores; removal goes in batches (S3: 1,000 keys a
        request). Records locked by another holder are kept. ``progress(stage, done,
        total)`` is told how it goes. See `moorage.store.retention`."""
        rules = _prune_rules(expired, older_than, max_bytes, dry_run)
        report = PruneReport(dry_run=dry_run)
        if temp:  # first: a local listing removes the dead writers' files it passes
            for storage in self._pruned_storages():
                report += storage.prune_temp(dry_run=True) if dry_run else storage.prune_temp()
        return report + run_sync(prune_op(self, rules, prefix, progress))

    async def aprune(
        self,
        *,
        expired: bool = True,
        older_than: dt.timedelta | float | None = None,
        prefix: str = "",
        max_bytes: int | None = None,
        dry_run: bool = False,
        temp: bool = False,
        progress: Progress | None = None,
    ) -> PruneReport:
        """Async twin of `prune`."""
        rules = _prune_rules(expired, older_than, max_bytes, dry_run)
        report = PruneReport(dry_run=dry_run)
        if temp:
            for storage in self._pruned_storages():
                report += await storage.aprune_temp(dry_run=dry_run)
        return report + await run_async(prune_op(self, rules, prefix, progress))

    def copy_to(
        self,
        other: ResultStore | str,
        prefix: str = "",
        overwrite: bool = False,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> CopyReport:
        """Copy the records under ``prefix`` into ``other`` (a store, or a storage's URL,
        path or name for a store with the default settings) and report what was copied
        and what skipped. Records go byte for byte where both stores lay them out alike,
        keeping expiry, checksums and signatures, and are skipped where the target holds
        them identically already; elsewhere they are read and written again by
        ``other``. A different record already in ``other`` is kept unless ``overwrite``.
        See `moorage.store.copying`."""
        target = _target(other)
        return run_sync(copy_op(self, target, prefix, overwrite, dry_run, progress))

    async def acopy_to(
        self,
        other: ResultStore | str,
        prefix: str = "",
        overwrite: bool = False,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> CopyReport:
        """Async twin of `copy_to`."""
        target = _target(other)
        return await run_async(copy_op(self, target, prefix, overwrite, dry_run, progress))

    # -- counts ---------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Hits (from memory, from storage), misses, writes and bytes since the store was
        made, counted with the stores derived from it for tasks and flows. A miss is a
        read that found no usable record: missing, expired or unreadable."""
        return self.counters.snapshot()

    # -- parameters -------------------------------------------------------------------

    def store_parameters(self, identifier: uuid.UUID | str, parameters: dict[str, Any]) -> None:
        """Store a task run's parameters under ``parameters/<identifier>``."""
        record = self.new_record(parameters, key=f"parameters/{identifier}")
        run_sync(persist_op(self, record, None))

    async def astore_parameters(
        self, identifier: uuid.UUID | str, parameters: dict[str, Any]
    ) -> None:
        record = self.new_record(parameters, key=f"parameters/{identifier}")
        await run_async(persist_op(self, record, None))

    def read_parameters(self, identifier: uuid.UUID | str) -> dict[str, Any]:
        result: dict[str, Any] = self.read(f"parameters/{identifier}").result
        return result

    async def aread_parameters(self, identifier: uuid.UUID | str) -> dict[str, Any]:
        result: dict[str, Any] = (await self.aread(f"parameters/{identifier}")).result
        return result

    # -- deriving stores for tasks and flows -------------------------------------------

    def _derive(self, update: dict[str, Any]) -> Self:
        return self.model_validate({**dict(self), **update})

    def update_for_flow(self, flow: Any) -> Self:
        """A store with the flow's ``result_storage``, ``result_serializer`` and
        ``cache_result_in_memory`` applied (where not None)."""
        return self._derive(flow_update(flow))

    async def aupdate_for_flow(self, flow: Any) -> Self:
        """`update_for_flow`, for async code (it does no I/O: storages connect on use)."""
        return self.update_for_flow(flow)

    def update_for_task(self, task: Any) -> Self:
        """A store for a task: the flow settings plus ``result_storage_key`` (a template
        such as ``"{parameters[x]}-{fn.__name__}"``) and ``cache_policy``
        (``key_storage``, ``lock_manager``, ``isolation_level``)."""
        return self._derive(task_update(task, self.lock_manager))

    async def aupdate_for_task(self, task: Any) -> Self:
        """`update_for_task`, for async code (it does no I/O: storages connect on use)."""
        return self.update_for_task(task)


def _prune_rules(
    expired: bool,
    older_than: dt.timedelta | float | None,
    max_bytes: int | None,
    dry_run: bool,
) -> PruneRules:
    if older_than is not None and not isinstance(older_than, dt.timedelta):
        older_than = dt.timedelta(seconds=older_than)
    return PruneRules(expired, older_than, max_bytes, dry_run)


def _target(other: ResultStore | str) -> ResultStore:
    return other if isinstance(other, ResultStore) else ResultStore(result_storage=other)
