"""FileLockManager's fair waiting: the queue file, its validation, and two processes
contending for one key each getting their share."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from moorage_local import FileLockManager
from moorage_local.locking import (
    GUARD_NAME,
    MAX_QUEUE_BYTES,
    QUEUE_GRACE,
    lock_file_name,
    queue_file_name,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "locks"


@pytest.fixture
def locks(folder: Path) -> FileLockManager:
    return FileLockManager(folder.as_uri(), hold_timeout=30)


def queue_content(locks: FileLockManager, key: str) -> list[dict[str, object]] | None:
    path = Path(locks.queue_path(key))
    if not path.exists():
        return None
    data: list[dict[str, object]] = json.loads(path.read_bytes())
    return data


def waiters(locks: FileLockManager, key: str) -> list[object]:
    return [entry["holder"] for entry in queue_content(locks, key) or []]


def write_queue(locks: FileLockManager, key: str, content: bytes, mtime: float) -> Path:
    path = Path(locks.queue_path(key))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


def has_waiters(locks: FileLockManager, count: int) -> bool:
    return len(waiters(locks, "k")) == count


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


# -- the queue file ------------------------------------------------------------------------


def test_queue_file_names_never_meet_lock_file_names() -> None:
    assert queue_file_name("my.key") == "my.key.queue"
    assert queue_file_name("a/B") == "a%2f%42.queue"
    assert queue_file_name("x" * 300).startswith("#")
    assert queue_file_name("x" * 300).endswith(".queue")
    assert queue_file_name("x.queue") != lock_file_name("x.queue")
    for key in ("x", "x.queue", "x.lock", "x" * 300):
        assert queue_file_name(key).endswith(".queue")
        assert lock_file_name(key).endswith(".lock")


def test_a_refused_waiting_attempt_joins_the_queue_and_giving_up_leaves_it(
    locks: FileLockManager, folder: Path
) -> None:
    assert locks.acquire_lock("k", "alice")
    before = time.time()
    assert not locks.try_acquire_waiting("k", "bob", 30)
    assert not locks.try_acquire_waiting("k", "carol", 30)
    assert not locks.try_acquire_waiting("k", "bob", 30)  # keeps its place
    content = queue_content(locks, "k")
    assert content is not None
    assert [entry["holder"] for entry in content] == ["bob", "carol"]
    for entry in content:
        seen = entry["seen"]
        assert isinstance(seen, float)
        assert before <= seen <= time.time()
    locks.stop_waiting("k", "bob")
    assert waiters(locks, "k") == ["carol"]
    locks.stop_waiting("k", "carol")
    locks.stop_waiting("k", "nobody")  # not waiting: nothing to do
    assert queue_content(locks, "k") is None
    locks.release_lock("k", "alice")
    assert sorted(os.listdir(folder)) == [GUARD_NAME]


def test_a_free_lock_goes_to_the_first_waiter(locks: FileLockManager, folder: Path) -> None:
    assert locks.acquire_lock("k", "alice")
    assert not locks.try_acquire_waiting("k", "bob", 30)
    assert not locks.try_acquire_waiting("k", "carol", 30)
    locks.release_lock("k", "alice")
    assert not locks.is_locked("k")
    assert not locks.try_acquire_waiting("k", "alice", 30), "jumped the queue"
    assert not locks.try_acquire("k", "dave", 30), "a plain try_acquire jumped the queue"
    assert not locks.try_acquire_waiting("k", "carol", 30), "the second waiter went first"
    assert waiters(locks, "k") == ["bob", "carol", "alice"]  # dave never joins
    assert locks.try_acquire_waiting("k", "bob", 30)
    assert waiters(locks, "k") == ["carol", "alice"]
    locks.release_lock("k", "bob")
    assert locks.try_acquire("k", "carol", 30), "a plain try_acquire of the first waiter"
    locks.release_lock("k", "carol")
    assert locks.acquire_lock("k", "alice", acquire_timeout=0)
    assert queue_content(locks, "k") is None
    locks.release_lock("k", "alice")
    assert sorted(os.listdir(folder)) == [GUARD_NAME]


def test_the_holder_extends_its_lock_whatever_the_queue(locks: FileLockManager) -> None:
    assert locks.acquire_lock("k", "alice")
    assert not locks.try_acquire_waiting("k", "bob", 30)
    assert locks.try_acquire("k", "alice", 600)
    assert locks.acquire_lock("k", "alice", acquire_timeout=0)
    assert waiters(locks, "k") == ["bob"]
    locks.release_lock("k", "alice")


def test_threads_are_served_in_the_order_they_started_waiting(locks: FileLockManager) -> None:
    assert locks.acquire_lock("k", "first")
    served: list[str] = []

    def wait_for_it(holder: str) -> None:
        assert locks.acquire_lock("k", holder, acquire_timeout=30)
        served.append(holder)
        locks.release_lock("k", holder)

    names = [f"waiter-{n}" for n in range(4)]
    threads = []
    for n, name in enumerate(names):
        thread = threading.Thread(target=wait_for_it, args=(name,))
        thread.start()
        threads.append(thread)
        wait_until(functools.partial(has_waiters, locks, n + 1), f"{name} to queue")
    locks.release_lock("k", "first")
    assert locks.acquire_lock("k", "first", acquire_timeout=30)  # behind all of them
    served.append("first")
    locks.release_lock("k", "first")
    for thread in threads:
        thread.join()
    assert served == [*names, "first"]
    assert queue_content(locks, "k") is None


async def test_async_waiters_queue_and_leave(locks: FileLockManager) -> None:
    assert await locks.aacquire_lock("k", "alice")
    assert not await locks.aacquire_lock("k", "bob", acquire_timeout=0.1)
    assert queue_content(locks, "k") is None, "a waiter that gave up left its place"
    assert not await locks.atry_acquire_waiting("k", "bob", 30)
    assert waiters(locks, "k") == ["bob"]
    await locks.arelease_lock("k", "alice")
    assert not await locks.aacquire_lock("k", "carol", acquire_timeout=0)
    assert await locks.aacquire_lock("k", "bob", acquire_timeout=0)
    await locks.astop_waiting("k", "carol")  # carol gave up already: nothing left
    assert queue_content(locks, "k") is None


# -- waiters that went away ------------------------------------------------------------------


def test_a_waiter_that_stopped_polling_loses_its_place_after_the_grace(
    locks: FileLockManager,
) -> None:
    now = time.time()
    entries = [
        {"holder": "gone", "seen": now - QUEUE_GRACE - 1},
        {"holder": "fading", "seen": now - QUEUE_GRACE + 1.5},
    ]
    write_queue(locks, "k", json.dumps(entries).encode(), now)
    assert not locks.is_locked("k")
    assert not locks.try_acquire("k", "alice", 30), "the live waiter was passed over"
    assert locks.acquire_lock("k", "alice", acquire_timeout=15), "a silent waiter kept its place"
    assert queue_content(locks, "k") is None
    locks.release_lock("k", "alice")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff",
        b"{}",
        b'[{"holder": "x"}]',
        b'[{"holder": 3, "seen": 1.0}]',
        b'[{"holder": "x", "seen": NaN}]',
        b'[{"holder": "x", "seen": true}]',
        b'[["x", 1.0]]',
        b"[" + b" " * MAX_QUEUE_BYTES + b"]",
    ],
    ids=["empty", "binary", "object", "no-seen", "number-holder", "nan", "bool", "pair", "huge"],
)
def test_an_unreadable_queue_counts_as_one_unknown_waiter_until_the_grace(
    locks: FileLockManager, content: bytes
) -> None:
    path = write_queue(locks, "k", content, time.time())
    assert not locks.try_acquire("k", "alice", 30)
    assert not locks.try_acquire_waiting("k", "alice", 30)
    queued = waiters(locks, "k")  # rewritten as a valid queue, the unknown waiter first
    assert len(queued) == 2
    assert isinstance(queued[0], str)
    assert queued[0].startswith("<unknown: unreadable queue file")
    assert queued[1] == "alice"
    locks.stop_waiting("k", "alice")
    old = time.time() - QUEUE_GRACE - 1
    write_queue(locks, "k", content, old)
    assert locks.try_acquire("k", "alice", 30)
    assert not path.exists()
    locks.release_lock("k", "alice")


def test_a_seen_in_the_future_counts_as_now(locks: FileLockManager) -> None:
    entries = [{"holder": "ahead", "seen": time.time() + 3600}]
    write_queue(locks, "k", json.dumps(entries).encode(), time.time())
    assert not locks.try_acquire_waiting("k", "alice", 30)
    content = queue_content(locks, "k")
    assert content is not None
    seen = content[0]["seen"]
    assert isinstance(seen, float)
    assert seen <= time.time()  # written back as the time it was read
    assert locks.acquire_lock("k", "alice", acquire_timeout=15)
    locks.release_lock("k", "alice")


def test_a_new_waiter_does_not_grow_the_queue_past_its_limit(
    locks: FileLockManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("moorage_local.locking.MAX_QUEUE_BYTES", 100)
    assert locks.acquire_lock("k", "alice")
    assert not locks.try_acquire_waiting("k", "bob", 30)
    assert not locks.try_acquire_waiting("k", "x" * 100, 30)
    assert waiters(locks, "k") == ["bob"]
    locks.release_lock("k", "alice")


# -- processes ---------------------------------------------------------------------------------

CONTENDER = """
import sys, time
from moorage_local import FileLockManager
locks = FileLockManager(sys.argv[1], hold_timeout=30)
holder, start, seconds = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
while time.time() < start:
    time.sleep(0.001)
taken = 0
while time.time() < start + seconds:
    assert locks.acquire_lock("contended", holder, acquire_timeout=30)
    taken += 1
    time.sleep(0.002)  # some work under the lock
    locks.release_lock("contended", holder)
print(taken)
"""


@pytest.mark.slow
def test_two_processes_looping_on_one_key_share_it(locks: FileLockManager) -> None:
    start = time.time() + 1.0  # both interpreters are up by then
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, locks.url, f"proc-{n}", str(start), "2"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    outputs = [child.communicate()[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    counts = [int(output) for output in outputs]
    total = sum(counts)
    assert total > 0
    assert min(counts) * 4 >= total, (
        f"acquisitions per process {counts}: one process took the lock again and again "
        "while the other waited"
    )
    assert not locks.is_locked("contended")
