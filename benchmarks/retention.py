"""Retention on S3 (moto): ``moorage prune --expired --yes`` against a hand-made prune.

Two buckets are filled alike with ``prune_records`` small records, every tenth of them
expired (written with an expiration in the past), the others expiring tomorrow or never.
The subject is the real command, run as a user runs it (a fresh process, the storage
given by ``MOORAGE_STORAGE`` and the SDK's environment variables), timed as a whole:
interpreter start, listing, the heads it reads concurrently and its batched deletes.
The baseline is what a user writes without it: list the keys, read each record's head
(one ranged GET), and delete the expired ones one request at a time, in one thread.
Both must leave exactly the unexpired records; the row fails otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from benchmarks.config import Context
from benchmarks.harness import Comparison, Reading, Target

if TYPE_CHECKING:
    from moorage.storage import Storage

__all__ = ["WORKLOADS"]

SUBJECT = "moorage prune --expired --yes"
BASELINE = "head each record, delete one key at a time"
#: One record in this many is expired.
EXPIRED_EVERY = 10
#: Writes in flight while the buckets are filled.
FILL_AT_ONCE = 32


def _expiration(number: int) -> dt.timedelta | None:
    if number % EXPIRED_EVERY == 0:
        return dt.timedelta(seconds=-60)
    return dt.timedelta(days=1) if number % 2 else None


def _key(number: int) -> str:
    return f"runs/{number:06d}"


async def _fill(storage: Storage, count: int) -> set[str]:
    """Write ``count`` records; the keys of the unexpired ones."""
    from moorage.results import ResultStore

    store = ResultStore(result_storage=storage, serializer="json", cache_result_in_memory=False)
    limit = asyncio.Semaphore(FILL_AT_ONCE)

    async def write(number: int) -> None:
        async with limit:
            await store.awrite({"run": number}, key=_key(number), expiration=_expiration(number))

    await asyncio.gather(*(write(number) for number in range(count)))
    return {_key(n) for n in range(count) if n % EXPIRED_EVERY}


def _hand_made_prune(storage: Storage) -> int:
    """The baseline: every head read and every delete one request after another."""
    from moorage.errors import RecordCorrupted, RecordNotFound
    from moorage.operations import run_sync
    from moorage.results import ResultStore
    from moorage.store.reading import head_op

    store = ResultStore(result_storage=storage, serializer="json", cache_result_in_memory=False)
    removed = 0
    for key in list(storage.list_paths()):
        try:
            parsed = run_sync(head_op(store, storage, key))
        except (RecordNotFound, RecordCorrupted):
            continue
        if parsed is not None and parsed.metadata.is_expired():
            storage.delete_path(key)
            removed += 1
    return removed


def _prune_command(ctx: Context, url: str, endpoint: str | None = None) -> dict[str, object]:
    """Run the command in a fresh process (reaching S3 at ``endpoint``, default moto
    itself); its ``--json`` report."""
    s3 = ctx.servers.s3()
    home = ctx.folder("prune-home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MOORAGE_", "AWS_"))},
        **s3.env(),
        **({"AWS_ENDPOINT_URL_S3": endpoint} if endpoint else {}),
        "HOME": str(home),
        "MOORAGE_STORAGE": url,
        "NO_COLOR": "1",
    }
    command = [sys.executable, "-m", "moorage", "prune", "--expired", "--yes", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command[1:])} failed ({done.returncode}): {done.stderr}")
    report: dict[str, object] = json.loads(done.stdout)
    return report


def _check(storage: Storage, kept: set[str], who: str) -> None:
    left = set(storage.list_paths())
    if left != kept:
        raise AssertionError(
            f"{who} left {len(left)} records, expected the {len(kept)} unexpired ones "
            f"({len(left - kept)} should have gone, {len(kept - left)} went wrongly)"
        )


def _prune(ctx: Context) -> list[Comparison]:
    s3 = ctx.servers.s3()
    count = ctx.sizes.prune_records
    subject_storage = s3.make_storage("prune-cli", prefix="")
    baseline_storage = s3.make_storage("prune-hand", prefix="")
    kept = asyncio.run(_fill(subject_storage, count))
    asyncio.run(_fill(baseline_storage, count))
    expired = count - len(kept)

    start = time.perf_counter()
    removed = _hand_made_prune(baseline_storage)
    baseline_seconds = time.perf_counter() - start
    _check(baseline_storage, kept, "the hand-made prune")
    if removed != expired:
        raise AssertionError(f"the hand-made prune removed {removed}, not {expired}")

    start = time.perf_counter()
    report = _prune_command(ctx, subject_storage.url)
    subject_seconds = time.perf_counter() - start
    _check(subject_storage, kept, SUBJECT)
    if report.get("records") != expired:
        raise AssertionError(f"{SUBJECT} reports {report.get('records')} removed, not {expired}")

    label = f"prune {count:,} records on S3 (moto), {expired:,} of them expired"
    return [
        Comparison(
            "retention",
            label,
            Reading(SUBJECT, count / subject_seconds, "ops/s", subject_seconds / count),
            Reading(BASELINE, count / baseline_seconds, "ops/s", baseline_seconds / count),
            Target(">=", 10),
            note=(
                f"records examined per second, over one whole run each ({subject_seconds:.1f} s "
                f"against {baseline_seconds:.1f} s); the command's figure includes its start-up"
            ),
        )
    ]


#: The round trip `_prune_with_latency` adds to every request, about what a request to
#: S3 costs from a machine in the same region.
LATENCY = 0.02


def _prune_with_latency(ctx: Context) -> list[Comparison]:
    """The same comparison on a tenth of the records, every request held `LATENCY` in
    the test suite's counting proxy: on moto a request costs CPU, on S3 it costs a
    round trip, which concurrent head reads overlap. An information row."""
    s3 = ctx.servers.s3()  # puts tests/ on sys.path, for servers.proxy

    from moorage_s3 import S3Storage

    from servers.proxy import CountingProxy

    count = max(ctx.sizes.prune_records // 10, EXPIRED_EVERY)
    subject_storage = s3.make_storage("prune-cli-rtt", prefix="")
    baseline_storage = s3.make_storage("prune-hand-rtt", prefix="")
    kept = asyncio.run(_fill(subject_storage, count))
    asyncio.run(_fill(baseline_storage, count))
    expired = count - len(kept)
    with CountingProxy(s3.port) as proxy:
        proxy.delay = LATENCY
        proxied = S3Storage(baseline_storage.url, **s3.options(proxy.endpoint))
        start = time.perf_counter()
        removed = _hand_made_prune(proxied)
        baseline_seconds = time.perf_counter() - start
        start = time.perf_counter()
        report = _prune_command(ctx, subject_storage.url, proxy.endpoint)
        subject_seconds = time.perf_counter() - start
    _check(baseline_storage, kept, "the hand-made prune")
    _check(subject_storage, kept, SUBJECT)
    if removed != expired or report.get("records") != expired:
        raise AssertionError(
            f"expected {expired} removed, got {removed} and {report.get('records')}"
        )
    return [
        Comparison(
            "retention",
            f"prune {count:,} records on S3 (moto), {LATENCY * 1000:.0f} ms round trip added",
            Reading(SUBJECT, count / subject_seconds, "ops/s", subject_seconds / count),
            Reading(BASELINE, count / baseline_seconds, "ops/s", baseline_seconds / count),
            note=(
                f"information: {subject_seconds:.1f} s against {baseline_seconds:.1f} s; "
                "the target row above has no added latency"
            ),
        )
    ]


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS = {"retention-s3": _prune, "retention-s3-latency": _prune_with_latency}
