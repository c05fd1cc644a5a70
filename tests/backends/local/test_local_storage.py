"""LocalStorage: the storage contract on a real folder, options, keys, symlinks."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moorage import ConfigurationError, InvalidKey, RecordNotFound, StorageError
from moorage.buffers import BytesLike
from moorage.plugins.registry import Registry
from moorage.plugins.resolve import storage_from
from moorage_local import FileLockManager, LocalStorage
from moorage_local.temp_files import TEMP_PREFIX

Snapshot = Callable[[Path], dict[str, bytes | None]]


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"x", b"\x00\xff" * 1000, os.urandom(3 << 20)])
def test_write_then_read_round_trips(storage: LocalStorage, content: bytes) -> None:
    storage.write_path("key", content)
    assert storage.read_path("key") == content
    assert type(storage.read_path("key")) is bytes


def test_overwrite_replaces_content(storage: LocalStorage) -> None:
    storage.write_path("key", b"a much longer first version")
    storage.write_path("key", b"short")
    assert storage.read_path("key") == b"short"


def test_write_returns_the_resolved_absolute_path(storage: LocalStorage, root: Path) -> None:
    location = storage.write_path("a/b/c.bin", b"data")
    assert location == storage.resolve_path("a/b/c.bin") == str(root / "a" / "b" / "c.bin")
    assert Path(location).read_bytes() == b"data"
    assert os.path.isabs(location)


def test_write_parts_concatenates_without_joining(storage: LocalStorage) -> None:
    tail = memoryview(b"--tail--")[2:6]
    parts: list[BytesLike] = [b"head:", bytearray(b"mid"), tail, b"", b"!"]
    storage.write_parts("parts", parts)
    assert storage.read_path("parts") == b"head:midtail!"


def test_write_parts_with_more_buffers_than_one_writev_takes(storage: LocalStorage) -> None:
    parts = [bytes([i % 256]) * (i % 7) for i in range(5000)]
    storage.write_parts("many", parts)
    assert storage.read_path("many") == b"".join(parts)


def test_write_parts_accepts_non_byte_memoryviews(storage: LocalStorage) -> None:
    numbers = memoryview(bytearray(range(16))).cast("I")
    storage.write_parts("ints", [numbers])
    assert storage.read_path("ints") == bytes(range(16))


def test_read_head_reads_at_most_n_bytes(storage: LocalStorage) -> None:
    storage.write_path("key", b"0123456789")
    assert storage.read_head("key", 4) == b"0123"
    assert storage.read_head("key", 100) == b"0123456789"
    assert storage.read_head("key", 0) == b""
    with pytest.raises(RecordNotFound):
        storage.read_head("missing", 4)


def test_missing_key_raises_record_not_found_naming_key_and_url(storage: LocalStorage) -> None:
    with pytest.raises(RecordNotFound) as caught:
        storage.read_path("no/such/key")
    assert "'no/such/key'" in str(caught.value)
    assert storage.url in str(caught.value)
    assert isinstance(caught.value, KeyError)


def test_exists(storage: LocalStorage) -> None:
    assert not storage.exists("a/b")
    storage.write_path("a/b", b"")
    assert storage.exists("a/b")
    assert not storage.exists("a")  # a folder is not a key
    assert not storage.exists("a/b/c")  # below a file


def test_folder_at_key_is_not_a_record(storage: LocalStorage) -> None:
    storage.write_path("folder/inner", b"x")
    with pytest.raises(RecordNotFound, match="folder"):
        storage.read_path("folder")
    with pytest.raises(StorageError, match="holds other keys") as caught:
        storage.write_path("folder", b"y")
    assert storage.url in str(caught.value)
    storage.delete_path("folder")  # not a key: nothing happens
    assert storage.read_path("folder/inner") == b"x"


def test_file_in_the_way_of_a_folder(storage: LocalStorage, root: Path) -> None:
    storage.write_path("file", b"x")
    with pytest.raises(StorageError, match="in the way") as caught:
        storage.write_path("file/below", b"y")
    assert "'file/below'" in str(caught.value)
    assert not isinstance(caught.value, OSError)
    assert isinstance(caught.value.__cause__, OSError)
    assert temp_files(root) == []


def test_failed_write_leaves_no_temporary_file(storage: LocalStorage, root: Path) -> None:
    storage.write_path("busy/x", b"x")
    with pytest.raises(StorageError):
        storage.write_path("busy", b"cannot replace a folder")
    assert temp_files(root) == []
    assert sorted(os.listdir(root)) == ["busy"]


def test_write_failing_midway_removes_its_temporary_file(storage: LocalStorage, root: Path) -> None:
    storage.write_path("key", b"old")
    with pytest.raises(TypeError):
        storage.write_parts("key", [b"fine", "not bytes"])  # type: ignore[list-item]
    assert temp_files(root) == []
    assert storage.read_path("key") == b"old"


def test_unwritable_root_raises_storage_error_with_a_fix(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"")  # a file where the root's parent should be
    storage = LocalStorage(tmp_path / "blocker" / "root")
    with pytest.raises(StorageError) as caught:
        storage.write_path("key", b"x")
    message = str(caught.value)
    assert "'key'" in message
    assert storage.url in message
    assert "; " in message
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno in (errno.ENOTDIR, errno.EEXIST)


def test_read_of_a_special_file_does_not_block(storage: LocalStorage, root: Path) -> None:
    root.mkdir()
    os.mkfifo(root / "fifo")
    with pytest.raises(RecordNotFound, match="special file"):
        storage.read_path("fifo")
    assert not storage.exists("fifo")
    assert list(storage.list_paths()) == []


# -- deleting --------------------------------------------------------------------------


def test_delete_missing_key_is_fine(storage: LocalStorage) -> None:
    storage.delete_path("never/written")
    storage.delete_path("flat")
    assert list(storage.list_paths()) == []


def test_delete_removes_key_and_prunes_empty_folders(storage: LocalStorage, root: Path) -> None:
    storage.write_path("a/b/c", b"1")
    storage.write_path("a/keep", b"2")
    storage.delete_path("a/b/c")
    assert not storage.exists("a/b/c")
    assert not (root / "a" / "b").exists()
    assert (root / "a" / "keep").exists()
    storage.delete_path("a/keep")
    assert root.is_dir()  # the root itself stays
    assert os.listdir(root) == []


def test_write_after_delete_pruned_the_folder(storage: LocalStorage) -> None:
    storage.write_path("x/y/z", b"1")
    storage.delete_path("x/y/z")
    storage.write_path("x/y/z", b"2")
    assert storage.read_path("x/y/z") == b"2"


# -- listing ---------------------------------------------------------------------------


@pytest.fixture
def listed(storage: LocalStorage) -> LocalStorage:
    for key in ["a.b", "a/b.c", "a/b/c", "a/bc", "ab", "abc/x", "b/a", "z", "é/ü"]:
        storage.write_path(key, key.encode())
    return storage


def test_list_paths_yields_every_key_in_sorted_order(listed: LocalStorage) -> None:
    keys = list(listed.list_paths())
    assert keys == sorted(keys)
    assert keys == ["a.b", "a/b.c", "a/b/c", "a/bc", "ab", "abc/x", "b/a", "z", "é/ü"]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("a", ["a.b", "a/b.c", "a/b/c", "a/bc", "ab", "abc/x"]),
        ("a/", ["a/b.c", "a/b/c", "a/bc"]),
        ("a/b", ["a/b.c", "a/b/c", "a/bc"]),
        ("a/b/", ["a/b/c"]),
        ("a/b/c", ["a/b/c"]),
        ("ab", ["ab", "abc/x"]),
        ("abc", ["abc/x"]),
        ("abc/", ["abc/x"]),
        ("ab/", []),  # below a file
        ("b", ["b/a"]),
        ("c", []),
        ("nope/", []),
        ("z/", []),  # below a file
        ("é", ["é/ü"]),
    ],
)
def test_list_paths_with_prefix(listed: LocalStorage, prefix: str, expected: list[str]) -> None:
    assert list(listed.list_paths(prefix)) == expected


def test_list_paths_skips_temporary_files(storage: LocalStorage, root: Path) -> None:
    storage.write_path("real", b"1")
    storage.write_path("sub/real", b"2")
    (root / f"{TEMP_PREFIX}abc").write_bytes(b"partial")
    (root / "sub" / f"{TEMP_PREFIX}def").write_bytes(b"partial")
    assert list(storage.list_paths()) == ["real", "sub/real"]
    assert list(storage.list_paths(TEMP_PREFIX[:5])) == []
    storage.write_path(f"{TEMP_PREFIX}folder/key", b"3")  # only files are temporary
    assert list(storage.list_paths(TEMP_PREFIX[:5])) == [f"{TEMP_PREFIX}folder/key"]


def test_list_paths_of_a_missing_root_is_empty(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "never-created")
    assert list(storage.list_paths()) == []
    assert list(storage.list_paths("a/")) == []


def test_temporary_file_names_are_not_keys(storage: LocalStorage, root: Path) -> None:
    for key in (f"{TEMP_PREFIX}x", f"a/{TEMP_PREFIX}x"):
        with pytest.raises(InvalidKey):
            storage.write_path(key, b"x")
        with pytest.raises(InvalidKey):
            storage.read_path(key)
    assert not root.exists()


# -- keys that could escape the root -------------------------------------------------------

BAD_KEYS = [
    "../outside",
    "a/../../outside",
    "..",
    ".",
    "a/./b",
    "/abs/outside",
    "/",
    "",
    "a//b",
    "a/",
    "a\\..\\..\\outside",
    "nul\x00byte",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_raise_invalid_key_and_touch_nothing(
    tmp_path: Path, storage: LocalStorage, key: str, snapshot: Snapshot
) -> None:
    storage.write_path("inside", b"kept")
    before = snapshot(tmp_path)
    for call in (
        lambda: storage.write_path(key, b"evil"),
        lambda: storage.write_parts(key, [b"evil"]),
        lambda: storage.read_path(key),
        lambda: storage.read_head(key, 1),
        lambda: storage.exists(key),
        lambda: storage.delete_path(key),
        lambda: storage.resolve_path(key),
    ):
        with pytest.raises(InvalidKey):
            call()
    assert snapshot(tmp_path) == before


async def test_bad_keys_raise_invalid_key_in_async_twins(storage: LocalStorage) -> None:
    with pytest.raises(InvalidKey):
        await storage.awrite_path("../x", b"evil")
    with pytest.raises(InvalidKey):
        await storage.aread_path("/etc/passwd")


# -- symlinks below the root are not followed ---------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_bytes(b"secret")
    return folder


def test_symlinked_folder_is_refused(
    storage: LocalStorage, root: Path, outside: Path, snapshot: Snapshot
) -> None:
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    with pytest.raises(StorageError, match="symbolic link"):
        storage.write_path("link/new", b"evil")
    with pytest.raises(StorageError, match="symbolic link"):
        storage.write_path("link/secret", b"evil")
    with pytest.raises(StorageError, match="symbolic link"):
        storage.read_path("link/secret")
    with pytest.raises(StorageError, match="symbolic link"):
        storage.delete_path("link/secret")
    assert not storage.exists("link/secret")
    assert list(storage.list_paths()) == []
    assert list(storage.list_paths("link/")) == []
    assert snapshot(outside) == before


def test_symlinked_file_is_not_read_and_a_write_replaces_the_link(
    storage: LocalStorage, root: Path, outside: Path
) -> None:
    root.mkdir()
    (root / "leak").symlink_to(outside / "secret")
    with pytest.raises(StorageError, match="symbolic link"):
        storage.read_path("leak")
    assert not storage.exists("leak")
    assert list(storage.list_paths()) == []
    storage.write_path("leak", b"mine")  # replaces the link, not its target
    assert (outside / "secret").read_bytes() == b"secret"
    assert not (root / "leak").is_symlink()
    assert storage.read_path("leak") == b"mine"


def test_root_may_be_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    storage = LocalStorage(tmp_path / "alias")
    storage.write_path("a/b", b"x")
    assert (real / "a" / "b").read_bytes() == b"x"
    assert storage.url == real.as_uri()
    assert list(storage.list_paths()) == ["a/b"]


# -- construction: paths, URLs, options ----------------------------------------------------


def test_plain_path_and_file_url_are_the_same_storage(root: Path) -> None:
    by_path = LocalStorage(str(root))
    by_url = LocalStorage(root.as_uri())
    by_pathlike = LocalStorage(root)
    by_path.write_path("k", b"v")
    assert by_url.read_path("k") == b"v"
    assert by_path.url == by_url.url == by_pathlike.url == root.as_uri()
    assert by_path.resolve_path("k") == by_url.resolve_path("k") == str(root / "k")


def test_relative_and_home_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert LocalStorage("rel/dir").root == str(tmp_path / "rel" / "dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    storage = LocalStorage("~/results")
    assert storage.root == str(tmp_path / "home" / "results")
    storage.write_path("k", b"v")
    assert (tmp_path / "home" / "results" / "k").read_bytes() == b"v"


def test_file_urls_with_escapes_and_localhost(tmp_path: Path) -> None:
    folder = tmp_path / "with space?and#marks"
    storage = LocalStorage(folder.as_uri())
    storage.write_path("k", b"v")
    assert (folder / "k").read_bytes() == b"v"
    assert LocalStorage(f"file://localhost{tmp_path}").root == str(tmp_path)


@pytest.mark.parametrize(
    "url", ["file://server/share", "file:relative/dir", "file://~/x", "s3://bucket/x"]
)
def test_unusable_urls_raise_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="file://"):
        LocalStorage(url)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("Yes", True),
        ("on", True),
        ("1", True),
        ("false", False),
        ("no", False),
        ("OFF", False),
        ("0", False),
        (1, True),
        (0, False),
    ],
)
def test_durable_option_is_coerced(root: Path, value: object, expected: bool) -> None:
    storage = LocalStorage(root, durable=value)  # type: ignore[arg-type]
    assert storage.durable is expected
    storage.write_parts("a/b", [b"x", b"y"])
    assert storage.read_path("a/b") == b"xy"


def test_durable_option_from_the_url_query(root: Path) -> None:
    assert LocalStorage(f"{root.as_uri()}?durable=true").durable is True
    assert LocalStorage(f"{root.as_uri()}?durable=true", durable=False).durable is False
    assert LocalStorage(root.as_uri()).durable is False


def test_bad_durable_value_raises_configuration_error(root: Path) -> None:
    with pytest.raises(ConfigurationError, match="durable='maybe'"):
        LocalStorage(root, durable="maybe")


def test_unknown_option_raises_configuration_error_naming_it_and_the_url(root: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        LocalStorage(root, compression="zstd")
    assert "'compression'" in str(caught.value)
    assert root.as_uri() in str(caught.value)
    with pytest.raises(ConfigurationError, match="'colour'"):
        LocalStorage(f"{root.as_uri()}?colour=red")


def test_core_resolves_paths_and_urls_to_local_storage(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "local")  # this plugin and the core's only
    from_path = storage_from(root)
    from_url = storage_from(f"{root.as_uri()}?durable=yes")
    assert isinstance(from_path, LocalStorage)
    assert isinstance(from_url, LocalStorage)
    assert from_path.root == from_url.root == str(root)
    assert from_url.durable is True
    assert from_path.durable is False
    with pytest.raises(ConfigurationError, match="'bogus'"):
        storage_from(f"{root.as_uri()}?bogus=1")


def test_plugin_registers_the_file_scheme() -> None:
    registry = Registry(["local"]).load()
    (info,) = [p for p in registry.plugins if p.name == "local"]
    assert info.error is None
    assert info.registers == {"storage": ["file"], "lock_manager": ["file"]}
    assert registry.lookup("storage", "file") is LocalStorage
    assert registry.lookup("lock_manager", "file") is FileLockManager


def test_repr_and_key_for_location(storage: LocalStorage) -> None:
    assert repr(storage) == f"LocalStorage({storage.url!r}, durable=False)"
    assert storage.key_for_location(storage.resolve_path("a/b")) == "a/b"
    assert storage.key_for_location("/somewhere/else") is None


# -- other processes, async ----------------------------------------------------------------


def test_a_new_process_reads_what_this_one_wrote(
    storage: LocalStorage, run_python: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    payload = os.urandom(100_000)
    storage.write_parts("shared/key", [payload[:10], payload[10:]])
    done = run_python(
        "import hashlib, sys\n"
        "from moorage_local import LocalStorage\n"
        "data = LocalStorage(sys.argv[1]).read_path('shared/key')\n"
        "print(len(data), hashlib.sha256(data).hexdigest())\n",
        storage.url,
    )
    assert done.stdout.split() == [str(len(payload)), hashlib.sha256(payload).hexdigest()]


async def test_async_twins(storage: LocalStorage) -> None:
    location = await storage.awrite_path("a/1", b"one")
    assert location == storage.resolve_path("a/1")
    await storage.awrite_parts("a/2", [b"t", b"wo"])
    assert await storage.aread_path("a/2") == b"two"
    assert await storage.aread_head("a/1", 2) == b"on"
    assert await storage.aexists("a/1")
    assert await storage.alist_paths("a/") == ["a/1", "a/2"]
    await storage.adelete_path("a/1")
    assert not await storage.aexists("a/1")
    with pytest.raises(RecordNotFound):
        await storage.aread_path("a/1")


def test_storage_is_usable_from_many_threads(storage: LocalStorage) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> Any:
        key = f"t/{i % 5}/{i}"
        storage.write_path(key, str(i).encode())
        value = storage.read_path(key)
        storage.delete_path(key)
        return value

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(400)))
    assert results == [str(i).encode() for i in range(400)]
    assert list(storage.list_paths()) == []
