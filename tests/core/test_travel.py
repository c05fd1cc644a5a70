"""Stores, storages and tasks pickle (stdlib and cloudpickle) and work in the process
they land in: clients and locks are rebuilt there, the memory cache stays behind."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from workflow import travellers

from moorage import ResultStore
from moorage.storage import Storage

TESTS = Path(__file__).parents[1]
DUMPERS: dict[str, Callable[[Any], bytes]] = {
    "pickle": pickle.dumps,
    "cloudpickle": cloudpickle.dumps,
}


@pytest.fixture(params=sorted(DUMPERS))
def dumps(request: pytest.FixtureRequest) -> Callable[[Any], bytes]:
    return DUMPERS[request.param]


def in_child(tmp_path: Path, data: bytes, scenario: str) -> dict[str, Any]:
    shipped = tmp_path / f"shipped-{scenario}.pickle"
    shipped.write_bytes(data)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "workflow.travellers", str(shipped), scenario],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_storage_travels(
    make_storage: Callable[[str], Storage], dumps: Callable[[Any], bytes], tmp_path: Path
) -> None:
    storage = make_storage("travel")
    storage.write_path("shipped", b"from the parent")
    storage.exists("shipped")  # the client (and its locks) exist before pickling
    data = dumps(storage)
    copy = pickle.loads(data)
    assert copy == storage
    assert hash(copy) == hash(storage)
    if storage.url.startswith("memory://"):
        pytest.skip("memory storage holds its process's contents; checked in-process")
    found = in_child(tmp_path, data, "storage")
    assert found == {"read": "from the parent", "exists": True}
    assert storage.read_path("child") == b"from the child"


def test_memory_storage_does_not_ship_its_contents() -> None:
    storage = ResultStore(result_storage="memory://travel-contents").result_storage
    assert storage is not None
    storage.write_path("k", b"x" * 100_000)
    assert len(pickle.dumps(storage)) < 1000


def test_store_travels_without_its_cache(dumps: Callable[[Any], bytes], tmp_path: Path) -> None:
    store = ResultStore(
        result_storage=tmp_path / "results", lock_manager="memory://", serializer="json"
    )
    store.write({"v": 1}, key="shipped")
    assert len(store.cache) == 1
    data = dumps(store)
    assert b"ResultCache" not in data
    copy = pickle.loads(data)
    assert copy.result_storage == store.result_storage
    assert copy.serializer == store.serializer
    found = in_child(tmp_path, data, "store")
    assert found == {"read": {"v": 1}, "exists": True, "cache": 2}
    assert store.read("child").result == "from the child"


def test_task_pickles_by_reference_before_and_after_a_call(
    dumps: Callable[[Any], bytes], tmp_path: Path
) -> None:
    task = travellers.whose_pid
    first = dumps(task)
    assert pickle.loads(first) is task
    parent = task(21)
    data = dumps(task)
    assert pickle.loads(data) is task
    found = in_child(tmp_path, data, "task")
    assert found["result"] == parent, "the child did not find the parent's stored result"
    assert found["here"] != parent["pid"]


def test_local_task_travels_by_value(tmp_path: Path) -> None:
    import moorage

    @moorage.task(persist_result=False)
    def local(n: int) -> int:
        return n + 1

    local(1)
    copy = cloudpickle.loads(cloudpickle.dumps(local))
    assert copy is not local
    assert copy(1) == 2
    assert copy.name == local.name
    assert copy.cache_policy == local.cache_policy


def test_flow_pickles_by_reference(dumps: Callable[[Any], bytes]) -> None:
    assert pickle.loads(dumps(travellers.a_flow)) is travellers.a_flow


def test_task_in_a_spawned_process_pool_finds_the_parents_result() -> None:
    parent = travellers.whose_pid(7)
    assert parent["pid"] == os.getpid()
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        found = pool.submit(travellers.whose_pid, 7).result(timeout=120)
        fresh = pool.submit(travellers.whose_pid, 8).result(timeout=120)
    assert found == parent
    assert fresh["pid"] != os.getpid(), "a new input should run in the worker"
