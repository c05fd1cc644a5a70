"""How big a run is (`Sizes`: the full run and the quick one) and what a workload is
handed (`Context`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from benchmarks.servers import Servers

__all__ = ["FULL", "QUICK", "Context", "Sizes"]

MB = 1_000_000


@dataclass(frozen=True)
class Sizes:
    """Counts and sizes of one run. Rounds are odd in the full run, so a median is one
    of the samples."""

    rounds: int
    small_records: int  # records written or read per contender and round
    cache_hits: int  # memory-cache reads per contender and round
    large_bytes: int  # the large payload
    large_rounds: int
    memory_rounds: int  # fresh processes per contender and operation
    s3_records: int  # records per contender and round, on moto
    s3_rounds: int
    exists_bytes: int  # the record whose existence is checked on S3
    lock_ops: int  # acquire+release pairs per contender and round
    task_args: int  # distinct arguments of the decorated function
    task_calls: int  # calls per contender and round, in one process
    task_rounds: int  # process pairs per contender (second-process hits)
    import_runs: int  # fresh interpreters per library
    prune_records: int  # records in each bucket the prune workload empties of expired ones


FULL = Sizes(
    rounds=7,
    small_records=1000,
    cache_hits=5000,
    large_bytes=256 * MB,
    large_rounds=7,
    memory_rounds=3,
    s3_records=1000,
    s3_rounds=3,
    exists_bytes=1 * MB,
    lock_ops=1000,
    task_args=200,
    task_calls=2000,
    task_rounds=5,
    import_runs=9,
    prune_records=20_000,
)

QUICK = Sizes(
    rounds=2,
    small_records=20,
    cache_hits=50,
    large_bytes=1 * MB,
    large_rounds=1,
    memory_rounds=1,
    s3_records=20,
    s3_rounds=1,
    exists_bytes=1 * MB,
    lock_ops=20,
    task_args=10,
    task_calls=50,
    task_rounds=1,
    import_runs=2,
    prune_records=200,
)


@dataclass(frozen=True)
class Context:
    """What a workload gets: the sizes, a scratch folder of its own, the servers."""

    sizes: Sizes
    scratch: Path
    servers: Servers
    log: logging.Logger

    def folder(self, *parts: str) -> Path:
        """A folder below the workload's scratch folder (created)."""
        path = self.scratch.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path
