"""Cache keys of large data: `moorage.keys.stable_hash` of a NumPy array and of a
numeric pandas DataFrame, against BLAKE2b over the same bytes (the hash stable_hash
itself feeds, so the ratio is what the canonical encoding costs on top of hashing).

- hashing-numpy: a float64 array of 100 MB (``large_bytes`` in a quick run, when
  smaller), C-contiguous.
- hashing-pandas: a DataFrame of two float64 and two int64 columns, 100 MB of values,
  built column by column (each column its own buffer); and the same values built from
  one C-ordered 2-D array, whose columns are strided (each is copied once before it is
  hashed). The baseline hashes the four columns' buffers.

Contenders alternate, ``rounds`` times each; the figure is MB/s over the median time of
one hash (10^6 bytes per MB). The target: at least 0.5x BLAKE2b's speed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.config import MB, Context
from benchmarks.harness import Comparison, Target, alternate, per_op_seconds, throughput
from benchmarks.report import format_bytes
from moorage.keys.encoding import stable_hash

__all__ = ["WORKLOADS"]

MOORAGE = "moorage stable_hash"
BLAKE2B = "BLAKE2b over the bytes"
TARGET = Target(">=", 0.5)
#: The size of the payload in the full run; a quick run takes ``large_bytes`` if smaller.
PAYLOAD = 100 * MB


def _size(ctx: Context) -> int:
    return min(PAYLOAD, ctx.sizes.large_bytes)


def _timed(op: Callable[[], object]) -> Callable[[int], float]:
    def run(_round: int) -> float:
        return per_op_seconds(lambda _i: op(), 1)

    return run


def _blake2b(buffers: list[Any]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for buffer in buffers:
        digest.update(memoryview(buffer).cast("B"))
    return digest.digest()


def _compare(
    workload: str, label: str, value: Any, buffers: list[Any], nbytes: int, rounds: int
) -> Comparison:
    """stable_hash(value) against BLAKE2b over ``buffers`` (the same ``nbytes`` bytes)."""
    stable_hash(value)  # untimed: loads the hasher table and the library's hasher
    _blake2b(buffers)
    samples = alternate(
        [
            (MOORAGE, _timed(lambda: stable_hash(value))),
            (BLAKE2B, _timed(lambda: _blake2b(buffers))),
        ],
        rounds,
    )
    return Comparison(
        workload,
        label.format(size=format_bytes(nbytes)),
        throughput(MOORAGE, samples[MOORAGE], nbytes),
        throughput(BLAKE2B, samples[BLAKE2B], nbytes),
        TARGET,
    )


def _numpy(ctx: Context) -> list[Comparison]:
    nbytes = _size(ctx) // 8 * 8
    array = np.random.default_rng(1).random(nbytes // 8)
    return [
        _compare(
            "hashing-numpy", "{size} NumPy float64 array", array, [array], nbytes, ctx.sizes.rounds
        )
    ]


def _pandas(ctx: Context) -> list[Comparison]:
    import pandas as pd

    rows = _size(ctx) // 32
    rng = np.random.default_rng(2)
    columns = {
        "f1": rng.random(rows),
        "f2": rng.normal(size=rows),
        "i1": rng.integers(0, 1000, rows),
        "i2": rng.integers(-(2**62), 2**62, rows),
    }
    nbytes = rows * 32
    by_column = pd.DataFrame(columns)
    buffers = [by_column[name].to_numpy() for name in columns]
    rows_out = [
        _compare(
            "hashing-pandas",
            "{size} DataFrame, 2 float64 + 2 int64 columns",
            by_column,
            buffers,
            nbytes,
            ctx.sizes.rounds,
        )
    ]
    del by_column
    block = np.empty((rows, 4), dtype=np.float64)
    for i, name in enumerate(("f1", "f2")):
        block[:, i] = columns[name]
    block[:, 2] = rng.random(rows)
    block[:, 3] = rng.random(rows)
    from_block = pd.DataFrame(block, columns=list(columns))
    rows_out.append(
        _compare(
            "hashing-pandas",
            "{size} DataFrame from a C-ordered 2-D float64 array",
            from_block,
            [block],
            nbytes,
            ctx.sizes.rounds,
        )
    )
    return rows_out


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {
    "hashing-numpy": _numpy,
    "hashing-pandas": _pandas,
}
