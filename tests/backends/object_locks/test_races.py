"""Contention on one key from threads of this process and from two other processes, each
with its own copy of the manager (unpickled there): never two holders at once."""

from __future__ import annotations

import functools
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from moorage.errors import LockError
from moorage.testing._util import BackgroundThread, unique_token

from .conftest import Place
from .contention import contend

HERE = Path(__file__).parent

# Unpickles the manager from stdin and contends: argv = key, holder, rounds, folder.
CHILD = f"""
import pickle, sys
from pathlib import Path
sys.path.insert(0, {str(HERE)!r})
from contention import contend
manager = pickle.loads(sys.stdin.buffer.read())
key, holder, rounds, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
print("overlaps", contend(manager, key, holder, rounds, folder), flush=True)
"""

# Unpickles the manager from stdin and reports what it sees of the lock on argv[1].
LOOKER = """
import pickle, sys
manager = pickle.loads(sys.stdin.buffer.read())
key = sys.argv[1]
print(manager.lock_holder(key), manager.try_acquire(key, "child", 60), flush=True)
"""


def _start(script: str, manager: object, *args: str) -> subprocess.Popen[bytes]:
    """A child running ``script`` with ``args``, the pickled manager on its stdin."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdin, child.stdin = child.stdin, None  # communicate() must not flush it again
    assert stdin is not None
    with stdin:
        stdin.write(pickle.dumps(manager))
    return child


def _finish(child: subprocess.Popen[bytes]) -> str:
    try:
        out, err = child.communicate(timeout=600)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err.decode(errors="replace")
    return out.decode().strip()


@pytest.mark.slow
def test_threads_and_processes_exclude_each_other(place: Place, tmp_path: Path) -> None:
    key, rounds, threads = f"race-{unique_token()}", 6, 3
    manager = place.manager(hold_timeout=120)
    children = [
        _start(CHILD, manager, key, f"process-{i}", str(rounds), str(tmp_path)) for i in range(2)
    ]
    overlaps: list[int] = []
    guard = threading.Lock()

    def worker(holder: str) -> None:
        found = contend(place.manager(hold_timeout=120), key, holder, rounds, tmp_path)
        with guard:
            overlaps.append(found)

    running = [
        BackgroundThread(functools.partial(worker, f"thread-{i}"), name=f"thread-{i}").start()
        for i in range(threads)
    ]
    for thread in running:
        thread.join(600)
    for child in children:
        line = _finish(child)
        assert line.startswith("overlaps "), line
        overlaps.append(int(line.split()[1]))
    assert sum(overlaps) == 0, f"two holders inside the lock {sum(overlaps)} times: {overlaps}"
    total = int((tmp_path / "counter").read_text())
    assert total == (threads + 2) * rounds, f"{total} increments: some were lost"
    assert manager.is_locked(key) is False


def test_pickled_manager_sees_the_lock_in_another_process(place: Place) -> None:
    key = f"pickled-{unique_token()}"
    manager = place.manager()
    assert manager.acquire_lock(key, "alice", acquire_timeout=0)
    assert _finish(_start(LOOKER, manager, key)) == "alice False"
    manager.release_lock(key, "alice")
    assert _finish(_start(LOOKER, manager, key)) == "None True"
    assert manager.lock_holder(key) == "child"
    with pytest.raises(LockError, match="held by 'child'"):
        manager.release_lock(key, "alice")
    manager.release_lock(key, "child")
