"""asyncio: tasks under gather, one client per event loop, closed with its loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from moorage import LockError
from moorage.store.defaults import generate_default_holder
from moorage_redis import RedisLockManager

from .conftest import MakeManager
from servers.redis import RedisServer


def test_tasks_under_gather_exclude_each_other(manager: RedisLockManager) -> None:
    counter = 0
    holders: set[str] = set()
    tasks, rounds = 8, 10

    async def worker() -> None:
        nonlocal counter
        holder = generate_default_holder()  # host:pid:thread:task-<id>
        holders.add(holder)
        for _ in range(rounds):
            assert await manager.aacquire_lock("counter", holder, acquire_timeout=60)
            assert await manager.ais_lock_holder("counter", holder)
            value = counter
            await asyncio.sleep(0.001)  # let the other tasks run while we hold it
            counter = value + 1
            await manager.arelease_lock("counter", holder)

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(tasks)))

    asyncio.run(main())
    assert len(holders) == tasks, "each asyncio task is a holder of its own"
    assert counter == tasks * rounds
    assert not manager.is_locked("counter")


def test_one_client_per_loop_closed_with_the_loop(
    redis_server: RedisServer, make_manager: MakeManager, prefix: str
) -> None:
    name = f"loops-{prefix.rstrip(':')}"
    manager = make_manager(client_name=name)
    seen: list[int] = []

    async def use(holder: str) -> None:
        assert await manager.aacquire_lock("k", holder, acquire_timeout=30)
        seen.append(redis_server.connections(name))
        await manager.arelease_lock("k", holder)

    asyncio.run(use("first-loop"))
    assert redis_server.all_closed(name), "the loop's client closed with the loop"
    asyncio.run(use("second-loop"))  # a new loop: a new client, not the closed one
    assert redis_server.all_closed(name)
    thread = threading.Thread(target=lambda: asyncio.run(use("other-thread")))
    thread.start()
    thread.join(60)
    assert seen == [1, 1, 1]
    assert redis_server.all_closed(name)


def test_aclose_closes_the_running_loops_client(
    redis_server: RedisServer, make_manager: MakeManager, prefix: str
) -> None:
    name = f"aclose-{prefix.rstrip(':')}"
    manager = make_manager(client_name=name)

    async def main() -> tuple[int, bool, int]:
        await manager.alock_holder("k")
        manager.lock_holder("k")
        opened = redis_server.connections(name)
        await manager.aclose()
        closed = await asyncio.to_thread(redis_server.all_closed, name)
        await manager.alock_holder("k")  # usable again: reconnects
        return opened, closed, redis_server.connections(name)

    assert asyncio.run(main()) == (2, True, 1)


def test_sync_and_async_see_the_same_locks(
    redis_server: RedisServer, manager: RedisLockManager
) -> None:
    async def main() -> None:
        assert await manager.aacquire_lock("k", "alice", acquire_timeout=0)
        assert manager.is_lock_holder("k", "alice")
        assert await manager.aacquire_lock("k", "bob", acquire_timeout=0) is False
        manager.release_lock("k", "alice")
        assert await manager.ais_locked("k") is False
        assert await manager.await_for_lock("k", timeout=0)
        assert await manager.atry_acquire("k", "bob", 5)
        await manager.aextend_lock("k", "bob", hold_timeout=600)
        assert int(redis_server.client.pttl(manager.redis_key("k"))) > 500_000
        with pytest.raises(LockError, match="held by 'bob', not by 'alice'"):
            await manager.aextend_lock("k", "alice")
        await manager.arelease_lock("k", "bob")

    asyncio.run(main())
    assert not manager.is_locked("k")
