"""Fair waiting, on one server, on Sentinel and on a Cluster: a free lock goes to the
first live waiter in the queue, a releaser that asks again queues behind it, a plain
try never jumps the queue, and a waiter that gives up or dies leaves it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from moorage_redis import RedisLockManager

from servers import wait_until
from servers.redis import RedisServer
from servers.redis_modes import RedisClusterSetup, RedisSentinelSetup

JOIN = 30.0  # generous: only a hang reaches it


@pytest.fixture(params=["single", "sentinel", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    """A URL of each kind of deployment."""
    fixture = {"single": "redis_server", "sentinel": "redis_sentinel", "cluster": "redis_cluster"}
    setup: RedisServer | RedisSentinelSetup | RedisClusterSetup
    setup = request.getfixturevalue(fixture[request.param])
    return setup.url


@pytest.fixture
def manager(url: str) -> Iterator[RedisLockManager]:
    manager = RedisLockManager(url, key_prefix=RedisServer.prefix(), hold_timeout=60)
    yield manager
    manager.close()


def queued(manager: RedisLockManager, key: str) -> list[bytes]:
    """The holders in ``key``'s queue, first first (read with a plain client)."""
    queue_key = manager.script_keys(key)[1]
    client = manager._clients.sync().redis  # the same server (or cluster) as the manager
    return list(client.zrange(queue_key, 0, -1))


def test_a_releaser_that_asks_again_queues_behind_the_waiter(manager: RedisLockManager) -> None:
    order: list[str] = []

    def bob() -> None:
        assert manager.acquire_lock("k", "bob", acquire_timeout=JOIN)
        order.append("bob")
        manager.release_lock("k", "bob")

    assert manager.acquire_lock("k", "alice", acquire_timeout=0)
    waiter = threading.Thread(target=bob, daemon=True)
    waiter.start()
    wait_until(lambda: queued(manager, "k") == [b"bob"], what="bob in the queue")
    manager.release_lock("k", "alice")
    assert manager.acquire_lock("k", "alice", acquire_timeout=JOIN)  # at once, again
    order.append("alice")
    waiter.join(JOIN)
    assert order == ["bob", "alice"]
    assert queued(manager, "k") == []
    manager.release_lock("k", "alice")


def test_waiters_within_one_millisecond_keep_their_order(manager: RedisLockManager) -> None:
    assert manager.acquire_lock("k", "alice", acquire_timeout=0)
    for name in ("zed", "bob", "amy"):  # joined faster than the clock ticks, names unsorted
        assert manager.try_acquire_waiting("k", name, 60) is False
    assert queued(manager, "k") == [b"zed", b"bob", b"amy"]
    manager.release_lock("k", "alice")
    assert manager.try_acquire_waiting("k", "amy", 60) is False
    assert manager.try_acquire_waiting("k", "zed", 60) is True
    manager.release_lock("k", "zed")
    for name in ("bob", "amy"):
        manager.stop_waiting("k", name)
    assert queued(manager, "k") == []


def test_a_plain_try_does_not_jump_the_queue(manager: RedisLockManager) -> None:
    assert manager.acquire_lock("k", "alice", acquire_timeout=0)
    # One waiting try: bob joins the queue and does not come back for a while.
    assert manager.try_acquire_waiting("k", "bob", 60) is False
    manager.release_lock("k", "alice")
    assert manager.try_acquire("k", "carol", 60) is False  # free, but bob is first
    assert queued(manager, "k") == [b"bob"]  # and carol did not queue
    assert manager.try_acquire_waiting("k", "bob", 60) is True
    assert queued(manager, "k") == []
    manager.release_lock("k", "bob")


def test_a_waiter_that_times_out_leaves_the_queue(manager: RedisLockManager) -> None:
    assert manager.acquire_lock("k", "alice", acquire_timeout=0)
    assert manager.acquire_lock("k", "bob", acquire_timeout=0.3) is False
    assert queued(manager, "k") == []
    manager.release_lock("k", "alice")
    assert manager.try_acquire("k", "carol", 60) is True
    manager.release_lock("k", "carol")


def test_a_waiter_that_stopped_trying_drops_out(manager: RedisLockManager) -> None:
    assert manager.acquire_lock("k", "alice", acquire_timeout=0)
    assert manager.try_acquire_waiting("k", "ghost", 60) is False  # then never again
    manager.release_lock("k", "alice")
    assert manager.try_acquire("k", "carol", 60) is False
    # carol waits out the ghost's liveness (a few seconds), then gets the lock.
    assert manager.acquire_lock("k", "carol", acquire_timeout=JOIN) is True
    assert b"ghost" not in queued(manager, "k")
    manager.release_lock("k", "carol")


async def _async_order(manager: RedisLockManager) -> list[str]:
    import asyncio

    order: list[str] = []

    async def bob() -> None:
        assert await manager.aacquire_lock("k", "bob", acquire_timeout=JOIN)
        order.append("bob")
        await manager.arelease_lock("k", "bob")

    assert await manager.aacquire_lock("k", "alice", acquire_timeout=0)
    task = asyncio.create_task(bob())
    while await asyncio.to_thread(queued, manager, "k") != [b"bob"]:
        await asyncio.sleep(0.01)
    await manager.arelease_lock("k", "alice")
    assert await manager.aacquire_lock("k", "alice", acquire_timeout=JOIN)
    order.append("alice")
    await task
    await manager.arelease_lock("k", "alice")
    return order


def test_async_waiters_are_served_in_order(manager: RedisLockManager) -> None:
    import asyncio

    assert asyncio.run(_async_order(manager)) == ["bob", "alice"]


# Loops acquire/release on one key for SECONDS once the "go" key exists; prints its count.
CONTENDER = """
import sys, time
import redis
from moorage_redis import RedisLockManager
url, prefix, name, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
locks = RedisLockManager(url, key_prefix=prefix, hold_timeout=30)
print("ready", flush=True)
while locks.lock_holder("go") is None:
    time.sleep(0.01)
count, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    assert locks.acquire_lock("contended", name, acquire_timeout=60)
    count += 1
    locks.release_lock("contended", name)
print(count, flush=True)
"""


@pytest.mark.slow
def test_two_processes_share_a_contended_lock(url: str) -> None:
    prefix = RedisServer.prefix()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, url, prefix, f"p{number}", "2.0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(2)
    ]
    starter = RedisLockManager(url, key_prefix=prefix)
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        assert starter.acquire_lock("go", "starter", acquire_timeout=0)
        counts = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            counts.append(int(out.strip()))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        starter.close()
    total = sum(counts)
    assert total > 0
    assert min(counts) >= total / 4, f"acquisitions per process: {counts}"
