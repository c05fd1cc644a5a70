"""Waiting for a Redis lock: woken by the release message or by the lock's time to live,
never by a fixed poll. Counted at the server (``INFO commandstats``), not timed.

Every manager here has ``recheck_interval=3600``: its first safety re-check would come
after 450 s, far beyond every join below. So a waiter that gets the lock at all was woken
by a release message or by the lock's time to live, and the server's count of script
runs says how often it asked. A waiting acquire also stands in the lock's queue and
tries again every `QUEUE_REFRESH` seconds to stay there: the counts allow for one try
per such interval that passed (`refreshes`), far from what a poll would ask.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from moorage.operations import Call
from moorage_redis import RedisLockManager
from moorage_redis.scripts import Attempt
from moorage_redis.waiting import (
    EXPIRY_MARGIN,
    QUEUE_REFRESH,
    next_wait,
    recheck_delays,
    wait_op,
)

from .conftest import MakeManager
from servers import wait_until
from servers.redis import RedisServer

JOIN = 30.0  # generous: only a hang reaches it
NEVER_RECHECK = 3600.0


class Waiter(threading.Thread):
    """Runs ``call`` in a thread and keeps its result."""

    def __init__(self, call: Callable[[], bool]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.result: bool | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> bool | None:
        self.join(JOIN)
        assert not self.is_alive(), f"the waiter still waits after {JOIN} s"
        if self.error is not None:
            raise self.error
        return self.result


def refreshes(since: float) -> int:
    """The most queue refreshes a waiter that started after ``since`` (a
    ``time.monotonic()`` reading) can have sent by now."""
    return int((time.monotonic() - since) / QUEUE_REFRESH)


def subscribed(server: RedisServer, manager: RedisLockManager, key: str) -> None:
    channel = manager.redis_key(key)
    wait_until(lambda: server.subscribers(channel) == 1, what="the waiter's subscription")


@pytest.fixture
def quiet(make_manager: MakeManager) -> RedisLockManager:
    """A manager whose safety re-checks never come during a test."""
    manager = make_manager(hold_timeout=60, recheck_interval=NEVER_RECHECK)
    manager.acquire_lock("warm-up", "x")  # loads the scripts: later counts are EVALSHA only
    manager.release_lock("warm-up", "x")
    manager.stop_waiting("warm-up", "x")
    return manager


def test_acquire_is_woken_by_release_without_polling(
    redis_server: RedisServer, quiet: RedisLockManager
) -> None:
    assert quiet.acquire_lock("k", "alice", hold_timeout=math.inf)
    before = redis_server.calls("evalsha")
    started = time.monotonic()
    waiter = Waiter(lambda: quiet.acquire_lock("k", "bob", acquire_timeout=JOIN * 2))
    waiter.start()
    subscribed(redis_server, quiet, "k")
    time.sleep(1.0)  # a wait of known length; a 100 ms poll would ask ~10 times here
    during = redis_server.calls("evalsha") - before
    allowed = 2 + refreshes(started)
    quiet.release_lock("k", "alice")
    assert waiter.outcome() is True
    after = redis_server.calls("evalsha") - before
    # bob: the first try, the try right after subscribing, a refresh per QUEUE_REFRESH
    # seconds, the try after the message; plus alice's release.
    assert during <= allowed, f"{during} acquire attempts while the lock was held: polling"
    assert 4 <= after <= 4 + refreshes(started), f"{after} script runs: 3 tries, 1 release"
    assert quiet.is_lock_holder("k", "bob")
    assert redis_server.unsubscribed(quiet.redis_key("k")), "the subscription ended"
    quiet.release_lock("k", "bob")


def test_wait_for_lock_is_woken_by_release(
    redis_server: RedisServer, quiet: RedisLockManager
) -> None:
    assert quiet.acquire_lock("k", "alice", hold_timeout=math.inf)
    before = redis_server.calls("pttl")
    waiter = Waiter(lambda: quiet.wait_for_lock("k", timeout=JOIN * 2))
    waiter.start()
    subscribed(redis_server, quiet, "k")
    time.sleep(0.5)
    quiet.release_lock("k", "alice")
    assert waiter.outcome() is True
    assert redis_server.calls("pttl") - before == 3


def test_waiter_wakes_when_the_lock_lapses(
    redis_server: RedisServer, quiet: RedisLockManager
) -> None:
    """An expiring lock publishes nothing: the waiter sleeps to its time to live."""
    assert quiet.acquire_lock("k", "alice", hold_timeout=1.0)
    before = redis_server.calls("evalsha")
    assert quiet.acquire_lock("k", "bob", acquire_timeout=JOIN) is True
    attempts = redis_server.calls("evalsha") - before
    assert attempts <= 4, f"{attempts} attempts to take a lock that lapsed after 1 s"
    assert quiet.is_lock_holder("k", "bob")
    quiet.release_lock("k", "bob")


def test_safety_recheck_finds_a_lock_deleted_without_message(
    redis_server: RedisServer, make_manager: MakeManager
) -> None:
    manager = make_manager(hold_timeout=60, recheck_interval=0.4)
    assert manager.acquire_lock("k", "alice", hold_timeout=math.inf)
    waiter = Waiter(lambda: manager.acquire_lock("k", "bob", acquire_timeout=JOIN * 2))
    waiter.start()
    subscribed(redis_server, manager, "k")
    redis_server.client.delete(manager.redis_key("k"))  # gone, and nobody published
    assert waiter.outcome() is True
    manager.release_lock("k", "bob")


def test_timeout_while_listening(redis_server: RedisServer, quiet: RedisLockManager) -> None:
    assert quiet.acquire_lock("k", "alice", hold_timeout=math.inf)
    before = redis_server.calls("evalsha")
    assert quiet.acquire_lock("k", "bob", acquire_timeout=0.3) is False
    assert quiet.wait_for_lock("k", timeout=0.3) is False
    # Three tries (first, after subscribing, at the timeout) and leaving the queue.
    assert redis_server.calls("evalsha") - before <= 4
    assert redis_server.unsubscribed(quiet.redis_key("k"))
    assert quiet.acquire_lock("k", "bob", acquire_timeout=0) is False
    assert redis_server.calls("evalsha") - before <= 6
    quiet.release_lock("k", "alice")


def test_async_waiter_is_woken_by_release(
    redis_server: RedisServer, quiet: RedisLockManager
) -> None:
    async def scenario() -> tuple[int, int]:
        assert await quiet.aacquire_lock("k", "alice", hold_timeout=math.inf)
        before = redis_server.calls("evalsha")
        bob = asyncio.create_task(quiet.aacquire_lock("k", "bob", acquire_timeout=JOIN * 2))
        channel = quiet.redis_key("k")
        while redis_server.subscribers(channel) == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)
        during = redis_server.calls("evalsha") - before
        nonlocal allowed
        allowed = refreshes(started)
        await quiet.arelease_lock("k", "alice")
        assert await asyncio.wait_for(bob, JOIN) is True
        return during, redis_server.calls("evalsha") - before

    allowed = 0
    started = time.monotonic()
    during, after = asyncio.run(scenario())
    assert during <= 2 + allowed
    assert 4 <= after <= 4 + refreshes(started)
    assert quiet.is_lock_holder("k", "bob")
    quiet.release_lock("k", "bob")


def test_cancelled_async_waiter_unsubscribes(
    redis_server: RedisServer, quiet: RedisLockManager
) -> None:
    async def scenario() -> None:
        assert await quiet.aacquire_lock("k", "alice", hold_timeout=math.inf)
        bob = asyncio.create_task(quiet.aacquire_lock("k", "bob"))
        while redis_server.subscribers(quiet.redis_key("k")) == 0:
            await asyncio.sleep(0.01)
        bob.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bob
        channel = quiet.redis_key("k")
        assert await asyncio.to_thread(redis_server.unsubscribed, channel)
        await quiet.arelease_lock("k", "alice")

    asyncio.run(scenario())


def test_without_pubsub_waiters_fall_back_to_backoff(
    redis_server: RedisServer, make_manager: MakeManager, prefix: str
) -> None:
    """A Redis user that may not SUBSCRIBE still gets its locks, by polling with backoff."""
    user = f"nosub-{prefix.rstrip(':')}"
    redis_server.client.acl_setuser(
        user, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-subscribe"]
    )
    try:
        url = f"redis://{user}:pw@127.0.0.1:{redis_server.port}/0"
        manager = make_manager(url, hold_timeout=60, recheck_interval=NEVER_RECHECK)
        assert manager.acquire_lock("k", "alice")
        releaser = threading.Timer(0.3, manager.release_lock, ("k", "alice"))
        releaser.start()
        assert manager.acquire_lock("k", "bob", acquire_timeout=JOIN) is True
        releaser.join(JOIN)
        assert manager.is_lock_holder("k", "bob")
        manager.release_lock("k", "bob")
    finally:
        redis_server.client.acl_deluser(user)


# -- the schedule, as plain functions ------------------------------------------------------


def test_next_wait_is_bounded_by_ttl_timeout_and_recheck() -> None:
    assert next_wait(None, None, 5.0) == 5.0
    assert next_wait(300, None, 5.0) == pytest.approx(0.3 + EXPIRY_MARGIN)
    assert next_wait(300, 0.1, 5.0) == 0.1
    assert next_wait(None, 9.0, 2.5) == 2.5
    assert next_wait(0, None, 5.0) == EXPIRY_MARGIN
    assert next_wait(None, -1.0, 5.0) == 0.0


def test_recheck_delays_double_up_to_the_interval() -> None:
    delays = recheck_delays(8.0)
    assert [next(delays) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


class _Waiter:
    """A waiter whose methods are only named, never called: the test drives by hand."""

    def subscribe(self) -> bool:
        raise AssertionError("not called")

    async def asubscribe(self) -> bool:
        raise AssertionError("not called")

    def wait_released(self, seconds: float) -> bool:
        raise AssertionError("not called")

    async def await_released(self, seconds: float) -> bool:
        raise AssertionError("not called")


def _attempt() -> Attempt:
    raise AssertionError("not called")


async def _aattempt() -> Attempt:
    raise AssertionError("not called")


def _asked(step: Call[Any]) -> tuple[Any, tuple[Any, ...]]:
    """What an operation asked for: the blocking method and its arguments."""
    return step.sync, step.args


def test_wait_op_subscribes_once_then_retries_at_once() -> None:
    """The decisions, driven by hand: no server, no clock games."""
    waiter = _Waiter()
    attempt = (_attempt, ())
    op = wait_op(Call(_attempt, _aattempt), waiter, None, 8.0)
    step = next(op)
    assert _asked(step) == attempt
    step = op.send(Attempt(False, None))
    assert _asked(step) == (waiter.subscribe, ())
    assert step.asynchronous == waiter.asubscribe
    step = op.send(True)
    assert _asked(step) == attempt, "tries again right after subscribing"
    step = op.send(Attempt(False, 250))
    assert _asked(step) == (waiter.wait_released, (pytest.approx(0.25 + EXPIRY_MARGIN),))
    assert step.asynchronous == waiter.await_released
    step = op.send(True)
    assert _asked(step) == attempt
    step = op.send(Attempt(False, None))
    assert _asked(step) == (waiter.wait_released, (2.0,))
    assert _asked(op.send(True)) == attempt
    with pytest.raises(StopIteration) as done:
        op.send(Attempt(True))
    assert done.value.value is True
