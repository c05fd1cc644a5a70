"""moorage-redis: lock managers on a Redis server, for ``redis://`` and ``rediss://``.

``ResultStore(lock_manager="redis://localhost:6379/0")`` picks `RedisLockManager`.
Locks are ``SET NX PX`` keys taken, extended and released by Lua scripts that check the
holder; waiters listen for releases on pub/sub instead of polling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moorage.plugins import hookimpl, lazy_exports
from moorage.plugins.known import known_factory

if TYPE_CHECKING:
    from moorage_redis.locking import RedisLockManager

__all__ = ["RedisLockManager", "factory", "register_lock_managers"]

# redis-py loads when a redis:// URL is first used, not whenever the registry loads.
__getattr__ = lazy_exports(__name__, {"RedisLockManager": "locking"})
#: Builds the lock manager for a ``redis://`` or ``rediss://`` URL and its options.
factory = known_factory("lock_manager", "redis")


@hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``redis://`` and ``rediss://`` with `RedisLockManager`."""
    register("redis", factory)
    register("rediss", factory)
