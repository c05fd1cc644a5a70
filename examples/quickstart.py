"""moorage quick start: results that outlive the process that computed them.

``slow_square`` is a task: its results are stored in the default local store
(~/.moorage/storage, or MOORAGE_LOCAL_STORAGE_PATH) under a key made from its input
(without ``result_storage_key``, the key is a hash of the inputs and the source code).
This script calls it for a few inputs, then starts a second Python process that calls
it again and gets the stored results without running the body.

    python examples/quickstart.py
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import moorage
from moorage.results import ResultStore

INPUTS = [3, 4, 5]
#: Results expire, so running the demo again later computes afresh.
KEEP_FOR = dt.timedelta(minutes=10)
#: The inputs this process actually computed (the body ran).
computed: list[int] = []


@moorage.task(cache_expiration=KEEP_FOR, result_storage_key="quickstart/square-{parameters[n]}")
def slow_square(n: int) -> dict[str, object]:
    """Stands in for an expensive computation."""
    computed.append(n)
    time.sleep(0.5)
    return {"n": n, "square": n * n, "computed_at": dt.datetime.now(dt.UTC)}


def run(role: str) -> int:
    for n in INPUTS:
        started = time.perf_counter()
        value = slow_square(n)
        how = "computed and stored" if n in computed else "read from the store"
        print(
            f"[{role}] slow_square({n}) = {value['square']:>2}  {how} "
            f"in {1000 * (time.perf_counter() - started):.1f} ms"
        )
    return len(computed)


def main() -> None:
    if "--second-process" in sys.argv:
        recomputed = run("second process")
        if recomputed:
            sys.exit(f"the second process had to recompute {recomputed} result(s)")
        print("[second process] every result came from the store: nothing was recomputed")
        return
    storage = ResultStore().result_storage
    assert storage is not None
    print(f"records live in {storage.url}")
    run("first process")
    subprocess.run([sys.executable, __file__, "--second-process"], check=True)
    print("where the records are:")
    for key in storage.list_paths("quickstart/"):
        print(f"  {storage.resolve_path(key)}")


if __name__ == "__main__":
    main()
