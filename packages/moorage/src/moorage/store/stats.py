"""Hit and miss counts: what a store and the stores derived from it for tasks and flows
have read and written in this process (`ResultStore.stats`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["StoreCounters", "StoreStats"]


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts since the store was made (or unpickled): reads answered from the memory
    cache (``hits_memory``) and from storage (``hits_storage``), reads that found no
    usable record (``misses``: missing, expired or unreadable), records written
    (``writes``), and the bytes read from and written to storage."""

    hits_memory: int = 0
    hits_storage: int = 0
    misses: int = 0
    writes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    @property
    def hits(self) -> int:
        """Reads answered by a record, from memory or from storage."""
        return self.hits_memory + self.hits_storage

    @property
    def hit_ratio(self) -> float | None:
        """Hits over reads; None before the first read."""
        reads = self.hits + self.misses
        return None if reads == 0 else self.hits / reads


class StoreCounters:
    """The counts behind `StoreStats`, shared by a store and every store derived from it
    (a task's, a flow's), safe to bump from many threads. Not pickled: a store that
    travels counts afresh where it lands."""

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(StoreStats.__slots__, 0)

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            self._counts[name] += count

    def read(self, size: int) -> None:
        """A read answered from storage, ``size`` bytes."""
        lock, counts = self._lock, self._counts
        lock.acquire()  # not `with`: this runs on every read, and the block cannot raise
        counts["hits_storage"] += 1
        counts["bytes_read"] += size
        lock.release()

    def wrote(self, size: int) -> None:
        """A record of ``size`` bytes written."""
        with self._lock:
            self._counts["writes"] += 1
            self._counts["bytes_written"] += size

    def snapshot(self) -> StoreStats:
        with self._lock:
            return StoreStats(**self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(StoreStats.__slots__, 0)

    def __repr__(self) -> str:
        return f"StoreCounters({self.snapshot()})"
