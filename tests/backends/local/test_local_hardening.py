"""LocalStorage against hostile neighbours: folders swapped for links mid-call, keys no
file system can hold, and temporary files left by killed writers."""

from __future__ import annotations

import asyncio
import errno
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moorage import InvalidKey, RecordNotFound, ResultStore, StorageError
from moorage.storage import MAX_KEY_DEPTH, MemoryStorage, PruneReport, validate_key
from moorage_local import LocalStorage
from moorage_local.atomic_writes import open_temp
from moorage_local.temp_files import STALE_TEMP_AGE, TEMP_PREFIX

from .conftest import Snapshot


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX))


# -- a folder below the root swapped for a link while calls run ----------------------------

SWAP_ROUNDS = 5000  # storage calls made while the other thread swaps
KEYS = [f"a/b/k{i}" for i in range(4)]


SWAPPER = """
import os, shutil, sys
root, outside, stop = sys.argv[1:4]
swaps = 0

def swap(folder, target):
    global swaps
    aside = folder + ".aside"
    try:
        os.rename(folder, aside)
    except OSError:
        return
    try:
        os.symlink(target, folder, target_is_directory=True)
        swaps += 1
        for _ in range(20):  # leave the link in place for a while
            os.lstat(folder)
        os.unlink(folder)
    except OSError:
        pass  # a writer made a new folder there meanwhile
    try:
        os.rename(aside, folder)
    except OSError:
        shutil.rmtree(aside, ignore_errors=True)

print("ready", flush=True)
for n in range(2_000_000):
    if n % 64 == 0 and os.path.exists(stop):
        break
    if n % 2:
        swap(os.path.join(root, "a"), outside)
    else:
        swap(os.path.join(root, "a", "b"), os.path.join(outside, "b"))
print(swaps, flush=True)
"""


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Folders outside the root that look like the root's own: ``b/k0``... hold secrets."""
    folder = tmp_path / "outside"
    (folder / "b").mkdir(parents=True)
    for name in ("k0", "k1", "k2", "k3", "only-outside"):
        (folder / "b" / name).write_bytes(b"secret")
    return folder


def test_folders_swapped_for_links_never_redirect_a_call(
    storage: LocalStorage, root: Path, outside: Path, snapshot: Snapshot
) -> None:
    for key in KEYS:
        storage.write_path(key, b"inside")
    before = snapshot(outside)
    stop = root.parent / "stop"
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(root), str(outside), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert swapper.stdout is not None
    refused = 0
    seen: list[bytes] = []
    listed: set[str] = set()
    try:
        assert swapper.stdout.readline().strip() == "ready"
        for n in range(SWAP_ROUNDS):
            key = KEYS[n % len(KEYS)]
            try:
                match n % 6:
                    case 0 | 1:
                        storage.write_path(key, b"inside")
                    case 2:
                        seen.append(storage.read_path(key))
                    case 3:
                        storage.read_stream(key, lambda data, size: seen.append(bytes(data)))  # type: ignore[arg-type]
                    case 4:
                        listed.update(storage.list_paths("a/" if n % 12 == 4 else ""))
                        storage.exists(key)
                    case _:
                        storage.delete_path(key)
            except StorageError:
                refused += 1  # the call met the link
            except RecordNotFound:
                pass  # the folder was swapped away at that moment
    finally:
        stop.touch()
        swaps = int(swapper.stdout.readline() or 0)
        swapper.wait()
        swapper.stdout.close()
    assert swaps > 0
    assert snapshot(outside) == before, "a call wrote or deleted outside the root"
    assert set(seen) <= {b"inside"}, "a read returned bytes from outside the root"
    assert not any("only-outside" in key for key in listed), "a listing went outside"
    assert {key.replace(".aside", "") for key in listed} <= set(KEYS)
    assert refused > 0, "no call met a link: the race was not exercised"


# -- keys that no file system can hold ---------------------------------------------------------


def test_hostile_keys_are_refused_with_the_limit_named(storage: LocalStorage, root: Path) -> None:
    cases = {
        "lone\udc80surrogate": "UTF-8",
        "k" * 1025: "1024",
        "x/" + "s" * 256: "255",
        "/".join("d" * (MAX_KEY_DEPTH + 1)): str(MAX_KEY_DEPTH),
    }
    for key, limit in cases.items():
        for call in (
            lambda k: storage.write_path(k, b"x"),
            storage.read_path,
            lambda k: list(storage.list_paths(k)),
            lambda k: list(storage.list_paths(k + "/")),
        ):
            with pytest.raises(InvalidKey, match=limit) as caught:
                call(key)
            message = str(caught.value)
            message.encode("utf-8")  # printable: the key is shown escaped
            assert len(message) < 600, "a long key is shown cut short"
    assert not root.exists()


