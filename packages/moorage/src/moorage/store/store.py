"""`ResultStore`: writes values as records, reads them back, and coordinates writers.

Every operation is written once, as a generator that yields the I/O it needs (see
`moorage.operations`); the sync methods run it with blocking calls, the async twins await the
backends' async methods. Encoding, key checks, expiry and lock rules therefore have one
implementation shared by both APIs, and a sync call never starts an event loop.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, Unpack

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from moorage.config.settings import default_serializer, get_settings
from moorage.errors import (
    ConfigurationError,
    LockError,
    PayloadMissing,
    RecordCorrupted,
    RecordExpired,
    RecordNotFound,
    WriteConflict,
)
from moorage.format.codec import (
    ParsedMetadata,
    Trust,
    check_fresh,
    decode_payload,
    decode_stored,
    decode_stream,
    encode_record,
    expiration_error,
    metadata_from_head,
    parse_metadata_blob,
)
from moorage.locking.base import IsolationLevel, LockManager
from moorage.operations import Op, run_async, run_sync
from moorage.plugins.resolve import lock_manager_from, storage_from
from moorage.records.models import HEAD_SIZE, ResultRecord, ResultRecordMetadata
from moorage.serializers.base import ConfiguredSerializerField
from moorage.storage.base import (
    ALWAYS,
    IF_ABSENT,
    BytesLike,
    PruneReport,
    Storage,
    WriteCondition,
    validate_key,
    write_conflict,
)
from moorage.store.memory_cache import ResultCache

if TYPE_CHECKING:
    from moorage.format.codec import Encoded
    from moorage.store.persisted import PersistedResult
    from moorage.workflow.transactions import Transaction, TransactionOptions

__all__ = ["DEFAULT_STORAGE_KEY_FN", "Found", "ResultStore"]

#: What a probe of a key found: no bytes, a readable unexpired record, or bytes that are
#: not one (expired, damaged, a payload without its metadata...).
Found = Literal["missing", "valid", "stale"]


@functools.cache
def _fallback_locks() -> LockManager:
    """The process's memory lock manager: what a create-if-absent on a storage without
    conditional writes locks when the store has no lock manager of its own."""
    from moorage.locking.base import MemoryLockManager

    return MemoryLockManager()


logger = logging.getLogger("moorage")


def DEFAULT_STORAGE_KEY_FN() -> str:
    """A random key: 32 hex characters."""
    return uuid.uuid4().hex


_HOSTNAME = socket.gethostname()


def generate_default_holder() -> str:
    """``host:pid:thread``, plus ``:task-<id>`` inside an asyncio task."""
    holder = f"{_HOSTNAME}:{os.getpid()}:{threading.get_ident()}"
    asyncio = sys.modules.get("asyncio")  # not imported yet: no task can be running
    try:
        task = asyncio.current_task() if asyncio is not None else None
    except RuntimeError:
        task = None
    if task is not None:
        holder += f":task-{id(task):x}"
    return holder


def _check_writer(key: str, holder: str, current: str | None, where: str) -> None:
    if current is not None and current != holder:
        raise LockError(
            f"cannot write record {key!r}: it is locked in {where} by {current!r}, not by "
            f"{holder!r}; acquire the lock first or wait for it to be released"
        )


def _absolute_expiration(value: dt.datetime | dt.timedelta | None) -> dt.datetime | None:
    if isinstance(value, dt.timedelta):
        return dt.datetime.now(dt.UTC) + value
    return value


def _payload_keys(meta: ResultRecordMetadata, key: str, storage: Storage) -> list[str]:
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


def _resolve_storage_field(value: Any) -> Storage | None:
    return None if value is None else storage_from(value)


def _resolve_lock_field(value: Any) -> LockManager | None:
    return None if value is None else lock_manager_from(value)


def _default_storage() -> Storage:
    from moorage.results import get_default_result_storage

    return get_default_result_storage()


def _default_metadata_storage() -> Storage | None:
    name = get_settings().metadata_storage
    return None if name is None else storage_from(name)


def _default_lock_manager() -> LockManager | None:
    url = get_settings().lock_manager
    return None if url is None else lock_manager_from(url)


def _default_cache() -> ResultCache:
    from moorage.results import default_cache

    return default_cache()


def _default_signing_key() -> bytes | None:
    return get_settings().signing_key_bytes()


def _default_format() -> Literal["moorage", "prefect"]:
    return get_settings().record_format


def _default_accept_unsigned_prefect() -> bool:
    return get_settings().accept_unsigned_prefect_records


def _default_max_payload_bytes() -> int:
    return get_settings().max_payload_bytes


class ResultStore(BaseModel):
    """Writes Python values as result records, reads them back, and locks keys.

    Fields accept objects, URLs or names:

    ```python
    ResultStore(result_storage="s3://bucket/results", serializer="json",
                lock_manager="redis://localhost:6379/0")
    ```

    Defaults come from settings (`moorage.config.settings`).
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True, validate_assignment=True, defer_build=True
    )

    result_storage: Annotated[Storage | None, BeforeValidator(_resolve_storage_field)] = Field(
        default_factory=_default_storage
    )
    metadata_storage: Annotated[Storage | None, BeforeValidator(_resolve_storage_field)] = Field(
        default_factory=_default_metadata_storage
    )
    lock_manager: Annotated[LockManager | None, BeforeValidator(_resolve_lock_field)] = Field(
        default_factory=_default_lock_manager
    )
    cache_result_in_memory: bool = True
    serializer: ConfiguredSerializerField = Field(default_factory=default_serializer)
    storage_key_fn: Callable[[], str] = DEFAULT_STORAGE_KEY_FN
    cache: ResultCache = Field(default_factory=_default_cache)
    record_format: Literal["moorage", "prefect"] = Field(default_factory=_default_format)
    signing_key: bytes | None = Field(default_factory=_default_signing_key, repr=False)
    #: With a signing_key, still read Prefect records and raw payloads (never signed).
    accept_unsigned_prefect_records: bool = Field(default_factory=_default_accept_unsigned_prefect)
    #: The most bytes a compressed payload of unstated size may decompress to.
    max_payload_bytes: int = Field(default_factory=_default_max_payload_bytes, gt=0)

    # -- travelling ----------------------------------------------------------------

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle the configuration, not the memory cache: the copy uses the cache of
        the process it lands in (storages and lock managers rebuild their clients
        there too)."""
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        fields.pop("cache", None)
        return {**state, "__dict__": fields}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        fields = dict(state["__dict__"])
        fields.setdefault("cache", _default_cache())
        super().__setstate__({**state, "__dict__": fields})

    # -- small helpers -------------------------------------------------------------

    @property
    def result_storage_block_id(self) -> None:
        """Kept for compatibility with Prefect's API; moorage has no blocks."""
        return None

    def _storage(self) -> Storage:
        storage = self.result_storage
        if storage is None:
            storage = _default_storage()
            self.result_storage = storage
        return storage

    def _cache_key(self, key: str) -> tuple[str, str, bytes | None]:
        # Stores with different signing keys must not vouch for each other's reads.
        return (self._storage().url, key, self.signing_key)

    def _trust(self) -> Trust:
        return Trust(self.signing_key, self.accept_unsigned_prefect_records, self.max_payload_bytes)

    def _lock_manager(self) -> LockManager:
        if self.lock_manager is None:
            raise ConfigurationError(
                "this ResultStore has no lock manager; pass lock_manager='memory://', "
                "'file:///path/to/locks' or 'redis://host:6379/0', or set MOORAGE_LOCK_MANAGER"
            )
        return self.lock_manager

    @staticmethod
    def generate_default_holder() -> str:
        """The holder name used when none is given: host, pid, thread, asyncio task."""
        return generate_default_holder()

    def _cached(self, key: str) -> ResultRecord[Any] | None:
        if not self.cache_result_in_memory:
            return None
        record: ResultRecord[Any] | None = self.cache.get(self._cache_key(key))
        if record is not None and record.metadata.is_expired():
            self.cache.pop(self._cache_key(key))
            raise expiration_error(key, self._storage().url, record.metadata)
        return record

    def _memory_hit(self, key: str) -> ResultRecord[Any] | None:
        """The record the memory cache holds for ``key`` when a read may return it at once
        (no lock manager whose locks a read must wait for); None otherwise, or expired."""
        if self.lock_manager is not None:
            return None
        try:
            return self._cached(key)
        except RecordExpired:
            return None

    def _remember(self, key: str, record: ResultRecord[Any], size: int) -> None:
        if self.cache_result_in_memory:
            self.cache.put(self._cache_key(key), record, size)

    # -- operations, written once -------------------------------------------------------

    def _head_op(self, storage: Storage, key: str) -> Op[ParsedMetadata | None]:
        size = HEAD_SIZE
        while True:
            head = yield (storage, "read_head", (key, size))
            complete = len(head) < size
            parsed = metadata_from_head(head, key, storage.url, complete, self._trust())
            if not isinstance(parsed, int):
                return parsed
            if complete or parsed <= len(head):
                raise RecordCorrupted(
                    f"record {key!r} in {storage.url} is truncated: its head says "
                    f"{parsed} bytes, it has {len(head)}; delete it and write it again"
                )
            size = parsed

    def _probe_op(self, key: str) -> Op[Found]:
        """What storage holds under ``key``, from the record's head (never the memory
        cache: a record deleted from storage is gone, whatever this process remembers)."""
        validate_key(key)
        storage = self.metadata_storage or self._storage()
        try:
            parsed = yield from self._head_op(storage, key)
        except RecordNotFound:
            return "missing"
        except RecordCorrupted as exc:
            logger.warning("treating record %r as missing: %s", key, exc)
            return "stale"
        if parsed is None:  # a raw payload: a record in result storage, not in metadata
            return "valid" if self.metadata_storage is None else "stale"
        if parsed.metadata.is_expired():
            return "stale"
        if self.metadata_storage is not None:
            result_storage = self._storage()
            for candidate in _payload_keys(parsed.metadata, key, result_storage):
                if (yield (result_storage, "exists", (candidate,))):
                    return "valid"
            return "stale"
        return "valid"

    def _exists_op(self, key: str) -> Op[bool]:
        return (yield from self._probe_op(key)) == "valid"

    def _version_op(self, key: str) -> Op[str | None]:
        """The stored object's version, where the storage has versions (None otherwise,
        and for records split over two storages, whose pair has no single version)."""
        storage = self._storage()
        if self.metadata_storage is not None or not storage.conditional_replace:
            return None
        version: str | None = yield (storage, "version_of", (key,))
        return version

    def _wait_op(self, key: str, holder: str | None) -> Op[None]:
        if self.lock_manager is not None:
            holder = holder or generate_default_holder()
            if not (yield (self.lock_manager, "is_lock_holder", (key, holder))):
                yield (self.lock_manager, "wait_for_lock", (key,))

    def _read_op(
        self, key: str, holder: str | None, use_cache: bool = True
    ) -> Op[ResultRecord[Any]]:
        """Read a record; ``use_cache=False`` goes to storage even when the memory cache
        has the key (a SERIALIZABLE transaction must see other processes' writes)."""
        validate_key(key)
        if self.lock_manager is not None:
            yield from self._wait_op(key, holder)
        cached = self._cached(key) if use_cache else None
        if cached is not None:
            return cached
        storage = self._storage()
        if self.metadata_storage is None:
            record, size = yield from self._read_combined_op(key, storage)
        else:
            record, size = yield from self._read_split_op(key, storage, self.metadata_storage)
        self._remember(key, record, size)
        return record

    def _read_combined_op(self, key: str, storage: Storage) -> Op[tuple[ResultRecord[Any], int]]:
        if storage.streams_reads:  # large records are decoded from the open file
            decode = partial(decode_stream, key, storage.url, self.serializer, self._trust())
            decoded: tuple[ResultRecord[Any], int] = yield (storage, "read_stream", (key, decode))
            return decoded
        data = yield (storage, "read_path", (key,))
        return decode_stored(data, key, storage.url, self.serializer, self._trust())

    def _read_split_op(
        self, key: str, storage: Storage, metadata_storage: Storage
    ) -> Op[tuple[ResultRecord[Any], int]]:
        meta_blob = yield (metadata_storage, "read_path", (key,))
        parsed = parse_metadata_blob(meta_blob, key, metadata_storage.url, self._trust())
        check_fresh(key, metadata_storage.url, parsed.metadata)
        payload: BytesLike
        if parsed.prefect_text is not None:
            payload = parsed.prefect_text
        else:
            payload = yield from self._payload_op(parsed.metadata, key, storage)
        record = decode_payload(parsed, payload, key, storage.url, self._trust(), self.serializer)
        return record, len(payload)

    def _payload_op(self, meta: ResultRecordMetadata, key: str, storage: Storage) -> Op[bytes]:
        candidates = _payload_keys(meta, key, storage)
        for candidate in candidates:
            try:
                payload: bytes = yield (storage, "read_path", (candidate,))
            except RecordNotFound:
                continue
            return payload
        meta_where = self.metadata_storage.url if self.metadata_storage else "metadata storage"
        raise PayloadMissing(
            f"the metadata of record {key!r} is in {meta_where}, but its payload is missing "
            f"from {storage.url} (looked under {', '.join(map(repr, candidates))}); write the "
            "record again"
        )

    def _persist_op(
        self,
        record: ResultRecord[Any],
        holder: str | None,
        condition: WriteCondition = ALWAYS,
        locked: bool = False,
    ) -> Op[None]:
        """Write a record; under ``condition``, `WriteConflict` and nothing written when
        it does not hold. ``locked``: ``holder`` holds the key's lock already."""
        key = record.metadata.storage_key
        if key is None:
            key = self.storage_key_fn()
            record.metadata.storage_key = key
        validate_key(key)
        storage = self._storage()
        if self.lock_manager is not None:
            holder = holder or generate_default_holder()
            current = yield (self.lock_manager, "lock_holder", (key,))
            _check_writer(key, holder, current, self.lock_manager.url)
            locked = locked or current == holder  # the store's lock, asked just now
        split = self.metadata_storage is not None
        location = storage.resolve_path(key) if self.record_format == "prefect" else None
        encoded = encode_record(record, key, self.record_format, split, self.signing_key, location)
        if condition.if_absent and not self._creates_natively():
            yield from self._create_under_lock_op(encoded, key, holder, locked)
        else:
            yield from self._write_encoded_op(encoded, key, condition)
        self._remember(key, record, encoded.size)

    def _creates_natively(self) -> bool:
        """Whether every storage a record goes to decides create-if-absent itself."""
        meta = self.metadata_storage
        return self._storage().conditional_create and (meta is None or meta.conditional_create)

    def _write_encoded_op(self, encoded: Encoded, key: str, condition: WriteCondition) -> Op[None]:
        storage = self._storage()
        meta = self.metadata_storage
        if encoded.metadata_parts is None or meta is None:
            call = (encoded.result_key, encoded.result_parts)
            yield (storage, "write_parts", call, condition.kwargs())
            return
        # Split records: payload first, then the metadata that makes the record exist.
        # Versions are not checked here (a pair of objects has no single version).
        create = IF_ABSENT.kwargs() if condition.if_absent else {}
        payload = (encoded.result_key, encoded.result_parts)
        try:
            yield (storage, "write_parts", payload, create)
        except WriteConflict:
            if (yield (meta, "exists", (key,))):
                raise
            # A payload without metadata: its writer died before finishing. Replace it.
            yield (storage, "write_parts", payload)
        yield (meta, "write_parts", (key, encoded.metadata_parts), create)

    def _create_under_lock_op(
        self, encoded: Encoded, key: str, holder: str | None, locked: bool
    ) -> Op[None]:
        """Create-if-absent on a storage that cannot decide it: check again and write
        while holding the key's lock (the store's lock manager, else this process's).
        ``locked``: ``holder`` holds that lock already, and keeps it afterwards.
        Writers that skip the lock (another process without a shared lock manager) can
        still race; storages with conditional writes close that gap."""
        manager = self.lock_manager or _fallback_locks()
        holder = holder or generate_default_holder()
        if not locked and self.lock_manager is None:  # a lock taken on the fallback
            locked = yield (manager, "is_lock_holder", (key, holder))
        if not locked:
            yield (manager, "acquire_lock", (key, holder, None, None))
        try:
            there = self.metadata_storage or self._storage()
            if (yield (there, "exists", (key,))):
                raise write_conflict(key, there.url, None)
            yield from self._write_encoded_op(encoded, key, ALWAYS)
        finally:
            if not locked:
                yield (manager, "release_lock", (key, holder))

    # -- public API ---------------------------------------------------------------------

    def create_result_record(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
    ) -> ResultRecord[Any]:
        """A record for ``obj`` under ``key`` (default: ``storage_key_fn()``), not yet written."""
        key = validate_key(key) if key is not None else validate_key(self.storage_key_fn())
        return ResultRecord(
            result=obj,
            metadata=ResultRecordMetadata(
                storage_key=key,
                expiration=_absolute_expiration(expiration),
                serializer=self.serializer,
            ),
        )

    def create_result(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
    ) -> PersistedResult:
        """Deprecated, as in Prefect 3: write ``obj`` and return a `PersistedResult` for it.
        Use `create_result_record` and `persist_result_record` (or `write`)."""
        from moorage.store.persisted import create_result

        return create_result(self, obj, key, expiration, stacklevel=3)

    async def acreate_result(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
    ) -> PersistedResult:
        """`create_result`, for async code (deprecated too)."""
        from moorage.store.persisted import acreate_result

        return await acreate_result(self, obj, key, expiration, stacklevel=3)

    def write(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
        holder: str | None = None,
    ) -> ResultRecord[Any]:
        """Write ``obj`` as a record; return the record. See `persist_result_record`."""
        record = self.create_result_record(obj, key, expiration)
        run_sync(self._persist_op(record, holder))
        return record

    async def awrite(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
        holder: str | None = None,
    ) -> ResultRecord[Any]:
        record = self.create_result_record(obj, key, expiration)
        await run_async(self._persist_op(record, holder))
        return record

    def persist_result_record(
        self, result_record: ResultRecord[Any], holder: str | None = None
    ) -> None:
        """Write a record. Raises `LockError` if another holder has locked its key."""
        run_sync(self._persist_op(result_record, holder))

    async def apersist_result_record(
        self, result_record: ResultRecord[Any], holder: str | None = None
    ) -> None:
        await run_async(self._persist_op(result_record, holder))

    def read(self, key: str, holder: str | None = None) -> ResultRecord[Any]:
        """Read the record under ``key``.

        Waits while another holder has the key locked. Raises `RecordNotFound`,
        `RecordExpired`, `RecordCorrupted` (naming the key) as the case may be.
        """
        return run_sync(self._read_op(key, holder))

    async def aread(self, key: str, holder: str | None = None) -> ResultRecord[Any]:
        return await run_async(self._read_op(key, holder))

    def exists(self, key: str) -> bool:
        """Whether an unexpired record is stored under ``key``; reads only its head."""
        return run_sync(self._exists_op(key))

    async def aexists(self, key: str) -> bool:
        return await run_async(self._exists_op(key))

    # -- locks --------------------------------------------------------------------

    def supports_isolation_level(self, level: IsolationLevel | str) -> bool:
        level = IsolationLevel(level)
        if level is IsolationLevel.READ_COMMITTED:
            return True
        return self.lock_manager is not None

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
        return self._lock_manager().acquire_lock(
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
        return await self._lock_manager().aacquire_lock(
            validate_key(key), holder or generate_default_holder(), timeout, hold_timeout
        )

    def release_lock(self, key: str, holder: str | None = None) -> None:
        """Release ``key``; `LockError` if ``holder`` does not hold it."""
        self._lock_manager().release_lock(validate_key(key), holder or generate_default_holder())

    async def arelease_lock(self, key: str, holder: str | None = None) -> None:
        """Async twin of `release_lock`."""
        await self._lock_manager().arelease_lock(
            validate_key(key), holder or generate_default_holder()
        )

    def is_locked(self, key: str) -> bool:
        """Whether any holder has an unexpired lock on ``key``."""
        return self._lock_manager().is_locked(validate_key(key))

    def is_lock_holder(self, key: str, holder: str | None = None) -> bool:
        """Whether ``holder`` (default: this thread or task) holds the lock, per the backend."""
        return self._lock_manager().is_lock_holder(
            validate_key(key), holder or generate_default_holder()
        )

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if ``timeout`` seconds passed first."""
        return self._lock_manager().wait_for_lock(validate_key(key), timeout)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Async twin of `wait_for_lock`."""
        return await self._lock_manager().await_for_lock(validate_key(key), timeout)

    # -- transactions -----------------------------------------------------------------

    def transaction(
        self,
        key: str,
        isolation_level: IsolationLevel | str = IsolationLevel.READ_COMMITTED,
        **options: Unpack[TransactionOptions],
    ) -> Transaction:
        """A transaction on ``key``: ``with store.transaction(key) as txn:`` (or ``async
        with``). See `moorage.workflow.transactions`.

        Options: ``overwrite`` recomputes even when a record is committed;
        ``lock_timeout`` bounds the wait for the lock (SERIALIZABLE; None waits until it
        is free); ``hold_timeout`` is how long the lock lasts if this process dies;
        ``holder`` names the lock holder; ``expiration`` is given to the record the
        commit writes.
        """
        from moorage.workflow.transactions import Transaction

        return Transaction(self, key, isolation_level, **options)

    # -- housekeeping -----------------------------------------------------------------

    def _pruned_storages(self) -> list[Storage]:
        storages = [self._storage()]
        if self.metadata_storage is not None and self.metadata_storage.url != storages[0].url:
            storages.append(self.metadata_storage)
        return storages

    def prune(self, *, temp: bool = False) -> PruneReport:
        """Remove leftovers from the store's storages and report how many files and bytes
        went: ``store.prune(temp=True)`` removes the temporary files of writers that were
        killed mid-write (local storage; other storages have none). Nothing is removed
        unless asked for."""
        report = PruneReport()
        if temp:
            for storage in self._pruned_storages():
                report += storage.prune_temp()
        return report

    async def aprune(self, *, temp: bool = False) -> PruneReport:
        """`prune`, for async code."""
        report = PruneReport()
        if temp:
            for storage in self._pruned_storages():
                report += await storage.aprune_temp()
        return report

    # -- parameters -------------------------------------------------------------------

    def store_parameters(self, identifier: uuid.UUID | str, parameters: dict[str, Any]) -> None:
        """Store a task run's parameters under ``parameters/<identifier>``."""
        record = self.create_result_record(parameters, key=f"parameters/{identifier}")
        run_sync(self._persist_op(record, None))

    async def astore_parameters(
        self, identifier: uuid.UUID | str, parameters: dict[str, Any]
    ) -> None:
        record = self.create_result_record(parameters, key=f"parameters/{identifier}")
        await run_async(self._persist_op(record, None))

    def read_parameters(self, identifier: uuid.UUID | str) -> dict[str, Any]:
        result: dict[str, Any] = self.read(f"parameters/{identifier}").result
        return result

    async def aread_parameters(self, identifier: uuid.UUID | str) -> dict[str, Any]:
        result: dict[str, Any] = (await self.aread(f"parameters/{identifier}")).result
        return result

    # -- deriving stores for tasks and flows -------------------------------------------

    def _common_update(self, obj: Any) -> dict[str, Any]:
        update: dict[str, Any] = {}
        storage = getattr(obj, "result_storage", None)
        if storage is not None:
            update["result_storage"] = storage_from(storage)
        serializer = getattr(obj, "result_serializer", None)
        if serializer is not None:
            update["serializer"] = serializer
        in_memory = getattr(obj, "cache_result_in_memory", None)
        if in_memory is not None:
            update["cache_result_in_memory"] = bool(in_memory)
        return update

    def _derive(self, update: dict[str, Any]) -> Self:
        return self.model_validate({**dict(self), **update})

    def update_for_flow(self, flow: Any) -> Self:
        """A store with the flow's ``result_storage``, ``result_serializer`` and
        ``cache_result_in_memory`` applied (where not None)."""
        return self._derive(self._common_update(flow))

    async def aupdate_for_flow(self, flow: Any) -> Self:
        """`update_for_flow`, for async code (it does no I/O: storages connect on use)."""
        return self.update_for_flow(flow)

    def update_for_task(self, task: Any) -> Self:
        """A store for a task: the flow settings plus ``result_storage_key`` (a template
        such as ``"{parameters[x]}-{fn.__name__}"``) and ``cache_policy``
        (``key_storage``, ``lock_manager``, ``isolation_level``)."""
        update = self._common_update(task)
        template = getattr(task, "result_storage_key", None)
        if template is not None:
            update["storage_key_fn"] = partial(format_storage_key, template, task)
        policy = getattr(task, "cache_policy", None)
        if policy is not None:
            key_storage = getattr(policy, "key_storage", None)
            if key_storage is not None:
                update["metadata_storage"] = storage_from(key_storage)
            lock_manager = getattr(policy, "lock_manager", None)
            if lock_manager is not None:
                update["lock_manager"] = lock_manager_from(lock_manager)
            level = getattr(policy, "isolation_level", None)
            serializable = (
                level is not None and IsolationLevel(level) is IsolationLevel.SERIALIZABLE
            )
            if serializable and update.get("lock_manager", self.lock_manager) is None:
                raise ConfigurationError(
                    "the task's cache policy asks for SERIALIZABLE isolation, which needs a "
                    "lock manager; set cache_policy.lock_manager (e.g. 'file:///tmp/locks')"
                )
        return self._derive(update)

    async def aupdate_for_task(self, task: Any) -> Self:
        """`update_for_task`, for async code (it does no I/O: storages connect on use)."""
        return self.update_for_task(task)


def format_storage_key(template: str, task: Any) -> str:
    """Fill a ``result_storage_key`` template from the running task's parameters."""
    from moorage.workflow.context import current_context

    context = current_context()
    parameters = context.parameters if context is not None else getattr(task, "parameters", {})
    fn = getattr(task, "fn", None)
    try:
        return template.format(parameters=parameters, fn=fn, task=task)
    except (KeyError, IndexError, AttributeError) as exc:
        raise ConfigurationError(
            f"cannot fill result_storage_key {template!r}: {exc!r} is missing; the template "
            "can use {parameters[name]}, {fn.__name__} and {task}"
        ) from exc
