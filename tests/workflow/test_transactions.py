"""Transactions (spec §6): read-instead-of-recompute, commit, rollback, isolation."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moorage import ConfigurationError, LockError
from moorage.results import ResultStore
from moorage.store.transaction import TransactionState

WORKER = Path(__file__).with_name("counter_worker.py")


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    return ResultStore(
        result_storage=tmp_path / "results", lock_manager=(tmp_path / "locks").as_uri()
    )


def test_commit_writes_the_staged_value_and_releases(store: ResultStore) -> None:
    with store.transaction("k", "SERIALIZABLE") as txn:
        assert store.is_locked("k")
        assert not txn.is_committed()
        txn.stage({"v": 1})
        assert not store.exists("k"), "nothing may be written before the commit"
    assert txn.state is TransactionState.COMMITTED
    assert not store.is_locked("k")
    fresh = ResultStore(result_storage=store.result_storage, cache_result_in_memory=False)
    assert fresh.read("k").result == {"v": 1}


def test_committed_record_is_read_not_recomputed(store: ResultStore) -> None:
    store.write(41, key="k")
    with store.transaction("k") as txn:
        assert txn.is_committed()
        record = txn.read()
        assert record is not None
        assert record.result == 41


def test_overwrite_recomputes(store: ResultStore) -> None:
    store.write(41, key="k")
    with store.transaction("k", overwrite=True) as txn:
        assert not txn.is_committed()
        txn.stage(42)
    assert store.read("k").result == 42


def test_exception_rolls_back_writes_nothing_and_releases(store: ResultStore) -> None:
    txn = store.transaction("k", "SERIALIZABLE")

    def fail_inside() -> None:
        with txn:
            txn.stage("partial")
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        fail_inside()
    assert txn.state is TransactionState.ROLLED_BACK
    assert not store.exists("k")
    assert not store.is_locked("k")


def test_nothing_staged_writes_nothing(store: ResultStore) -> None:
    with store.transaction("k", "SERIALIZABLE") as txn:
        pass
    assert txn.state is TransactionState.ROLLED_BACK
    assert not store.exists("k")
    assert not store.is_locked("k")


def test_serializable_needs_a_lock_manager(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path)
    with pytest.raises(ConfigurationError, match=r"SERIALIZABLE.*lock manager"):
        store.transaction("k", "SERIALIZABLE")
    with pytest.raises(ConfigurationError, match="unknown isolation level 'SNAPSHOT'"):
        store.transaction("k", "SNAPSHOT")


def test_stage_outside_the_block_is_refused(store: ResultStore) -> None:
    txn = store.transaction("k")
    with pytest.raises(LockError, match="stage inside"):
        txn.stage(1)


def test_lock_lapsed_before_commit_writes_nothing(store: ResultStore) -> None:
    txn = store.transaction("k", "SERIALIZABLE", hold_timeout=0.05)
    txn.begin()
    txn.stage("late")
    time.sleep(0.2)  # the lock lapses; another holder takes the key
    assert store.acquire_lock("k", holder="intruder")
    with pytest.raises(LockError, match="lapsed before the commit"):
        txn.commit()
    assert txn.state is TransactionState.ROLLED_BACK
    assert not store.exists("k")
    assert store.is_lock_holder("k", "intruder"), "the intruder's lock must not be freed"


def test_second_transaction_waits_for_the_first(store: ResultStore) -> None:
    order: list[str] = []
    first = store.transaction("k", "SERIALIZABLE", holder="first")
    first.begin()
    second = store.transaction("k", "SERIALIZABLE", holder="second", lock_timeout=0.1)
    with pytest.raises(LockError, match="could not lock 'k'"):
        second.begin()
    first.stage("from first")
    first.commit()
    order.append("first committed")
    with store.transaction("k", "SERIALIZABLE", holder="third") as third:
        assert third.is_committed()
        record = third.read()
        assert record is not None
        assert record.result == "from first"


async def test_async_transactions_under_gather(store: ResultStore) -> None:
    async def increment() -> None:
        async with store.transaction("n", "SERIALIZABLE", overwrite=True) as txn:
            record = await txn.aread()
            await asyncio.sleep(0)  # let the other tasks try to get in
            txn.stage((record.result if record is not None else 0) + 1)

    await asyncio.gather(*(increment() for _ in range(20)))
    assert (await store.aread("n")).result == 20


async def test_async_rollback(store: ResultStore) -> None:
    async def fail_inside() -> None:
        async with store.transaction("k", "SERIALIZABLE") as txn:
            txn.stage(1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_inside()
    assert not await store.aexists("k")
    assert not store.is_locked("k")


@pytest.fixture(params=["file", "redis"])
def lock_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return (tmp_path / "locks").as_uri()
    server = request.getfixturevalue("redis_server")
    return str(server.url)


@pytest.mark.slow
def test_eight_processes_fifty_increments_end_at_400(tmp_path: Path, lock_url: str) -> None:
    storage = str(tmp_path / "results")
    workers = [
        subprocess.Popen([sys.executable, str(WORKER), storage, lock_url, "50"]) for _ in range(8)
    ]
    codes = [w.wait(timeout=600) for w in workers]
    assert codes == [0] * 8
    store = ResultStore(result_storage=storage, serializer="json", cache_result_in_memory=False)
    assert store.read("counter").result == 400


HOLD_AND_HANG = """
import sys, time
from moorage.results import ResultStore
store = ResultStore(result_storage=sys.argv[1], lock_manager=sys.argv[2])
txn = store.transaction("job", "SERIALIZABLE", hold_timeout=1.0)
txn.begin()
txn.stage("never committed")
print("locked", flush=True)
time.sleep(600)
"""


def test_a_killed_holder_blocks_the_key_only_until_its_hold_timeout(
    tmp_path: Path, lock_url: str
) -> None:
    storage = str(tmp_path / "results")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_HANG, storage, lock_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    store = ResultStore(result_storage=storage, lock_manager=lock_url)
    assert store.is_locked("job"), "the dead holder's lock is still there at first"
    # Bounded, so a lock that never lapses fails the test instead of hanging it.
    with store.transaction("job", "SERIALIZABLE", lock_timeout=60) as txn:
        assert not txn.is_committed(), "the dead holder's staged value was never written"
        txn.stage("done")
    assert store.read("job").result == "done"
