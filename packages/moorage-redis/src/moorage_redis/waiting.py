"""Waiting for a lock without polling: the schedule and the loop, written once.

`wait_op` is an operation in the sense of `moorage.operations`: it asks for the calls it
needs and is driven by `run_sync` (blocking calls) or `run_async` (their async twins), so
the sync and async lock managers share every decision:

1. try (take the lock, or check that it is free); done if that worked, False if the
   time is up;
2. after the first failure, subscribe to the lock's release channel, then try again at
   once (a release between the first try and the subscription published nothing that
   this waiter could hear);
3. then wait for a release message, at most until the current lock's time to live ends
   (an expiring lock publishes nothing), until the caller's timeout, and until the next
   re-check of a slow backoff (`recheck_delays`) that guards against releases nobody
   announced (a key deleted by hand, a dropped subscription); try again; repeat.

A waiting acquire also stands in the lock's queue (`moorage_redis.scripts`): it tries
again at least every `QUEUE_REFRESH` seconds, which keeps it alive there (its entry
lapses `LIVENESS_MS` after its last try), and when it gives up (its timeout passed) it
leaves the queue with the ``leave`` call. When it fails with an error, or is cancelled,
it does not call the server again: its entry lapses by itself.

Where pub/sub is unavailable (an ACL without ``SUBSCRIBE``, a proxy without pub/sub) the
waiter sleeps instead, with the core's fast backoff (`moorage.locking.base.backoff_delays`),
still never past the lock's time to live.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Protocol

from moorage.locking import backoff_delays
from moorage.operations import Call, Op
from moorage_redis.scripts import Attempt

__all__ = [
    "EXPIRY_MARGIN",
    "LIVENESS_MS",
    "QUEUE_GRACE",
    "QUEUE_REFRESH",
    "Waiter",
    "next_wait",
    "recheck_delays",
    "wait_op",
]


class Waiter(Protocol):
    """Listens for the release of one lock (`moorage_redis.locking.ReleaseWaiter`)."""

    def subscribe(self) -> bool:
        """Start listening; True if listening (pub/sub is available)."""

    async def asubscribe(self) -> bool:
        """Async twin of `subscribe`."""

    def wait_released(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a release message; True if still listening."""

    async def await_released(self, seconds: float) -> bool:
        """Async twin of `wait_released`."""


#: Added to a lock's remaining time to live before re-checking, so the re-check finds it
#: expired rather than a millisecond short of it (seconds).
EXPIRY_MARGIN = 0.002
#: The longest a queued waiter goes without trying again (seconds).
QUEUE_REFRESH = 1.0
#: How long past its next due try a waiter stays in the queue (seconds): one that died
#: or stopped trying drops out this much after it missed its turn to try.
QUEUE_GRACE = 2.0
#: A queued waiter's liveness after each try, as the acquire script takes it (ms).
LIVENESS_MS = math.ceil((QUEUE_REFRESH + QUEUE_GRACE) * 1000)


def recheck_delays(interval: float) -> Iterator[float]:
    """Re-check intervals while listening: from ``interval / 8``, doubling, up to
    ``interval``."""
    delay = interval / 8
    while True:
        yield delay
        delay = min(delay * 2, interval)


def next_wait(ttl_ms: int | None, remaining: float | None, recheck: float) -> float:
    """Seconds to wait before trying again.

    ``ttl_ms``: the current lock's remaining time to live (None: it never expires);
    ``remaining``: what is left of the caller's timeout (None: no timeout); ``recheck``:
    the next safety re-check interval.
    """
    wait = recheck
    if ttl_ms is not None:
        wait = min(wait, ttl_ms / 1000 + EXPIRY_MARGIN)
    if remaining is not None:
        wait = min(wait, remaining)
    return max(wait, 0.0)


def wait_op(
    attempt: Call[Attempt],
    waiter: Waiter,
    timeout: float | None,
    recheck_interval: float,
    *,
    leave: Call[None] | None = None,
) -> Op[bool]:
    """Repeat ``attempt`` (a call answering an `Attempt`) until it is done; False once
    ``timeout`` seconds (None: no limit) have passed.

    ``waiter`` listens for the lock's release (see `Waiter`). ``leave``, for an acquire
    that queues, is called when the wait times out; such an attempt is repeated at
    least every `QUEUE_REFRESH` seconds.
    """
    done = yield from _repeat(attempt, waiter, timeout, recheck_interval, leave is not None)
    if not done and leave is not None:
        yield from leave
    return done


def _repeat(
    attempt: Call[Attempt], waiter: Waiter, timeout: float | None, recheck_interval: float,
    queued: bool,
) -> Op[bool]:  # fmt: skip
    deadline = None if timeout is None else time.monotonic() + timeout
    delays: Iterator[float] | None = None
    listening = False
    while True:
        outcome = yield from attempt
        if outcome.done:
            return True
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        if delays is None:
            listening = yield from Call(waiter.subscribe, waiter.asubscribe)
            delays = recheck_delays(recheck_interval) if listening else backoff_delays()
            continue
        pause = next_wait(outcome.ttl_ms, remaining, next(delays))
        if queued:
            pause = min(pause, QUEUE_REFRESH)
        still = yield from Call(waiter.wait_released, waiter.await_released, pause)
        if listening and not still:
            listening, delays = False, backoff_delays()
