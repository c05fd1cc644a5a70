"""Listing 100,000 local records keeps memory flat (issue 14): `ResultStore.list` holds a
page at a time, never the whole listing. Measured in a fresh interpreter with
tracemalloc, against the same listing of a tenth as many records."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from moorage.results import ResultStore
from moorage.store.memory_cache import ResultCache

LISTER = textwrap.dedent(
    """
    import json, sys, tracemalloc
    from moorage.results import ResultStore
    from moorage.store.memory_cache import ResultCache

    store = ResultStore(result_storage=sys.argv[1], cache=ResultCache())
    tracemalloc.start()
    count = expired = 0
    for info in store.list("r/"):
        count += 1
        expired += info.expired
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"count": count, "expired": expired, "peak": peak}))
    """
)


def fill(root: Path, count: int) -> None:
    """``count`` records, each a copy of one record's bytes (writing them one by one
    through the store would take minutes), in folders of 1,000."""
    ResultStore(result_storage=root / "seed", cache=ResultCache()).write(1, key="one")
    data = (root / "seed" / "one").read_bytes()
    for folder in range((count + 999) // 1000):
        target = root / "records" / "r" / f"{folder:03d}"
        target.mkdir(parents=True)
        for n in range(min(1000, count - folder * 1000)):
            (target / f"{n:04d}").write_bytes(data)


def peak_listing(root: Path) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", LISTER, str(root / "records")],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, int] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_listing_100000_records_keeps_memory_flat(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    fill(small, 10_000)
    fill(large, 100_000)
    few, many = peak_listing(small), peak_listing(large)
    assert few["count"] == 10_000
    assert many["count"] == 100_000
    assert many["expired"] == 0
    # Ten times the records, about the same peak: a listing held whole would need ten
    # times the memory (well over 10 MB for 100,000 infos and keys).
    assert many["peak"] < 2 * few["peak"] + 1_000_000, (few, many)
    assert many["peak"] < 10_000_000, many
