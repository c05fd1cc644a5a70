"""Redis unreachable or refusing: `LockError` naming the URL and the fix, never a
password, never a bare redis-py exception."""

from __future__ import annotations

import asyncio
import math
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from moorage import LockError
from moorage.plugins.resolve import lock_manager_from
from moorage_redis import RedisLockManager

from servers import free_port, wait_until
from servers.redis import RedisServer, start_redis

PASSWORD = "s3cr3t-p@ss"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis-auth"), "--requirepass", PASSWORD)
    try:
        yield server
    finally:
        server.stop()


def everything_shown(exc: BaseException, manager: RedisLockManager) -> str:
    """The error with its whole chain as a traceback prints it, and the manager's repr."""
    return "".join(traceback.format_exception(exc)) + repr(manager) + str(manager.options)


def test_unreachable_server() -> None:
    port = free_port()  # nothing listens here
    url = f"redis://127.0.0.1:{port}/0"
    manager = RedisLockManager(url, retries=0)
    with pytest.raises(LockError) as caught:
        manager.acquire_lock("k", "alice", acquire_timeout=5)
    message = str(caught.value)
    assert url in message
    assert "'k'" in message
    assert "start redis-server" in message
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    for call in (
        lambda: manager.release_lock("k", "alice"),
        lambda: manager.is_locked("k"),
        lambda: manager.wait_for_lock("k", timeout=1),
        lambda: manager.extend_lock("k", "alice"),
        lambda: asyncio.run(manager.aacquire_lock("k", "alice", acquire_timeout=1)),
        lambda: asyncio.run(manager.arelease_lock("k", "alice")),
        lambda: asyncio.run(manager.await_for_lock("k", timeout=1)),
    ):
        with pytest.raises(LockError, match=f"at {url}: cannot reach Redis"):
            call()


def test_unreachable_server_with_retries_still_fails_cleanly() -> None:
    manager = RedisLockManager(f"redis://127.0.0.1:{free_port()}/0", retries=2)
    with pytest.raises(LockError, match="cannot reach Redis"):
        manager.is_locked("k")


def test_wrong_password_is_masked(auth_server: RedisServer) -> None:
    wrong = "not-the-Password-42"
    manager = RedisLockManager(auth_server.url_for(password=wrong))
    assert wrong not in repr(manager)
    assert manager.url == f"redis://:***@127.0.0.1:{auth_server.port}/0"
    with pytest.raises(LockError) as caught:
        manager.acquire_lock("k", "alice", acquire_timeout=0)
    message = str(caught.value)
    assert "refused the credentials" in message
    assert manager.url in message
    assert wrong not in everything_shown(caught.value, manager)


def test_missing_password(auth_server: RedisServer) -> None:
    manager = RedisLockManager(f"redis://127.0.0.1:{auth_server.port}/0")
    with pytest.raises(LockError, match="check the username and password"):
        manager.is_locked("k")


def test_right_password_works_and_stays_hidden(
    auth_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "redis")
    url = auth_server.url_for()  # the password percent-encoded: s3cr3t-p%40ss
    manager = RedisLockManager(f"{url}?key_prefix=auth:", hold_timeout=60)
    try:
        assert manager.options.password == PASSWORD
        assert manager.acquire_lock("k", "alice", acquire_timeout=0)
        with pytest.raises(LockError) as caught:
            manager.release_lock("k", "bob")
        shown = everything_shown(caught.value, manager)
        assert PASSWORD not in shown
        assert "s3cr3t-p%40ss" not in shown
        manager.release_lock("k", "alice")
    finally:
        manager.close()
    built = lock_manager_from(url)
    assert PASSWORD not in repr(built)


def test_password_as_an_option(auth_server: RedisServer) -> None:
    manager = RedisLockManager(
        f"redis://127.0.0.1:{auth_server.port}/0", password=PASSWORD, key_prefix="opt:"
    )
    try:
        assert manager.url == f"redis://:***@127.0.0.1:{auth_server.port}/0"
        assert not manager.is_locked("k")
    finally:
        manager.close()


def test_unknown_database(redis_server: RedisServer) -> None:
    manager = RedisLockManager(redis_server.url_for(db=99))
    with pytest.raises(LockError) as caught:
        manager.is_locked("k")
    message = str(caught.value)
    assert redis_server.url_for(db=99) in message
    assert "no database 99" in message


def test_tls_against_a_plain_server(redis_server: RedisServer) -> None:
    manager = RedisLockManager(
        f"rediss://127.0.0.1:{redis_server.port}/0",
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retries=0,
        ssl_cert_reqs="none",
    )
    with pytest.raises(LockError) as caught:
        manager.is_locked("k")
    message = str(caught.value)
    assert f"rediss://127.0.0.1:{redis_server.port}/0" in message
    assert "cannot reach Redis" in message or "no answer in time" in message


def test_server_gone_while_waiting(tmp_path: Path) -> None:
    """A waiter listening for a release on a server that dies gets an error, not a hang."""
    server = start_redis(tmp_path, name="redis-doomed")
    try:
        manager = RedisLockManager(server.url, retries=0, recheck_interval=3600)
        assert manager.acquire_lock("k", "alice", hold_timeout=math.inf)
        errors: list[BaseException] = []

        def wait() -> None:
            try:
                manager.acquire_lock("k", "bob", acquire_timeout=120)
            except BaseException as exc:
                errors.append(exc)

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        channel = manager.redis_key("k")
        wait_until(lambda: server.subscribers(channel) == 1, what="the subscription")
    finally:
        server.stop()
    waiter.join(60)
    assert not waiter.is_alive(), "the waiter kept waiting on a dead server"
    assert len(errors) == 1
    assert isinstance(errors[0], LockError)
    assert server.url in str(errors[0])
