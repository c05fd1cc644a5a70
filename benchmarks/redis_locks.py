"""Redis locks: acquire and release, one after the other, on a local redis-server.

moorage's lock manager comes from the URL ``redis://127.0.0.1:PORT/0`` (as a store
builds it) and is called as ``acquire_lock(key, holder)`` then
``release_lock(key, holder)``, with the default hold timeout (300 s). The baseline is
redis-py's own lock, ``client.lock(name, timeout=300)`` then ``.acquire()`` and
``.release()``: a fresh lock object (and token) per pair, like moorage's calls. Both
lock one key that nobody else holds; each does ``lock_ops`` pairs per round.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.config import Context
from benchmarks.harness import Comparison, Target, alternate, per_op_seconds, rate

__all__ = ["WORKLOADS"]

MOORAGE = "moorage RedisLockManager"
REDIS_PY = "redis-py Lock"
HOLD_SECONDS = 300


def _acquire_release(ctx: Context) -> list[Comparison]:
    import redis

    from moorage.plugins.resolve import lock_manager_from

    server = ctx.servers.redis()
    manager = lock_manager_from(server.url)
    client = redis.Redis(host="127.0.0.1", port=server.port, db=0)
    holder = "bench-holder"

    def moorage_pair(_i: int) -> None:
        if not manager.acquire_lock("bench/moorage", holder):
            raise AssertionError("moorage did not get a free lock")
        manager.release_lock("bench/moorage", holder)

    def redis_py_pair(_i: int) -> None:
        lock = client.lock("bench/redis-py", timeout=HOLD_SECONDS)
        if not lock.acquire():
            raise AssertionError("redis-py did not get a free lock")
        lock.release()

    try:
        moorage_pair(0)
        redis_py_pair(0)
        n = ctx.sizes.lock_ops
        samples = alternate(
            [
                (MOORAGE, lambda _r: per_op_seconds(moorage_pair, n)),
                (REDIS_PY, lambda _r: per_op_seconds(redis_py_pair, n)),
            ],
            ctx.sizes.rounds,
        )
    finally:
        manager.close()
        client.close()
    return [
        Comparison(
            "redis",
            "Redis lock acquire + release",
            rate(MOORAGE, samples[MOORAGE]),
            rate(REDIS_PY, samples[REDIS_PY]),
            Target(">=", 0.8),
        )
    ]


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {"redis-locks": _acquire_release}
