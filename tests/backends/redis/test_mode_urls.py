"""Sentinel and Cluster URLs read into options, the queue keys' hash slots, and the
errors a wrong kind of URL or an absent server gets."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from moorage.errors import ConfigurationError, LockError
from moorage_redis import RedisLockManager
from moorage_redis.options import CLUSTER, SENTINEL, parse_options
from moorage_redis.scripts import queue_keys

from servers.redis import RedisServer
from servers.redis_modes import RedisClusterSetup


def test_sentinel_url() -> None:
    options = parse_options(
        "redis+sentinel://alice:p%40ss@s1,s2:26380,[::1]:5000/my%20master/4"
        "?sentinel_password=guard&socket_timeout=2"
    )
    assert options.mode == SENTINEL
    assert options.nodes == (("s1", 26379), ("s2", 26380), ("::1", 5000))
    assert (options.service_name, options.db) == ("my master", 4)
    assert (options.username, options.password) == ("alice", "p@ss")
    assert options.sentinel_password == "guard"
    assert options.sentinel_kwargs()["password"] == "guard"
    assert options.sentinel_kwargs()["socket_timeout"] == 2
    assert options.url == "redis+sentinel://alice:***@s1:26379,s2:26380,[::1]:5000/my master/4"
    assert "guard" not in repr(options)
    assert parse_options("redis+sentinel://s1/mymaster").db == 0


def test_cluster_url() -> None:
    options = parse_options("rediss+cluster://:secret@n1:7000,n2?ssl_cert_reqs=none")
    assert options.mode == CLUSTER
    assert options.nodes == (("n1", 7000), ("n2", 6379))
    assert options.tls
    assert options.server_kwargs()["ssl"] is True
    assert "db" not in options.server_kwargs()
    assert options.url == "rediss+cluster://:***@n1:7000,n2:6379"
    assert parse_options("redis+cluster://n1/0").db == 0


def test_sentinel_and_cluster_managers_compare_by_configuration() -> None:
    one = RedisLockManager("redis+cluster://n1:7000,n2:7001", hold_timeout=60)
    assert one == RedisLockManager("redis+cluster://n1:7000,n2:7001", hold_timeout=60)
    assert one != RedisLockManager("redis+cluster://n1:7000", hold_timeout=60)
    sentinel = RedisLockManager("redis+sentinel://s1/a/0")
    assert sentinel != RedisLockManager("redis+sentinel://s1/b/0")
    assert hash(sentinel) == hash(RedisLockManager("redis+sentinel://s1/a/0"))


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("redis+sentinel://s1:26379", {}, "names no service"),
        ("redis+sentinel://s1:26379/", {}, "names no service"),
        ("redis+sentinel://s1:port/m", {}, "port"),
        ("redis+sentinel://s1,,s2/m", {}, "without a host"),
        ("redis+sentinel://s1/m/x", {}, "database"),
        ("redis+cluster://n1/3", {}, "only database 0"),
        ("redis+cluster://n1", {"db": 2}, "only database 0"),
        ("redis+cluster://n1", {"sentinel_password": "x"}, "for Sentinel URLs"),
        ("redis://h/0?sentinel_username=x", {}, "for Sentinel URLs"),
        ("redis+cluster://n1", {"ssl_ca_certs": "/ca.pem"}, "rediss\\+cluster://"),
        ("redis+cluster://n1", {"host": "n2"}, "describe one server"),
        ("redis+sentinel://s1/m", {"port": 1}, "describe one server"),
    ],
)
def test_bad_sentinel_and_cluster_urls(url: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RedisLockManager(url, **options)


@pytest.mark.parametrize(
    "lock_key",
    [b"moorage:lock:a/b", b"{app}:lock:x", b"p:{a}b}", b"a{b", b"\xc3\xa9t\xc3\xa9"],
)
def test_queue_keys_share_the_lock_key_slot(
    redis_cluster: RedisClusterSetup, lock_key: bytes
) -> None:
    """Checked with a cluster node's own CLUSTER KEYSLOT."""
    client = redis_cluster.nodes[0].client
    keys = queue_keys(lock_key, cluster=True)
    if b"{" in lock_key and b"}" not in lock_key.split(b"{", 1)[1]:
        assert keys is None  # braces that form no tag: no queue on a cluster
        return
    assert keys is not None
    slot = client.execute_command("CLUSTER", "KEYSLOT", lock_key)
    for key in keys:
        assert key.startswith(lock_key)  # under the prefix, for ACLs
        assert b"\xff" in key  # never equal to a lock key
        assert client.execute_command("CLUSTER", "KEYSLOT", key) == slot


def test_queue_keys_off_a_cluster_always_exist() -> None:
    assert queue_keys(b"odd{}:k", cluster=True) is None
    assert queue_keys(b"odd{}:k", cluster=False) is not None


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_sentinel_url_at_a_plain_server_names_the_fix(redis_server: RedisServer) -> None:
    url = f"redis+sentinel://:s3cret@127.0.0.1:{redis_server.port}/mymaster/0"
    manager = RedisLockManager(url, retries=0)
    try:
        with pytest.raises(LockError) as caught:
            manager.lock_holder("k")
    finally:
        manager.close()
    message = str(caught.value)
    assert "is a plain Redis server" in message
    assert "redis://host:port/db" in message
    assert "<redis" not in message  # redis-py's client reprs are shown as host:port
    assert "s3cret" not in message


@pytest.mark.parametrize("scheme", ["redis+sentinel", "redis+cluster"])
def test_nothing_listening_names_the_servers(scheme: str) -> None:
    port = _dead_port()
    path = "/mymaster/0" if scheme == "redis+sentinel" else ""
    url = f"{scheme}://:s3cret@127.0.0.1:{port}{path}?sentinel_password=g4rd"
    if scheme == "redis+cluster":
        url = url.split("?")[0]
    manager = RedisLockManager(url, retries=0, socket_timeout=2, socket_connect_timeout=2)
    try:
        with pytest.raises(LockError) as caught:
            manager.acquire_lock("k", "alice", acquire_timeout=0)
    finally:
        manager.close()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "'k'" in message
    assert "are up" in message
    assert "s3cret" not in message
    assert "g4rd" not in message
