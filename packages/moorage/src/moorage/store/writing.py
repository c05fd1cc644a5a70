"""Writing operations of a store, each written once (see `moorage.operations`): a record
encoded and written, under a write condition, combined or split over a metadata storage,
with a create-if-absent that storages without conditional writes emulate under a lock."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from moorage.buffers import BytesLike
from moorage.errors import LockError, WriteConflict
from moorage.format.codec import Encoded, encode_record
from moorage.format.record import ResultRecord
from moorage.locking import LockManager, MemoryLockManager
from moorage.operations import Call, Op
from moorage.storage import (
    ALWAYS,
    IF_ABSENT,
    Storage,
    WriteCondition,
    validate_key,
    write_conflict,
)
from moorage.storage.base import ListsExpiration, WritesHeadLast
from moorage.storage.entries import expiry_stamp
from moorage.store.base import StoreBase
from moorage.store.defaults import generate_default_holder

__all__ = ["delete_op", "persist_op", "write_parts_op"]


@functools.cache
def _fallback_locks() -> LockManager:
    """The process's memory lock manager: what a create-if-absent on a storage without
    conditional writes locks when the store has no lock manager of its own."""
    return MemoryLockManager()


def _check_writer(
    key: str, holder: str, current: str | None, where: str, action: str = "write"
) -> None:
    if current is not None and current != holder:
        raise LockError(
            f"cannot {action} record {key!r}: it is locked in {where} by {current!r}, not by "
            f"{holder!r}; acquire the lock first or wait for it to be released"
        )


def persist_op(
    store: StoreBase,
    record: ResultRecord[Any],
    holder: str | None,
    condition: WriteCondition = ALWAYS,
    locked: bool = False,
) -> Op[None]:
    """Write a record; under ``condition``, `WriteConflict` and nothing written when
    it does not hold. ``locked``: ``holder`` holds the key's lock already."""
    key = record.metadata.storage_key
    if key is None:
        key = store.storage_key_fn()
        record.metadata.storage_key = key
    validate_key(key)
    storage = store._storage()
    split = store.metadata_storage is not None
    location = storage.resolve_path(key) if store.record_format == "prefect" else None
    head_last = (
        storage.writes_head_last and not storage.lists_expiration and condition.if_version is None
    )
    encoded = encode_record(
        record.metadata,
        record.result,
        key,
        store.record_format,
        split,
        store.signing_key,
        location,
        head_last=head_last,
    )
    expiry = expiry_stamp(record.metadata.expiration)
    manager = store.lock_manager
    if not (yield from _created_first_op(store, encoded, key, condition, locked, expiry)):
        if manager is not None:
            holder = holder or generate_default_holder()
            current = yield from Call(manager.lock_holder, manager.alock_holder, key)
            _check_writer(key, holder, current, manager.url)
            locked = locked or current == holder  # the store's lock, asked just now
        if condition.if_absent and not _creates_natively(store):
            yield from _create_under_lock_op(store, encoded, key, holder, locked, expiry)
        else:
            yield from _write_encoded_op(store, encoded, key, condition, expiry)
    for name, value in encoded.filled.items():  # the record now describes what was written
        setattr(record.metadata, name, value)
    store.counters.wrote(_stored_size(encoded))
    store.remember(key, record, encoded.size)


def _created_first_op(
    store: StoreBase,
    encoded: Encoded,
    key: str,
    condition: WriteCondition,
    locked: bool,
    expiry: str,
) -> Op[bool]:
    """Whether a plain write under a lock manager created the record without asking it.

    Creating a record needs nobody's lock: a transaction that holds the key's lock
    commits conditionally (create only, or over the version it found), so the storage
    refuses its commit and it returns this record. Only replacing a record asks who
    holds the key, which saves a lock-manager round trip per new record. False (nothing
    written) when that does not apply or a record is there already."""
    if store.lock_manager is None or locked or condition or not _creates_natively(store):
        return False
    try:
        yield from _write_encoded_op(store, encoded, key, IF_ABSENT, expiry)
    except WriteConflict:
        return False
    return True


def _stored_size(encoded: Encoded) -> int:
    """The bytes a write sent to storage: the record, and its metadata if split."""
    parts = [*encoded.result_parts, *(encoded.metadata_parts or ())]
    head = encoded.head_last.head_size if encoded.head_last is not None else 0
    return head + sum(memoryview(part).nbytes for part in parts)


def _creates_natively(store: StoreBase) -> bool:
    """Whether every storage a record goes to decides create-if-absent itself."""
    meta = store.metadata_storage
    return store._storage().conditional_create and (meta is None or meta.conditional_create)


