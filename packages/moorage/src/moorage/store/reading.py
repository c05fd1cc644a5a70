"""Reading operations of a store, each written once (see `moorage.operations`): what a
key holds (from the record's head only), a stored object's version, and whole records
(combined, or split over a metadata storage and a result storage)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, Literal

from moorage.buffers import BytesLike
from moorage.errors import (
    PayloadMissing,
    RecordCorrupted,
    RecordExpired,
    RecordNotFound,
    SerializationError,
)
from moorage.format.codec import (
    Decoded,
    ParsedMetadata,
    decode_payload,
    decode_stored,
    metadata_from_head,
    parse_metadata_blob,
)
from moorage.format.native import HEAD_SIZE
from moorage.format.payloads import Trust
from moorage.format.record import ResultRecord
from moorage.format.streaming import StreamDecoder
from moorage.operations import Call, Op
from moorage.records.expiry import check_fresh
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.base import Serializer
from moorage.storage import Storage, validate_key
from moorage.storage.streams import read_record
from moorage.store.base import StoreBase
from moorage.store.defaults import generate_default_holder

__all__ = ["Found", "exists_op", "payload_keys", "probe_op", "read_op", "version_op"]

logger = logging.getLogger("moorage")

#: What a probe of a key found: no bytes, a readable unexpired record, or bytes that are
#: not one (expired, damaged, a payload without its metadata...).
Found = Literal["missing", "valid", "stale"]


def payload_keys(meta: ResultRecordMetadata, key: str, storage: Storage) -> list[str]:
    """Where a split record's payload may be: its storage_key, then the record's key."""
    candidates: list[str] = []
    stored = meta.storage_key
    if stored:
        try:
            candidates.append(validate_key(stored))
        except ValueError:
            relative = storage.key_for_location(stored)
            if relative:
                candidates.append(relative)
    if key not in candidates:
        candidates.append(key)
    return candidates


def head_op(store: StoreBase, storage: Storage, key: str) -> Op[ParsedMetadata | None]:
    """The record's metadata from its head; None for a raw payload (no metadata)."""
    size = HEAD_SIZE
    while True:
        head = yield from Call(storage.read_head, storage.aread_head, key, size)
        complete = len(head) < size
        parsed = metadata_from_head(head, key, storage.url, complete, store._trust())
        if not isinstance(parsed, int):
            return parsed
        if complete or parsed <= len(head):
            raise RecordCorrupted(
                f"record {key!r} in {storage.url} is truncated: its head says "
                f"{parsed} bytes, it has {len(head)}; delete it and write it again"
            )
        size = parsed


def probe_op(store: StoreBase, key: str) -> Op[Found]:
    """What storage holds under ``key``, from the record's head (never the memory
    cache: a record deleted from storage is gone, whatever this process remembers)."""
    validate_key(key)
    storage = store.metadata_storage or store._storage()
    try:
        parsed = yield from head_op(store, storage, key)
    except RecordNotFound:
        return "missing"
    except RecordCorrupted as exc:
        logger.warning("treating record %r as missing: %s", key, exc)
        return "stale"
    if parsed is None:  # a raw payload: a record in result storage, not in metadata
        return "valid" if store.metadata_storage is None else "stale"
    if parsed.metadata.is_expired():
        return "stale"
    if store.metadata_storage is not None:
        result_storage = store._storage()
        for candidate in payload_keys(parsed.metadata, key, result_storage):
            if (yield from Call(result_storage.exists, result_storage.aexists, candidate)):
                return "valid"
        return "stale"
    return "valid"


def exists_op(store: StoreBase, key: str) -> Op[bool]:
    return (yield from probe_op(store, key)) == "valid"


def version_op(store: StoreBase, key: str) -> Op[str | None]:
    """The stored object's version, where the storage has versions (None otherwise,
    and for records split over two storages, whose pair has no single version)."""
    storage = store._storage()
    if store.metadata_storage is not None or not storage.conditional_replace:
        return None
    return (yield from Call(storage.version_of, storage.aversion_of, key))


