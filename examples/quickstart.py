"""holdfast quick start: results that outlive the process that computed them.

An expensive function's results are stored in the default local store
(~/.holdfast/storage, or HOLDFAST_LOCAL_STORAGE_PATH), keyed by the function's inputs.
This script computes what is missing, then starts a second Python process that finds
the stored results and reads them instead of recomputing.

    python examples/quickstart.py
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import time

from holdfast.results import ResultStore

INPUTS = [3, 4, 5]
#: Records expire, so running the demo again later computes afresh.
KEEP_FOR = dt.timedelta(minutes=10)


def slow_square(n: int) -> dict[str, object]:
    """Stands in for an expensive computation."""
    time.sleep(0.5)
    return {"n": n, "square": n * n, "computed_at": dt.datetime.now(dt.UTC)}


def key_for(fn_name: str, *args: object) -> str:
    """A storage key derived from the function and its inputs."""
    digest = hashlib.sha256(repr((fn_name, args)).encode()).hexdigest()[:16]
    return f"quickstart/{fn_name}/{digest}"


def cached_call(store: ResultStore, n: int) -> tuple[dict[str, object], bool]:
    """Return slow_square(n), from the store when a valid record exists."""
    key = key_for("slow_square", n)
    if store.exists(key):
        return store.read(key).result, False
    value = slow_square(n)
    store.write(value, key=key, expiration=KEEP_FOR)
    return value, True


def run(role: str) -> int:
    store = ResultStore()
    recomputed = 0
    for n in INPUTS:
        started = time.perf_counter()
        value, computed = cached_call(store, n)
        recomputed += computed
        how = "computed and stored" if computed else "read from the store"
        print(
            f"[{role}] slow_square({n}) = {value['square']:>2}  {how} "
            f"in {1000 * (time.perf_counter() - started):.1f} ms"
        )
    return recomputed


def main() -> None:
    if "--second-process" in sys.argv:
        recomputed = run("second process")
        if recomputed:
            sys.exit(f"the second process had to recompute {recomputed} result(s)")
        print("[second process] every result came from the store: nothing was recomputed")
        return
    store = ResultStore()
    assert store.result_storage is not None
    print(f"records live in {store.result_storage.url}")
    run("first process")
    subprocess.run([sys.executable, __file__, "--second-process"], check=True)
    print("where the records are:")
    for n in INPUTS:
        print(f"  {store.result_storage.resolve_path(key_for('slow_square', n))}")


if __name__ == "__main__":
    main()
