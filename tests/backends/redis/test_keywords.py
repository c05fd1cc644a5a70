"""`RedisLockManager(host=..., port=..., db=..., username=..., password=..., ssl=...)`:
the server given as keywords instead of (or besides) a URL, as with Prefect's manager."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest

from moorage import ConfigurationError
from moorage.plugins.resolve import lock_manager_from
from moorage_redis import RedisLockManager

from servers.cleanup import closing_all
from servers.redis import RedisServer, start_redis

PASSWORD = "kw-s3cr3t@pass"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis-kw-auth"), "--requirepass", PASSWORD)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def build() -> Iterator[Any]:
    with closing_all(RedisLockManager) as make:
        yield make


def test_defaults_without_url_or_keywords() -> None:
    manager = RedisLockManager()
    assert manager.url == "redis://localhost:6379/0"
    assert manager == RedisLockManager("redis://localhost:6379/0")
    assert manager == RedisLockManager(host="localhost", port=6379, db=0, ssl=False)


def test_keywords_alone_reach_the_server(
    redis_server: RedisServer, prefix: str, build: Any
) -> None:
    by_keywords = build(host="127.0.0.1", port=redis_server.port, db=3, key_prefix=prefix)
    by_url = build(redis_server.url_for(db=3), key_prefix=prefix)
    assert by_keywords.url == f"redis://127.0.0.1:{redis_server.port}/3"
    assert by_keywords == by_url
    assert by_keywords.acquire_lock("k", "alice", acquire_timeout=0)
    assert by_url.is_lock_holder("k", "alice")
    assert redis_server.db(3).get(f"{prefix}k") == b"alice"
    by_url.release_lock("k", "alice")
    assert not by_keywords.is_locked("k")


def test_port_as_a_string_and_host_filled_into_a_bare_url(
    redis_server: RedisServer, prefix: str, build: Any
) -> None:
    bare = build("redis://", host="127.0.0.1", port=str(redis_server.port), key_prefix=prefix)
    no_port = build("redis://127.0.0.1/0", port=redis_server.port, key_prefix=prefix)
    assert bare.url == no_port.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert bare.acquire_lock("k", "alice", acquire_timeout=0)
    assert no_port.is_lock_holder("k", "alice")
    bare.release_lock("k", "alice")


def test_through_the_registry(
    redis_server: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "redis")
    manager = lock_manager_from(
        "redis://", host="127.0.0.1", port=redis_server.port, db=1, key_prefix=prefix
    )
    try:
        assert isinstance(manager, RedisLockManager)
        assert manager.url == f"redis://127.0.0.1:{redis_server.port}/1"
        assert manager.acquire_lock("k", "alice", acquire_timeout=0)
        manager.release_lock("k", "alice")
    finally:
        manager.close()


def test_password_keyword_logs_in_and_stays_hidden(auth_server: RedisServer, build: Any) -> None:
    manager = build(host="127.0.0.1", port=auth_server.port, password=PASSWORD)
    assert manager.url == f"redis://:***@127.0.0.1:{auth_server.port}/0"
    assert manager == RedisLockManager(auth_server.url)  # the password in the URL
    assert manager.acquire_lock("k", "alice", acquire_timeout=0)
    manager.release_lock("k", "alice")
    for shown in (repr(manager), str(manager), manager.url, repr(manager.options)):
        assert PASSWORD not in shown
        assert "s3cr3t" not in shown


def test_username_and_password_keywords(redis_server: RedisServer, prefix: str, build: Any) -> None:
    user = f"kw-{prefix.rstrip(':')}"
    redis_server.client.acl_setuser(
        user, enabled=True, passwords=["+userpw"], keys=["*"], channels=["*"], commands=["+@all"]
    )
    try:
        manager = build(
            host="127.0.0.1", port=redis_server.port, username=user, password="userpw",
            key_prefix=prefix,
        )  # fmt: skip
        assert manager.url == f"redis://{user}:***@127.0.0.1:{redis_server.port}/0"
        assert manager.acquire_lock("k", "alice", acquire_timeout=0)
        assert redis_server.client.get(f"{prefix}k") == b"alice"
        manager.release_lock("k", "alice")
        wrong = build(host="127.0.0.1", port=redis_server.port, username=user, password="no")
        assert wrong != manager
    finally:
        redis_server.client.acl_deluser(user)


@pytest.mark.parametrize("pickler", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])
def test_keyword_manager_with_password_works_in_another_process(
    auth_server: RedisServer, pickler: Any, build: Any
) -> None:
    manager = build(host="127.0.0.1", port=auth_server.port, password=PASSWORD, db=2)
    assert manager.acquire_lock("k", "parent", acquire_timeout=0)
    code = (
        "import sys, importlib\n"
        "manager = importlib.import_module(sys.argv[1]).loads(sys.stdin.buffer.read())\n"
        "assert manager.is_lock_holder('k', 'parent')\n"
        "assert manager.acquire_lock('c', 'child', acquire_timeout=0)\n"
        "print(repr(manager))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, pickler.__name__],
        input=pickler.dumps(manager),
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert PASSWORD.encode() not in done.stdout
    assert manager.is_lock_holder("c", "child")
    manager.release_lock("c", "child")
    manager.release_lock("k", "parent")


def test_ssl_keyword() -> None:
    secure = RedisLockManager(host="redis.example.com", port=6380, ssl=True)
    assert secure.url == "rediss://redis.example.com:6380/0"
    assert secure.options.connection_kwargs()["ssl"] is True
    assert secure == RedisLockManager("rediss://redis.example.com:6380/0")
    assert secure == RedisLockManager("rediss://redis.example.com:6380", ssl="true")
    plain = RedisLockManager(host="redis.example.com", ssl=False)
    assert plain.url == "redis://redis.example.com:6379/0"
    assert "ssl" not in plain.options.connection_kwargs()
    with_ca = RedisLockManager(host="h", ssl=True, ssl_ca_certs="/ca.pem")
    assert with_ca.options.connection_kwargs()["ssl_ca_certs"] == "/ca.pem"
    assert with_ca != RedisLockManager(host="h", ssl=True)


def test_keywords_that_agree_with_the_url() -> None:
    url = "redis://alice:pw@127.0.0.1:6390/4"
    manager = RedisLockManager(
        url, host="127.0.0.1", port=6390, db=4, username="alice", password="pw", ssl=False
    )
    assert manager == RedisLockManager(url)
    assert RedisLockManager("redis://[::1]:7000", host="::1").options.host == "::1"


@pytest.mark.parametrize(
    ("url", "keywords", "names"),
    [
        ("redis://127.0.0.1:6390/0", {"host": "10.0.0.1"}, ["'127.0.0.1'", "host='10.0.0.1'"]),
        ("redis://127.0.0.1:6390/0", {"port": 6391}, ["port 6390", "port=6391"]),
        ("redis://127.0.0.1/0", {"port": 6391, "host": "h"}, ["'127.0.0.1'", "host='h'"]),
        ("redis://127.0.0.1:6390/0", {"ssl": True}, ["redis://", "ssl=True"]),
        ("rediss://127.0.0.1:6390/0", {"ssl": False}, ["rediss://", "ssl=False"]),
        ("redis://127.0.0.1:6390/1", {"db": 2}, ["database 1", "2 in the db option"]),
        ("redis://127.0.0.1:6390?db=1", {"db": 2}, ["URL's query gives db '1'", "keyword 2"]),
        ("redis://alice@127.0.0.1:6390/0", {"username": "bob"}, ["'alice'", "keyword 'bob'"]),
        (
            "redis://alice@127.0.0.1:6390?username=carol",
            {"username": "alice"},
            ["URL gives username 'alice'", "query 'carol'"],
        ),
        ("redis://:first-secret@127.0.0.1:6390/0", {"password": "second-secret"}, ["password"]),
        ("redis://127.0.0.1:6390?password=first-secret", {"password": "second-secret"}, []),
    ],
)
def test_conflicting_url_and_keywords(url: str, keywords: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisLockManager(url, **keywords)
    message = str(caught.value)
    assert "127.0.0.1" in message, "the message names the URL"
    for name in names:
        assert name in message
    fixes = ("in the URL or as a keyword", "give it once", "leave out ssl=")
    assert any(fix in message for fix in fixes), "the message says how to fix it"
    assert "first-secret" not in message
    assert "second-secret" not in message


@pytest.mark.parametrize(
    ("keywords", "match"),
    [
        ({"port": "http"}, "port must be a number"),
        ({"port": 0}, "port must be a number"),
        ({"port": True}, "port must be a number"),
        ({"host": ""}, "host must be"),
        ({"host": "a/b"}, "host must be"),
        ({"ssl": "maybe"}, "ssl"),
        ({"db": "zero"}, "database"),
    ],
)
def test_bad_keywords(keywords: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RedisLockManager(**keywords)