def wait_op(store: StoreBase, key: str, holder: str | None) -> Op[None]:
    """Wait while another holder has ``key`` locked (one question to the lock manager
    when nobody has it)."""
    manager = store.lock_manager
    if manager is not None:
        current = yield from Call(manager.lock_holder, manager.alock_holder, key)
        if current is not None and current != (holder or generate_default_holder()):
            yield from Call(manager.wait_for_lock, manager.await_for_lock, key)


def read_op(
    store: StoreBase,
    key: str,
    holder: str | None,
    use_cache: bool = True,
    allow: Callable[[Serializer], bool] | None = None,
    wait: bool = True,
) -> Op[ResultRecord[Any]]:
    """Read a record; ``use_cache=False`` goes to storage even when the memory cache
    has the key (a SERIALIZABLE transaction must see other processes' writes).
    ``allow`` checks the serializer before a stored value is decoded (`DecodeRefused`
    if it says no); a value the memory cache holds is decoded already. ``wait``: first
    wait while another holder has the key locked, as Prefect's reads do; a task's
    first look skips that (a committed record is whole, written atomically) so that a
    hit costs one read with or without a lock manager."""
    validate_key(key)
    if wait and store.lock_manager is not None:
        yield from wait_op(store, key, holder)
    try:
        cached = store.cached(key) if use_cache else None
        if cached is not None:
            return cached
        storage = store._storage()
        trust = store._trust() if allow is None else replace(store._trust(), allow=allow)
        if store.metadata_storage is None:
            record, size = yield from _read_combined_op(store, key, storage, trust)
        else:
            meta = store.metadata_storage
            record, size = yield from _read_split_op(store, key, storage, meta, trust)
    except (RecordNotFound, RecordExpired, RecordCorrupted, SerializationError):
        store.counters.add("misses")
        raise
    store.counters.read(size)
    store.remember(key, record, size)
    return record


def _read_combined_op(
    store: StoreBase, key: str, storage: Storage, trust: Trust
) -> Op[tuple[ResultRecord[Any], int]]:
    if storage.streams_reads:  # large records are decoded from the open file
        decoder = StreamDecoder(key, storage.url, store.serializer, trust)
        decode = partial(read_record, decoder)
        stream: Call[Decoded]
        stream = Call(storage.read_stream, storage.aread_stream, key, decode)
        decoded = yield from stream
    else:
        data = yield from Call(storage.read_path, storage.aread_path, key)
        decoded = decode_stored(data, key, storage.url, store.serializer, trust)
    return ResultRecord(metadata=decoded.metadata, result=decoded.value), decoded.size


def _read_split_op(
    store: StoreBase, key: str, storage: Storage, metadata_storage: Storage, trust: Trust
) -> Op[tuple[ResultRecord[Any], int]]:
    meta_blob = yield from Call(metadata_storage.read_path, metadata_storage.aread_path, key)
    parsed = parse_metadata_blob(meta_blob, key, metadata_storage.url, trust)
    check_fresh(key, metadata_storage.url, parsed.metadata.expiration)
    payload: BytesLike
    if parsed.prefect_text is not None:
        payload = parsed.prefect_text
    else:
        payload = yield from _payload_op(store, parsed.metadata, key, storage)
    decoded = decode_payload(parsed, payload, key, storage.url, trust, store.serializer)
    return ResultRecord(metadata=decoded.metadata, result=decoded.value), decoded.size


def _payload_op(
    store: StoreBase, meta: ResultRecordMetadata, key: str, storage: Storage
) -> Op[bytes]:
    candidates = payload_keys(meta, key, storage)
    for candidate in candidates:
        try:
            return (yield from Call(storage.read_path, storage.aread_path, candidate))
        except RecordNotFound:
            continue
    meta_where = store.metadata_storage.url if store.metadata_storage else "metadata storage"
    raise PayloadMissing(
        f"the metadata of record {key!r} is in {meta_where}, but its payload is missing "
        f"from {storage.url} (looked under {', '.join(map(repr, candidates))}); write the "
        "record again"
    )
