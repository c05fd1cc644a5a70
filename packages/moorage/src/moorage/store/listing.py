"""What a store holds: `RecordInfo` for each record under a prefix, from the storage's
listing and each record's head (never its payload).

A listing comes a page at a time (`moorage.storage.Storage.list_entries`), and each
record's head is read and checked as `exists` reads it: with a signing key, a record
whose head is not signed with it is reported as damaged, never believed. The async
heads of a page are read concurrently, as many at once as the storage takes
(`Storage.io_concurrency`: one on local disk, more on object stores).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from moorage.errors import RecordCorrupted, RecordNotFound
from moorage.operations import Call, Op, concurrently, run_async, run_sync
from moorage.records.expiry import is_expired
from moorage.storage import Storage, StorageEntry, validate_key, validate_prefix
from moorage.store.base import StoreBase
from moorage.store.reading import head_op

__all__ = [
    "RecordInfo",
    "alist_records",
    "info_op",
    "list_records",
    "page_infos_op",
    "record_info_op",
]

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


def record_info_op(store: StoreBase, key: str) -> Op[RecordInfo]:
    """The `RecordInfo` of the record under ``key``: its head, and its size and last
    modification from the listing's first page under that key (None when the backend's
    listing does not give them). `RecordNotFound` if nothing is stored there."""
    validate_key(key)
    storage = _listed_storage(store)
    pages, apages = storage.list_entries(key), storage.alist_entries(key)
    page = yield from Call(_first_page, _afirst_page, pages, apages)
    entry = next((e for e in page or () if e.key == key), StorageEntry(key))
    info = yield from info_op(store, storage, entry)
    if info is None:
        raise RecordNotFound(
            f"no record under key {key!r} in {storage.url}; check the key, or list the "
            "keys there with `moorage ls`"
        )
    return info


def _first_page(pages: Iterator[list[StorageEntry]], _: object) -> list[StorageEntry] | None:
    try:
        return next(pages, None)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


async def _afirst_page(
    _: object, pages: AsyncIterator[list[StorageEntry]]
) -> list[StorageEntry] | None:
    try:
        return await anext(pages, None)
    finally:
        aclose = getattr(pages, "aclose", None)
        if aclose is not None:
            await aclose()


def list_records(store: StoreBase, prefix: str = "") -> Iterator[RecordInfo]:
    """Each record under ``prefix``, in the listing's order, one page at a time."""
    validate_prefix(prefix)
    storage = _listed_storage(store)
    for page in storage.list_entries(prefix):
        yield from _present(run_sync(page_infos_op(store, storage, page)))


async def alist_records(store: StoreBase, prefix: str = "") -> AsyncIterator[RecordInfo]:
    """`list_records` for async code."""
    validate_prefix(prefix)
    storage = _listed_storage(store)
    async for page in storage.alist_entries(prefix):
        for info in _present(await run_async(page_infos_op(store, storage, page))):
            yield info


def page_infos_op(
    store: StoreBase, storage: Storage, page: Sequence[StorageEntry]
) -> Op[list[RecordInfo | None]]:
    """The `RecordInfo` of each entry of a listed page, in order, the heads read
    `Storage.io_concurrency` at a time."""
    ops = [info_op(store, storage, entry) for entry in page]
    return (yield from concurrently(ops, storage.io_concurrency))


def _present(infos: list[RecordInfo | None]) -> list[RecordInfo]:
    return [info for info in infos if info is not None]
