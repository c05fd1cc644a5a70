"""Objects that travel to another process, and what that process does with them.

``python -m workflow.travellers FILE SCENARIO`` (with ``tests/`` on the path) unpickles
the object in FILE and prints one JSON line saying what it found there. The tests pickle
in the parent, run this in a fresh interpreter, and compare.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from typing import Any

import moorage


@moorage.task
def whose_pid(n: int) -> dict[str, int]:
    """Which process computed ``n``: a stored result keeps the parent's pid."""
    return {"n": n, "pid": os.getpid()}


@moorage.flow
def a_flow(n: int) -> dict[str, int]:
    return whose_pid(n)


def _store(store: Any) -> dict[str, Any]:
    found = store.read("shipped").result
    store.write("from the child", key="child")
    return {"read": found, "exists": store.exists("shipped"), "cache": len(store.cache)}


def _storage(storage: Any) -> dict[str, Any]:
    found = storage.read_path("shipped").decode()
    storage.write_path("child", b"from the child")
    return {"read": found, "exists": storage.exists("shipped")}


def _task(task: Any) -> dict[str, Any]:
    return {"result": task(21), "here": os.getpid()}


SCENARIOS = {"store": _store, "storage": _storage, "task": _task}


def main() -> None:
    path, scenario = sys.argv[1], sys.argv[2]
    with open(path, "rb") as shipped:
        obj = pickle.load(shipped)  # cloudpickle output loads with plain pickle too
    print(json.dumps(SCENARIOS[scenario](obj)))


if __name__ == "__main__":
    main()
