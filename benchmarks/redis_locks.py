"""Redis locks: acquire and release, one after the other, on a local redis-server; and
what configuring a Redis lock manager costs the calls that need no lock.

moorage's lock manager comes from the URL ``redis://127.0.0.1:PORT/0`` (as a store
builds it) and is called as ``acquire_lock(key, holder)`` then
``release_lock(key, holder)``, with the default hold timeout (300 s). The baseline is
redis-py's own lock, ``client.lock(name, timeout=300)`` then ``.acquire()`` and
``.release()``: a fresh lock object (and token) per pair, like moorage's calls. Both
lock one key that nobody else holds; each does ``lock_ops`` pairs per round.

``redis-task-hit``: a cached task call (results on local disk, the memory cache off, so
each hit reads its record) with the Redis lock manager configured, against the same task
without one. A hit reads first and takes no lock, so it should cost about the same
(target: at most 1.5x the time). ``redis-plain-write``: ``ResultStore.write`` of a small
value to local disk with the lock manager configured (each write asks Redis once who
holds the key) against a store without one (target: at least half the writes per second).
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.config import Context
from benchmarks.harness import (
    Comparison,
    Reading,
    Target,
    alternate,
    median,
    per_op_seconds,
    rate,
)

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


def _seconds(name: str, samples: list[float]) -> Reading:
    """Seconds per operation, lower is better (the median of the samples)."""
    return Reading(name, median(samples), "s", median(samples))


def _task_hit(ctx: Context) -> list[Comparison]:
    import moorage
    from moorage.plugins.resolve import lock_manager_from
    from moorage.workflow.cache_policies import DEFAULT

    server = ctx.servers.redis()
    manager = lock_manager_from(server.url)
    results = ctx.folder("task-hit").as_uri()

    def double(n: int) -> int:
        return 2 * n

    locked = moorage.task(
        double,
        cache_policy=DEFAULT.configure(lock_manager=manager),
        result_storage=results,
        cache_result_in_memory=False,
    )
    plain = moorage.task(double, result_storage=results, cache_result_in_memory=False)
    try:
        if locked(21) != 42 or plain(21) != 42:  # the misses: both records now stored
            raise AssertionError("the task returned a wrong value")
        n = ctx.sizes.lock_ops
        samples = alternate(
            [
                (LOCKED_HIT, lambda _r: per_op_seconds(lambda _i: locked(21), n)),
                (PLAIN_HIT, lambda _r: per_op_seconds(lambda _i: plain(21), n)),
            ],
            ctx.sizes.rounds,
        )
    finally:
        manager.close()
    return [
        Comparison(
            "redis-task-hit",
            "Cached task call (storage hit), Redis lock manager configured vs none",
            _seconds(LOCKED_HIT, samples[LOCKED_HIT]),
            _seconds(PLAIN_HIT, samples[PLAIN_HIT]),
            Target("<=", 1.5),
        )
    ]


def _plain_write(ctx: Context) -> list[Comparison]:
    from moorage import ResultStore
    from moorage.plugins.resolve import lock_manager_from

    server = ctx.servers.redis()
    manager = lock_manager_from(server.url)
    locked = ResultStore(result_storage=ctx.folder("write-locked").as_uri(), lock_manager=manager)
    plain = ResultStore(result_storage=ctx.folder("write-plain").as_uri())
    value = {"run": 1, "ok": True}
    try:
        locked.write(value, key="warm")
        plain.write(value, key="warm")
        n = ctx.sizes.lock_ops

        def locked_writes(r: int) -> float:
            return per_op_seconds(lambda i: locked.write(value, key=f"r{r}-{i}"), n)

        def plain_writes(r: int) -> float:
            return per_op_seconds(lambda i: plain.write(value, key=f"r{r}-{i}"), n)

        samples = alternate(
            [(LOCKED_WRITE, locked_writes), (PLAIN_WRITE, plain_writes)], ctx.sizes.rounds
        )
    finally:
        manager.close()
    return [
        Comparison(
            "redis-plain-write",
            "Plain write of a small record, Redis lock manager configured vs none",
            rate(LOCKED_WRITE, samples[LOCKED_WRITE]),
            rate(PLAIN_WRITE, samples[PLAIN_WRITE]),
            Target(">=", 0.5),
        )
    ]


LOCKED_HIT = "task hit, lock manager configured"
PLAIN_HIT = "task hit, no lock manager"
LOCKED_WRITE = "write, lock manager configured"
PLAIN_WRITE = "write, no lock manager"

#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {
    "redis-locks": _acquire_release,
    "redis-task-hit": _task_hit,
    "redis-plain-write": _plain_write,
}
