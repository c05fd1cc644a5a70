"""Fixtures for the moorage-local tests: storages on a private folder, child processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from moorage_local import LocalStorage

RunPython = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The storage root: a folder below ``tmp_path``, so escapes would land beside it."""
    return tmp_path / "root"


@pytest.fixture
def storage(root: Path) -> LocalStorage:
    return LocalStorage(root)


@pytest.fixture
def run_python() -> RunPython:
    """Run Python code in a new interpreter (this one's executable); return its result."""

    def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"child failed:\n{done.stdout}\n{done.stderr}"
        return done

    return run


Snapshot = Callable[[Path], dict[str, bytes | None]]


@pytest.fixture
def snapshot() -> Snapshot:
    """Take a picture of a folder: every entry below it, files with their bytes."""

    def take(folder: Path) -> dict[str, bytes | None]:
        return {
            str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))
        }

    return take
