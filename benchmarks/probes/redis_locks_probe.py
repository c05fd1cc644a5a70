"""Acquire + release per second: RedisLockManager against redis-py's own ``redis.lock.Lock``
on the same local redis-server. A measurement to read, not a test (pytest does not
collect this file).

    .venv/bin/python benchmarks/probes/redis_locks_probe.py [seconds per case]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
import redis.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from moorage_redis import RedisLockManager

from servers.redis import start_redis


def rate(step: Callable[[int], None], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            step(done)
            done += 1
    return done / elapsed


async def arate(step: Callable[[int], object], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            await step(done)  # type: ignore[misc]
            done += 1
    return done / elapsed


def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        server = start_redis(Path(folder), name="redis-bench")
        try:
            ours = RedisLockManager(server.url, hold_timeout=30, key_prefix="bench:ours:")
            plain = redis.Redis(host="127.0.0.1", port=server.port)

            def moorage_step(i: int) -> None:
                ours.acquire_lock("k", "me", acquire_timeout=0)
                ours.release_lock("k", "me")

            def redis_py_step(i: int) -> None:
                lock = plain.lock("bench:redis-py:k", timeout=30)
                lock.acquire(blocking=False)
                lock.release()

            moorage_step(0), redis_py_step(0)  # connect and load scripts first
            results = {
                "moorage RedisLockManager (sync)": rate(moorage_step, seconds),
                "redis-py redis.lock.Lock (sync)": rate(redis_py_step, seconds),
            }

            async def async_cases() -> dict[str, float]:
                aplain = redis.asyncio.Redis(host="127.0.0.1", port=server.port)

                async def moorage_astep(i: int) -> None:
                    await ours.aacquire_lock("k", "me", acquire_timeout=0)
                    await ours.arelease_lock("k", "me")

                async def redis_py_astep(i: int) -> None:
                    lock = aplain.lock("bench:redis-py:k", timeout=30)
                    await lock.acquire(blocking=False)
                    await lock.release()

                await moorage_astep(0)
                await redis_py_astep(0)
                found = {
                    "moorage RedisLockManager (asyncio)": await arate(moorage_astep, seconds),
                    "redis-py redis.asyncio.lock.Lock": await arate(redis_py_astep, seconds),
                }
                await aplain.aclose()
                return found

            results.update(asyncio.run(async_cases()))
            ours.close()
            plain.close()
        finally:
            server.stop()
    for name, per_second in results.items():
        print(f"{name:40} {per_second:8.0f} acquire+release/s")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