def test_longest_keys_fit_the_file_system(storage: LocalStorage) -> None:
    key = "/".join(["w" * 255, "é" * 127, "z" * 255, "y" * 255, "v"])
    assert len(key.encode()) == 1024
    storage.write_path(key, b"x")
    assert list(storage.list_paths()) == [key]
    storage.delete_path(key)
    assert list(storage.list_paths()) == []


def test_a_failed_write_removes_the_folders_it_made(storage: LocalStorage, root: Path) -> None:
    storage.write_path("kept/x", b"x")
    with pytest.raises(TypeError):
        storage.write_parts("kept/new/deeper/key", [b"ok", "not bytes"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        storage.write_parts("a/b/c/d", [b"ok", "not bytes"])  # type: ignore[list-item]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["kept", "kept/x"]
    storage.write_path("a", b"a file where the failed write's folder was")
    assert storage.read_path("a") == b"a file where the failed write's folder was"


def test_listing_is_iterative_and_skips_what_no_key_names(
    storage: LocalStorage, root: Path
) -> None:
    deepest = "/".join(["d"] * MAX_KEY_DEPTH)
    storage.write_path(deepest, b"x")
    # Deeper folders, a file name that is not UTF-8 and one with a backslash, made by
    # someone else: none of them is a key.
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(2 * MAX_KEY_DEPTH):  # shallow enough for shutil.rmtree
            os.mkdir("deep", dir_fd=fd)
            below = os.open("deep", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        os.close(os.open("file", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    finally:
        os.close(fd)
    (root / "back\\slash").write_bytes(b"x")
    with open(os.path.join(os.fsencode(root), b"not-utf8-\xff"), "wb") as file:
        file.write(b"x")
    assert list(storage.list_paths()) == [deepest]
    assert list(storage.list_paths("d/d/")) == [deepest]


# -- the root's descriptor: across fork, pickle, close and a removed root -----------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_uses_its_own_root(storage: LocalStorage) -> None:
    storage.write_path("parent", b"p")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            storage.write_path("child/key", b"c")
            code = 0 if storage.read_path("parent") == b"p" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage.read_path("child/key") == b"c"
    assert sorted(storage.list_paths()) == ["child/key", "parent"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_while_another_thread_opens_a_root_leaves_the_child_free() -> None:
    from moorage_local import folders as module

    with module._ROOTS_GUARD:  # as if another thread were opening a root at the fork
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os._exit(0 if module._ROOTS_GUARD.acquire(blocking=False) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child inherited a held lock"


def test_pickled_copy_and_close(storage: LocalStorage) -> None:
    storage.write_path("k", b"1")
    copy = pickle.loads(pickle.dumps(storage))
    assert copy.read_path("k") == b"1"
    copy.write_path("k2", b"2")
    storage.close()
    assert storage.read_path("k2") == b"2"
    storage.close()
    storage.close()  # twice is fine
    assert list(storage.list_paths()) == ["k", "k2"]


def test_a_removed_and_recreated_root_is_found_again(storage: LocalStorage, root: Path) -> None:
    storage.write_path("a/k", b"old")
    shutil.rmtree(root)
    assert not storage.exists("a/k")
    LocalStorage(root).write_path("a/k", b"new")  # another process makes it again
    assert storage.read_path("a/k") == b"new"
    shutil.rmtree(root)
    storage.write_path("flat", b"written after the root was removed")
    assert (root / "flat").read_bytes() == b"written after the root was removed"


# -- temporary files of killed writers -------------------------------------------------------


@pytest.fixture
def dead_pid() -> int:
    """The process id of a process that has ended (and was waited for)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def writer_prefix() -> str:
    """``<host>-`` as this host's writers put it in temporary file names."""
    folder = Path(os.environ.get("TMPDIR", "/tmp"))
    fd, temp = open_temp(str(folder))
    os.close(fd)
    os.unlink(temp)
    name = os.path.basename(temp)[len(TEMP_PREFIX) :]
    host, pid, _token, _n = name.rsplit("-", 3)
    assert int(pid) == os.getpid()
    return host + "-"


def plant(folder: Path, name: str, size: int = 10, age: float = 0.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{TEMP_PREFIX}{name}"
    path.write_bytes(b"t" * size)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def test_temporary_files_name_their_writer(tmp_path: Path) -> None:
    host = writer_prefix()
    assert host.rstrip("-")
    assert "-" not in host.rstrip("-")


def test_stale_temporary_files_are_removed_by_the_first_write_into_a_folder(
    storage: LocalStorage, root: Path, dead_pid: int
) -> None:
    host = writer_prefix()
    dead = plant(root / "f", f"{host}{dead_pid}-0badc0de-1", size=100)
    reused = plant(root / "f", f"{host}{os.getpid()}-0badc0de-2")  # our pid, earlier process
    alive = plant(root / "f", f"{host}{os.getppid()}-0badc0de-3")
    elsewhere = plant(root / "f", f"otherhost-{dead_pid}-0badc0de-4")
    old = plant(root / "f", f"otherhost-{dead_pid}-0badc0de-5", age=STALE_TEMP_AGE + 60)
    unknown = plant(root / "f", "0123456789abcdef")
    unknown_old = plant(root / "f", "fedcba9876543210", age=STALE_TEMP_AGE + 60)
    storage.write_path("f/key", b"x")
    for gone in (dead, reused, old, unknown_old):
        assert not gone.exists(), gone.name
    for kept in (alive, elsewhere, unknown):
        assert kept.exists(), kept.name
    # Only the first write into a folder looks: later ones pay nothing for it.
    again = plant(root / "f", f"{host}{dead_pid}-0badc0de-6")
    storage.write_path("f/key", b"y")
    assert again.exists()
    # A listing passing by removes it.
    assert list(storage.list_paths()) == ["f/key"]
    assert not again.exists()
    assert storage.read_path("f/key") == b"y"


def test_prune_temp_reports_files_and_bytes(
    storage: LocalStorage, root: Path, dead_pid: int
) -> None:
    host = writer_prefix()
    storage.write_path("a/b/key", b"x")
    plant(root, f"{host}{dead_pid}-0badc0de-1", size=100)
    plant(root / "a" / "b", f"{host}{dead_pid}-0badc0de-2", size=23)
    plant(root / "a", "legacy", size=7, age=STALE_TEMP_AGE + 1)
    live = plant(root / "a", f"{host}{os.getppid()}-0badc0de-3", size=5)
    assert storage.prune_temp() == PruneReport(files=3, bytes=130)
    assert temp_files(root) == [live.name]
    assert asyncio.run(storage.aprune_temp()) == PruneReport()
    assert storage.read_path("a/b/key") == b"x"
    assert LocalStorage(root.parent / "missing").prune_temp() == PruneReport()


def test_store_prune_temp_sync_and_async(root: Path, dead_pid: int) -> None:
    host = writer_prefix()
    store = ResultStore(result_storage=LocalStorage(root), metadata_storage=LocalStorage(root))
    store.write(1, key="one")
    plant(root, f"{host}{dead_pid}-0badc0de-1", size=10)
    assert store.prune(expired=False) == PruneReport(), "nothing is removed unless asked for"
    assert store.prune(temp=True) == PruneReport(files=1, bytes=10, examined=1)
    plant(root / "x", f"{host}{dead_pid}-0badc0de-2", size=4)
    assert asyncio.run(store.aprune(temp=True)) == PruneReport(files=1, bytes=4, examined=1)
    assert temp_files(root) == []
    assert store.read("one").result == 1


def test_prune_is_a_no_op_for_storages_without_temporary_files() -> None:
    store = ResultStore(result_storage=MemoryStorage("memory://prune-test"))
    store.write(1, key="one")
    assert store.prune(temp=True) == PruneReport(files=0, bytes=0, examined=1)
    assert asyncio.run(store.aprune(temp=True)) == PruneReport(examined=1)
    assert PruneReport(1, 2) + PruneReport(3, 4) == PruneReport(files=4, bytes=6)


def test_validate_key_fast_path_still_refuses_the_old_cases() -> None:
    for key in ("ok", "a/b", "é/ü", "x" * 255):
        assert validate_key(key) == key
    with pytest.raises(InvalidKey, match=r"'\\udc80'"):
        validate_key("\udc80")
    assert errno.ENAMETOOLONG  # keys that pass never reach the file system's own limits
