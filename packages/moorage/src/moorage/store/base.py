"""`StoreBase`: what a result store is made of (its storages, serializer, lock manager,
memory cache, record format and trust settings) and the small questions every
operation asks of it. The operations themselves are in `moorage.store.reading` and
`moorage.store.writing`; `moorage.store.store.ResultStore` is the public API over them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from moorage.errors import ConfigurationError, RecordExpired
from moorage.format.codec import Trust
from moorage.format.record import ResultRecord
from moorage.locking import IsolationLevel, LockManager
from moorage.plugins.catalog import default_serializer
from moorage.plugins.resolve import lock_manager_from, storage_from
from moorage.records.expiry import absolute_expiration, expired, is_expired
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.fields import ConfiguredSerializerField
from moorage.storage import Storage, validate_key
from moorage.store.defaults import (
    DEFAULT_STORAGE_KEY_FN,
    default_accept_unsigned_prefect,
    default_cache,
    default_format,
    default_lock_manager,
    default_max_payload_bytes,
    default_metadata_storage,
    default_signing_key,
    generate_default_holder,
    get_default_result_storage,
)
from moorage.store.memory_cache import ResultCache
from moorage.store.stats import StoreCounters

__all__ = ["StoreBase"]


def _resolve_storage_field(value: Any) -> Storage | None:
    return None if value is None else storage_from(value)


def _resolve_lock_field(value: Any) -> LockManager | None:
    return None if value is None else lock_manager_from(value)


class StoreBase(BaseModel):
    """A result store's configuration. Fields accept objects, URLs or names; defaults
    come from settings (`moorage.config.settings`)."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True, validate_assignment=True, defer_build=True
    )

    result_storage: Annotated[Storage | None, BeforeValidator(_resolve_storage_field)] = Field(
        default_factory=get_default_result_storage
    )
    metadata_storage: Annotated[Storage | None, BeforeValidator(_resolve_storage_field)] = Field(
        default_factory=default_metadata_storage
    )
    lock_manager: Annotated[LockManager | None, BeforeValidator(_resolve_lock_field)] = Field(
        default_factory=default_lock_manager
    )
    cache_result_in_memory: bool = True
    serializer: ConfiguredSerializerField = Field(default_factory=default_serializer)
    storage_key_fn: Callable[[], str] = DEFAULT_STORAGE_KEY_FN
    cache: ResultCache = Field(default_factory=default_cache)
    record_format: Literal["moorage", "prefect"] = Field(default_factory=default_format)
    signing_key: bytes | None = Field(default_factory=default_signing_key, repr=False)
    #: With a signing_key, still read Prefect records and raw payloads (never signed).
    accept_unsigned_prefect_records: bool = Field(default_factory=default_accept_unsigned_prefect)
    #: The most bytes a compressed payload of unstated size may decompress to.
    max_payload_bytes: int = Field(default_factory=default_max_payload_bytes, gt=0)
    #: Hit and miss counts, shared with the stores derived from this one (`stats`).
    counters: StoreCounters = Field(default_factory=StoreCounters, repr=False, exclude=True)

    # -- travelling ----------------------------------------------------------------

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle the configuration, not the memory cache: the copy uses the cache of
        the process it lands in (storages and lock managers rebuild their clients
        there too)."""
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        fields.pop("cache", None)
        fields.pop("counters", None)
        return {**state, "__dict__": fields}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        fields = dict(state["__dict__"])
        fields.setdefault("cache", default_cache())
        fields.setdefault("counters", StoreCounters())
        super().__setstate__({**state, "__dict__": fields})

    # -- what operations ask --------------------------------------------------------

    @property
    def result_storage_block_id(self) -> None:
        """Kept for compatibility with Prefect's API; moorage has no blocks."""
        return None

    def _storage(self) -> Storage:
        """The result storage (the default storage, made now, when none was given)."""
        storage = self.result_storage
        if storage is None:
            storage = get_default_result_storage()
            self.result_storage = storage
        return storage

    def _trust(self) -> Trust:
        """What reads of this store accept: its signing key and limits."""
        return Trust(self.signing_key, self.accept_unsigned_prefect_records, self.max_payload_bytes)

    def require_lock_manager(self) -> LockManager:
        """The lock manager; `ConfigurationError` saying how to set one when there is none."""
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

    def supports_isolation_level(self, level: IsolationLevel | str) -> bool:
        level = IsolationLevel(level)
        if level is IsolationLevel.READ_COMMITTED:
            return True
        return self.lock_manager is not None

    def create_result_record(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
    ) -> ResultRecord[Any]:
        """A record for ``obj`` under ``key`` (default: ``storage_key_fn()``), not yet written."""
        record = self.new_record(obj, key, expiration)
        validate_key(record.metadata.storage_key)
        return record

    def new_record(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | dt.timedelta | None = None,
    ) -> ResultRecord[Any]:
        """`create_result_record` without the key check, for a record about to be written:
        the write checks the key itself, before any I/O."""
        return ResultRecord(
            result=obj,
            metadata=ResultRecordMetadata(
                storage_key=key if key is not None else self.storage_key_fn(),
                expiration=absolute_expiration(expiration),
                serializer=self.serializer,
            ),
        )

    # -- the memory cache -----------------------------------------------------------

    def _cache_key(self, key: str) -> tuple[str, str, bytes | None]:
        # Stores with different signing keys must not vouch for each other's reads.
        return (self._storage().url, key, self.signing_key)

    def cached(self, key: str) -> ResultRecord[Any] | None:
        """The record the memory cache holds for ``key``, if any; `RecordExpired` (and
        the entry dropped) if it has expired."""
        if not self.cache_result_in_memory:
            return None
        record: ResultRecord[Any] | None = self.cache.get(self._cache_key(key))
        if (
            record is not None
            and record.metadata.expiration is not None
            and is_expired(record.metadata.expiration)
        ):
            self.cache.pop(self._cache_key(key))
            raise expired(key, self._storage().url, record.metadata.expiration)
        if record is not None:
            self.counters.add("hits_memory")
        return record

    def memory_hit(self, key: str) -> ResultRecord[Any] | None:
        """The record the memory cache holds for ``key`` when a read may return it at once
        (no lock manager whose locks a read must wait for); None otherwise, or expired."""
        if self.lock_manager is not None:
            return None
        try:
            return self.cached(key)
        except RecordExpired:
            return None

    def forget(self, key: str) -> None:
        """Drop ``key`` from the memory cache (its record was deleted)."""
        self.cache.pop(self._cache_key(key))

    def remember(self, key: str, record: ResultRecord[Any], size: int) -> None:
        """Keep a record just read or written in the memory cache (if this store uses it)."""
        if self.cache_result_in_memory:
            self.cache.put(self._cache_key(key), record, size)
