"""Sentinel and Cluster: the contract kit through the plugin registry, keys spread over
every cluster node, the error a plain URL gets from a cluster node, and managers that
travel by pickle to another process."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
import redis

from moorage.errors import LockError
from moorage.locking import LockManager
from moorage.plugins.resolve import lock_manager_from
from moorage.testing import LockManagerContract, LockManagerFactory
from moorage_redis import RedisLockManager
from moorage_redis.options import CLUSTER, SENTINEL

from servers import wait_until
from servers.redis_modes import SERVICE, RedisClusterSetup, RedisSentinelSetup


def _from_registry(url: str, monkeypatch: pytest.MonkeyPatch, mode: str) -> LockManagerFactory:
    monkeypatch.setenv("MOORAGE_PLUGINS", "redis")  # only this plugin: quick, isolated

    def make(*, hold_timeout: float | None) -> LockManager:
        manager = lock_manager_from(url, hold_timeout=hold_timeout)
        assert isinstance(manager, RedisLockManager)
        assert manager.options.mode == mode
        return manager

    return make


class TestRedisSentinelLockManager(LockManagerContract):
    @pytest.fixture
    def make_lock_manager(
        self, redis_sentinel: RedisSentinelSetup, monkeypatch: pytest.MonkeyPatch
    ) -> LockManagerFactory:
        url = f"{redis_sentinel.url_for(db=3)}?key_prefix={redis_sentinel.prefix()}&retries=1"
        return _from_registry(url, monkeypatch, SENTINEL)


class TestRedisClusterLockManager(LockManagerContract):
    @pytest.fixture
    def make_lock_manager(
        self, redis_cluster: RedisClusterSetup, monkeypatch: pytest.MonkeyPatch
    ) -> LockManagerFactory:
        url = f"{redis_cluster.url_for(hosts=2)}/?key_prefix={redis_cluster.prefix()}"
        return _from_registry(url, monkeypatch, CLUSTER)


def test_sentinel_manager_uses_the_master(redis_sentinel: RedisSentinelSetup) -> None:
    prefix = redis_sentinel.prefix()
    manager = RedisLockManager(redis_sentinel.url, key_prefix=prefix, hold_timeout=60)
    try:
        assert manager.options.service_name == SERVICE
        assert len(manager.options.nodes) == 3
        assert manager.acquire_lock("k", "alice", acquire_timeout=0)
        # The lock is on the master the sentinels named, as a plain key.
        assert redis_sentinel.client.get(manager.redis_key("k")) == b"alice"
        manager.release_lock("k", "alice")
    finally:
        manager.close()


def test_unknown_sentinel_service_is_a_clear_error(redis_sentinel: RedisSentinelSetup) -> None:
    url = redis_sentinel.url.replace(f"/{SERVICE}/", "/nosuchmaster/")
    manager = RedisLockManager(url, socket_timeout=2, retries=0)
    try:
        with pytest.raises(LockError, match="no reachable master for service 'nosuchmaster'"):
            manager.lock_holder("k")
    finally:
        manager.close()


def test_twenty_keys_over_every_node(redis_cluster: RedisClusterSetup) -> None:
    manager = RedisLockManager(redis_cluster.url, key_prefix=redis_cluster.prefix())
    keys = [f"job-{number}" for number in range(20)]
    nodes = {redis_cluster.node_of(manager.redis_key(key)) for key in keys}
    assert nodes == set(redis_cluster.ports), "the keys do not reach every node"
    try:
        for key in keys:
            assert manager.acquire_lock(key, "alice", acquire_timeout=0)
            assert manager.lock_holder(key) == "alice"
            assert not manager.try_acquire(key, "bob", 60)
        for key in keys:
            manager.release_lock(key, "alice")
            assert not manager.is_locked(key)
    finally:
        manager.close()


@pytest.mark.parametrize(
    "key_prefix", ["plain:", "{app}:locks:", "odd{}:"], ids=["no-tag", "tag", "empty-braces"]
)
def test_waiting_works_whatever_the_braces(
    redis_cluster: RedisClusterSetup, key_prefix: str
) -> None:
    """A prefix with a hash tag keeps it; one without is tagged for its queue; braces
    that form no tag leave the lock without a queue, yet waiting still works."""
    prefix = redis_cluster.prefix() + key_prefix
    manager = RedisLockManager(redis_cluster.url, key_prefix=prefix, hold_timeout=0.5)
    try:
        assert manager.acquire_lock("a}b", "alice", acquire_timeout=0)
        assert manager.acquire_lock("a}b", "bob", acquire_timeout=15) is True
        manager.release_lock("a}b", "bob")
        assert manager.acquire_lock("k", "alice", acquire_timeout=0)
        assert manager.acquire_lock("k", "bob", acquire_timeout=15) is True
        manager.release_lock("k", "bob")
    finally:
        manager.close()


def test_plain_url_at_a_cluster_node_names_the_fix(redis_cluster: RedisClusterSetup) -> None:
    port = redis_cluster.ports[0]
    manager = RedisLockManager(f"redis://:s3cret@127.0.0.1:{port}/0", key_prefix="p:")
    # A key served by another node: the node answers MOVED.
    key = next(
        f"k{number}"
        for number in range(100)
        if redis_cluster.node_of(manager.redis_key(f"k{number}")) != port
    )
    try:
        for call in (
            lambda: manager.lock_holder(key),
            lambda: manager.acquire_lock(key, "alice", acquire_timeout=0),
        ):
            with pytest.raises(LockError) as caught:
                call()
            message = str(caught.value)
            assert "is a Redis Cluster node" in message
            assert f"redis+cluster://127.0.0.1:{port}" in message
            assert repr(key) in message
            assert "redis://:***@127.0.0.1" in message
            assert "s3cret" not in message
    finally:
        manager.close()


def test_cluster_url_at_a_single_server_names_the_fix(
    redis_sentinel: RedisSentinelSetup,
) -> None:
    port = redis_sentinel.master.port
    manager = RedisLockManager(f"redis+cluster://127.0.0.1:{port}", retries=0)
    try:
        with pytest.raises(LockError, match=r"is not a Redis Cluster node.*redis://"):
            manager.lock_holder("k")
    finally:
        manager.close()


# Unpickles a manager from stdin, takes and releases a lock, prints its holder meanwhile.
CHILD = """
import pickle, sys
manager = pickle.loads(sys.stdin.buffer.read())
assert manager.acquire_lock("travelled", "child", acquire_timeout=10)
print(manager.lock_holder("travelled"), flush=True)
manager.release_lock("travelled", "child")
"""


@pytest.mark.parametrize("mode", [SENTINEL, CLUSTER])
def test_pickled_manager_works_in_another_process(
    mode: str, redis_sentinel: RedisSentinelSetup, redis_cluster: RedisClusterSetup
) -> None:
    setup = redis_sentinel if mode == SENTINEL else redis_cluster
    manager = RedisLockManager(setup.url, key_prefix=setup.prefix(), hold_timeout=60)
    try:
        assert manager.acquire_lock("travelled", "parent", acquire_timeout=0)  # connected
        data = pickle.dumps(manager)
        copy = pickle.loads(data)
        assert copy == manager
        assert hash(copy) == hash(manager)
        manager.release_lock("travelled", "parent")
        child = subprocess.run(
            [sys.executable, "-c", CHILD], input=data, capture_output=True, timeout=120
        )
        assert child.returncode == 0, child.stderr.decode()
        assert child.stdout.decode().strip() == "child"
        assert not manager.is_locked("travelled")
    finally:
        manager.close()


@pytest.mark.parametrize("mode", [SENTINEL, CLUSTER])
def test_connections_close_with_the_event_loop_and_close(
    mode: str, redis_sentinel: RedisSentinelSetup, redis_cluster: RedisClusterSetup
) -> None:
    import asyncio

    setup = redis_sentinel if mode == SENTINEL else redis_cluster
    servers = [redis_sentinel.master] if mode == SENTINEL else redis_cluster.nodes
    name = f"closing-{mode}-{setup.prefix().rstrip(':')}"
    manager = RedisLockManager(setup.url, key_prefix=setup.prefix(), client_name=name)
    keys = [f"k{number}" for number in range(10)]  # on every cluster node

    async def use() -> None:
        for key in keys:
            assert await manager.aacquire_lock(key, "alice", acquire_timeout=0)
            await manager.arelease_lock(key, "alice")

    asyncio.run(use())  # the loop's client closes when the loop shuts down
    for key in keys:
        assert manager.acquire_lock(key, "bob", acquire_timeout=0)
        manager.release_lock(key, "bob")
    assert any(server.connections(name) for server in servers)
    manager.close()
    assert all(server.all_closed(name) for server in servers)


def _sentinel_clients(setup: RedisSentinelSetup) -> int:
    """Connections the sentinels have, not counting the one asking."""
    total = 0
    for port in setup.sentinel_ports:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=10) as client:
            total += int(client.info("clients")["connected_clients"]) - 1
    return total


def test_close_also_closes_the_connections_to_the_sentinels(
    redis_sentinel: RedisSentinelSetup,
) -> None:
    import asyncio

    before = _sentinel_clients(redis_sentinel)
    manager = RedisLockManager(redis_sentinel.url, key_prefix=redis_sentinel.prefix())

    async def use() -> None:
        assert await manager.aacquire_lock("k", "alice", acquire_timeout=0)
        await manager.arelease_lock("k", "alice")

    asyncio.run(use())
    assert manager.acquire_lock("k", "bob", acquire_timeout=0)
    manager.release_lock("k", "bob")
    assert _sentinel_clients(redis_sentinel) > before
    manager.close()
    wait_until(lambda: _sentinel_clients(redis_sentinel) <= before, what="sentinels unused")
