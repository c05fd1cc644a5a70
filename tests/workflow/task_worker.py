"""A decorated function called from a separate process by the task tests.

``python task_worker.py RUNS_FILE N [--refresh] [--fail]`` calls ``square(N)`` and prints
the result; every run of the body appends a line to RUNS_FILE, so the tests can count
how often it really ran. Results go to the default store (MOORAGE_LOCAL_STORAGE_PATH).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import moorage

RUNS = Path(sys.argv[1]) if __name__ == "__main__" else Path(os.devnull)
EXPIRE = float(os.environ.get("TASK_WORKER_EXPIRE", "3600"))


@moorage.task(cache_expiration=dt.timedelta(seconds=EXPIRE))
def square(n: int, fail: bool = False) -> dict[str, int]:
    with RUNS.open("a") as runs:
        runs.write(f"{os.getpid()}\n")
    if fail:
        raise ValueError(f"asked to fail for {n}")
    return {"n": n, "square": n * n}


if __name__ == "__main__":
    n = int(sys.argv[2])
    task = square.with_options(refresh_cache=True) if "--refresh" in sys.argv else square
    try:
        print(task(n, fail="--fail" in sys.argv)["square"])
    except ValueError as exc:
        print(f"failed: {exc}")
