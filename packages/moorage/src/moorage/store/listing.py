"""What a store holds: `RecordInfo` for each record under a prefix, from the storage's
listing and each record's head (never its payload).

A listing comes a page at a time (`moorage.storage.Storage.list_entries`), and each
record's head is read and checked as `exists` reads it: with a signing key, a record
whose head is not signed with it is reported as damaged, never believed. The async
listing reads the heads of a page concurrently, at most `HEAD_READS_AT_ONCE` at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Literal

from moorage.errors import RecordCorrupted, RecordNotFound
from moorage.operations import Op, run_async, run_sync
from moorage.records.expiry import is_expired
from moorage.storage import Storage, StorageEntry, validate_prefix
from moorage.store.base import StoreBase
from moorage.store.reading import head_op

__all__ = ["HEAD_READS_AT_ONCE", "RecordInfo", "alist_records", "list_records"]

#: How many record heads the async listing reads at once.
HEAD_READS_AT_ONCE = 16

#: What a listed object is: a record in moorage's or Prefect's format, a raw payload
#: (a value without metadata, as Prefect leaves flow results), or bytes whose head fails
#: its checks.
ListedFormat = Literal["moorage", "prefect", "raw", "damaged"]


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """One stored record, as its storage's listing and its head describe it.

    ``size`` and ``last_modified`` are the listed object's (for a record split over a
    metadata storage, its metadata object's), None where the backend's listing does not
    give them. ``serializer`` is the type name the record's metadata names. ``problem``
    says why a ``damaged`` record's head was refused.
    """

    key: str
    size: int | None
    last_modified: dt.datetime | None
    format: ListedFormat
    expiration: dt.datetime | None = None
    serializer: str | None = None
    signed: bool = False
    problem: str | None = None

    @property
    def expired(self) -> bool:
        """Whether the record's expiration has passed."""
        return is_expired(self.expiration)


def _listed_storage(store: StoreBase) -> Storage:
    """Where a store's records are listed: its metadata storage, if it has one."""
    return store.metadata_storage or store._storage()


def info_op(store: StoreBase, storage: Storage, entry: StorageEntry) -> Op[RecordInfo | None]:
    """The `RecordInfo` of one listed object; None if it vanished since it was listed."""
    try:
        parsed = yield from head_op(store, storage, entry.key)
    except RecordNotFound:
        return None
    except RecordCorrupted as exc:
        return RecordInfo(entry.key, entry.size, entry.modified, "damaged", problem=str(exc))
    if parsed is None:
        return RecordInfo(entry.key, entry.size, entry.modified, "raw")
    meta = parsed.metadata
    return RecordInfo(
        entry.key,
        entry.size,
        entry.modified,
        parsed.format,
        expiration=meta.expiration,
        serializer=meta.serializer.type,
        signed=parsed.head is not None and parsed.head.mac is not None,
    )


def list_records(store: StoreBase, prefix: str = "") -> Iterator[RecordInfo]:
    """Each record under ``prefix``, in the listing's order, one page at a time."""
    validate_prefix(prefix)
    storage = _listed_storage(store)
    for page in storage.list_entries(prefix):
        for entry in page:
            info = run_sync(info_op(store, storage, entry))
            if info is not None:
                yield info


async def alist_records(store: StoreBase, prefix: str = "") -> AsyncIterator[RecordInfo]:
    """`list_records` for async code: the heads of a page are read concurrently."""
    import asyncio

    validate_prefix(prefix)
    storage = _listed_storage(store)
    limit = asyncio.Semaphore(HEAD_READS_AT_ONCE)

    async def info(entry: StorageEntry) -> RecordInfo | None:
        async with limit:
            return await run_async(info_op(store, storage, entry))

    async for page in storage.alist_entries(prefix):
        # Every head of the page is awaited, even after one failed, so no read is left
        # running behind the caller; then the first failure is raised.
        found = await asyncio.gather(*(info(entry) for entry in page), return_exceptions=True)
        infos: list[RecordInfo | None] = []
        for result in found:
            if isinstance(result, BaseException):
                raise result
            infos.append(result)
        for one in infos:
            if one is not None:
                yield one
