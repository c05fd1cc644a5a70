"""S3, on moto's server on 127.0.0.1.

- concurrent writes: each round, moorage writes ``s3_records`` small records at once
  (``asyncio.gather`` of ``store.awrite``, one event loop per round), and Prefect writes
  as many one after another with its store on fsspec's S3 filesystem
  (``RemoteFileSystem``), as a Prefect user does. Each contender has its own bucket.
  A bare aiobotocore client sending as many concurrent ``PutObject`` calls of the
  pickled record runs in the same rounds: what moto itself can take on this machine,
  the ceiling for any client. Both rows are information: moto answers in a few ms and
  runs on the same two cores as the clients, so it bounds them, not the network.
- the same with a 20 ms round trip added to every request by the test proxy, and a fifth
  of the records: the target row (>= 10x Prefect's sequential writes), since concurrency
  is for the round trips real S3 has and moto does not.
- exists: a record of ``exists_bytes`` (1 MB) is written by each library; then a store
  that reaches moto through `servers.proxy.CountingProxy` checks that it exists, once,
  after a warm-up check of a missing key. The proxy counts the response body bytes moto
  sent back and the requests.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from benchmarks.config import Context
from benchmarks.contenders import PREFECT, SMALL_RECORD, moorage_store, prefect_s3_store
from benchmarks.harness import Comparison, Reading, Target, alternate, per_op_seconds, rate
from benchmarks.report import format_bytes

if TYPE_CHECKING:
    from moorage.results import ResultStore

    from servers.s3 import S3Server

__all__ = ["WORKLOADS"]

MOORAGE = "moorage, concurrent awrite"
PREFECT_SEQUENTIAL = f"{PREFECT}, sequential write"
CEILING = "aiobotocore put_object, concurrent"
#: moorage-s3's default ``max_pool_connections``, given to the bare client too.
CONNECTIONS = 50


def _prefect_store(s3: S3Server, bucket: str, endpoint: str | None = None) -> Any:
    options = s3.options(endpoint)
    return prefect_s3_store(
        f"s3://{bucket}/records",
        endpoint=options["endpoint_url"],
        key=options["key"],
        secret=options["secret"],
        region=options["region"],
    )


def _new_bucket(s3: S3Server, name: str) -> str:
    from moorage_s3 import S3Storage

    bucket = s3.bucket_name(name)
    S3Storage(f"s3://{bucket}", **s3.options()).create_bucket()
    return bucket


async def _bare_puts(s3: S3Server, bucket: str, prefix: str, n: int) -> float:
    """Seconds per object for ``n`` concurrent PutObject calls of the pickled record
    through a bare aiobotocore client (made and warmed up before the clock starts)."""
    from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    options = s3.options()
    body = pickle.dumps(SMALL_RECORD)
    async with get_session().create_client(
        "s3",
        endpoint_url=options["endpoint_url"],
        aws_access_key_id=options["key"],
        aws_secret_access_key=options["secret"],
        region_name=options["region"],
        config=AioConfig(max_pool_connections=CONNECTIONS),
    ) as client:
        await client.put_object(Bucket=bucket, Key=f"{prefix}warm-up", Body=body)
        gc.collect()
        start = time.perf_counter()
        await asyncio.gather(
            *(client.put_object(Bucket=bucket, Key=f"{prefix}{i}", Body=body) for i in range(n))
        )
        return (time.perf_counter() - start) / n


def _write_rounds(hf: ResultStore, pf: Any, n: int) -> dict[str, Callable[[int], float]]:
    """Per-round timers, in seconds per record: moorage writes ``n`` records at once,
    Prefect as many one after another (keys ``c<round>-<i>`` and ``s<round>-<i>``)."""

    async def burst(prefix: str) -> None:
        await asyncio.gather(*(hf.awrite(SMALL_RECORD, key=f"{prefix}{i}") for i in range(n)))

    def moorage_round(round_index: int) -> float:
        gc.collect()
        start = time.perf_counter()
        asyncio.run(burst(f"c{round_index}-"))
        return (time.perf_counter() - start) / n

    def prefect_round(round_index: int) -> float:
        return per_op_seconds(lambda i: pf.write(SMALL_RECORD, key=f"s{round_index}-{i}"), n)

    return {MOORAGE: moorage_round, PREFECT_SEQUENTIAL: prefect_round}


def _concurrent_writes(ctx: Context) -> list[Comparison]:
    s3 = ctx.servers.s3()
    n = ctx.sizes.s3_records
    storage = s3.make_storage("hf-writes")
    hf = moorage_store(storage, cache=True)
    pf = _prefect_store(s3, _new_bucket(s3, "pf-writes"))
    bare_bucket = _new_bucket(s3, "bare-writes")

    hf.write(SMALL_RECORD, key="warm-up")
    asyncio.run(hf.awrite(SMALL_RECORD, key="warm-up"))
    pf.write(SMALL_RECORD, key="warm-up")

    def bare_round(round_index: int) -> float:
        return asyncio.run(_bare_puts(s3, bare_bucket, f"b{round_index}-", n))

    rounds = {**_write_rounds(hf, pf, n), CEILING: bare_round}
    samples = alternate(list(rounds.items()), ctx.sizes.s3_rounds)
    last = f"{n - 1}"
    if moorage_store(storage, cache=False).read(f"c0-{last}").result != SMALL_RECORD:
        raise AssertionError("moorage's last record on S3 is not what it wrote")
    if pf.read(f"s0-{last}").result != SMALL_RECORD:
        raise AssertionError("Prefect's last record on S3 is not what it wrote")
    label = f"{n} small records written to S3 (moto)"
    subject = rate(MOORAGE, samples[MOORAGE])
    return [
        Comparison(
            "s3",
            label,
            subject,
            rate(PREFECT_SEQUENTIAL, samples[PREFECT_SEQUENTIAL]),
            note="information: moto's own ceiling bounds it; the target row adds latency",
        ),
        Comparison(
            "s3",
            label,
            subject,
            rate(CEILING, samples[CEILING]),
            note="the baseline is moto's own ceiling here",
        ),
    ]


def _exists_traffic(ctx: Context) -> list[Comparison]:
    from moorage_s3 import S3Storage

    from servers.proxy import CountingProxy

    s3 = ctx.servers.s3()
    nbytes = ctx.sizes.exists_bytes
    payload = os.urandom(nbytes)
    hf_storage = s3.make_storage("hf-exists")
    moorage_store(hf_storage, cache=False).write(payload, key="big")
    pf_bucket = _new_bucket(s3, "pf-exists")
    _prefect_store(s3, pf_bucket).write(payload, key="big")

    with CountingProxy(s3.port) as proxy:
        proxied = S3Storage(hf_storage.url, **s3.options(proxy.endpoint))
        hf = moorage_store(proxied, cache=False)
        pf = _prefect_store(s3, pf_bucket, proxy.endpoint)
        checks: dict[str, Callable[[str], bool]] = {"moorage": hf.exists, PREFECT: pf.exists}
        traffic: dict[str, tuple[int, int]] = {}
        for name, exists in checks.items():
            if exists("absent"):  # warm-up: connections, credentials, no payload
                raise AssertionError(f"{name} says a missing key exists")
            proxy.reset()
            if not exists("big"):
                raise AssertionError(f"{name} says the record it wrote does not exist")
            traffic[name] = (proxy.received(), len(proxy.exchanges))
    payload_reading = Reading("payload", float(nbytes), "bytes")
    label = f"exists() of a {format_bytes(nbytes)} record on S3: response bytes"
    rows = []
    for name, target in (("moorage", Target("<=", 0.01)), (PREFECT, None)):
        received, requests = traffic[name]
        note = f"{requests} request{'s' if requests != 1 else ''}"
        reading = Reading(name, float(received), "bytes")
        rows.append(Comparison("s3", label, reading, payload_reading, target, note))
    return rows


#: The round trip `_writes_with_latency` adds to every request: a typical S3 PutObject
#: from a machine in the same region takes 20 ms or more.
LATENCY = 0.02


def _writes_with_latency(ctx: Context) -> list[Comparison]:
    """The concurrent-writes workload again, with every request delayed by `LATENCY` in
    `servers.proxy.CountingProxy` (fewer records: Prefect waits out each round trip).
    Moto answers locally in a few ms, which hides what concurrency is for; this row
    shows the same two clients when the network costs what it does on real S3."""
    s3 = ctx.servers.s3()  # puts tests/ on sys.path, for servers.proxy

    from moorage_s3 import S3Storage

    from servers.proxy import CountingProxy

    n = max(ctx.sizes.s3_records // 5, 1)
    direct = s3.make_storage("hf-latency")
    pf_bucket = _new_bucket(s3, "pf-latency")
    with CountingProxy(s3.port) as proxy:
        hf = moorage_store(S3Storage(direct.url, **s3.options(proxy.endpoint)), cache=True)
        pf = _prefect_store(s3, pf_bucket, proxy.endpoint)
        hf.write(SMALL_RECORD, key="warm-up")
        pf.write(SMALL_RECORD, key="warm-up")
        proxy.delay = LATENCY
        samples = alternate(list(_write_rounds(hf, pf, n).items()), ctx.sizes.s3_rounds)
        proxy.delay = 0.0
        if hf.read(f"c0-{n - 1}").result != SMALL_RECORD:
            raise AssertionError("moorage's last record through the proxy is not what it wrote")
    return [
        Comparison(
            "s3",
            f"{n} small records written to S3 (moto), {LATENCY * 1000:.0f} ms round trip added",
            rate(MOORAGE, samples[MOORAGE]),
            rate(PREFECT_SEQUENTIAL, samples[PREFECT_SEQUENTIAL]),
            Target(">=", 10),
        )
    ]


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {
    "s3-writes": _concurrent_writes,
    "s3-latency": _writes_with_latency,
    "s3-exists": _exists_traffic,
}
