"""FileLockManager: the lock contract across threads and processes, on a real folder."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from moorage import ConfigurationError, LockError
from moorage.locking import DEFAULT_HOLD_TIMEOUT
from moorage.plugins.resolve import lock_manager_from
from moorage_local import FileLockManager
from moorage_local.locking import CORRUPT_LOCK_GRACE, GUARD_NAME, lock_file_name
from moorage_local.temp_files import TEMP_PREFIX

RunPython = Callable[..., subprocess.CompletedProcess[str]]

CHILD_PRELUDE = (
    "import sys, time\n"
    "from moorage_local import FileLockManager\n"
    "locks = FileLockManager(sys.argv[1], hold_timeout=30)\n"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "locks"


@pytest.fixture
def locks(folder: Path) -> FileLockManager:
    return FileLockManager(folder.as_uri(), hold_timeout=30)


def lock_content(locks: FileLockManager, key: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(Path(locks.lock_path(key)).read_bytes())
    return data


# -- one process ---------------------------------------------------------------------------


def test_acquire_and_release(locks: FileLockManager, folder: Path) -> None:
    assert not locks.is_locked("k")
    assert locks.acquire_lock("k", "alice")
    assert locks.is_locked("k")
    assert locks.is_lock_holder("k", "alice")
    assert not locks.is_lock_holder("k", "bob")
    assert locks.lock_holder("k") == "alice"
    locks.release_lock("k", "alice")
    assert not locks.is_locked("k")
    assert locks.lock_holder("k") is None
    assert sorted(os.listdir(folder)) == [GUARD_NAME]  # released locks leave no file


def test_lock_file_format(locks: FileLockManager) -> None:
    before = time.time()
    locks.acquire_lock("my/key", "alice", hold_timeout=60)
    content = lock_content(locks, "my/key")
    assert content["key"] == "my/key"
    assert content["holder"] == "alice"
    assert content["pid"] == os.getpid()
    assert isinstance(content["hostname"], str)
    assert content["hostname"]
    created, expires = content["created_at"], content["expires_at"]
    assert isinstance(created, float)
    assert isinstance(expires, float)
    assert before <= created <= time.time()
    assert expires == pytest.approx(created + 60)


def test_lock_without_expiry_stores_null(locks: FileLockManager) -> None:
    locks.acquire_lock("forever", "alice", hold_timeout=math.inf)
    assert lock_content(locks, "forever")["expires_at"] is None
    assert locks.is_lock_holder("forever", "alice")


def test_same_holder_reacquires_and_extends(locks: FileLockManager) -> None:
    assert locks.acquire_lock("k", "alice", hold_timeout=5)
    first = lock_content(locks, "k")
    assert locks.acquire_lock("k", "alice", acquire_timeout=0, hold_timeout=600)
    second = lock_content(locks, "k")
    assert isinstance(first["expires_at"], float)
    assert isinstance(second["expires_at"], float)
    assert second["expires_at"] > first["expires_at"] + 500
    assert second["created_at"] == first["created_at"]
    assert locks.is_lock_holder("k", "alice")


def test_other_holder_is_blocked_until_release(locks: FileLockManager) -> None:
    assert locks.acquire_lock("k", "alice")
    assert not locks.acquire_lock("k", "bob", acquire_timeout=0.2)
    assert not locks.try_acquire("k", "bob", 30)
    assert locks.is_lock_holder("k", "alice")
    locks.release_lock("k", "alice")
    assert locks.acquire_lock("k", "bob", acquire_timeout=0)
    assert locks.is_lock_holder("k", "bob")


def test_release_by_another_holder_raises_lock_error(locks: FileLockManager) -> None:
    locks.acquire_lock("k", "alice")
    with pytest.raises(LockError) as caught:
        locks.release_lock("k", "bob")
    message = str(caught.value)
    assert "'k'" in message
    assert "'alice'" in message
    assert "'bob'" in message
    assert locks.url in message
    assert locks.is_lock_holder("k", "alice")


def test_release_of_a_free_lock_raises_lock_error(locks: FileLockManager) -> None:
    with pytest.raises(LockError, match="not held"):
        locks.release_lock("never", "alice")
    locks.acquire_lock("k", "alice")
    locks.release_lock("k", "alice")
    with pytest.raises(LockError, match="not held"):
        locks.release_lock("k", "alice")


def test_expired_lock_is_free_and_taken_over(locks: FileLockManager) -> None:
    assert locks.acquire_lock("k", "alice", hold_timeout=0.3)
    expires = lock_content(locks, "k")["expires_at"]
    assert isinstance(expires, float)
    while time.time() < expires:
        assert locks.lock_holder("k") in ("alice", None)
        time.sleep(0.02)
    assert locks.lock_holder("k") is None
    assert not locks.is_locked("k")
    assert locks.acquire_lock("k", "bob", acquire_timeout=0)
    with pytest.raises(LockError, match="'bob'"):
        locks.release_lock("k", "alice")
    assert locks.is_lock_holder("k", "bob")


def test_releasing_an_expired_lock_raises(locks: FileLockManager) -> None:
    locks.acquire_lock("k", "alice", hold_timeout=0.05)
    time.sleep(0.1)
    with pytest.raises(LockError, match="not held"):
        locks.release_lock("k", "alice")


def test_default_hold_timeout_applies(folder: Path) -> None:
    locks = FileLockManager(folder.as_uri(), hold_timeout=0.05)
    assert locks.acquire_lock("k", "alice")
    time.sleep(0.1)
    assert not locks.is_locked("k")
    assert FileLockManager(folder.as_uri()).hold_timeout == DEFAULT_HOLD_TIMEOUT


@pytest.mark.parametrize(
    "keys",
    [
        ("my.key", "my.other"),
        ("a", "a/b"),
        ("a/b", "a%2fb"),
        ("Key", "key"),
        ("x" * 300 + "1", "x" * 300 + "2"),
        ("é", "%c3%a9"),
        ("", ".lock"),
    ],
)
def test_different_keys_are_independent_locks(
    locks: FileLockManager, keys: tuple[str, str]
) -> None:
    first, second = keys
    assert lock_file_name(first) != lock_file_name(second)
    assert locks.acquire_lock(first, "alice")
    assert not locks.is_locked(second)
    assert locks.acquire_lock(second, "bob", acquire_timeout=0)
    assert locks.lock_holder(first) == "alice"
    assert locks.lock_holder(second) == "bob"
    locks.release_lock(first, "alice")
    assert locks.lock_holder(second) == "bob"


def test_lock_file_names_are_flat_and_short(locks: FileLockManager, folder: Path) -> None:
    keys = ["my.key", "a/b/c", "x" * 1000, "../escape", "/abs", "Ünïcode"]
    for key in keys:
        locks.acquire_lock(key, "alice")
    names = sorted(os.listdir(folder))
    assert len(names) == len(keys) + 1
    assert all(name.endswith(".lock") for name in names if name != GUARD_NAME)
    assert all(len(name) <= 130 and "/" not in name for name in names)
    assert lock_file_name("my.key") == "my.key.lock"
    assert lock_file_name("x" * 1000).startswith("#")
    assert lock_content(locks, "x" * 1000)["key"] == "x" * 1000
    assert not (folder.parent / "escape.lock").exists()


def test_corrupt_lock_file_counts_as_held_until_the_grace_period(
    locks: FileLockManager, folder: Path
) -> None:
    folder.mkdir()
    path = Path(locks.lock_path("k"))
    path.write_bytes(b'{"holder": "half-writ')
    assert locks.is_locked("k")
    assert not locks.acquire_lock("k", "alice", acquire_timeout=0.1)
    with pytest.raises(LockError):
        locks.release_lock("k", "alice")
    old = time.time() - CORRUPT_LOCK_GRACE - 1
    os.utime(path, (old, old))
    assert not locks.is_locked("k")
    assert locks.acquire_lock("k", "alice", acquire_timeout=0)
    assert lock_content(locks, "k")["holder"] == "alice"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"[]",
        b'{"holder": 3, "expires_at": null}',
        b'{"holder": "x"}',
        b'{"holder": "x", "expires_at": NaN}',
        b"\xff",
    ],
)
def test_unparsable_lock_files_are_recovered_once_old(
    locks: FileLockManager, folder: Path, content: bytes
) -> None:
    folder.mkdir()
    path = Path(locks.lock_path("k"))
    path.write_bytes(content)
    assert locks.is_locked("k")
    old = time.time() - CORRUPT_LOCK_GRACE - 1
    os.utime(path, (old, old))
    assert locks.acquire_lock("k", "alice", acquire_timeout=0)


def test_unusable_folder_raises_lock_error_with_a_fix(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    locks = FileLockManager((tmp_path / "file" / "locks").as_uri())
    with pytest.raises(LockError) as caught:
        locks.acquire_lock("k", "alice", acquire_timeout=0)
    message = str(caught.value)
    assert "'k'" in message
    assert locks.url in message
    assert "is a file" in message
    assert isinstance(caught.value.__cause__, OSError)


def test_no_temporary_files_are_left(locks: FileLockManager, folder: Path) -> None:
    for i in range(20):
        locks.acquire_lock(f"k{i % 3}", "alice")
    assert not [name for name in os.listdir(folder) if name.startswith(TEMP_PREFIX)]


# -- waiting -------------------------------------------------------------------------------


def test_wait_for_lock_returns_true_when_released(locks: FileLockManager) -> None:
    locks.acquire_lock("k", "alice")
    timer = threading.Timer(0.2, locks.release_lock, ("k", "alice"))
    timer.start()
    try:
        assert locks.wait_for_lock("k", timeout=None)
    finally:
        timer.join()
    assert not locks.is_locked("k")


def test_wait_for_lock_returns_false_on_timeout(locks: FileLockManager) -> None:
    locks.acquire_lock("k", "alice")
    assert not locks.wait_for_lock("k", timeout=0.2)
    assert locks.is_lock_holder("k", "alice")
    assert locks.wait_for_lock("free", timeout=0)


def test_acquire_waits_for_a_release(locks: FileLockManager) -> None:
    locks.acquire_lock("k", "alice")
    timer = threading.Timer(0.2, locks.release_lock, ("k", "alice"))
    timer.start()
    try:
        assert locks.acquire_lock("k", "bob", acquire_timeout=None)
    finally:
        timer.join()
    assert locks.is_lock_holder("k", "bob")


async def test_async_twins(locks: FileLockManager) -> None:
    assert await locks.aacquire_lock("k", "alice")
    assert await locks.ais_lock_holder("k", "alice")
    assert not await locks.aacquire_lock("k", "bob", acquire_timeout=0.1)
    assert not await locks.await_for_lock("k", timeout=0.1)
    with pytest.raises(LockError):
        await locks.arelease_lock("k", "bob")
    await locks.arelease_lock("k", "alice")
    assert await locks.await_for_lock("k", timeout=0)
    assert await locks.aacquire_lock("k", "bob", acquire_timeout=0)
    assert await locks.alock_holder("k") == "bob"


# -- threads and processes -----------------------------------------------------------------


def test_threads_contending_never_lose_an_update(locks: FileLockManager, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    threads, rounds = 6, 30
    errors: list[BaseException] = []

    def work(n: int) -> None:
        holder = f"thread-{n}"
        try:
            for _ in range(rounds):
                assert locks.acquire_lock("counter", holder)
                value = int(counter.read_text())
                time.sleep(0)  # invite a switch between read and write
                counter.write_text(str(value + 1))
                locks.release_lock("counter", holder)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert int(counter.read_text()) == threads * rounds
    assert not locks.is_locked("counter")


@pytest.mark.slow
def test_processes_contending_never_lose_an_update(locks: FileLockManager, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    code = CHILD_PRELUDE + (
        "from pathlib import Path\n"
        "counter = Path(sys.argv[2])\n"
        "for _ in range(25):\n"
        "    assert locks.acquire_lock('counter', sys.argv[3])\n"
        "    value = int(counter.read_text())\n"
        "    counter.write_text(str(value + 1))\n"
        "    locks.release_lock('counter', sys.argv[3])\n"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code, locks.url, str(counter), f"proc-{n}"])
        for n in range(4)
    ]
    assert [child.wait() for child in children] == [0, 0, 0, 0]
    assert int(counter.read_text()) == 4 * 25


@pytest.mark.slow
def test_another_process_cannot_take_a_held_lock(
    locks: FileLockManager, run_python: RunPython
) -> None:
    code = CHILD_PRELUDE + (
        "taken = locks.acquire_lock('k', 'child', acquire_timeout=0.3)\n"
        "print(taken, locks.lock_holder('k'))\n"
        "if taken:\n"
        "    locks.release_lock('k', 'child')\n"
    )
    locks.acquire_lock("k", "parent")
    assert run_python(code, locks.url).stdout.split() == ["False", "parent"]
    assert locks.is_lock_holder("k", "parent")
    locks.release_lock("k", "parent")
    assert run_python(code, locks.url).stdout.split() == ["True", "child"]
    assert not locks.is_locked("k")


@pytest.mark.slow
def test_lock_of_a_killed_holder_is_free_after_its_hold_timeout(
    locks: FileLockManager,
) -> None:
    code = CHILD_PRELUDE + (
        "assert locks.acquire_lock('k', 'doomed', hold_timeout=1)\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, locks.url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    expires = lock_content(locks, "k")["expires_at"]
    assert isinstance(expires, float)
    holder = locks.lock_holder("k")
    if time.time() < expires:  # checked before the expiry (the machine may be slow)
        assert holder == "doomed"
    assert locks.acquire_lock("k", "survivor", acquire_timeout=10)
    assert time.time() >= expires  # not taken before the dead holder's lock lapsed
    assert locks.is_lock_holder("k", "survivor")


@pytest.mark.slow
def test_guard_held_by_a_killed_process_is_released(locks: FileLockManager, folder: Path) -> None:
    folder.mkdir()
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('guarding', flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(folder / GUARD_NAME)], stdout=subprocess.PIPE, text=True
    )
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(locks.try_acquire("k", "me", 30)))
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "guarding"
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive(), "took the lock while another process held the guard"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        waiter.join()
    assert results == [True]
    assert locks.is_lock_holder("k", "me")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_forked_child_does_not_inherit_the_guard(locks: FileLockManager, folder: Path) -> None:
    stop = threading.Event()

    def churn() -> None:  # holds the guard most of the time
        while not stop.is_set():
            locks.acquire_lock("churn", "parent")
            locks.release_lock("churn", "parent")

    guard = str(folder / GUARD_NAME)
    worker = threading.Thread(target=churn)
    worker.start()
    statuses = []
    try:
        for _ in range(20):
            time.sleep(0.005)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child: fail if it holds the guard open
                try:
                    for fd in os.listdir("/proc/self/fd"):
                        with contextlib.suppress(OSError):  # the listing's own fd is gone
                            if os.readlink(f"/proc/self/fd/{fd}") == guard:
                                os._exit(1)
                    os._exit(0)
                finally:
                    os._exit(2)
            statuses.append(os.waitpid(pid, 0)[1])
    finally:
        stop.set()
        worker.join()
    assert statuses == [0] * 20, "a forked child inherited the open guard file"


# -- construction --------------------------------------------------------------------------


def test_plain_paths_and_urls(folder: Path) -> None:
    by_path = FileLockManager(str(folder))
    by_url = FileLockManager(folder.as_uri())
    assert by_path.url == by_url.url == folder.as_uri()
    by_path.acquire_lock("k", "alice")
    assert by_url.is_lock_holder("k", "alice")
    assert repr(by_url) == f"FileLockManager({folder.as_uri()!r}, hold_timeout=300.0)"


def test_hold_timeout_from_strings_and_the_url_query(folder: Path) -> None:
    assert FileLockManager(folder.as_uri(), hold_timeout="2.5").hold_timeout == 2.5
    assert FileLockManager(folder.as_uri(), hold_timeout="none").hold_timeout is None
    assert FileLockManager(f"{folder.as_uri()}?hold_timeout=7").hold_timeout == 7.0
    with pytest.raises(ConfigurationError, match="hold_timeout='soon'"):
        FileLockManager(folder.as_uri(), hold_timeout="soon")
    with pytest.raises(ConfigurationError):
        FileLockManager(folder.as_uri(), hold_timeout=-1)


def test_unknown_option_raises_configuration_error(folder: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        FileLockManager(folder.as_uri(), stale_after=3)
    assert "'stale_after'" in str(caught.value)
    assert folder.as_uri() in str(caught.value)
    with pytest.raises(ConfigurationError, match="file://"):
        FileLockManager("redis://localhost:6379/0")


def test_core_resolves_file_urls_to_file_locks(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "local")  # this plugin and the core's only
    manager = lock_manager_from(folder.as_uri())
    assert isinstance(manager, FileLockManager)
    assert manager.folder == str(folder)
    assert manager.hold_timeout == DEFAULT_HOLD_TIMEOUT
    assert lock_manager_from(f"{folder.as_uri()}?hold_timeout=7").hold_timeout == 7.0
    assert lock_manager_from(str(folder)).url == folder.as_uri()
