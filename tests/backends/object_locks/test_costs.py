"""What each operation costs in requests to the store, counted by a proxy in front of
each emulator: the figures ``docs/object-locks.md`` quotes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from moorage.locking import LockManager

from .conftest import Place
from servers.proxy import CountingProxy


def _requests(proxy: CountingProxy, action: Callable[[], object]) -> list[str]:
    proxy.reset()
    action()
    return [exchange.method for exchange in proxy.exchanges]


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_requests_per_operation(place: Place, proxy: CountingProxy, driver: str) -> None:
    locks = place.manager(via=proxy.endpoint)
    other = place.manager(via=proxy.endpoint)
    key = f"costs-{driver}"

    def acquire(manager: LockManager, holder: str) -> Callable[[], object]:
        if driver == "sync":
            return lambda: manager.acquire_lock(key, holder, acquire_timeout=0)
        return lambda: asyncio.run(manager.aacquire_lock(key, holder, acquire_timeout=0))

    def release(holder: str) -> Callable[[], object]:
        if driver == "sync":
            return lambda: locks.release_lock(key, holder)
        return lambda: asyncio.run(locks.arelease_lock(key, holder))

    acquire(locks, "warm-up")()  # the clients' first requests (bucket lookups) apart
    locks.release_lock(key, "warm-up")
    key = f"{key}-measured"
    counts = {
        "first acquire": _requests(proxy, acquire(locks, "alice")),
        "extension": _requests(proxy, acquire(locks, "alice")),
        "refused acquire": _requests(proxy, acquire(other, "bob")),
        "lock_holder": _requests(proxy, lambda: locks.lock_holder(key)),
        "release": _requests(proxy, release("alice")),
        "acquire after release": _requests(proxy, acquire(other, "bob")),
    }
    print(f"\n{place.backend} ({driver}):", {name: len(sent) for name, sent in counts.items()})
    assert [len(sent) for sent in counts.values()] == [2, 3, 2, 1, 3, 3], counts
    assert other.lock_holder(key) == "bob"
