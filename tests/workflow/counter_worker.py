"""One worker of the counter test: increments a counter record N times, each time in a
SERIALIZABLE transaction. Run as ``python counter_worker.py STORAGE LOCKS N``."""

from __future__ import annotations

import sys

from moorage.results import ResultStore


def main(storage: str, locks: str, times: int) -> None:
    store = ResultStore(result_storage=storage, lock_manager=locks, serializer="json")
    for _ in range(times):
        with store.transaction("counter", "SERIALIZABLE", overwrite=True) as txn:
            record = txn.read()
            txn.stage((record.result if record is not None else 0) + 1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
