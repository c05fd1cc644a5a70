"""RedisLockManager on a real server: what lands in Redis, re-acquire, release, expiry,
extension, and options from the URL."""

from __future__ import annotations

import math
from typing import Any

import pytest

from moorage import ConfigurationError, LockError
from moorage.config.settings import reset_settings
from moorage.plugins.resolve import lock_manager_from
from moorage_redis import RedisLockManager
from moorage_redis.options import DEFAULT_KEY_PREFIX

from .conftest import MakeManager
from servers.redis import RedisServer


def pttl(server: RedisServer, manager: RedisLockManager, key: str) -> int:
    return int(server.client.pttl(manager.redis_key(key)))


def test_lock_is_a_key_holding_the_holder_with_the_hold_timeout(
    redis_server: RedisServer, manager: RedisLockManager, prefix: str
) -> None:
    assert manager.acquire_lock("runs/42", "alice", hold_timeout=30)
    assert manager.redis_key("runs/42") == f"{prefix}runs/42".encode()
    assert redis_server.client.get(f"{prefix}runs/42") == b"alice"
    assert 0 < pttl(redis_server, manager, "runs/42") <= 30_000
    manager.release_lock("runs/42", "alice")
    assert redis_server.client.exists(f"{prefix}runs/42") == 0


def test_default_key_prefix(redis_server: RedisServer) -> None:
    manager = RedisLockManager(redis_server.url)
    try:
        assert manager.redis_key("k") == f"{DEFAULT_KEY_PREFIX}k".encode()
        assert DEFAULT_KEY_PREFIX == "moorage:lock:"
    finally:
        manager.close()


def test_reacquire_by_same_holder_extends(
    redis_server: RedisServer, manager: RedisLockManager
) -> None:
    assert manager.acquire_lock("k", "alice", hold_timeout=5)
    assert pttl(redis_server, manager, "k") <= 5_000
    assert manager.acquire_lock("k", "alice", acquire_timeout=0, hold_timeout=600)
    assert pttl(redis_server, manager, "k") > 500_000
    assert manager.lock_holder("k") == "alice"
    assert manager.acquire_lock("k", "bob", acquire_timeout=0) is False
    assert manager.try_acquire("k", "bob", 30) is False
    manager.release_lock("k", "alice")
    assert not manager.is_locked("k")


def test_release_by_another_holder_names_key_and_both_holders(
    manager: RedisLockManager,
) -> None:
    manager.acquire_lock("k", "alice")
    with pytest.raises(LockError) as caught:
        manager.release_lock("k", "bob")
    message = str(caught.value)
    assert "'k'" in message
    assert "'alice'" in message
    assert "'bob'" in message
    assert manager.url in message
    assert manager.is_lock_holder("k", "alice")
    manager.release_lock("k", "alice")
    with pytest.raises(LockError, match="not held"):
        manager.release_lock("k", "alice")


def test_expired_lock_is_gone_from_redis(
    redis_server: RedisServer, manager: RedisLockManager
) -> None:
    assert manager.acquire_lock("k", "alice", hold_timeout=0.2)
    assert manager.wait_for_lock("k", timeout=15)
    assert redis_server.client.exists(manager.redis_key("k")) == 0
    with pytest.raises(LockError, match="not held"):
        manager.release_lock("k", "alice")
    assert manager.acquire_lock("k", "bob", acquire_timeout=0)
    manager.release_lock("k", "bob")


def test_no_expiry_only_when_asked(redis_server: RedisServer, make_manager: MakeManager) -> None:
    default = make_manager()  # the core's default hold timeout, 300 s
    assert default.acquire_lock("d", "alice")
    assert 0 < pttl(redis_server, default, "d") <= 300_000
    assert default.acquire_lock("forever", "alice", hold_timeout=math.inf)
    assert pttl(redis_server, default, "forever") == -1
    assert default.acquire_lock("forever", "alice", hold_timeout=10)  # re-acquire sets one
    assert 0 < pttl(redis_server, default, "forever") <= 10_000

    never = make_manager(hold_timeout=None)
    assert never.hold_timeout is None
    assert never.acquire_lock("n", "alice")
    assert pttl(redis_server, never, "n") == -1
    assert make_manager(hold_timeout="never").hold_timeout is None


def test_extend_lock(redis_server: RedisServer, manager: RedisLockManager) -> None:
    manager.acquire_lock("k", "alice", hold_timeout=5)
    manager.extend_lock("k", "alice", hold_timeout=600)
    assert pttl(redis_server, manager, "k") > 500_000
    manager.extend_lock("k", "alice")  # the manager's default: 60 s
    assert 0 < pttl(redis_server, manager, "k") <= 60_000
    manager.extend_lock("k", "alice", hold_timeout=math.inf)
    assert pttl(redis_server, manager, "k") == -1
    with pytest.raises(LockError, match="held by 'alice', not by 'bob'"):
        manager.extend_lock("k", "bob")
    manager.release_lock("k", "alice")
    with pytest.raises(LockError, match="not held"):
        manager.extend_lock("k", "alice")
    assert not manager.is_locked("k"), "extending never takes a free lock"


def test_key_prefixes_keep_managers_apart(make_manager: MakeManager) -> None:
    first = make_manager(key_prefix="app-one:")
    second = make_manager(key_prefix="app-two:")
    try:
        assert first.acquire_lock("k", "alice", acquire_timeout=0)
        assert second.acquire_lock("k", "bob", acquire_timeout=0)
        assert first.lock_holder("k") == "alice"
        assert second.lock_holder("k") == "bob"
    finally:
        first.release_lock("k", "alice")
        second.release_lock("k", "bob")


