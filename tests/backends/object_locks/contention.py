"""One contender of the race tests, shared by the test's threads and by the child
processes it starts (they import this module by path): take the lock, count any overlap
with another holder, increment a counter file slowly, release; ``rounds`` times."""

from __future__ import annotations

import os
import time
from pathlib import Path

from moorage.locking import LockManager

#: How long a holder sits between reading and writing the counter: the window in which
#: a second holder, if the lock let one in, would be seen and would lose an increment.
WINDOW = 0.005


def contend(manager: LockManager, key: str, holder: str, rounds: int, folder: Path) -> int:
    """Run ``rounds`` locked increments as ``holder``; return how many times another
    holder was found inside the lock (an ``inside`` marker, created exclusively)."""
    inside, counter = folder / "inside", folder / "counter"
    overlaps = 0
    for _ in range(rounds):
        if not manager.acquire_lock(key, holder, acquire_timeout=120):
            raise AssertionError(f"{holder} waited 120 s for the lock")
        try:
            try:
                marker = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                overlaps += 1
                marker = None
            value = int(counter.read_text() or "0") if counter.exists() else 0
            time.sleep(WINDOW)
            counter.write_text(str(value + 1))
            if marker is not None:
                os.close(marker)
                os.unlink(inside)
        finally:
            manager.release_lock(key, holder)
    return overlaps
