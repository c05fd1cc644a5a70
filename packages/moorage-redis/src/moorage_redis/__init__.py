"""moorage-redis: lock managers on Redis, for ``redis://`` and ``rediss://`` (one server),
``redis+sentinel://`` and ``rediss+sentinel://`` (a master found by Sentinel), and
``redis+cluster://`` and ``rediss+cluster://`` (a Redis Cluster).

``ResultStore(lock_manager="redis://localhost:6379/0")`` picks `RedisLockManager`.
Locks are ``SET NX PX`` keys taken, extended and released by Lua scripts that check the
holder; waiters queue in arrival order and listen for releases on pub/sub instead of
polling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moorage.plugins import hookimpl, lazy_exports
from moorage.plugins.known import known_factory

if TYPE_CHECKING:
    from moorage_redis.locking import RedisLockManager

__all__ = ["SCHEMES", "RedisLockManager", "factory", "register_lock_managers"]

# redis-py loads when a redis:// URL is first used, not whenever the registry loads.
__getattr__ = lazy_exports(__name__, {"RedisLockManager": "locking"})
#: Builds the lock manager for a Redis URL (any of `SCHEMES`) and its options.
factory = known_factory("lock_manager", "redis")
#: The URL schemes `RedisLockManager` serves (as `moorage_redis.options.SCHEMES`, which
#: is not imported here: it would load redis-py with the registry).
SCHEMES = (
    "redis",
    "rediss",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)


@hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve every scheme in `SCHEMES` with `RedisLockManager`."""
    for scheme in SCHEMES:
        register(scheme, factory)
