"""`RedisLockManager`: locks on a Redis server, for ``redis://`` and ``rediss://`` URLs.

The methods here are thin I/O shells, one blocking and one asyncio per operation: they
send what `moorage_redis.scripts` says and read the reply with its functions. Waiting
(`acquire_lock`, `wait_for_lock` and their twins) is `moorage_redis.waiting.wait_op`,
run by the core's sync or async driver, with a `ReleaseWaiter` for the subscription.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractContextManager, suppress
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

import redis
import redis.asyncio
from redis import exceptions as rex

from moorage.errors import LockError
from moorage.locking import (
    DEFAULT_HOLD_TIMEOUT,
    LockManager,
    comparable_hold_timeout,
    release_error,
)
from moorage.operations import Call, Op, run_async, run_sync
from moorage_redis.cleanup import Cleanups, uncertain
from moorage_redis.clients import Clients
from moorage_redis.errors import lock_error, translated
from moorage_redis.options import CLUSTER, SCHEMES, RedisOptions, parse_options
from moorage_redis.scripts import (
    Attempt,
    acquire_attempt,
    decode_holder,
    encode,
    hold_ms,
    holder_reply,
    probe_attempt,
    queue_keys,
)
from moorage_redis.waiting import LIVENESS_MS, wait_op

__all__ = ["RedisLockManager", "ReleaseWaiter"]

#: The outcome of the last `RedisLockManager.try_acquire_waiting` in this thread or
#: task: the hook answers a bool, and the waiting loop also needs the lock's time to live.
_last_attempt: ContextVar[Attempt | None] = ContextVar("moorage_redis_last_attempt", default=None)


class RedisLockManager(LockManager):
    """Locks kept on a Redis server: ``RedisLockManager("redis://localhost:6379/0")``.

    ``url`` is ``redis://[[user]:password@]host[:port][/db]`` (``rediss://`` for TLS),
    ``redis+sentinel://[[user]:password@]host1:26379,host2:26379/<service_name>/<db>``
    (the master the sentinels name), or ``redis+cluster://host1:6379[,host2:6379...]``
    (a Redis Cluster; ``rediss+`` for TLS in both), optionally with options in its query
    string; see `moorage_redis.options`. Instead of a URL, or to fill in what it
    leaves out, the server can be given as keywords, as with Prefect's manager:
    ``RedisLockManager(host="localhost", port=6379, db=0, username=None, password=None,
    ssl=False)``; a keyword that contradicts the URL raises `ConfigurationError`. With
    neither, the manager uses ``redis://localhost:6379/0``.

    ``hold_timeout`` (seconds; None or ``math.inf`` for locks that never lapse) is the
    default lifetime of a lock; the core passes the ``lock_hold_timeout`` setting. Other
    options, as keywords or in the query: ``socket_timeout``, ``socket_connect_timeout``
    (seconds, default 5), ``retries`` (default 3), ``key_prefix`` (default
    ``"moorage:lock:"``), ``recheck_interval`` (seconds, default 5), ``client_name``, and
    for ``rediss://`` ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
    ``ssl_cert_reqs``, ``ssl_check_hostname``.

    Waiting is fair: a waiting `acquire_lock` queues, and a free lock goes to the first
    live waiter (see `moorage_redis.scripts`); a plain `try_acquire` never jumps the
    queue.

    No connection is made until the first lock operation. The manager may be shared by
    threads and by event loops; each loop gets its own asyncio client. It pickles as its
    configuration (the password included, so treat the pickle as a secret): the copy
    opens its own connections in the process that unpickles it. Two managers with the
    same configuration compare and hash equal; the repr and every message show the URL
    with the password masked.
    """

    schemes = tuple(SCHEMES)
    process_state = ("_clients", "_cleanups")

    def __init__(
        self,
        url: str | None = None,
        hold_timeout: float | str | None = DEFAULT_HOLD_TIMEOUT,
        *,
        host: str | None = None,
        port: int | str | None = None,
        ssl: bool | str | None = None,
        **options: Any,
    ) -> None:
        self.options: RedisOptions = parse_options(
            url, hold_timeout, options, host=host, port=port, ssl=ssl
        )
        super().__init__(self.options.hold_timeout)
        self.url = self.options.url
        self._prefix = encode(self.options.key_prefix)
        self.start_process_state()

    def start_process_state(self) -> None:
        """Clients and pending clean-ups of this process (connections open lazily)."""
        self._clients = Clients(self.options)
        self._cleanups = Cleanups(self._clients)

    def configuration_key(self) -> tuple[object, ...]:
        """Every option, the password included (compared, never shown)."""
        hold = comparable_hold_timeout(self.options.hold_timeout)
        return (replace(self.options, hold_timeout=hold),)

    def redis_key(self, key: str) -> bytes:
        """The Redis key holding the lock on ``key`` (also its release channel)."""
        return self._prefix + key.encode("utf-8", "surrogatepass")

    def script_keys(self, key: str) -> list[bytes]:
        """The keys the acquire and leave scripts touch: the lock key, then its queue
        keys when it has a queue (`moorage_redis.scripts.queue_keys`)."""
        name = self.redis_key(key)
        queue = queue_keys(name, self.options.mode == CLUSTER)
        return [name] if queue is None else [name, *queue]

    def _translated(self, action: str, key: str) -> AbstractContextManager[None]:
        return translated(action, key, self.options)

    def _error(self, action: str, key: str, exc: Exception) -> Exception:
        """``exc`` as `lock_error` maps it, or itself (for a `LockError`, a bug)."""
        return lock_error(action, key, self.options, exc) or exc

    # -- the primitives, blocking ----------------------------------------------------------

    def attempt(self, key: str, holder: str, ms: int, waiting: bool = False) -> Attempt:
        """Take, re-take (extending it) or fail to take the lock, in one script run; a
        ``waiting`` attempt joins the lock's queue when refused.

        If the outcome is unknown (a timeout, a broken connection), the lock is released
        for ``holder`` in the background (`moorage_redis.cleanup`) before the error is
        raised: the command may still run on the server later."""
        keys = self.script_keys(key)
        self._cleanups.cancel(keys[0], holder)
        try:
            with self._translated("acquire", key):
                client = self._clients.sync()
                reply = client.acquire(keys=keys, args=_acquire_args(holder, ms, waiting))
        except LockError as exc:
            if uncertain(exc):
                self._cleanups.schedule(keys[0], holder, _seconds(ms))
            raise
        return acquire_attempt(reply)

    def probe(self, key: str) -> Attempt:
        """Whether the lock is free, else how long it still lives."""
        with self._translated("check", key):
            return probe_attempt(self._clients.sync().redis.pttl(self.redis_key(key)))

    def try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """Take the lock if it is free and nobody waits for it in the queue; never
        queues (``hold_timeout`` None: no expiry)."""
        return self.attempt(key, holder, hold_ms(hold_timeout)).done

    def try_acquire_waiting(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """One try of a waiting acquire: take the lock if it is free and ``holder`` is
        the first live waiter (or none waits), else join (or stay in) the queue."""
        outcome = self.attempt(key, holder, hold_ms(hold_timeout), waiting=True)
        _last_attempt.set(outcome)
        return outcome.done

    def _waiting_attempt(self, key: str, holder: str, hold_timeout: float | None) -> Attempt:
        """A try of `acquire_lock`, through `try_acquire_waiting` (so a subclass or a
        wrapper of that hook is honoured), with the lock's time to live it learnt."""
        _last_attempt.set(None)
        if self.try_acquire_waiting(key, holder, hold_timeout):
            return Attempt(True)
        return _last_attempt.get() or Attempt(False)

    def stop_waiting(self, key: str, holder: str) -> None:
        """Leave the queue of ``key``; the next waiter is told if the lock is free."""
        keys = self.script_keys(key)
        if len(keys) > 1:
            with self._translated("stop waiting for", key):
                self._clients.sync().leave(keys=keys, args=[encode(holder)])

    def release_lock(self, key: str, holder: str) -> None:
        """Free the lock; `LockError` naming the current holder unless ``holder`` has it."""
        with self._translated("release", key):
            client = self._clients.sync()
            reply = client.release(keys=[self.redis_key(key)], args=[encode(holder)])
        self._check_holder(reply, key, holder)

    def extend_lock(self, key: str, holder: str, hold_timeout: float | None = None) -> None:
        """Give the lock ``holder`` holds a new lifetime: ``hold_timeout`` seconds from
        now (None: the manager's default; ``math.inf``: no expiry). `LockError` if
        ``holder`` does not hold it; never takes a free lock."""
        with self._translated("extend", key):
            client = self._clients.sync()
            reply = client.extend(
                keys=[self.redis_key(key)], args=self._extend_args(holder, hold_timeout)
            )
        self._check_holder(reply, key, holder, "extend")

    def lock_holder(self, key: str) -> str | None:
        # On the path of every plain write with a lock manager: one GET, with the error
        # mapping written out rather than entered as a context manager.
        try:
            raw = self._clients.sync().redis.get(
                self._prefix + key.encode("utf-8", "surrogatepass")
            )
        except (rex.RedisError, rex.RedisClusterException, OSError) as exc:
            raise self._error("read", key, exc) from exc
        return None if raw is None else decode_holder(raw)

    # -- the primitives, asyncio -----------------------------------------------------------

    async def aattempt(self, key: str, holder: str, ms: int, waiting: bool = False) -> Attempt:
        keys = self.script_keys(key)
        name = keys[0]
        if self._cleanups.pending(name, holder):  # rare: wait for it off the event loop
            await asyncio.to_thread(self._cleanups.cancel, name, holder)
        client = await self._clients.current()
        try:
            with self._translated("acquire", key):
                reply = await client.acquire(keys=keys, args=_acquire_args(holder, ms, waiting))
        except LockError as exc:
            if uncertain(exc):
                self._cleanups.schedule(name, holder, _seconds(ms))
            raise
        except asyncio.CancelledError:  # the script may have been sent already
            self._cleanups.schedule(name, holder, _seconds(ms))
            raise
        return acquire_attempt(reply)

    async def aprobe(self, key: str) -> Attempt:
        client = await self._clients.current()
        with self._translated("check", key):
            return probe_attempt(await client.redis.pttl(self.redis_key(key)))

    async def atry_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        return (await self.aattempt(key, holder, hold_ms(hold_timeout))).done

    async def atry_acquire_waiting(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """Async twin of `try_acquire_waiting`."""
        outcome = await self.aattempt(key, holder, hold_ms(hold_timeout), waiting=True)
        _last_attempt.set(outcome)
        return outcome.done

    async def _awaiting_attempt(self, key: str, holder: str, hold_timeout: float | None) -> Attempt:
        """Async twin of `_waiting_attempt` (an awaited coroutine shares the caller's
        context, so the context variable carries the outcome back)."""
        _last_attempt.set(None)
        if await self.atry_acquire_waiting(key, holder, hold_timeout):
            return Attempt(True)
        return _last_attempt.get() or Attempt(False)

    async def astop_waiting(self, key: str, holder: str) -> None:
        """Async twin of `stop_waiting`."""
        keys = self.script_keys(key)
        if len(keys) > 1:
            client = await self._clients.current()
            with self._translated("stop waiting for", key):
                await client.leave(keys=keys, args=[encode(holder)])

    async def arelease_lock(self, key: str, holder: str) -> None:
        client = await self._clients.current()
        with self._translated("release", key):
            reply = await client.release(keys=[self.redis_key(key)], args=[encode(holder)])
        self._check_holder(reply, key, holder)

    async def aextend_lock(self, key: str, holder: str, hold_timeout: float | None = None) -> None:
        """Async twin of `extend_lock`."""
        client = await self._clients.current()
        with self._translated("extend", key):
            reply = await client.extend(
                keys=[self.redis_key(key)], args=self._extend_args(holder, hold_timeout)
            )
        self._check_holder(reply, key, holder, "extend")

    async def alock_holder(self, key: str) -> str | None:
        client = await self._clients.current()
        try:
            raw = await client.redis.get(self._prefix + key.encode("utf-8", "surrogatepass"))
        except (rex.RedisError, rex.RedisClusterException, OSError) as exc:
            raise self._error("read", key, exc) from exc
        return None if raw is None else decode_holder(raw)

    # -- shared by both ----------------------------------------------------------------------

    def _extend_args(self, holder: str, hold_timeout: float | None) -> list[Any]:
        return [encode(holder), hold_ms(self.effective_hold_timeout(hold_timeout))]

    def _check_holder(self, reply: object, key: str, holder: str, action: str = "release") -> None:
        done, current = holder_reply(reply)
        if done:
            return
        if action == "release":
            raise release_error(key, holder, current, self.url)
        if current is None:
            why = f"it is not held (released, or its hold timeout passed); holder {holder!r}"
            fix = "take it again with acquire_lock"
        else:
            why = f"it is held by {current!r}, not by {holder!r}"
            fix = "only the holder may extend it"
        raise LockError(f"cannot extend lock on key {key!r} in {self.url}: {why}; {fix}")

    def _acquire_call(self, key: str, holder: str, hold_timeout: float | None) -> Call[Attempt]:
        hold = self.effective_hold_timeout(hold_timeout)
        hold_ms(hold)  # validates before the first try
        return Call(self._waiting_attempt, self._awaiting_attempt, key, holder, hold)

    def _leave_call(self, key: str, holder: str) -> Call[None]:
        return Call(self.stop_waiting, self.astop_waiting, key, holder)

    # -- waiting: the shared operation, run by the sync or the async driver -------------------

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock, waiting up to ``acquire_timeout`` seconds (None: forever) and
        waking when it is released or lapses. ``hold_timeout`` None means the manager's
        default; ``math.inf`` a lock that never lapses."""
        call = self._acquire_call(key, holder, hold_timeout)
        return self._wait(key, call, acquire_timeout, self._leave_call(key, holder))

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Async twin of `acquire_lock`."""
        call = self._acquire_call(key, holder, hold_timeout)
        return await self._await(key, call, acquire_timeout, self._leave_call(key, holder))

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is unlocked; False if ``timeout`` passed first."""
        return self._wait(key, Call(self.probe, self.aprobe, key), timeout)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Async twin of `wait_for_lock`."""
        return await self._await(key, Call(self.probe, self.aprobe, key), timeout)

    def _wait_op(
        self, waiter: ReleaseWaiter, attempt: Call[Attempt], timeout: float | None,
        leave: Call[None] | None,
    ) -> Op[bool]:  # fmt: skip
        recheck = self.options.recheck_interval
        return wait_op(attempt, waiter, timeout, recheck, leave=leave)

    def _wait(
        self, key: str, attempt: Call[Attempt], timeout: float | None,
        leave: Call[None] | None = None,
    ) -> bool:  # fmt: skip
        waiter = ReleaseWaiter(self, key)
        try:
            return run_sync(self._wait_op(waiter, attempt, timeout, leave))
        finally:
            waiter.close()

    async def _await(
        self, key: str, attempt: Call[Attempt], timeout: float | None,
        leave: Call[None] | None = None,
    ) -> bool:  # fmt: skip
        waiter = ReleaseWaiter(self, key)
        try:
            return await run_async(self._wait_op(waiter, attempt, timeout, leave))
        finally:
            await waiter.aclose()

    # -- connections ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the blocking client's connections (asyncio clients close with their
        event loops). The manager stays usable: the next call reconnects."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the running loop's asyncio client and the blocking client."""
        await self._clients.aclose()


