"""Lock managers travel between processes: pickled (with pickle and cloudpickle) as their
configuration, used in another interpreter against the same backend; equal by
configuration; ``MemoryLockManager()`` is the process-wide manager."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cloudpickle
import pytest

from moorage.config.settings import reset_settings
from moorage.locking import LockManager, MemoryLockManager
from moorage.plugins.resolve import lock_manager_from
from moorage_local import FileLockManager
from moorage_redis import RedisLockManager

from servers.redis import RedisServer

PICKLERS = pytest.mark.parametrize("pickler", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])

# The child reads the pickled manager from stdin, with the same module that pickled it.
CHILD_PRELUDE = """
import sys, importlib
pickler = importlib.import_module(sys.argv[1])
manager = pickler.loads(sys.stdin.buffer.read())
"""


def child_command(pickler: ModuleType, code: str) -> list[str]:
    return [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code), pickler.__name__]


def run_child(pickler: ModuleType, manager: LockManager, code: str) -> str:
    """Run ``code`` in a new interpreter with ``manager`` unpickled there; its stdout."""
    data: bytes = pickler.dumps(manager)
    done = subprocess.run(
        child_command(pickler, code),
        input=data,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, f"child failed:\n{done.stdout.decode()}\n{done.stderr.decode()}"
    return done.stdout.decode()


@pytest.fixture
def redis_manager(redis_server: RedisServer) -> Iterator[RedisLockManager]:
    manager = RedisLockManager(redis_server.url, key_prefix=redis_server.prefix(), hold_timeout=60)
    yield manager
    manager.close()


# -- Redis -------------------------------------------------------------------------------------


@PICKLERS
def test_redis_manager_works_in_another_process(
    redis_manager: RedisLockManager, pickler: ModuleType
) -> None:
    assert redis_manager.acquire_lock("parents", "parent", acquire_timeout=0)  # connected now
    out = run_child(
        pickler,
        redis_manager,
        """
        assert manager.is_lock_holder("parents", "parent"), "the child sees the parent's lock"
        assert manager.acquire_lock("parents", "child", acquire_timeout=0) is False
        assert manager.acquire_lock("childs", "child", acquire_timeout=0)
        print(manager.options.key_prefix, manager.hold_timeout)
        """,
    )
    assert out.split() == [redis_manager.options.key_prefix, "60.0"]
    assert redis_manager.is_lock_holder("childs", "child"), "the parent sees the child's lock"
    redis_manager.release_lock("childs", "child")
    redis_manager.release_lock("parents", "parent")


@PICKLERS
def test_redis_copy_waits_for_a_release_in_another_process(
    redis_manager: RedisLockManager, pickler: ModuleType
) -> None:
    """The copy subscribes (pub/sub) and wakes in its own process."""
    assert redis_manager.acquire_lock("busy", "parent", acquire_timeout=0)
    child = subprocess.Popen(
        child_command(
            pickler,
            """
            print("waiting", flush=True)
            assert manager.acquire_lock("busy", "child", acquire_timeout=60)
            manager.release_lock("busy", "child")
            print("done", flush=True)
            """,
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(pickler.dumps(redis_manager))
        child.stdin.close()
        assert child.stdout.readline().strip() == b"waiting"
        time.sleep(0.3)
        redis_manager.release_lock("busy", "parent")
        assert child.wait(120) == 0, child.stderr.read().decode() if child.stderr else ""
        assert child.stdout.read().strip() == b"done"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert not redis_manager.is_locked("busy")


@PICKLERS
def test_redis_copy_is_equal_and_has_its_own_clients(
    redis_manager: RedisLockManager, pickler: ModuleType
) -> None:
    redis_manager.is_locked("anything")  # builds the clients the copy must not carry
    copy = pickler.loads(pickler.dumps(redis_manager))
    try:
        assert copy == redis_manager
        assert hash(copy) == hash(redis_manager)
        assert copy._clients is not redis_manager._clients
        assert copy._clients._sync is None, "the copy connects when first used"
        assert copy.is_locked("anything") is False
    finally:
        copy.close()


def test_redis_equality_by_configuration() -> None:
    url = "redis://alice:s3cret@127.0.0.1:6390/1"
    manager = RedisLockManager(url, key_prefix="app:")
    same = RedisLockManager(url, key_prefix="app:")
    assert manager == same
    assert hash(manager) == hash(same)
    assert len({manager, same}) == 1
    assert manager == RedisLockManager(
        host="127.0.0.1", port=6390, db=1, username="alice", password="s3cret", key_prefix="app:"
    )
    for other in (
        RedisLockManager("redis://alice:other@127.0.0.1:6390/1", key_prefix="app:"),
        RedisLockManager("redis://bob:s3cret@127.0.0.1:6390/1", key_prefix="app:"),
        RedisLockManager(url, key_prefix="other:"),
        RedisLockManager(url, key_prefix="app:", hold_timeout=30),
        RedisLockManager(url, key_prefix="app:", retries=0),
        RedisLockManager("redis://alice:s3cret@127.0.0.1:6390/2", key_prefix="app:"),
    ):
        assert other != manager
    assert manager != MemoryLockManager()
    assert manager != "redis://alice:s3cret@127.0.0.1:6390/1"
    never = RedisLockManager(url, key_prefix="app:", hold_timeout=None)
    assert never == RedisLockManager(url, key_prefix="app:", hold_timeout=float("inf"))


def test_redis_subclass_is_not_equal() -> None:
    class Custom(RedisLockManager):
        pass

    assert Custom("redis://127.0.0.1:6390/0") != RedisLockManager("redis://127.0.0.1:6390/0")


@PICKLERS
def test_redis_secret_never_in_repr(pickler: ModuleType) -> None:
    secret = "pa55-w0rd-xyz"
    for manager in (
        RedisLockManager(f"redis://alice:{secret}@127.0.0.1:6390/1"),
        RedisLockManager(host="127.0.0.1", port=6390, password=secret),
        RedisLockManager("rediss://127.0.0.1:6390/1", password=secret),
    ):
        copy = pickler.loads(pickler.dumps(manager))
        assert copy.options.password == secret, "the copy must still log in"
        for shown in (repr(manager), str(manager), repr(copy), manager.url, repr(manager.options)):
            assert secret not in shown
            assert "pa55" not in shown


# -- files -------------------------------------------------------------------------------------


@PICKLERS
def test_file_manager_works_in_another_process(tmp_path: Path, pickler: ModuleType) -> None:
    manager = FileLockManager(tmp_path / "locks", hold_timeout=60)
    assert manager.acquire_lock("parents", "parent", acquire_timeout=0)
    out = run_child(
        pickler,
        manager,
        """
        assert manager.is_lock_holder("parents", "parent"), "the child sees the parent's lock"
        assert manager.acquire_lock("parents", "child", acquire_timeout=0) is False
        assert manager.acquire_lock("childs", "child", acquire_timeout=0)
        print(manager.folder, manager.hold_timeout)
        """,
    )
    assert out.split() == [str(tmp_path / "locks"), "60.0"]
    assert manager.is_lock_holder("childs", "child")
    manager.release_lock("childs", "child")
    manager.release_lock("parents", "parent")


def test_file_equality_by_configuration(tmp_path: Path) -> None:
    manager = FileLockManager(tmp_path / "locks", hold_timeout=60)
    same = FileLockManager((tmp_path / "locks").as_uri(), hold_timeout=60.0)
    assert manager == same
    assert hash(manager) == hash(same)
    assert manager != FileLockManager(tmp_path / "other", hold_timeout=60)
    assert manager != FileLockManager(tmp_path / "locks", hold_timeout=30)
    assert FileLockManager(tmp_path, hold_timeout=None) == FileLockManager(
        tmp_path, hold_timeout=float("inf")
    )
    assert lock_manager_from(tmp_path.as_uri(), hold_timeout=60) == FileLockManager(
        tmp_path, hold_timeout=60
    )


# -- memory ------------------------------------------------------------------------------------


def test_memory_manager_is_the_process_wide_one(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = MemoryLockManager()
    assert manager is MemoryLockManager()
    assert manager is MemoryLockManager("memory://", hold_timeout=300)
    assert manager is lock_manager_from("memory://")
    monkeypatch.setenv("MOORAGE_LOCK_HOLD_TIMEOUT", "42")
    reset_settings()
    resolved = lock_manager_from("memory://")
    assert resolved is MemoryLockManager(hold_timeout=42)
    assert resolved.hold_timeout == 42
    assert resolved is not manager
    assert resolved != manager, "another hold timeout is another configuration"
    assert hash(MemoryLockManager(hold_timeout=42)) == hash(resolved)
    key = f"process-wide-{os.getpid()}-{time.monotonic_ns()}"
    assert resolved.acquire_lock(key, "alice", acquire_timeout=0)
    assert manager.is_lock_holder(key, "alice"), "every MemoryLockManager shares the locks"
    manager.release_lock(key, "alice")


@PICKLERS
def test_memory_manager_unpickles_as_the_shared_one(pickler: ModuleType) -> None:
    manager = MemoryLockManager()
    assert pickler.loads(pickler.dumps(manager)) is manager
    other = MemoryLockManager(hold_timeout=7)
    assert pickler.loads(pickler.dumps(other)) is other


@PICKLERS
def test_memory_manager_in_another_process_is_that_process_manager(
    pickler: ModuleType,
) -> None:
    manager = MemoryLockManager(hold_timeout=17)
    key = f"parents-{os.getpid()}-{time.monotonic_ns()}"
    assert manager.acquire_lock(key, "parent", acquire_timeout=0)
    try:
        out = run_child(
            pickler,
            manager,
            f"""
            from moorage.locking import MemoryLockManager
            from moorage.plugins.resolve import lock_manager_from
            assert manager is MemoryLockManager(hold_timeout=17)
            assert manager is lock_manager_from("memory://", hold_timeout=17)
            assert MemoryLockManager() is lock_manager_from("memory://")
            assert not manager.is_locked({key!r}), "memory locks stay in their process"
            assert manager.acquire_lock({key!r}, "child", acquire_timeout=0)
            assert MemoryLockManager().is_lock_holder({key!r}, "child")
            manager.release_lock({key!r}, "child")
            print(manager.hold_timeout)
            """,
        )
        assert float(out) == 17
        assert manager.is_lock_holder(key, "parent")
    finally:
        manager.release_lock(key, "parent")


def wait_for_child(pid: int, hung: str) -> None:
    """Wait for a forked child to exit 0; kill it and fail with ``hung`` after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waited, status = os.waitpid(pid, os.WNOHANG)
        if waited:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(hung)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_gets_fresh_memory_locks() -> None:
    """A child forked while another thread held the memory locks' condition variable
    can still lock, and does not inherit the parent's locks."""
    manager = MemoryLockManager()
    key = f"forked-{os.getpid()}-{time.monotonic_ns()}"
    assert manager.acquire_lock(key, "parent", acquire_timeout=0)
    holding, done = threading.Event(), threading.Event()

    def hold_condition() -> None:
        with MemoryLockManager._cond:
            holding.set()
            done.wait(60)

    thread = threading.Thread(target=hold_condition, daemon=True)
    thread.start()
    try:
        assert holding.wait(30)
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                free = not manager.is_locked(key)
                if free and manager.acquire_lock(key, "child", acquire_timeout=0):
                    manager.release_lock(key, "child")
                    code = 0
            finally:
                os._exit(code)
        wait_for_child(pid, "the forked child hung on the memory locks' condition variable")
    finally:
        done.set()
        thread.join(30)
    assert manager.is_lock_holder(key, "parent")
    manager.release_lock(key, "parent")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_drops_the_parents_pending_cleanups(redis_manager: RedisLockManager) -> None:
    """A clean-up whose release was in flight in the parent (its thread stays there)
    must not make the child's acquire wait for it forever."""
    from moorage_redis.cleanup import _Cleanup

    name = redis_manager.redis_key("k")
    in_flight = _Cleanup(name, "alice", 60.0)
    in_flight.busy.acquire()  # the parent's clean-up thread is sending a release
    redis_manager._cleanups._pending[(name, "alice")] = in_flight
    try:
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                if redis_manager.acquire_lock("k", "alice", acquire_timeout=0):
                    redis_manager.release_lock("k", "alice")
                    code = 0
            finally:
                os._exit(code)
        wait_for_child(pid, "the forked child waited for the parent's clean-up")
    finally:
        in_flight.busy.release()
        redis_manager._cleanups.cancel(name, "alice")
    assert not redis_manager.is_locked("k")
