"""Other processes: a holder killed with SIGKILL, contention between processes, fork."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from moorage_redis import RedisLockManager

from .conftest import MakeManager
from servers.redis import RedisServer

# Takes the lock "crash" with a 1.5 s hold timeout, says so, and waits to be killed.
HOLDER = """
import sys, time
from moorage_redis import RedisLockManager
locks = RedisLockManager(sys.argv[1], key_prefix=sys.argv[2], hold_timeout=1.5)
assert locks.acquire_lock("crash", "doomed-child", acquire_timeout=0)
print("locked", flush=True)
time.sleep(600)
"""

# Adds 1 to the counter key N times, each time under the lock "counter".
INCREMENTER = """
import sys
import redis
from moorage_redis import RedisLockManager
url, prefix, rounds, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
locks = RedisLockManager(url, key_prefix=prefix, hold_timeout=30)
plain = redis.Redis.from_url(url)
for i in range(rounds):
    assert locks.acquire_lock("counter", name, acquire_timeout=120)
    value = int(plain.get(prefix + "value") or 0)
    plain.set(prefix + "value", value + 1)
    locks.release_lock("counter", name)
"""


def test_killed_holder_blocks_no_longer_than_its_hold_timeout(
    redis_server: RedisServer, make_manager: MakeManager, prefix: str
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_server.url, prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip() == "locked", (
            f"holder failed: {line}{child.stderr and child.stderr.read()}"
        )
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    waiter = make_manager(hold_timeout=60, recheck_interval=3600)
    key = waiter.redis_key("crash")
    ttl = int(redis_server.client.pttl(key))
    holder = redis_server.client.get(key)
    # The dead holder's lock is there (or already gone), and never set to outlive 1.5 s.
    assert ttl <= 1500
    assert holder in (b"doomed-child", None)
    before = redis_server.calls("evalsha")
    assert waiter.acquire_lock("crash", "survivor", acquire_timeout=30) is True
    assert waiter.is_lock_holder("crash", "survivor")
    # Woken by the time to live, not by polling (its re-checks come after 450 s).
    assert redis_server.calls("evalsha") - before <= 4
    waiter.release_lock("crash", "survivor")


@pytest.mark.slow
def test_processes_exclude_each_other(redis_server: RedisServer, prefix: str) -> None:
    processes, rounds = 4, 25
    children = [
        subprocess.Popen(
            [sys.executable, "-c", INCREMENTER, redis_server.url, prefix, str(rounds), f"p{i}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    assert int(redis_server.client.get(prefix + "value") or 0) == processes * rounds


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_uses_its_own_connections(manager: RedisLockManager) -> None:
    assert manager.acquire_lock("parent-lock", "parent")  # the parent is connected now
    pid = os.fork()
    if pid == 0:  # the child: must not share the parent's sockets
        code = 1
        try:
            if manager.is_lock_holder("parent-lock", "parent") and manager.acquire_lock(
                "child-lock", "child", acquire_timeout=0
            ):
                manager.release_lock("child-lock", "child")
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connections still work after the child used and dropped its own.
    assert manager.is_lock_holder("parent-lock", "parent")
    assert not manager.is_locked("child-lock")
    manager.release_lock("parent-lock", "parent")
