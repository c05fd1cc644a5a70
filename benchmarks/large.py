"""Large payloads on local disk: a ``bytes`` value and a float64 NumPy array of
``large_bytes`` each (256 MB in the full run).

- throughput: moorage (memory cache off, so a read goes to the file) and raw files
  write the payload under one key, alternating, ``large_rounds`` times; before each
  write the contender's previous file is deleted and dirty pages are flushed, untimed.
  Then each reads its file back the same number of times (from the page cache). MB/s
  is the payload's size over the median time of one write or read (10^6 bytes per MB).
- memory: `benchmarks.memory_probe` in a fresh process per contender, operation and
  round; the peak extra memory is reported as a multiple of the payload.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.config import Context
from benchmarks.contenders import RawFiles, moorage_store
from benchmarks.harness import (
    Comparison,
    Reading,
    Target,
    alternate,
    median,
    per_op_seconds,
    throughput,
)
from benchmarks.memory_probe import make_payload
from benchmarks.report import format_bytes
from benchmarks.workers import run_worker
from moorage.results import ResultStore

__all__ = ["WORKLOADS"]

MOORAGE = "moorage"
RAW = "raw file"
KINDS = {"bytes": "bytes value", "numpy": "NumPy float64 array"}
KEY = "large"


def _one(op: Callable[[], Any]) -> Callable[[int], float]:
    def run(_round: int) -> float:
        return per_op_seconds(lambda _i: op(), 1)

    return run


def _check(kind: str, value: Any, nbytes: int, who: str) -> None:
    size = len(value) if kind == "bytes" else int(value.nbytes)
    if size != nbytes:
        raise AssertionError(f"{who} read back {size} bytes, not {nbytes}")


def _settled(folder: Path, op: Callable[[], object]) -> Callable[[int], float]:
    """A round that times ``op`` once, after deleting the large files it left in
    ``folder`` and flushing dirty pages (``os.sync``), both untimed: a write then pays
    neither for freeing the last round's blocks nor for writing back earlier rounds."""

    def run(_round: int) -> float:
        for old in folder.glob(f"{KEY}*"):
            old.unlink()
        os.sync()
        return per_op_seconds(lambda _i: op(), 1)

    return run


def _timed_writes(
    hf: ResultStore, raw: RawFiles, folders: dict[str, Path], value: Any, rounds: int
) -> dict[str, list[float]]:
    """Write ``value`` once per contender and round, alternating; the payload is freed
    when this returns, before the reads."""
    return alternate(
        [
            (MOORAGE, _settled(folders[MOORAGE], lambda: hf.write(value, key=KEY))),
            (RAW, _settled(folders[RAW], lambda: raw.write(value, KEY))),
        ],
        rounds,
    )


def _throughput(ctx: Context, kind: str) -> list[Comparison]:
    nbytes = ctx.sizes.large_bytes
    rounds = ctx.sizes.large_rounds
    folders = {MOORAGE: ctx.folder(kind, "moorage"), RAW: ctx.folder(kind, "raw")}
    hf = moorage_store(folders[MOORAGE], cache=False)
    raw = RawFiles(folders[RAW])
    warm = make_payload(kind, 1 << 20)
    hf.write(warm, key="warm-up")
    hf.read("warm-up")
    raw.write(warm, "warm-up")
    raw.read("warm-up")
    del warm

    writes = _timed_writes(hf, raw, folders, make_payload(kind, nbytes), rounds)
    _check(kind, hf.read(KEY).result, nbytes, MOORAGE)
    _check(kind, raw.read(KEY), nbytes, RAW)
    reads = alternate(
        [
            (MOORAGE, _one(lambda: hf.read(KEY).result)),
            (RAW, _one(lambda: raw.read(KEY))),
        ],
        rounds,
    )
    size = format_bytes(nbytes)
    return [
        Comparison(
            "large",
            f"{size} {KINDS[kind]}, write",
            throughput(MOORAGE, writes[MOORAGE], nbytes),
            throughput(RAW, writes[RAW], nbytes),
            Target(">=", 0.8),
        ),
        Comparison(
            "large",
            f"{size} {KINDS[kind]}, read",
            throughput(MOORAGE, reads[MOORAGE], nbytes),
            throughput(RAW, reads[RAW], nbytes),
            Target(">=", 0.8),
        ),
    ]


def _memory(ctx: Context, kind: str) -> list[Comparison]:
    nbytes = ctx.sizes.large_bytes
    folders = {MOORAGE: ctx.folder(kind, "moorage"), RAW: ctx.folder(kind, "raw")}
    probe_names = {MOORAGE: "moorage", RAW: "raw"}

    def probe(who: str, op: str, folder: Path) -> Callable[[int], float]:
        def run(_round: int) -> float:
            answer = run_worker(
                "benchmarks.memory_probe", probe_names[who], op, kind, str(nbytes), str(folder)
            )
            methods.add(str(answer["method"]))
            return float(answer["extra"])

        return run

    methods: set[str] = set()
    payload = Reading("payload", float(nbytes), "bytes")
    rows = []
    for op in ("write", "read"):
        samples = alternate(
            [(who, probe(who, op, folder)) for who, folder in folders.items()],
            ctx.sizes.memory_rounds,
        )
        exact = methods == {"VmHWM after clear_refs"}
        note = "" if exact else f"peak from {', '.join(sorted(methods))}"
        label = f"{format_bytes(nbytes)} {KINDS[kind]}, {op}: peak extra memory"
        for who, target in ((MOORAGE, Target("<=", 1.2)), (RAW, None)):
            reading = Reading(who, median(samples[who]), "bytes")
            rows.append(Comparison("large", label, reading, payload, target, note))
    return rows


def _family(kind: str) -> Callable[[Context], list[Comparison]]:
    def run(ctx: Context) -> list[Comparison]:
        return [*_throughput(ctx, kind), *_memory(ctx, kind)]

    return run


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {
    "large-bytes": _family("bytes"),
    "large-numpy": _family("numpy"),
}
