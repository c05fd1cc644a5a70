"""Fixtures for the moorage-redis tests: managers on the session's redis-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from moorage_redis import RedisLockManager

from servers.cleanup import closing_all
from servers.redis import RedisServer
from servers.redis_modes import redis_cluster, redis_sentinel

__all__ = ["MakeManager", "redis_cluster", "redis_sentinel"]  # the session fixtures

MakeManager = Callable[..., RedisLockManager]


@pytest.fixture
def prefix(redis_server: RedisServer) -> str:
    """This test's key prefix: its locks never meet another test's."""
    return redis_server.prefix()


@pytest.fixture
def make_manager(redis_server: RedisServer, prefix: str) -> Iterator[MakeManager]:
    """Build managers on the test server with this test's prefix; closed afterwards."""

    def build(url: str | None = None, **options: Any) -> RedisLockManager:
        options.setdefault("key_prefix", prefix)
        return RedisLockManager(url or redis_server.url, **options)

    with closing_all(build) as make:
        yield make


@pytest.fixture
def manager(make_manager: MakeManager) -> RedisLockManager:
    return make_manager(hold_timeout=60)
