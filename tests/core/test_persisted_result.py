"""The deprecated names Prefect's reference still documents: `PersistedResult` and
``ResultStore.create_result`` (the function `moorage.store.persisted.create_result`), on memory
and local storage, sync and async."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from moorage import InvalidKey, RecordExpired, RecordNotFound
from moorage.results import PersistedResult as ReExported
from moorage.store.memory_cache import ResultCache
from moorage.store.persisted import PersistedResult, acreate_result, create_result
from moorage.store.store import ResultStore

# Each test that checks the warnings does so with pytest.warns; elsewhere they are noise.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated, as in Prefect 3:DeprecationWarning")

DEPRECATED = r"deprecated.*ResultRecord.*create_result_record"


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ResultStore:
    if request.param == "memory":
        url = f"memory://persisted-{uuid.uuid4().hex}"
    else:
        url = (tmp_path / "results").as_uri()
    return ResultStore(result_storage=url, cache=ResultCache())


def fixed(key: str) -> Any:
    return lambda: key


def behind_the_back(store: ResultStore) -> ResultStore:
    """A second writer on the same storage, sharing no memory cache with ``store``."""
    return ResultStore(
        result_storage=store.result_storage, cache=ResultCache(), cache_result_in_memory=False
    )


def rebuilt(result: PersistedResult, store: ResultStore | None = None) -> PersistedResult:
    """The result as another process gets it: its fields, and no object or store."""
    context = None if store is None else {"result_store": store}
    return PersistedResult.model_validate(result.model_dump(mode="json"), context=context)


@contextmanager
def one_deprecation() -> Iterator[None]:
    """Exactly one DeprecationWarning, naming the way forward and this file's caller."""
    with pytest.warns(DeprecationWarning, match=DEPRECATED) as record:
        yield
    deprecations = [w for w in record if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1, [str(w.message) for w in deprecations]
    assert deprecations[0].filename == __file__


# -- create, get, write ------------------------------------------------------------------


def test_create_writes_and_get_returns(store: ResultStore) -> None:
    result = PersistedResult.create({"a": [1, 2]}, storage_key_fn=fixed("k1"), result_store=store)
    assert store.exists("k1")
    assert behind_the_back(store).read("k1").result == {"a": [1, 2]}
    assert result.type == "reference"
    assert result.serializer_type == store.serializer.type == "pickle"
    assert result.storage_key == store._storage().resolve_path("k1")
    assert result.has_cached_object()
    assert result.get() == {"a": [1, 2]}
    assert rebuilt(result, store).get() == {"a": [1, 2]}


async def test_acreate_writes_and_aget_returns(store: ResultStore) -> None:
    result = await PersistedResult.acreate(
        [1, "two"], storage_key_fn=fixed("ak"), result_store=store
    )
    assert await store.aexists("ak")
    assert await result.aget() == [1, "two"]
    other = rebuilt(result, store)
    assert not other.has_cached_object()
    assert await other.aget() == [1, "two"]
    assert other.has_cached_object()


def test_write_new_object_and_held_object(store: ResultStore) -> None:
    result = PersistedResult.create(1, storage_key_fn=fixed("w"), result_store=store)
    result.write(2)
    assert behind_the_back(store).read("w").result == 2
    assert result.get() == 2
    store._storage().delete_path("w")
    result.write()  # the object it holds: 2
    assert behind_the_back(store).read("w").result == 2
    result.write(None)  # None is an object like any other
    assert behind_the_back(store).read("w").result is None
    assert result.get() is None


async def test_awrite_new_object_and_held_object(store: ResultStore) -> None:
    result = await PersistedResult.acreate("x", storage_key_fn=fixed("aw"), result_store=store)
    await result.awrite("y")
    assert behind_the_back(store).read("aw").result == "y"
    await store._storage().adelete_path("aw")
    await result.awrite()
    assert behind_the_back(store).read("aw").result == "y"
    assert await rebuilt(result, store).aget() == "y"


def test_write_to_a_rebuilt_reference(store: ResultStore) -> None:
    result = rebuilt(PersistedResult.create(1, storage_key_fn=fixed("rw"), result_store=store))
    with pytest.raises(ValueError, match=r"holds no object.*write\(obj\)"):
        result.write()
    other = PersistedResult.model_validate(result.model_dump(), context={"result_store": store})
    other.write({"new": True})
    assert behind_the_back(store).read("rw").result == {"new": True}


def test_create_with_prefect_arguments(tmp_path: Path) -> None:
    """Prefect's positional order: obj, storage_block, storage_key_fn, serializer."""
    folder = tmp_path / "block"
    result = PersistedResult.create({"n": 1}, folder, fixed("p/k"), "json")
    assert result.serializer_type == "json"
    assert result.storage_key == str(folder / "p" / "k")
    record = ResultStore(result_storage=folder, cache=ResultCache()).read("p/k")
    assert record.result == {"n": 1}
    assert record.metadata.serializer.type == "json"
    assert PersistedResult.model_validate(
        result.model_dump(), context={"result_store": ResultStore(result_storage=folder)}
    ).get(ignore_cache=True) == {"n": 1}


def test_create_default_key_and_store() -> None:
    result = PersistedResult.create("v")
    assert result.storage_key.startswith(os.environ["MOORAGE_LOCAL_STORAGE_PATH"] + os.sep)
    default = ResultStore(cache=ResultCache())
    key = default._storage().key_for_location(result.storage_key)
    assert key is not None
    assert len(key) == 32
    assert default.read(key).result == "v"
    # Rebuilt without a store: the default store reads it (another process would).
    assert rebuilt(result).get() == "v"


def test_relative_key_reads_from_the_default_store() -> None:
    ResultStore(cache=ResultCache()).write("plain", key="folder/plain")
    result = PersistedResult.model_validate(
        {"serializer_type": "pickle", "storage_key": "folder/plain"}
    )
    assert result.get() == "plain"


def test_reference_outside_the_store_is_refused(store: ResultStore, tmp_path: Path) -> None:
    elsewhere = ResultStore(result_storage=tmp_path / "elsewhere", cache=ResultCache())
    result = PersistedResult.create(1, storage_key_fn=fixed("out"), result_store=elsewhere)
    with pytest.raises(InvalidKey, match=r"neither a key nor a location.*result_store"):
        rebuilt(result, store).get()
    assert rebuilt(result, elsewhere).get() == 1


def test_cache_object_false_reads_from_storage(store: ResultStore) -> None:
    result = PersistedResult.create(
        "first", storage_key_fn=fixed("nc"), cache_object=False, result_store=store
    )
    assert not result.has_cached_object()
    behind_the_back(store).write("second", key="nc")
    # The store's own memory cache still holds "first"; get(ignore_cache=True) goes past it.
    assert store.read("nc").result == "first"
    assert result.get(ignore_cache=True) == "second"
    assert not result.has_cached_object()


def test_key_function_must_give_a_str(store: ResultStore) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        PersistedResult.create(1, storage_key_fn=lambda: 42, result_store=store)  # type: ignore[arg-type,return-value]


# -- ignore_cache ------------------------------------------------------------------------


def test_get_ignore_cache_rereads_storage(store: ResultStore) -> None:
    result = PersistedResult.create(1, storage_key_fn=fixed("ic"), result_store=store)
    behind_the_back(store).write(2, key="ic")
    assert result.get() == 1  # the object it holds
    assert store.read("ic").result == 1  # the store's memory cache too
    assert result.get(ignore_cache=True) == 2
    assert result.get() == 2  # and it holds what it read


async def test_aget_ignore_cache_rereads_storage(store: ResultStore) -> None:
    result = await PersistedResult.acreate(1, storage_key_fn=fixed("aic"), result_store=store)
    await behind_the_back(store).awrite(2, key="aic")
    assert await result.aget() == 1
    assert await result.aget(ignore_cache=True) == 2
    assert await result.aget() == 2


# -- expiration --------------------------------------------------------------------------


def test_expiration_in_the_future(store: ResultStore) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    result = PersistedResult.create(
        "fresh", storage_key_fn=fixed("f"), expiration=when, result_store=store
    )
    assert result.expiration == when
    assert store.read("f").metadata.expiration == when
    assert rebuilt(result, store).get() == "fresh"
    naive = dt.datetime(2100, 1, 2, 3, 4, 5)  # naive: UTC, as in record metadata
    later = PersistedResult.create(
        "x", storage_key_fn=fixed("n"), expiration=naive, result_store=store
    )
    assert later.expiration == naive.replace(tzinfo=dt.UTC)
    span = PersistedResult.create(
        "x", storage_key_fn=fixed("t"), expiration=dt.timedelta(minutes=5), result_store=store
    )
    assert span.expiration is not None
    assert (
        dt.timedelta(minutes=4)
        < span.expiration - dt.datetime.now(dt.UTC)
        <= dt.timedelta(minutes=5)
    )


def test_expired_result_raises(store: ResultStore) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    result = PersistedResult.create(
        "old", storage_key_fn=fixed("e"), expiration=past, result_store=store
    )
    with pytest.raises(RecordExpired, match="expired"):
        result.get()
    with pytest.raises(RecordExpired, match=r"'e'.*expired"):
        result.get(ignore_cache=True)
    with pytest.raises(RecordExpired, match="expired"):
        rebuilt(result, store).get()


async def test_expired_result_raises_async(store: ResultStore) -> None:
    result = await PersistedResult.acreate(
        "old", storage_key_fn=fixed("ae"), expiration=dt.timedelta(seconds=-1), result_store=store
    )
    with pytest.raises(RecordExpired):
        await result.aget()
    with pytest.raises(RecordExpired):
        await rebuilt(result, store).aget()


def test_expiration_from_storage_replaces_the_field(store: ResultStore) -> None:
    result = PersistedResult.create(1, storage_key_fn=fixed("x"), result_store=store)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    behind_the_back(store).write(2, key="x", expiration=later)
    assert result.get(ignore_cache=True) == 2
    assert result.expiration == later


# -- equality ----------------------------------------------------------------------------


def test_equality_by_reference_fields(store: ResultStore) -> None:
    when = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    block = uuid.uuid4()
    result = PersistedResult.create(
        1, storage_key_fn=fixed("eq"), storage_block_id=block, expiration=when, result_store=store
    )
    same = rebuilt(result)
    assert same == result  # the object it holds, and its store, do not count
    assert (
        PersistedResult.model_validate({**result.model_dump(), "serialize_to_none": True}) == result
    )
    for field, value in [
        ("serializer_type", "json"),
        ("storage_key", result.storage_key + "2"),
        ("storage_block_id", None),
        ("expiration", None),
        ("expiration", when + dt.timedelta(seconds=1)),
    ]:
        other = PersistedResult.model_validate({**result.model_dump(), field: value})
        assert other != result, field
    assert result != result.model_dump()
    assert result != "reference"


def test_not_hashable(store: ResultStore) -> None:
    result = PersistedResult.create(1, result_store=store)
    with pytest.raises(TypeError, match="unhashable"):
        hash(result)


# -- serialize_to_none -------------------------------------------------------------------


def test_serialize_to_none(store: ResultStore) -> None:
    result = PersistedResult.create(
        {"big": "value"}, storage_key_fn=fixed("none"), serialize_to_none=True, result_store=store
    )
    assert result.serialize_to_none
    assert result.model_dump() is None
    assert result.model_dump(mode="json") is None
    assert result.model_dump_json() == "null"

    class Holder(BaseModel):
        result: PersistedResult

    assert Holder(result=result).model_dump() == {"result": None}
    # Not persisted, as in Prefect: kept in memory only.
    assert not store.exists("none")
    assert result.get() == {"big": "value"}
    result.write({"other": 1})
    assert not store.exists("none")
    assert result.get() == {"other": 1}
    with pytest.raises(RecordNotFound):
        result.get(ignore_cache=True)


def test_serialize_to_none_false_dumps_fields(store: ResultStore) -> None:
    result = PersistedResult.create(1, storage_key_fn=fixed("d"), result_store=store)
    assert result.model_dump() == {
        "type": "reference",
        "serializer_type": "pickle",
        "storage_key": store._storage().resolve_path("d"),
        "storage_block_id": None,
        "expiration": None,
        "serialize_to_none": False,
    }


# -- round trip --------------------------------------------------------------------------


def test_model_round_trip(store: ResultStore) -> None:
    block = uuid.uuid4()
    when = dt.datetime(2100, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    result = PersistedResult.create(
        "rt",
        storage_key_fn=fixed("rt"),
        serializer="json",
        storage_block_id=block,
        expiration=when,
        result_store=store,
    )
    data = result.model_dump()
    assert data["storage_block_id"] == block
    assert data["expiration"] == when
    again = PersistedResult.model_validate(data)
    assert again == result
    assert again.storage_block_id == block
    assert again.expiration == when
    assert PersistedResult.model_validate(result.model_dump(mode="json")) == result
    from_json = PersistedResult.model_validate_json(result.model_dump_json())
    assert from_json == result
    assert from_json.model_dump() == data
    assert PersistedResult.model_validate(data, context={"result_store": store}).get() == "rt"


def test_validation_rules() -> None:
    base = {"serializer_type": "pickle", "storage_key": "k"}
    assert PersistedResult.model_validate(base).type == "reference"
    with pytest.raises(ValidationError, match="reference"):
        PersistedResult.model_validate({**base, "type": "literal"})
    with pytest.raises(ValidationError, match="extra"):
        PersistedResult.model_validate({**base, "value": 1})
    with pytest.raises(ValidationError, match="storage_key"):
        PersistedResult.model_validate({"serializer_type": "pickle"})
    with pytest.raises(TypeError, match="must be a ResultStore"):
        PersistedResult.model_validate(base, context={"result_store": "memory://x"})


# -- create_result -----------------------------------------------------------------------


def test_create_result(store: ResultStore) -> None:
    when = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    result = create_result(store, {"v": 1}, key="cr", expiration=when)
    assert isinstance(result, PersistedResult)
    assert result.storage_key == store._storage().resolve_path("cr")
    assert result.expiration == when
    assert not result.serialize_to_none
    assert result.model_dump() is not None
    record = behind_the_back(store).read("cr")
    assert record.result == {"v": 1}
    assert record.metadata.expiration == when
    assert result.has_cached_object()
    assert result.get() == {"v": 1}


def test_create_result_default_key_and_no_memory_cache(store: ResultStore) -> None:
    store.cache_result_in_memory = False
    store.storage_key_fn = fixed("from-key-fn")
    result = create_result(store, [3])
    assert result.storage_key == store._storage().resolve_path("from-key-fn")
    assert not result.has_cached_object()
    assert store.read("from-key-fn").result == [3]
    assert result.get() == [3]
    held = create_result(store, None, key="none")  # None is held at no cost, as in Prefect
    assert held.has_cached_object()


async def test_acreate_result(store: ResultStore) -> None:
    result = await acreate_result(store, "async", key="acr", expiration=dt.timedelta(seconds=-1))
    assert (await store._storage().aread_path("acr"))[:4] == b"\x89MOR"
    with pytest.raises(RecordExpired):
        await result.aget()
    other = await acreate_result(store, "fresh", key="acr2")
    assert await rebuilt(other, store).aget() == "fresh"


# -- deprecation warnings ----------------------------------------------------------------


def test_create_warns_once(store: ResultStore) -> None:
    with one_deprecation():
        result = PersistedResult.create(1, result_store=store)
    with one_deprecation():
        PersistedResult(serializer_type="pickle", storage_key="k")
    with one_deprecation():
        create_result(store, 1)
    # Using or reading back a reference does not warn.
    with _no_deprecation():
        result.get()
        result.write(2)
        rebuilt(result, store).get()


async def test_async_create_warns_once(store: ResultStore) -> None:
    with one_deprecation():
        result = await PersistedResult.acreate(1, result_store=store)
    with one_deprecation():
        await acreate_result(store, 1)
    with _no_deprecation():
        await result.aget(ignore_cache=True)
        await result.awrite(3)


@contextmanager
def _no_deprecation() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]


def test_store_create_result_methods_warn_at_their_caller(store: ResultStore) -> None:
    line = sys._getframe().f_lineno + 2
    with pytest.warns(DeprecationWarning, match=DEPRECATED) as record:
        result = store.create_result({"m": 1}, key="method", expiration=dt.timedelta(hours=1))
    assert [(w.filename, w.lineno) for w in record] == [(__file__, line)]
    assert result.storage_key == store._storage().resolve_path("method")
    assert behind_the_back(store).read("method").result == {"m": 1}
    with pytest.warns(DeprecationWarning, match=DEPRECATED):  # an awaited frame has no caller line
        other = asyncio.run(store.acreate_result("async", key="amethod"))
    assert rebuilt(other, store).get() == "async"


def test_results_module_exports_it() -> None:
    import moorage.results

    assert ReExported is PersistedResult
    assert "PersistedResult" in moorage.results.__all__
