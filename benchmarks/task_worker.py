"""Worker: one side of the second-process task benchmark.

``python -m benchmarks.task_worker LIBRARY ROLE FOLDER N`` with LIBRARY ``moorage`` or
``joblib`` and ROLE:

- ``compute`` (process A): decorate `benchmarks.task_subject.subject` with storage in
  FOLDER and call it for the arguments 0 .. N-1, so each result is computed and stored;
- ``lookup`` (process B): decorate it the same way and time each of the N calls; none of
  them has been made in this process, so each is served from storage. Answers the
  median call and, apart, the first call (which carries the one-off setup). Fails if
  the function's body ran: that would be a miss, not a hit.

Importing the library is not timed (see `benchmarks.imports` for that).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.isolation import guard_if_asked
from benchmarks.task_subject import CALLS, subject
from benchmarks.workers import reply

__all__ = ["decorate"]


def decorate(library: str, folder: str) -> Callable[[int], Any]:
    """``subject`` cached on disk in ``folder`` by ``library``."""
    if library == "moorage":
        import moorage

        task: Callable[[int], Any] = moorage.task(persist_result=True, result_storage=folder)(
            subject
        )
        return task
    if library == "joblib":
        from joblib import Memory  # type: ignore[import-untyped]

        cached: Callable[[int], Any] = Memory(location=folder, verbose=0).cache(subject)
        return cached
    raise ValueError(f"library is 'moorage' or 'joblib', not {library!r}")


def main(argv: list[str]) -> None:
    guard_if_asked()
    library, role, folder, count_text = argv
    count = int(count_text)
    fn = decorate(library, folder)
    if role == "compute":
        for i in range(count):
            fn(i)
        reply({"computed": CALLS[0]})
        return
    if role != "lookup":
        raise ValueError(f"role is 'compute' or 'lookup', not {role!r}")
    times = []
    for i in range(count):
        start = time.perf_counter()
        value = fn(i)
        times.append(time.perf_counter() - start)
        if value != [i * 0.5 + k for k in range(32)]:
            raise AssertionError(f"{library} returned a wrong value for {i}")
    if CALLS[0]:
        raise AssertionError(f"{library} ran the function {CALLS[0]} times out of {count} calls")
    reply({"first": times[0], "median": statistics.median(times)})


if __name__ == "__main__":
    main(sys.argv[1:])