def write_parts_op(
    storage: Storage,
    key: str,
    parts: Sequence[BytesLike],
    condition: WriteCondition,
    expiry: str | None,
) -> Op[object]:
    """Write ``parts`` under ``condition``; ``expiry`` (`expiry_stamp`) goes with them to a
    storage whose listing reports it (`Storage.lists_expiration`), and nowhere else."""
    if expiry is None or not storage.lists_expiration:
        return (
            yield from Call(
                storage.write_parts, storage.awrite_parts, key, parts, **condition.kwargs()
            )
        )
    stamped = cast(ListsExpiration, storage)  # what the capability promises
    return (
        yield from Call(
            stamped.write_parts,
            stamped.awrite_parts,
            key,
            parts,
            **condition.kwargs(),
            expiry=expiry,
        )
    )


def _write_encoded_op(
    store: StoreBase, encoded: Encoded, key: str, condition: WriteCondition, expiry: str
) -> Op[None]:
    """Write an encoded record. ``expiry`` (`expiry_stamp`) goes to the storage whose
    listing is read for the record's expiry (the metadata storage of split records)."""
    storage = store._storage()
    meta = store.metadata_storage
    write, awrite = storage.write_parts, storage.awrite_parts
    if encoded.head_last is not None:  # only encoded so for such a storage, unsplit
        record, last = encoded.head_last, cast(WritesHeadLast, storage)
        yield from Call(
            last.write_head_last,
            last.awrite_head_last,
            encoded.result_key,
            record.head_size,
            record.body,
            record.observe,
            record.head,
            if_absent=condition.if_absent,
        )
        return
    if encoded.metadata_parts is None or meta is None:
        result_key, parts = encoded.result_key, encoded.result_parts
        yield from write_parts_op(storage, result_key, parts, condition, expiry)
        return
    # Split records: payload first, then the metadata that makes the record exist.
    # Versions are not checked here (a pair of objects has no single version).
    create = IF_ABSENT if condition.if_absent else ALWAYS
    try:
        yield from Call(write, awrite, encoded.result_key, encoded.result_parts, **create.kwargs())
    except WriteConflict:
        if (yield from Call(meta.exists, meta.aexists, key)):
            raise
        # A payload without metadata: its writer died before finishing. Replace it.
        yield from Call(write, awrite, encoded.result_key, encoded.result_parts)
    yield from write_parts_op(meta, key, encoded.metadata_parts, create, expiry)


def _create_under_lock_op(
    store: StoreBase, encoded: Encoded, key: str, holder: str | None, locked: bool, expiry: str
) -> Op[None]:
    """Create-if-absent on a storage that cannot decide it: check again and write
    while holding the key's lock (the store's lock manager, else this process's).
    ``locked``: ``holder`` holds that lock already, and keeps it afterwards.
    Writers that skip the lock (another process without a shared lock manager) can
    still race; storages with conditional writes close that gap."""
    manager = store.lock_manager or _fallback_locks()
    holder = holder or generate_default_holder()
    if not locked and store.lock_manager is None:  # a lock taken on the fallback
        locked = yield from Call(manager.is_lock_holder, manager.ais_lock_holder, key, holder)
    if not locked:
        yield from Call(manager.acquire_lock, manager.aacquire_lock, key, holder, None, None)
    try:
        there = store.metadata_storage or store._storage()
        if (yield from Call(there.exists, there.aexists, key)):
            raise write_conflict(key, there.url, None)
        yield from _write_encoded_op(store, encoded, key, ALWAYS, expiry)
    finally:
        if not locked:
            yield from Call(manager.release_lock, manager.arelease_lock, key, holder)


def delete_op(store: StoreBase, key: str, holder: str | None) -> Op[bool]:
    """Remove the record under ``key``; whether anything was stored there.

    A record split over a metadata storage loses its metadata first (it then no longer
    exists for any reader), then its payload under the same key. A payload a foreign
    writer put under another key (a Prefect ``storage_key`` naming elsewhere) is left
    where it is: metadata read from storage never decides what else gets deleted.
    `LockError` if another holder has the key locked.
    """
    validate_key(key)
    manager = store.lock_manager
    if manager is not None:
        holder = holder or generate_default_holder()
        current = yield from Call(manager.lock_holder, manager.alock_holder, key)
        _check_writer(key, holder, current, manager.url, "delete")
    store.forget(key)
    found = False
    meta = store.metadata_storage
    for storage in (store._storage(),) if meta is None else (meta, store._storage()):
        if (yield from Call(storage.exists, storage.aexists, key)):
            found = True
        yield from Call(storage.delete_path, storage.adelete_path, key)
    return found
