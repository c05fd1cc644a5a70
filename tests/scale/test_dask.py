"""Exactly once on a Dask cluster: 60 calls over 15 inputs, in bursts of 4 equal calls,
on two worker processes, run the body exactly 15 times with every lock manager.

The cluster is Dask's own `LocalCluster` with two worker processes (two threads each),
on 127.0.0.1. The task travels by value (its options name the storage and the lock
manager), so each worker rebuilds it for every call: the tests also show that the
workers still reuse one client per configuration (no Redis connection per call; a
call that waits for a lock holds one pub/sub connection while it waits).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from moorage.storage import Storage  # noqa: E402
from scale.scaled import POLICY, key_of, runs_per_input, shifted_total, slow_square  # noqa: E402

from servers.redis import RedisServer  # noqa: E402
from servers.redis_modes import RedisClusterSetup, RedisSentinelSetup  # noqa: E402
from servers.s3 import S3Server  # noqa: E402

INPUTS = 15
BURST = 4


@pytest.fixture(scope="module")
def dask_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("dask-home")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
        # The workers' own defaults stay inside the test's folders.
        env={"HOME": str(home), "MOORAGE_LOCAL_STORAGE_PATH": str(home / "storage")},
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@dataclass
class Setup:
    """Where results go and which lock manager coordinates the workers."""

    storage: Storage | str
    locks: str


def _setup(kind: str, request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server) -> Setup:
    if kind == "file":
        return Setup((tmp_path / "results").as_uri(), (tmp_path / "locks").as_uri())
    storage = s3_server.make_storage("dask")
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = f"{server.url}?key_prefix={server.prefix()}"
        return Setup(storage, url)
    if kind == "sentinel":
        sentinel: RedisSentinelSetup = request.getfixturevalue("redis_sentinel")
        url = f"{sentinel.url}?key_prefix={sentinel.prefix()}"
        return Setup(storage, url)
    if kind == "cluster":
        cluster: RedisClusterSetup = request.getfixturevalue("redis_cluster")
        return Setup(storage, f"{cluster.url}?key_prefix={cluster.prefix()}")
    assert kind == "object"
    options = "&".join(f"{k}={v}" for k, v in s3_server.options().items())
    return Setup(storage, f"{storage.url}?{options}")


def _received(client: Any) -> int:
    """Connections the server accepted so far."""
    return int(client.info("stats")["total_connections_received"])


@pytest.mark.parametrize("kind", ["file", "redis", "sentinel", "cluster", "object"])
def test_sixty_calls_in_bursts_run_the_body_fifteen_times(
    kind: str,
    dask_client: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    s3_server: S3Server,
) -> None:
    setup = _setup(kind, request, tmp_path, s3_server)
    runs = tmp_path / "runs"
    runs.mkdir()
    task = slow_square.with_options(
        result_storage=setup.storage, cache_policy=POLICY.configure(lock_manager=setup.locks)
    )
    calls = [n for n in range(INPUTS) for _ in range(BURST)]  # bursts of equal calls
    futures = [dask_client.submit(task, n, str(runs), pure=False) for n in calls]
    results = dask_client.gather(futures)

    assert [r["square"] for r in results] == [n * n for n in calls]
    assert runs_per_input(runs) == dict.fromkeys(range(INPUTS), 1)


def test_workers_reuse_their_redis_clients(
    dask_client: Any, redis_server: RedisServer, tmp_path: Path, s3_server: S3Server
) -> None:
    """40 calls of distinct inputs, each taking and releasing its key's lock, open no
    more connections than the workers have threads, though each call's task, store and
    lock manager are unpickled anew (a connection per call would be 40)."""
    url = f"{redis_server.url}?key_prefix={redis_server.prefix()}"
    task = slow_square.with_options(
        result_storage=s3_server.make_storage("dask"),
        cache_policy=POLICY.configure(lock_manager=url),
    )
    runs = tmp_path / "runs"
    runs.mkdir()
    before = _received(redis_server.client)
    futures = [dask_client.submit(task, n, str(runs), pure=False) for n in range(100, 140)]
    assert [r["n"] for r in dask_client.gather(futures)] == list(range(100, 140))
    opened = _received(redis_server.client) - before
    assert opened <= 2 * 2, f"{opened} connections for 40 calls on 2 workers x 2 threads"


def test_keys_agree_between_the_client_and_the_workers(dask_client: Any) -> None:
    """Data-aware and code-aware keys are the same on the workers as here: a DataFrame
    hashed by content, a CODE key sent by reference, a closure's task sent by value."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 1.5, 2.5]})
    workers = list(dask_client.scheduler_info()["workers"])
    here = key_of(shifted_total, frame)
    there = [
        dask_client.submit(key_of, shifted_total, frame.copy(), pure=False, workers=[w])
        for w in workers
    ]
    assert set(dask_client.gather(there)) == {here}

    scale = 3

    def scaled_sum(frame: Any) -> float:
        return float(frame["y"].sum() * scale)

    from moorage import task
    from moorage.workflow.cache_policies import CODE, INPUTS

    local = task(scaled_sum, cache_policy=INPUTS + CODE)
    here = key_of(local, frame)
    there = [dask_client.submit(key_of, local, frame, pure=False, workers=[w]) for w in workers]
    assert set(dask_client.gather(there)) == {here}
