"""The redis-py clients of one lock manager, built when first needed.

Which redis-py class depends on the URL's mode (`moorage_redis.options.MODES`): one
server is ``redis.Redis``; Sentinel is the master that ``redis.sentinel.Sentinel``
finds for the service (``master_for``; it follows a failover by asking the sentinels
again); Cluster is ``redis.cluster.RedisCluster`` started from the URL's nodes, which
routes each command to the node serving its key's slot. Each has its asyncio twin.
Every kind gets the same socket timeouts and the same bounded retry of a command after a
connection error (the connections to the sentinels keep redis-py's own: none, since
master discovery moves on to the next sentinel instead).

- one blocking client (thread-safe, with its own connection pool) for blocking calls;
- one asyncio client per running event loop, since an asyncio connection
  belongs to the loop that opened it. Each is closed when its loop shuts down
  (``asyncio.run`` and pytest-asyncio close a loop's async generators on the way out,
  and a tiny generator per client does the closing), or by `Clients.aclose`;
- after ``fork()`` the child builds its own clients and never touches the parent's
  sockets.

Each client carries the lock scripts registered on it (``EVALSHA``, loading the script
on the first ``NOSCRIPT`` reply).
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import AsyncGenerator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from moorage_redis import scripts
from moorage_redis.options import CLUSTER, SENTINEL, RedisOptions

__all__ = ["AsyncClient", "Clients", "SyncClient"]

# Between retries of a command after a connection error: 50 ms, doubling, at most 0.5 s
# (redis-py waits base * 2**failures, counting failures from 1).
_RETRY_BASE, _RETRY_CAP = 0.025, 0.5

#: Clients a forked child inherited: kept alive (never closed or collected), so the
#: child neither shuts the parent's sockets nor wakes the parent's loops.
_inherited: list[object] = []

#: How many forks this process went through as the child: bumped by
#: ``os.register_at_fork``, so a `Clients` notices a fork by comparing one number
#: instead of asking ``os.getpid()`` on every call.
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


@dataclass(frozen=True)
class SyncClient:
    """A blocking client and the lock scripts registered on it."""

    redis: redis.Redis
    acquire: Any
    release: Any
    extend: Any
    leave: Any
    #: The sentinels' clients (Sentinel only), closed with the master's.
    sentinels: tuple[Any, ...] = ()

    @classmethod
    def build(cls, options: RedisOptions) -> SyncClient:
        """The client for ``options``; a cluster client connects here, to learn the
        slots, so call it where connection errors are translated."""
        retry = Retry(ExponentialBackoff(cap=_RETRY_CAP, base=_RETRY_BASE), options.retries)
        client: Any
        sentinel: Any = None
        if options.mode == SENTINEL:
            sentinel = redis.sentinel.Sentinel(
                options.nodes, sentinel_kwargs=options.sentinel_kwargs()
            )
            assert options.service_name is not None
            client = sentinel.master_for(
                options.service_name, db=options.db, retry=retry, **options.server_kwargs()
            )
        elif options.mode == CLUSTER:
            nodes = [redis.cluster.ClusterNode(h, p) for h, p in options.nodes]  # type: ignore[no-untyped-call, unused-ignore]
            client = redis.cluster.RedisCluster(
                startup_nodes=nodes,
                retry=retry,
                **options.server_kwargs(),
            )
        else:
            client = redis.Redis(**options.connection_kwargs(), retry=retry)
        acquire, release, extend, leave = (client.register_script(t) for t in scripts.SCRIPTS)
        watchers = tuple(sentinel.sentinels) if sentinel is not None else ()
        return cls(client, acquire, release, extend, leave, sentinels=watchers)


@dataclass
class AsyncClient:
    """An asyncio client bound to one event loop, and the lock scripts registered on it."""

    redis: redis.asyncio.Redis
    acquire: Any
    release: Any
    extend: Any
    leave: Any
    sentinels: tuple[Any, ...] = ()
    closer: AsyncGenerator[None, None] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, options: RedisOptions) -> AsyncClient:
        """The asyncio client for ``options``; it connects on its first command."""
        retry = AsyncRetry(ExponentialBackoff(cap=_RETRY_CAP, base=_RETRY_BASE), options.retries)
        client: Any
        sentinel: Any = None
        if options.mode == SENTINEL:
            sentinel = redis.asyncio.sentinel.Sentinel(
                options.nodes, sentinel_kwargs=options.sentinel_kwargs()
            )
            assert options.service_name is not None
            client = sentinel.master_for(
                options.service_name, db=options.db, retry=retry, **options.server_kwargs()
            )
        elif options.mode == CLUSTER:
            client = redis.asyncio.cluster.RedisCluster(
                startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in options.nodes],
                retry=retry,
                **options.server_kwargs(),
            )
        else:
            client = redis.asyncio.Redis(**options.connection_kwargs(), retry=retry)
        acquire, release, extend, leave = (client.register_script(t) for t in scripts.SCRIPTS)
        watchers = tuple(sentinel.sentinels) if sentinel is not None else ()
        return cls(client, acquire, release, extend, leave, sentinels=watchers)


async def _aclose(client: Any) -> None:
    """Close an asyncio client and its connections (a cluster client closes every
    node's; its ``aclose`` takes no arguments)."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        await client.aclose()
    else:
        await client.aclose(close_connection_pool=True)


class Clients:
    """Hands out the sync client and the current loop's asyncio client, building each
    on first use."""

    def __init__(self, options: RedisOptions) -> None:
        self._options = options
        self._start()

    def _start(self) -> None:
        self._forks = _forks
        self._lock = threading.Lock()
        self._sync: SyncClient | None = None
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _after_fork(self) -> None:
        if self._forks != _forks:
            _inherited.append((self._sync, dict(self._loops)))
            self._start()  # a fresh threading lock too: the parent's may have been held

    def sync(self) -> SyncClient:
        """The blocking client (for a cluster, connecting to learn its slots)."""
        client = self._sync
        if self._forks != _forks:  # inlined `_after_fork`: this is every call's path
            self._after_fork()
            client = None
        if client is None:
            with self._lock:
                if self._sync is None:
                    self._sync = SyncClient.build(self._options)
                client = self._sync
        return client

    async def current(self) -> AsyncClient:
        """The asyncio client of the running event loop."""
        self._after_fork()
        loop = asyncio.get_running_loop()
        client = self._loops.get(loop)
        if client is not None:
            return client
        with self._lock:
            for stale in [other for other in self._loops if other.is_closed()]:
                del self._loops[stale]  # closed without shutting down its generators
            client = self._loops[loop] = AsyncClient.build(self._options)
        client.closer = self._close_with_loop(client)
        await anext(client.closer)  # runs to its `yield` at once: no other task gets in
        return client

    async def _close_with_loop(self, client: AsyncClient) -> AsyncGenerator[None, None]:
        """Suspended until the loop shuts down its async generators (or `aclose`)."""
        try:
            yield
        finally:
            loop = asyncio.get_running_loop()
            with self._lock:
                if self._loops.get(loop) is client:
                    del self._loops[loop]
            with suppress(Exception):
                await _aclose(client.redis)
                for watcher in client.sentinels:
                    await watcher.aclose()

    def close(self) -> None:
        """Close the blocking client's connections. Asyncio clients close with their
        loops; `aclose` closes the running loop's at once."""
        self._after_fork()
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.redis.close()
            for watcher in client.sentinels:
                watcher.close()

    async def aclose(self) -> None:
        """Close the running loop's asyncio client and the blocking client."""
        self._after_fork()
        client = self._loops.get(asyncio.get_running_loop())
        if client is not None and client.closer is not None:
            await client.closer.aclose()
        self.close()
