"""The lock-manager contract kit, run against a real redis-server.

The managers are built as users get them: through the plugin registry, from a URL with
options in its query (database 2, a key prefix of its own).
"""

from __future__ import annotations

import pytest

from moorage.locking import LockManager
from moorage.plugins.resolve import lock_manager_from
from moorage.testing import LockManagerContract, LockManagerFactory
from moorage_redis import RedisLockManager

from servers.redis import RedisServer


class TestRedisLockManager(LockManagerContract):
    @pytest.fixture
    def make_lock_manager(
        self, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
    ) -> LockManagerFactory:
        monkeypatch.setenv("MOORAGE_PLUGINS", "redis")  # only this plugin: quick, isolated
        url = f"{redis_server.url_for(db=2)}?key_prefix={redis_server.prefix()}&retries=1"

        def make(*, hold_timeout: float | None) -> LockManager:
            manager = lock_manager_from(url, hold_timeout=hold_timeout)
            assert isinstance(manager, RedisLockManager)
            assert (manager.options.db, manager.options.retries) == (2, 1)
            return manager

        return make
