"""Small records on local disk: write, read from a fresh store, memory-cache hit.

- write: each round, each contender writes ``small_records`` new keys (`SMALL_RECORD`)
  into its own folder; moorage and Prefect with their default settings, raw files by
  temp file and rename.
- read: the keys are written first; then fresh stores with the memory cache off
  (``cache_result_in_memory=False``) read every key once per round, and raw files are
  opened, read and unpickled.
- memory-cache hit: a store with the cache on writes one key, then reads it
  ``cache_hits`` times per round.

Each contender does one untimed warm-up operation before the rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.config import Context
from benchmarks.contenders import (
    PREFECT,
    SMALL_RECORD,
    RawFiles,
    moorage_store,
    prefect_local_store,
)
from benchmarks.harness import Comparison, Target, alternate, per_op_seconds, rate

__all__ = ["WORKLOADS"]

MOORAGE = "moorage"
RAW = "raw temp+rename"
RAW_READ = "raw open+unpickle"


def _batch(op: Callable[[int], object], count: int) -> Callable[[int], float]:
    def run(_round: int) -> float:
        return per_op_seconds(op, count)

    return run


def _writes(ctx: Context) -> list[Comparison]:
    n = ctx.sizes.small_records
    hf = moorage_store(ctx.folder("write", "moorage"), cache=True)
    pf = prefect_local_store(ctx.folder("write", "prefect"), cache=True)
    raw = RawFiles(ctx.folder("write", "raw"))
    writers: dict[str, Callable[[Any, str], object]] = {
        MOORAGE: lambda v, k: hf.write(v, key=k),
        RAW: raw.write,
        PREFECT: lambda v, k: pf.write(v, key=k),
    }
    for write in writers.values():
        write(SMALL_RECORD, "warm-up")

    def contender(name: str) -> Callable[[int], float]:
        write = writers[name]

        def run(round_index: int) -> float:
            prefix = f"w{round_index}-"
            return per_op_seconds(lambda i: write(SMALL_RECORD, f"{prefix}{i}"), n)

        return run

    samples = alternate([(name, contender(name)) for name in writers], ctx.sizes.rounds)
    subject = rate(MOORAGE, samples[MOORAGE])
    label = "small record write, local disk"
    return [
        Comparison("local", label, subject, rate(RAW, samples[RAW]), Target(">=", 0.8)),
        Comparison("local", label, subject, rate(PREFECT, samples[PREFECT]), Target(">=", 3)),
    ]


def _reads(ctx: Context) -> list[Comparison]:
    n = ctx.sizes.small_records
    keys = [f"r{i}" for i in range(n)]
    hf_root, pf_root = ctx.folder("read", "moorage"), ctx.folder("read", "prefect")
    raw = RawFiles(ctx.folder("read", "raw"))
    hf_writer = moorage_store(hf_root, cache=False)
    pf_writer = prefect_local_store(pf_root, cache=False)
    for key in keys:
        hf_writer.write(SMALL_RECORD, key=key)
        pf_writer.write(SMALL_RECORD, key=key)
        raw.write(SMALL_RECORD, key)
    hf = moorage_store(hf_root, cache=False)
    pf = prefect_local_store(pf_root, cache=False)
    readers: dict[str, Callable[[int], Any]] = {
        MOORAGE: lambda i: hf.read(keys[i]).result,
        RAW_READ: lambda i: raw.read(keys[i]),
        PREFECT: lambda i: pf.read(keys[i]).result,
    }
    for name, read in readers.items():
        if read(0) != SMALL_RECORD:
            raise AssertionError(f"{name} read back something else than it wrote")
    samples = alternate(
        [(name, _batch(read, n)) for name, read in readers.items()], ctx.sizes.rounds
    )
    subject = rate(MOORAGE, samples[MOORAGE])
    label = "small record read, fresh store (no memory cache)"
    return [
        Comparison("local", label, subject, rate(PREFECT, samples[PREFECT]), Target(">=", 10)),
        Comparison("local", label, subject, rate(RAW_READ, samples[RAW_READ]), Target(">=", 0.7)),
    ]


def _cache_hits(ctx: Context) -> list[Comparison]:
    hf = moorage_store(ctx.folder("cache", "moorage"), cache=True)
    pf = prefect_local_store(ctx.folder("cache", "prefect"), cache=True)
    hf.write(SMALL_RECORD, key="hot")
    pf.write(SMALL_RECORD, key="hot")
    readers: dict[str, Callable[[int], Any]] = {
        MOORAGE: lambda _i: hf.read("hot").result,
        PREFECT: lambda _i: pf.read("hot").result,
    }
    samples = alternate(
        [(name, _batch(read, ctx.sizes.cache_hits)) for name, read in readers.items()],
        ctx.sizes.rounds,
    )
    return [
        Comparison(
            "local",
            "memory-cache hit (read of a key just written)",
            rate(MOORAGE, samples[MOORAGE]),
            rate(PREFECT, samples[PREFECT]),
            Target(">=", 20),
        )
    ]


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {
    "local-write": _writes,
    "local-read": _reads,
    "local-cache": _cache_hits,
}
