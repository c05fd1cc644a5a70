"""`ResultStore.stats()` and the DEBUG line each task call logs, and
`moorage.operations.concurrently`, which bulk work runs on."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import pickle
import threading
from pathlib import Path

import pytest

import moorage
from moorage import RecordNotFound
from moorage.operations import Call, Op, concurrently, run_async, run_sync
from moorage.results import ResultStore
from moorage.store.context import RunContext, run_context
from moorage.store.memory_cache import ResultCache
from moorage.store.stats import StoreStats


def test_stats_count_hits_misses_writes_and_bytes(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path, serializer="json", cache=ResultCache())
    assert store.stats() == StoreStats()
    assert store.stats().hit_ratio is None
    record = store.write({"a": 1}, key="k")
    written = len((tmp_path / "k").read_bytes())
    store.read("k")  # from memory: the write kept it there
    with pytest.raises(RecordNotFound):
        store.read("missing")
    store.write(2, key="old", expiration=dt.timedelta(seconds=-1))
    cold = ResultStore(result_storage=tmp_path, serializer="json", cache=ResultCache())
    cold.read("k")
    with pytest.raises(moorage.RecordExpired):
        cold.read("old")
    stats = store.stats()
    assert (stats.hits_memory, stats.hits_storage, stats.misses, stats.writes) == (1, 0, 1, 2)
    assert stats.bytes_written > written > 0, record
    assert stats.hit_ratio == 0.5
    cold_stats = cold.stats()
    assert (cold_stats.hits_storage, cold_stats.misses, cold_stats.hits) == (1, 1, 1)
    assert cold_stats.bytes_read > 0
    travelled = pickle.loads(pickle.dumps(store))
    assert travelled.stats() == StoreStats(), "a store that travels counts afresh"


def test_task_calls_count_in_their_flow_store_and_say_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ResultStore(result_storage=tmp_path, serializer="json", cache=ResultCache())
    runs: list[int] = []

    @moorage.task
    def square(x: int) -> int:
        runs.append(x)
        return x * x

    @moorage.task(refresh_cache=True)
    def fresh(x: int) -> int:
        return x

    caplog.set_level(logging.DEBUG, logger="moorage.tasks")
    with run_context(RunContext(result_store=store, is_task=False)):
        assert square(3) == 9  # miss: computed, written
        assert square(3) == 9  # hit from memory
        store.cache.clear()
        assert square(3) == 9  # hit from storage
        fresh(1)
    assert runs == [3]
    stats = store.stats()
    assert (stats.hits_memory, stats.hits_storage, stats.writes) == (1, 1, 2)
    assert stats.misses == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "moorage.tasks"]
    assert len(lines) == 4, lines
    assert "'square'" in lines[0]
    assert lines[0].endswith("miss: no record stored")
    assert lines[1].endswith("hit from memory")
    assert lines[2].endswith("hit from storage")
    assert lines[3].endswith("miss: refresh_cache recomputes the value")


def _echo(value: int, seen: list[str]) -> Op[int]:
    seen.append(threading.current_thread().name)
    got = yield from Call(_double, _adouble, value)
    if got == 6:
        raise ValueError("three is refused")
    return got


def _double(value: int) -> int:
    return value * 2


async def _adouble(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


def test_concurrently_runs_every_operation_and_keeps_their_order() -> None:
    seen: list[str] = []
    assert run_sync(iter(concurrently([_echo(n, seen) for n in (1, 2, 4)], 3))) == [2, 4, 8]
    assert any(name.startswith("moorage") for name in seen), "ran in the pool's threads"
    assert asyncio.run(run_async(iter(concurrently([_echo(n, []) for n in (5, 1)], 2)))) == [10, 2]
    sequential: list[str] = []
    assert run_sync(iter(concurrently([_echo(n, sequential) for n in (1, 2)], 1))) == [2, 4]
    assert set(sequential) == {threading.current_thread().name}


def test_concurrently_finishes_every_operation_before_raising() -> None:
    for limit in (1, 4):
        done: list[str] = []
        ops = [_echo(n, done) for n in (1, 3, 5, 7)]
        with pytest.raises(ValueError, match="three"):
            run_sync(iter(concurrently(ops, limit)))
        assert len(done) == 4, "every operation ran, though one failed"
    adone: list[str] = []
    with pytest.raises(ValueError, match="three"):
        asyncio.run(run_async(iter(concurrently([_echo(n, adone) for n in (3, 1, 2)], 2))))
    assert len(adone) == 3