def test_databases_keep_locks_apart(
    redis_server: RedisServer, make_manager: MakeManager, prefix: str
) -> None:
    in_db3 = make_manager(redis_server.url_for(db=3))
    in_db0 = make_manager(redis_server.url_for(db=0))
    assert in_db3.acquire_lock("k", "alice", acquire_timeout=0)
    assert not in_db0.is_locked("k")
    assert redis_server.db(3).get(f"{prefix}k") == b"alice"
    assert redis_server.db(0).exists(f"{prefix}k") == 0
    in_db3.release_lock("k", "alice")


def test_keys_and_holders_round_trip_unicode(manager: RedisLockManager) -> None:
    key, holder = "ключ/\u00e9\U0001f512", "host:1:2:task-\u4e2d"
    assert manager.acquire_lock(key, holder, acquire_timeout=0)
    assert manager.lock_holder(key) == holder
    manager.release_lock(key, holder)


# -- options -----------------------------------------------------------------------------


def test_options_from_url_query(redis_server: RedisServer, prefix: str) -> None:
    name = f"moorage-{prefix.rstrip(':')}"
    url = (
        f"{redis_server.url_for(db=4)}?hold_timeout=7&key_prefix={prefix}&socket_timeout=2"
        f"&socket_connect_timeout=1.5&retries=0&recheck_interval=9&client_name={name}"
    )
    manager = RedisLockManager(url)
    try:
        options = manager.options
        assert manager.hold_timeout == 7.0
        assert (options.db, options.key_prefix, options.retries) == (4, prefix, 0)
        assert (options.socket_timeout, options.socket_connect_timeout) == (2.0, 1.5)
        assert (options.recheck_interval, options.client_name) == (9.0, name)
        assert manager.url == f"redis://127.0.0.1:{redis_server.port}/4"
        assert manager.acquire_lock("k", "alice")
        assert 0 < int(redis_server.db(4).pttl(f"{prefix}k")) <= 7000
        assert redis_server.connections(name) == 1, "client_name names the connection"
        manager.release_lock("k", "alice")
    finally:
        manager.close()
    assert redis_server.all_closed(name), "close() closes the connections"


def test_keywords_win_over_the_query_but_hold_timeout_default_yields(
    redis_server: RedisServer,
) -> None:
    url = f"{redis_server.url}?key_prefix=from-query:&hold_timeout=7&retries=5"
    manager = RedisLockManager(url, key_prefix="from-kwarg:", retries=1)
    assert (manager.options.key_prefix, manager.options.retries) == ("from-kwarg:", 1)
    assert manager.hold_timeout == 7.0, "a query hold_timeout beats the default argument"
    assert RedisLockManager(url, hold_timeout=9).hold_timeout == 9.0


def test_core_passes_the_settings_hold_timeout(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "redis")
    monkeypatch.setenv("MOORAGE_LOCK_HOLD_TIMEOUT", "42")
    reset_settings()
    from_settings = lock_manager_from(redis_server.url)
    from_query = lock_manager_from(f"{redis_server.url}?hold_timeout=5")
    secure = lock_manager_from(f"rediss://127.0.0.1:{redis_server.port}/0")
    assert isinstance(from_settings, RedisLockManager)
    assert isinstance(secure, RedisLockManager)
    assert from_settings.hold_timeout == 42.0
    assert from_query.hold_timeout == 5.0
    assert secure.options.scheme == "rediss"
    assert secure.options.connection_kwargs()["ssl"] is True
    monkeypatch.setenv("MOORAGE_LOCK_HOLD_TIMEOUT", "never")
    reset_settings()
    assert lock_manager_from(redis_server.url).hold_timeout is None


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("http://127.0.0.1:6379/0", {}, "takes redis://, rediss://"),
        ("redis://127.0.0.1:99999/0", {}, "port"),
        ("redis://127.0.0.1:6379/zero", {}, "database"),
        ("redis://127.0.0.1:6379/1?db=2", {}, "give it once"),
        ("redis://127.0.0.1:6379/0?colour=blue", {}, "unknown option 'colour'"),
        ("redis://127.0.0.1:6379/0", {"sockettimeout": 1}, "accepted options"),
        ("redis://127.0.0.1:6379/0", {"ssl_ca_certs": "/ca.pem"}, "rediss://"),
        ("redis://127.0.0.1:6379/0?retries=-1", {}, "retries"),
        ("redis://127.0.0.1:6379/0?retries=1.5", {}, "retries"),
        ("redis://127.0.0.1:6379/0?hold_timeout=0", {}, "hold_timeout"),
        ("redis://127.0.0.1:6379/0?hold_timeout=soon", {}, "hold_timeout"),
        ("redis://127.0.0.1:6379/0?socket_timeout=-2", {}, "socket_timeout"),
        ("redis://127.0.0.1:6379/0?recheck_interval=none", {}, "recheck_interval"),
        ("redis://127.0.0.1:6379/0", {"password": 12345}, "password"),
    ],
)
def test_bad_urls_and_options(url: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RedisLockManager(url, **options)


def test_db_and_timeouts_accept_their_spellings() -> None:
    manager = RedisLockManager(
        "redis://localhost?db=5&socket_timeout=none", socket_connect_timeout="2.5"
    )
    assert manager.options.db == 5
    assert manager.options.host == "localhost"
    assert manager.options.port == 6379
    assert manager.options.socket_timeout is None
    assert manager.options.socket_connect_timeout == 2.5
    ipv6 = RedisLockManager("redis://user@[::1]:7000")
    assert ipv6.url == "redis://user@[::1]:7000/0"
    assert ipv6.options.host == "::1"
    assert ipv6.options.username == "user"
