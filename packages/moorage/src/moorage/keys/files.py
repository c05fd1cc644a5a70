"""Keying a task by what a file holds, not by its name.

A path parameter is keyed by the path itself. Wrap it to key by the file instead:

```python
from moorage.keys import FileContent, FileStat

report(FileContent("data/sales.csv"))   # the bytes (a folder: its files' names and bytes)
report(FileStat("data/huge.parquet"))    # path, size and modification time: no read
```

Both are `os.PathLike`, so the task's body opens them as it would the path. A file's
content is hashed in blocks, never read into memory whole; its path takes no part in a
`FileContent` key, so the same bytes found elsewhere hit.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FileContent", "FileStat", "hash_file_content", "hash_file_stat"]

_BLOCK = 1 << 20


@dataclass(frozen=True)
class FileContent(os.PathLike[str]):
    """A path keyed by the bytes of the file (or of every file below a folder)."""

    path: str | os.PathLike[str]

    def __fspath__(self) -> str:
        return os.fspath(self.path)


@dataclass(frozen=True)
class FileStat(os.PathLike[str]):
    """A path keyed by its resolved path, size and modification time (no read)."""

    path: str | os.PathLike[str]

    def __fspath__(self) -> str:
        return os.fspath(self.path)


def _content_digest(path: Path) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.digest()


def hash_file_content(value: FileContent) -> Any:
    path = Path(value)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return ("folder", [(p.relative_to(path).as_posix(), _content_digest(p)) for p in files])
    if not path.exists():
        return ("missing",)
    return ("file", _content_digest(path))


def hash_file_stat(value: FileStat) -> Any:
    path = Path(value).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return ("missing", str(path))
    return ("stat", str(path), stat.st_size, stat.st_mtime_ns)
