"""Tasks with a lock manager compute each key once, and a hit still costs one read.

With a lock manager configured and no isolation level in the cache policy, a miss takes
the key's lock, checks again and only then runs the body; a hit never touches the lock
manager. (Processes and machines: tests/scale, on a Dask cluster.)
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import moorage
from moorage import ResultStore
from moorage.locking import IsolationLevel, LockManager, MemoryLockManager
from moorage.workflow.cache_policies import DEFAULT


class CountingLocks(MemoryLockManager):
    """Process-wide memory locks that count what is asked of them."""

    def __init__(self) -> None:
        super().__init__("memory://", 60.0)
        self.asked: list[str] = []

    def try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        self.asked.append("acquire")
        return super().try_acquire(key, holder, hold_timeout)

    def lock_holder(self, key: str) -> str | None:
        self.asked.append("holder")
        return super().lock_holder(key)


def _burst(fn: Any, n: int, arg: int) -> list[Any]:
    """Call ``fn(arg)`` from ``n`` threads released together; their results."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n

    def call(i: int) -> None:
        start.wait()
        results[i] = fn(arg)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_equal_calls_together_run_the_body_once_with_file_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_LOCK_MANAGER", (tmp_path / "locks").as_uri())
    runs: list[int] = []

    @moorage.task
    def slow_square(n: int) -> int:
        runs.append(n)
        time.sleep(0.2)  # the other callers arrive while this one computes
        return n * n

    for n in (3, 4):
        assert _burst(slow_square, 6, n) == [n * n] * 6
    assert sorted(runs) == [3, 4]


def test_read_committed_policy_takes_no_lock(tmp_path: Path) -> None:
    locks = CountingLocks()
    policy = DEFAULT.configure(lock_manager=locks, isolation_level=IsolationLevel.READ_COMMITTED)

    @moorage.task(cache_policy=policy, result_storage=(tmp_path / "results").as_uri())
    def double(n: int) -> int:
        return 2 * n

    assert double(4) == 8
    assert "acquire" not in locks.asked


def test_a_hit_asks_nothing_of_the_lock_manager(tmp_path: Path) -> None:
    locks = CountingLocks()

    @moorage.task(
        cache_policy=DEFAULT.configure(lock_manager=locks),
        result_storage=(tmp_path / "results").as_uri(),
        cache_result_in_memory=False,
    )
    def double(n: int) -> int:
        return 2 * n

    assert double(5) == 10
    assert locks.asked.count("acquire") == 1, "the miss takes the key's lock once"
    locks.asked.clear()
    assert [double(5) for _ in range(3)] == [10, 10, 10]
    assert locks.asked == [], "hits read storage without asking the lock manager"


def test_a_lapsed_lock_keeps_the_computed_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    locks: LockManager = MemoryLockManager("memory://", 0.1)  # lapses while the body runs
    runs: list[int] = []
    store_url = (tmp_path / "results").as_uri()

    @moorage.task(cache_policy=DEFAULT.configure(lock_manager=locks), result_storage=store_url)
    def slow(n: int) -> int:
        runs.append(n)
        time.sleep(0.3)
        return n + 1

    with caplog.at_level(logging.WARNING, logger="moorage.transactions"):
        assert slow(1) == 2
    assert "lapsed before the commit" in caplog.text
    assert slow(1) == 2
    assert runs == [1], "the result was committed and is reused"
    assert ResultStore(result_storage=store_url).exists(_only_key(tmp_path / "results"))


def _only_key(folder: Path) -> str:
    names = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    assert len(names) == 1, names
    return names[0]


async def test_async_equal_calls_run_once(tmp_path: Path) -> None:
    import asyncio

    runs: list[int] = []

    @moorage.task(
        cache_policy=DEFAULT.configure(lock_manager=(tmp_path / "locks").as_uri()),
        result_storage=(tmp_path / "results").as_uri(),
    )
    async def slow(n: int) -> int:
        runs.append(n)
        await asyncio.sleep(0.2)
        return -n

    assert await asyncio.gather(*(slow(7) for _ in range(5))) == [-7] * 5
    assert runs == [7]
