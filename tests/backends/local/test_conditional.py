"""Local storage's create-if-absent: a hard link, or a no-replace rename without links."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from moorage.errors import ConfigurationError, WriteConflict
from moorage_local import atomic_writes
from moorage_local.storage import LocalStorage
from moorage_local.temp_files import TEMP_PREFIX


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_if_absent_leaves_no_temporary_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write_path("a/b", b"first", if_absent=True)
    with pytest.raises(WriteConflict, match=r"'a/b'.*" + str(tmp_path)):
        storage.write_path("a/b", b"second", if_absent=True)
    assert (tmp_path / "a" / "b").read_bytes() == b"first"
    assert _temps(tmp_path) == []


def test_if_absent_is_a_link_of_the_finished_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write_path("k", b"x" * 10, if_absent=True)
    info = os.stat(tmp_path / "k")
    assert info.st_nlink == 1, "the temporary name was not removed after the link"


@pytest.mark.skipif(not hasattr(os, "link"), reason="no hard links")
def test_without_hard_links_a_no_replace_rename_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    if not atomic_writes.rename_noreplace(str(probe), str(tmp_path / "probe2"), None):
        pytest.skip("this libc has no renameat2")
    monkeypatch.setattr(atomic_writes.os, "link", no_links)
    storage = LocalStorage(tmp_path / "store")
    storage.write_path("k", b"first", if_absent=True)
    with pytest.raises(WriteConflict):
        storage.write_path("k", b"second", if_absent=True)
    assert (tmp_path / "store" / "k").read_bytes() == b"first"
    assert _temps(tmp_path) == []


def test_if_version_is_refused_with_advice(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert storage.conditional_replace is False
    with pytest.raises(ConfigurationError, match="lock"):
        storage.write_path("k", b"x", if_version="1")
    assert not (tmp_path / "k").exists()
