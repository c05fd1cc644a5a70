"""The @task and @flow decorators (spec §6): stored results are reused across
processes, expire, can be refreshed, and failures are never stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import moorage
from moorage.results import ResultStore, get_result_store, should_persist_result
from moorage.workflow.cache_policies import INPUTS, TASK_SOURCE, CacheKeyFn, CachePolicy

WORKER = Path(__file__).with_name("task_worker.py")


def call_worker(runs: Path, n: int, *flags: str, expire: float = 3600) -> str:
    env = {**os.environ, "TASK_WORKER_EXPIRE": str(expire)}
    done = subprocess.run(
        [sys.executable, str(WORKER), str(runs), str(n), *flags],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout.strip()


def body_runs(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_second_process_gets_the_stored_result(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert call_worker(runs, 7) == "49"
    assert call_worker(runs, 7) == "49"
    assert body_runs(runs) == 1, "the second process must read, not run the body"
    assert call_worker(runs, 8) == "64"
    assert body_runs(runs) == 2, "other inputs are another key"


def test_expired_result_runs_again(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    call_worker(runs, 3, expire=0.3)
    time.sleep(0.5)
    call_worker(runs, 3, expire=0.3)
    assert body_runs(runs) == 2


def test_refresh_cache_always_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    call_worker(runs, 5)
    call_worker(runs, 5, "--refresh")
    call_worker(runs, 5, "--refresh")
    assert body_runs(runs) == 3
    call_worker(runs, 5)
    assert body_runs(runs) == 3, "a refreshed result is stored and reused"


def test_a_raising_body_stores_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert call_worker(runs, 4, "--fail") == "failed: asked to fail for 4"
    stored = [p for p in Path(os.environ["MOORAGE_LOCAL_STORAGE_PATH"]).rglob("*") if p.is_file()]
    assert stored == []
    assert call_worker(runs, 4, "--fail") == "failed: asked to fail for 4"
    assert body_runs(runs) == 2


class Counter:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


def test_cache_key_depends_on_inputs_not_their_order(tmp_path: Path) -> None:
    seen = Counter()

    @moorage.task(result_storage=tmp_path)
    def describe(options: dict[str, Any], tags: set[str]) -> str:
        seen(options, tags)
        return f"{sorted(options)} {sorted(tags)}"

    describe({"a": 1, "b": 2}, {"x", "y"})
    describe({"b": 2, "a": 1}, {"y", "x"})
    assert len(seen.calls) == 1
    describe({"a": 1, "b": 3}, {"x", "y"})
    describe({"a": 1, "b": 2}, {"x"})
    assert len(seen.calls) == 3


def test_inputs_minus_a_parameter(tmp_path: Path) -> None:
    seen = Counter()

    @moorage.task(result_storage=tmp_path, cache_policy=INPUTS - "verbose")
    def add(a: int, b: int, verbose: bool = False) -> int:
        seen(a, b)
        return a + b

    assert add(1, 2) == 3
    assert add(1, 2, verbose=True) == 3
    assert len(seen.calls) == 1


def test_custom_key_function_and_combination(tmp_path: Path) -> None:
    seen = Counter()

    def by_parity(context: Any, parameters: Any) -> str:
        return "odd" if parameters["n"] % 2 else "even"

    @moorage.task(result_storage=tmp_path, cache_key_fn=by_parity)
    def parity(n: int) -> str:
        seen(n)
        return "odd" if n % 2 else "even"

    assert [parity(n) for n in (1, 3, 5, 2, 4)] == ["odd", "odd", "odd", "even", "even"]
    assert len(seen.calls) == 2
    combined = CacheKeyFn(key_fn=by_parity) + INPUTS
    assert isinstance(combined, CachePolicy)
    keys = {combined.compute_key(moorage_context(parity.fn, {"n": n})) for n in (1, 3)}
    assert len(keys) == 2, "combined with INPUTS, equal parity no longer means equal key"


def moorage_context(fn: Any, parameters: dict[str, Any]) -> Any:
    from moorage.workflow.cache_policies import CacheContext

    return CacheContext(fn=fn, parameters=parameters)


def test_task_source_changes_the_key() -> None:
    def one(x: int) -> int:
        return x

    def two(x: int) -> int:
        return x + 1

    key = TASK_SOURCE.compute_key
    assert key(moorage_context(one, {})) != key(moorage_context(two, {}))
    assert key(moorage_context(one, {})) == key(moorage_context(one, {"x": 1}))


def test_result_storage_key_template_and_serializer(tmp_path: Path) -> None:
    @moorage.task(
        result_storage=tmp_path,
        result_storage_key="{parameters[city]}-{fn.__name__}",
        result_serializer="json",
    )
    def forecast(city: str) -> dict[str, str]:
        return {"city": city, "sky": "clear"}

    forecast("oslo")
    store = ResultStore(result_storage=tmp_path, cache_result_in_memory=False)
    record = store.read("oslo-forecast")
    assert record.result == {"city": "oslo", "sky": "clear"}
    assert record.metadata.serializer.type == "json"


def test_persist_false_never_stores(tmp_path: Path) -> None:
    seen = Counter()

    @moorage.task(result_storage=tmp_path, persist_result=False)
    def noisy(n: int) -> int:
        seen(n)
        assert not should_persist_result()
        return n

    noisy(1)
    noisy(1)
    assert len(seen.calls) == 2
    assert list(tmp_path.rglob("*")) == []


def test_unhashable_input_runs_uncached_with_a_warning(tmp_path: Path) -> None:
    import threading

    @moorage.task(result_storage=tmp_path)
    def uses_lock(lock: Any) -> int:
        return 1

    with pytest.warns(RuntimeWarning, match="runs uncached.*cache_key_fn"):
        assert uses_lock(threading.Lock()) == 1
    assert list(tmp_path.rglob("*")) == []


def test_flow_sets_task_defaults(tmp_path: Path) -> None:
    inside: dict[str, Any] = {}

    @moorage.task
    def step(n: int) -> int:
        inside["persist"] = should_persist_result()
        inside["store"] = get_result_store()
        return n * 10

    @moorage.flow(result_storage=tmp_path / "flow", result_serializer="json")
    def pipeline(n: int) -> int:
        return step(n) + step(n)

    assert pipeline(2) == 40
    assert inside["persist"] is True
    assert inside["store"].serializer.type == "json"
    stored = [p for p in (tmp_path / "flow").rglob("*") if p.is_file()]
    assert len(stored) == 1, "both calls share one key: the second read the first's record"


def test_flow_persist_false_reaches_its_tasks(tmp_path: Path) -> None:
    seen = Counter()

    # The task leaves persist_result unset and names no storage of its own (one that
    # did would persist, as Prefect infers); the flow's storage is never written.
    @moorage.task
    def step(n: int) -> int:
        seen(n)
        return n

    @moorage.flow(persist_result=False, result_storage=tmp_path)
    def pipeline() -> int:
        return step(1) + step(1)

    assert pipeline() == 2
    assert len(seen.calls) == 2
    assert list(tmp_path.rglob("*")) == []


async def test_async_task_and_distinct_holders_under_gather(tmp_path: Path) -> None:
    seen = Counter()
    policy = INPUTS.configure(
        lock_manager=(tmp_path / "locks").as_uri(), isolation_level="SERIALIZABLE"
    )

    @moorage.task(result_storage=tmp_path / "r", cache_policy=policy)
    async def slow_double(n: int) -> int:
        seen(n)
        await asyncio.sleep(0.05)  # the other tasks reach the lock meanwhile
        return 2 * n

    results = await asyncio.gather(*(slow_double(21) for _ in range(8)))
    assert results == [42] * 8
    assert len(seen.calls) == 1, "with distinct holders, the lock lets one body run"
    assert await asyncio.gather(*(slow_double(n) for n in range(5))) == [0, 2, 4, 6, 8]


async def test_async_failure_stores_nothing(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path)
    async def broken(n: int) -> int:
        raise KeyError(n)

    with pytest.raises(KeyError):
        await broken(1)
    assert list(tmp_path.rglob("*")) == []


def test_cache_result_in_memory_false_reads_storage(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path, cache_result_in_memory=False)
    def value() -> list[int]:
        return [1, 2]

    first, second = value(), value()
    assert first == second == [1, 2]
    assert first is not second, "without the memory cache, the second call decodes anew"


def test_parameters_round_trip(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path)
    params = {"day": dt.date(2026, 11, 21), "ids": (1, 2), "opts": {"deep": [None]}}
    store.store_parameters("run-1", params)
    fresh = ResultStore(result_storage=tmp_path, cache_result_in_memory=False)
    assert fresh.read_parameters("run-1") == params


def test_stable_hash_is_the_same_in_other_processes() -> None:
    from moorage.keys.encoding import stable_hash

    value = {"s": {"alpha", "beta", "gamma"}, "t": (1, 2.5), "d": dt.date(2026, 1, 1)}
    code = (
        "import datetime as dt; from moorage.keys.encoding import stable_hash; "
        "print(stable_hash({'s': {'alpha', 'beta', 'gamma'}, 't': (1, 2.5), "
        "'d': dt.date(2026, 1, 1)}))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert outs == {stable_hash(value)}
    assert stable_hash(1) != stable_hash(1.0) != stable_hash(True) != stable_hash("1")
    assert stable_hash([1, 2]) != stable_hash((1, 2))


class CountingStorage(moorage.storage.MemoryStorage):
    """Memory storage that counts the reads a task makes (a moorage class, no client)."""

    def __init__(self) -> None:
        super().__init__(f"memory://counted-{uuid.uuid4().hex}")  # memory:// URLs share data
        self.calls: list[str] = []

    def read_path(self, key: str) -> bytes:
        self.calls.append("read_path")
        return super().read_path(key)

    def read_head(self, key: str, n: int) -> bytes:
        self.calls.append("read_head")
        return super().read_head(key, n)

    def exists(self, key: str) -> bool:
        self.calls.append("exists")
        return super().exists(key)


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_hit_costs_one_read_or_none(in_memory: bool) -> None:
    storage = CountingStorage()
    runs: list[int] = []

    @moorage.task(result_storage=storage, cache_result_in_memory=in_memory)
    def double(x: int) -> int:
        runs.append(x)
        return 2 * x

    assert double(4) == 8
    storage.calls.clear()
    assert double(4) == 8
    assert double(x=4) == 8  # the same key however the argument is passed
    assert runs == [4]
    # From storage: one read per call, no separate existence check; from memory: none.
    assert storage.calls == ([] if in_memory else ["read_path", "read_path"])


async def test_an_async_hit_costs_one_read() -> None:
    storage = CountingStorage()

    @moorage.task(result_storage=storage, cache_result_in_memory=False)
    async def double(x: int) -> int:
        return 2 * x

    assert await double(5) == 10
    storage.calls.clear()
    assert await double(5) == 10
    assert storage.calls == ["read_path"]