def _acquire_args(holder: str, ms: int, waiting: bool) -> list[Any]:
    """The acquire script's arguments (see `moorage_redis.scripts.ACQUIRE`)."""
    return [encode(holder), ms, 1 if waiting else 0, LIVENESS_MS]


def _seconds(ms: int) -> float | None:
    """A hold time in ms as given to the scripts (0: no expiry) in seconds."""
    return ms / 1000 if ms else None


class ReleaseWaiter:
    """The subscription of one waiting call to one lock's release channel.

    Made by every waiting call, it connects only if the first try fails. Pub/sub errors
    the server answers (an ACL without ``SUBSCRIBE``, a proxy without pub/sub) make it
    report ``False``: the caller then sleeps with backoff instead of listening.
    """

    def __init__(self, manager: RedisLockManager, key: str) -> None:
        self._manager = manager
        self._key = key
        self._channel = manager.redis_key(key)
        self._pubsub: redis.client.PubSub | None = None
        self._apubsub: redis.asyncio.client.PubSub | None = None

    def _confirm_within(self) -> float:
        return self._manager.options.socket_timeout or 5.0

    def subscribe(self) -> bool:
        """Listen for releases; True once the server confirmed the subscription."""
        # redis-py types pubsub() and aclose() in some releases and not in others; the
        # ignore names both cases so mypy passes with every version the range admits.
        self._pubsub = self._manager._clients.sync().redis.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
        deadline = time.monotonic() + self._confirm_within()
        with self._manager._translated("wait for", self._key):
            try:
                self._pubsub.subscribe(self._channel)
                while (left := deadline - time.monotonic()) > 0:
                    if _confirms(self._pubsub.get_message(timeout=left)):
                        return True
            except rex.ResponseError:
                pass
        self.close()
        return False

    async def asubscribe(self) -> bool:
        client = await self._manager._clients.current()
        self._apubsub = client.redis.pubsub()
        deadline = time.monotonic() + self._confirm_within()
        with self._manager._translated("wait for", self._key):
            try:
                await self._apubsub.subscribe(self._channel)
                while (left := deadline - time.monotonic()) > 0:
                    if _confirms(await self._apubsub.get_message(timeout=left)):
                        return True
            except rex.ResponseError:
                pass
        await self.aclose()
        return False

    def wait_released(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a release message; False if not listening (then it
        just sleeps)."""
        if self._pubsub is None:
            time.sleep(seconds)
            return False
        try:
            self._pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
        except (rex.RedisError, OSError):
            self.close()  # the next try reports a dead server; else fall back to sleeping
            return False
        return True

    async def await_released(self, seconds: float) -> bool:
        if self._apubsub is None:
            await asyncio.sleep(seconds)
            return False
        try:
            await self._apubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
        except (rex.RedisError, OSError):
            await self.aclose()
            return False
        return True

    def close(self) -> None:
        """Drop the subscription and its connection (quietly: it may be broken)."""
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with suppress(rex.RedisError, OSError):
                pubsub.close()

    async def aclose(self) -> None:
        pubsub, self._apubsub = self._apubsub, None
        if pubsub is not None:
            with suppress(rex.RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]


def _confirms(message: object) -> bool:
    """Whether a pub/sub message is the server's confirmation of our subscription."""
    return isinstance(message, dict) and message.get("type") in ("subscribe", b"subscribe")
