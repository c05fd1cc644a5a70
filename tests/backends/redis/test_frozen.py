"""An acquire that failed while the server was frozen does not leave the lock held.

The server is stopped with SIGSTOP, so the acquire script waits in its socket buffer;
the client times out and reports a `LockError`. When the server resumes it runs the
script and takes the lock for a holder that was told it failed; the manager's clean-up
must release it again (bounded wait) so that another holder can take the key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from moorage import LockError
from moorage_redis import RedisLockManager

from servers.hangs import HANG, frozen, outcomes
from servers.redis import RedisServer, start_redis

BOUNDS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retries": 1}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone: freezing it disturbs no other test."""
    server = start_redis(tmp_path, name="redis-frozen")
    try:
        yield server
    finally:
        server.stop()


def frozen_acquire(server: RedisServer, acquire: Callable[[], Any]) -> Any:
    """Run ``acquire`` while the server is stopped; what it raised or returned."""
    with frozen(server.process):
        return outcomes({"acquire": acquire}, join_timeout=30)["acquire"]


async def frozen_aacquire(server: RedisServer, manager: RedisLockManager) -> Any:
    """The async twin, on one event loop: its client's pooled connection is live."""
    assert await manager.aacquire_lock("warm", "alice")
    await manager.arelease_lock("warm", "alice")
    with frozen(server.process):
        try:
            return await asyncio.wait_for(manager.aacquire_lock("k", "alice"), 30)
        except TimeoutError:
            return HANG
        except Exception as exc:
            return exc


def warm_up(manager: RedisLockManager) -> None:
    """A live pooled connection, and the acquire script cached on the server: as in real
    use, where a stale EVALSHA finds its script and runs."""
    assert manager.acquire_lock("warm", "alice")
    manager.release_lock("warm", "alice")
    asyncio.run(manager.aacquire_lock("warm", "alice"))
    asyncio.run(manager.arelease_lock("warm", "alice"))


def held_by(server: RedisServer, manager: RedisLockManager, key: str) -> bytes | None:
    value: bytes | None = server.client.get(manager.redis_key(key))
    return value


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_acquire_on_a_frozen_server_leaves_no_orphaned_lock(
    own_redis: RedisServer, mode: str
) -> None:
    alice = RedisLockManager(own_redis.url, hold_timeout=300, **BOUNDS)
    bob = RedisLockManager(own_redis.url, hold_timeout=300, **BOUNDS)
    try:
        warm_up(alice)
        if mode == "sync":
            result = frozen_acquire(own_redis, lambda: alice.acquire_lock("k", "alice"))
        else:
            result = asyncio.run(frozen_aacquire(own_redis, alice))
        assert result != HANG
        assert isinstance(result, LockError), repr(result)
        assert "'k'" in str(result)
        assert own_redis.url in str(result)
        # The stale script runs as the server resumes; the clean-up then undoes it.
        deadline = time.monotonic() + 15
        while held_by(own_redis, alice, "k") == b"alice" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.5)  # past the clean-up's confirming releases
        assert held_by(own_redis, alice, "k") != b"alice", "the failed holder still has it"
        assert bob.acquire_lock("k", "bob", acquire_timeout=5)
        assert bob.lock_holder("k") == "bob"
    finally:
        alice.close()
        bob.close()


def test_the_same_holder_retrying_keeps_the_lock_it_then_takes(own_redis: RedisServer) -> None:
    """A pending clean-up never undoes a lock its holder then took for real."""
    alice = RedisLockManager(own_redis.url, hold_timeout=300, **BOUNDS)
    try:
        warm_up(alice)
        result = frozen_acquire(own_redis, lambda: alice.acquire_lock("k", "alice"))
        assert isinstance(result, LockError), repr(result)
        assert alice.acquire_lock("k", "alice", acquire_timeout=5)
        time.sleep(3)  # longer than any confirming release of a clean-up
        assert alice.lock_holder("k") == "alice"
    finally:
        alice.close()
