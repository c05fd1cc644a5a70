"""A task's source key is the same wherever the task runs.

A function defined in a notebook has source only in the notebook's process (IPython
keeps each cell in ``linecache``). Sent to a worker by value, its task keys calls with
the source key computed where it was defined, never with a hash of bytecode, which
differs from the source hash and between Python versions.
"""

from __future__ import annotations

import inspect
import json
import linecache
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cloudpickle

import moorage
from moorage.workflow.cache_policies import INPUTS, source_key

CELL = """
import moorage

@moorage.task
def cell_square(n):
    return n * n
"""

CHILD = """
import inspect, json, pickle, sys
task = pickle.loads(open(sys.argv[1], "rb").read())
try:
    inspect.getsource(task.fn)
    readable = True
except OSError:
    readable = False
print(json.dumps({"key": task.source_key(), "readable": readable, "result": task.fn(7)}))
"""


def _notebook_task(name: str, cell: str = CELL, task: str = "cell_square") -> Any:
    """A task defined as IPython defines a cell's: its source only in ``linecache``."""
    filename = f"<ipython-input-{name}>"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(cell, filename, "exec"), namespace)
    return namespace[task]


def _in_child(tmp_path: Path, task: Any, child: str = CHILD) -> dict[str, Any]:
    shipped = tmp_path / "task.pickle"
    shipped.write_bytes(cloudpickle.dumps(task))
    done = subprocess.run(
        [sys.executable, "-c", child, str(shipped)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_a_notebook_task_keys_alike_where_its_source_is_unreadable(tmp_path: Path) -> None:
    task = _notebook_task("1-travel")
    here = task.source_key()
    assert "return n * n" in inspect.getsource(task.fn), "the source is readable here"
    there = _in_child(tmp_path, task)
    assert there["readable"] is False, "the worker cannot read the cell's source"
    assert there["result"] == 49
    assert there["key"] == here


def test_the_travelled_key_is_the_source_hash_not_bytecode(tmp_path: Path) -> None:
    task = _notebook_task("2-source")
    from moorage.keys.encoding import stable_hash

    assert task.source_key() == stable_hash(inspect.getsource(task.fn))


def test_a_task_sent_by_reference_keeps_its_key(tmp_path: Path) -> None:
    from workflow.travellers import whose_pid

    copy = cloudpickle.loads(cloudpickle.dumps(whose_pid))
    assert copy is whose_pid, "an importable task travels by reference"
    assert copy.source_key() == source_key(whose_pid.fn)


def test_a_policy_without_source_carries_no_key() -> None:
    @moorage.task(cache_policy=INPUTS)
    def plain(n: int) -> int:
        return n

    reduced = plain.__reduce__()
    assert reduced[1][-1] == {}, "nothing to carry when the key ignores the source"


CODE_CELL = """
import moorage
from moorage.workflow.cache_policies import CODE, INPUTS

OFFSET = 4

def shift(n):
    return n + OFFSET

@moorage.task(cache_policy=INPUTS + CODE)
def cell_shifted(n):
    return shift(n) * 2
"""

CODE_CHILD = """
import json, pickle, sys
task = pickle.loads(open(sys.argv[1], "rb").read())
print(json.dumps({"key": task.source_key("code"), "call": task.explain_key(3).key,
                  "result": task.fn(3)}))
"""


def test_a_code_key_travels_to_where_the_source_is_unreadable(tmp_path: Path) -> None:
    task = _notebook_task("3-code", CODE_CELL, "cell_shifted")
    here = task.source_key("code")
    assert here != task.source_key("source"), "CODE sees more than the task's own source"
    there = _in_child(tmp_path, task, CODE_CHILD)
    assert there["result"] == 14
    assert there["key"] == here
    assert there["call"] == task.explain_key(3).key, "the whole call key agrees"
