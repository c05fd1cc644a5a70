"""Deprecated names that Prefect's reference still documents: `PersistedResult` and
`create_result` (the body of ``ResultStore.create_result``).

Prefect 3 replaced result references with result records. moorage keeps these names so
that code written against them runs, on any storage a `ResultStore` can use, and warns
(`DeprecationWarning`) that the way forward is a `ResultRecord`: make one with
``ResultStore.create_result_record``, write it with ``persist_result_record`` (or use
``ResultStore.write``), read it back with ``ResultStore.read``.

Where Prefect makes one method both sync and async, moorage has explicit twins:
`PersistedResult.create`/`acreate`, `get`/`aget`, `write`/`awrite`, and
`create_result`/`acreate_result`.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self
from warnings import warn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from moorage.errors import InvalidKey
from moorage.format.record import ResultRecord
from moorage.operations import Op, run_async, run_sync
from moorage.plugins.resolve import storage_from
from moorage.records.expiry import check_fresh, utc
from moorage.serializers.base import Serializer
from moorage.serializers.fields import coerce_serializer
from moorage.storage import Storage, validate_key
from moorage.store.base import StoreBase
from moorage.store.context import current_store
from moorage.store.reading import read_op
from moorage.store.writing import persist_op

__all__ = ["PersistedResult", "acreate_result", "create_result"]

_CLASS_DEPRECATED = (
    "PersistedResult is deprecated, as in Prefect 3: make a ResultRecord with "
    "ResultStore.create_result_record and write it with ResultStore.persist_result_record "
    "(or ResultStore.write); read it back with ResultStore.read"
)
_CREATE_RESULT_DEPRECATED = (
    "ResultStore.create_result is deprecated, as in Prefect 3: make a ResultRecord with "
    "ResultStore.create_result_record and write it with ResultStore.persist_result_record "
    "(or ResultStore.write)"
)


class _NotSet:
    """The value of an argument not given, and of a result that holds no object."""

    def __repr__(self) -> str:
        return "NotSet"

    # One object, compared by identity: pydantic copies private attributes' defaults.
    def __copy__(self) -> _NotSet:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _NotSet:
        return self

    def __reduce__(self) -> str:
        return "NotSet"


NotSet: Any = _NotSet()


def _store_for(
    result_store: StoreBase | None,
    storage_block: Storage | str | os.PathLike[str] | None,
    serializer: Serializer | str | None,
) -> StoreBase:
    """``result_store`` (default: the running task's or flow's store, else one with
    default settings), with ``storage_block`` and ``serializer`` applied when given."""
    if result_store is None:
        result_store = current_store() or StoreBase()
    update: dict[str, Any] = {}
    if storage_block is not None:
        update["result_storage"] = storage_from(storage_block)
    if serializer is not None:
        chosen = coerce_serializer(serializer)
        if chosen != result_store.serializer:
            update["serializer"] = chosen
    return result_store.model_copy(update=update) if update else result_store


class PersistedResult(BaseModel):
    """A reference to a result written to storage, as in ``prefect.results``.

    Deprecated, as in Prefect 3: use `ResultRecord` (``ResultStore.create_result_record``,
    ``persist_result_record``, ``read``). Making one (``PersistedResult(...)``,
    `create`, `acreate`) emits a `DeprecationWarning`; reading one back with
    ``model_validate`` does not.

    ``storage_key`` is where the record is, as Prefect stores it: the absolute path or
    URL of the record in its storage (``/home/me/.moorage/storage/3f2a...``,
    ``s3://bucket/prefix/3f2a...``), or a key of the store it is read with. A result
    made by `create` remembers its store; one rebuilt from its fields (``model_validate``)
    reads with the running task's or flow's store, else a store with default settings
    (as Prefect falls back to its default storage). Give it another store with
    ``PersistedResult.model_validate(data, context={"result_store": store})``. Either
    way the record must be inside that store's storage: a reference never makes moorage
    read from a place its configuration does not name.

    ``serialize_to_none=True`` marks a result that is not persisted, as in Prefect: its
    object is kept in memory only (`create` and `write` write nothing), and
    ``model_dump`` gives None. Two results are equal when ``type``, ``serializer_type``,
    ``storage_key``, ``storage_block_id`` and ``expiration`` are (Prefect's rule: not
    ``serialize_to_none``, nor the object held). ``storage_block_id`` is kept for
    compatibility; moorage has no blocks and never reads it.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    type: Literal["reference"] = "reference"
    serializer_type: str
    storage_key: str
    storage_block_id: uuid.UUID | None = None
    expiration: Annotated[dt.datetime, AfterValidator(utc)] | None = None
    serialize_to_none: bool = False

    _cache: Any = PrivateAttr(default=NotSet)
    _should_cache_object: bool = PrivateAttr(default=True)
    _store: StoreBase | None = PrivateAttr(default=None)
    _key: str | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        warn(_CLASS_DEPRECATED, DeprecationWarning, stacklevel=2)
        super().__init__(**data)

    # Validation (``model_validate``, a field of another model) does not call __init__,
    # as for pydantic's own RootModel: reading a reference back does not warn.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _take_store(self, info: ValidationInfo) -> Self:
        context = info.context
        store = context.get("result_store") if isinstance(context, dict) else None
        if store is not None:
            if not isinstance(store, StoreBase):
                raise TypeError(
                    "the 'result_store' of a PersistedResult's validation context must be a "
                    f"ResultStore; got {type(store).__name__}"
                )
            self._store = store
        return self

    @model_serializer(mode="wrap")
    def serialize_model(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any] | None:
        """None when ``serialize_to_none`` is set, else the fields."""
        if self.serialize_to_none:
            return None
        data: dict[str, Any] = handler(self)
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PersistedResult):
            return NotImplemented
        return (
            self.type == other.type
            and self.serializer_type == other.serializer_type
            and self.storage_key == other.storage_key
            and self.storage_block_id == other.storage_block_id
            and self.expiration == other.expiration
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by its fields

    def has_cached_object(self) -> bool:
        """Whether the result holds its object in memory (`get` then reads nothing)."""
        return self._cache is not NotSet

    # -- create ------------------------------------------------------------------------

    @classmethod
    def _prepare(
        cls,
        obj: Any,
        store: StoreBase,
        storage_key_fn: Callable[[], str] | None,
        storage_block_id: uuid.UUID | None,
        cache_object: bool,
        expiration: dt.datetime | dt.timedelta | None,
        serialize_to_none: bool,
    ) -> tuple[Self, ResultRecord[Any] | None]:
        """The result, holding ``obj``, and the record to write (None: nothing to write)."""
        key = (storage_key_fn or store.storage_key_fn)()
        if not isinstance(key, str):
            raise TypeError(f"a result's storage key must be a str; the key function gave {key!r}")
        record = store.create_result_record(obj, key, expiration)  # checks the key
        key = record.metadata.storage_key or key
        result = cls.model_validate(  # not __init__: the caller has warned once already
            {
                "serializer_type": store.serializer.type,
                "storage_key": store._storage().resolve_path(key),
                "storage_block_id": storage_block_id,
                "expiration": record.metadata.expiration,
                "serialize_to_none": serialize_to_none,
            }
        )
        result._store = store
        result._key = key
        result._cache = obj
        result._should_cache_object = cache_object
        return result, None if serialize_to_none else record

    def _written(self) -> None:
        if not self._should_cache_object:
            self._cache = NotSet

    @classmethod
    def _create_op(
        cls,
        obj: Any,
        store: StoreBase,
        storage_key_fn: Callable[[], str] | None,
        storage_block_id: uuid.UUID | None,
        cache_object: bool,
        expiration: dt.datetime | dt.timedelta | None,
        serialize_to_none: bool,
    ) -> Op[Self]:
        """`create` and `acreate`, written once: the result, its record written."""
        result, record = cls._prepare(
            obj,
            store,
            storage_key_fn,
            storage_block_id,
            cache_object,
            expiration,
            serialize_to_none,
        )
        if record is not None:
            yield from persist_op(store, record, None)
            result._written()
        return result

    @classmethod
    def create(
        cls,
        obj: Any,
        storage_block: Storage | str | os.PathLike[str] | None = None,
        storage_key_fn: Callable[[], str] | None = None,
        serializer: Serializer | str | None = None,
        storage_block_id: uuid.UUID | None = None,
        cache_object: bool = True,
        expiration: dt.datetime | dt.timedelta | None = None,
        serialize_to_none: bool = False,
        *,
        result_store: StoreBase | None = None,
    ) -> Self:
        """Write ``obj`` as a record and return a reference to it. Deprecated: use
        ``ResultStore.create_result_record`` and ``persist_result_record``.

        The arguments are Prefect's, in its order. The record is written by
        ``result_store`` (default: the running task's or flow's store, else one with
        default settings), in ``storage_block`` if given (a storage, URL, path or the
        name of a storage in settings) and with ``serializer`` if given; under the key
        ``storage_key_fn()`` returns (default: the store's ``storage_key_fn``).
        ``expiration`` is a datetime or a timedelta from now. The result keeps ``obj`` in
        memory unless ``cache_object`` is False. With ``serialize_to_none`` nothing is
        written (see the class).
        """
        warn(_CLASS_DEPRECATED, DeprecationWarning, stacklevel=2)
        return run_sync(
            cls._create_op(
                obj,
                _store_for(result_store, storage_block, serializer),
                storage_key_fn,
                storage_block_id,
                cache_object,
                expiration,
                serialize_to_none,
            )
        )

    @classmethod
    async def acreate(
        cls,
        obj: Any,
        storage_block: Storage | str | os.PathLike[str] | None = None,
        storage_key_fn: Callable[[], str] | None = None,
        serializer: Serializer | str | None = None,
        storage_block_id: uuid.UUID | None = None,
        cache_object: bool = True,
        expiration: dt.datetime | dt.timedelta | None = None,
        serialize_to_none: bool = False,
        *,
        result_store: StoreBase | None = None,
    ) -> Self:
        """`create`, for async code."""
        warn(_CLASS_DEPRECATED, DeprecationWarning, stacklevel=2)
        return await run_async(
            cls._create_op(
                obj,
                _store_for(result_store, storage_block, serializer),
                storage_key_fn,
                storage_block_id,
                cache_object,
                expiration,
                serialize_to_none,
            )
        )

    # -- where the record is ------------------------------------------------------------

    def _located(self) -> tuple[StoreBase, str]:
        """The store to read and write with, and the record's key in it."""
        if self._store is not None and self._key is not None:
            return self._store, self._key
        store = self._store
        if store is None:
            store = current_store() or StoreBase()
        if self.serializer_type != store.serializer.type:  # what `write` must write with
            store = store.model_copy(update={"serializer": coerce_serializer(self.serializer_type)})
        try:
            key = validate_key(self.storage_key)
        except InvalidKey:
            storage = store._storage()
            found = storage.key_for_location(self.storage_key)
            if found is None:
                raise InvalidKey(
                    f"this PersistedResult's storage_key {self.storage_key!r} is neither a "
                    f"key nor a location in {storage.url}, the storage of the store it is "
                    "read with; give it the store that wrote it: PersistedResult."
                    "model_validate(data, context={'result_store': store})"
                ) from None
            key = validate_key(found)
        self._store, self._key = store, key
        return store, key

    # -- get ----------------------------------------------------------------------------

    def _from_cache(self, ignore_cache: bool) -> Any:
        if ignore_cache or self._cache is NotSet:
            return NotSet
        check_fresh(self.storage_key, "this PersistedResult's memory", self.expiration)
        return self._cache

    def _reader(self, ignore_cache: bool) -> tuple[StoreBase, str]:
        store, key = self._located()
        if ignore_cache and store.cache_result_in_memory:
            # Past the store's memory cache too: what storage holds now.
            store = store.model_copy(update={"cache_result_in_memory": False})
        return store, key

    def _took(self, record: ResultRecord[Any]) -> Any:
        self.expiration = record.expiration
        if self._should_cache_object:
            self._cache = record.result
        return record.result

    def get(self, ignore_cache: bool = False) -> Any:
        """The result's object: the one held in memory, else read from storage
        (``ignore_cache=True`` always reads from storage, past the store's memory cache).

        Raises `RecordExpired` once ``expiration`` has passed, `RecordNotFound` when
        nothing is stored (a result with ``serialize_to_none`` is never written).
        """
        cached = self._from_cache(ignore_cache)
        if cached is not NotSet:
            return cached
        store, key = self._reader(ignore_cache)
        return self._took(run_sync(read_op(store, key, None)))

    async def aget(self, ignore_cache: bool = False) -> Any:
        """`get`, for async code."""
        cached = self._from_cache(ignore_cache)
        if cached is not NotSet:
            return cached
        store, key = self._reader(ignore_cache)
        return self._took(await run_async(read_op(store, key, None)))

    # -- write --------------------------------------------------------------------------

    def _to_write(self, obj: Any) -> tuple[StoreBase, ResultRecord[Any]] | None:
        if self.serialize_to_none:  # not persisted, as in Prefect: kept in memory only
            if obj is not NotSet:
                self._cache = obj
            return None
        if obj is NotSet:
            if self._cache is NotSet:
                raise ValueError(
                    "this PersistedResult holds no object to write (it was rebuilt from its "
                    "fields, or made with cache_object=False and written); pass the object: "
                    "result.write(obj)"
                )
            obj = self._cache
        store, key = self._located()
        record = store.create_result_record(obj, key, self.expiration)
        self._cache = obj
        return store, record

    def write(self, obj: Any = NotSet) -> None:
        """Write ``obj`` under this result's key, or, without ``obj``, the object it
        holds (the one it was created with or last read or written). Keeps ``obj`` in
        memory unless the result was created with ``cache_object=False``. Writes nothing
        when ``serialize_to_none`` is set. `LockError` if another holder locked the key.
        """
        to_write = self._to_write(obj)
        if to_write is not None:
            store, record = to_write
            run_sync(persist_op(store, record, None))
            self._written()

    async def awrite(self, obj: Any = NotSet) -> None:
        """`write`, for async code."""
        to_write = self._to_write(obj)
        if to_write is not None:
            store, record = to_write
            await run_async(persist_op(store, record, None))
            self._written()


def _store_result_op(
    store: StoreBase, obj: Any, key: str | None, expiration: dt.datetime | dt.timedelta | None
) -> Op[PersistedResult]:
    """`create_result` and `acreate_result`, written once."""
    key_fn = None if key is None else (lambda: key)
    in_memory = store.cache_result_in_memory or obj is None  # None is held at no cost
    return PersistedResult._create_op(obj, store, key_fn, None, in_memory, expiration, False)


def create_result(
    store: StoreBase,
    obj: Any,
    key: str | None = None,
    expiration: dt.datetime | dt.timedelta | None = None,
    *,
    stacklevel: int = 2,
) -> PersistedResult:
    """``ResultStore.create_result``: write ``obj`` with ``store`` under ``key`` (default:
    the store's ``storage_key_fn()``) and return a `PersistedResult` for it. Deprecated:
    use ``store.create_result_record`` and ``store.persist_result_record`` (or
    ``store.write``).

    ``expiration`` is a datetime or a timedelta from now. The result holds ``obj`` in
    memory when the store has ``cache_result_in_memory``. ``stacklevel`` is the
    `DeprecationWarning`'s (a method calling this passes 3, to name its own caller).
    """
    warn(_CREATE_RESULT_DEPRECATED, DeprecationWarning, stacklevel=stacklevel)
    return run_sync(_store_result_op(store, obj, key, expiration))


async def acreate_result(
    store: StoreBase,
    obj: Any,
    key: str | None = None,
    expiration: dt.datetime | dt.timedelta | None = None,
    *,
    stacklevel: int = 2,
) -> PersistedResult:
    """`create_result`, for async code (``ResultStore.acreate_result``)."""
    warn(_CREATE_RESULT_DEPRECATED, DeprecationWarning, stacklevel=stacklevel)
    return await run_async(_store_result_op(store, obj, key, expiration))
