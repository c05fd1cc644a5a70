"""The built-in ``memory://`` storage: process-wide, for tests and short-lived work."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from moorage.buffers import BytesLike
from moorage.errors import InvalidKey, RecordNotFound
from moorage.storage.base import Storage
from moorage.storage.conditions import WriteCondition, write_conflict
from moorage.storage.entries import LIST_PAGE_SIZE, StorageEntry

__all__ = ["MemoryStorage"]


class MemoryStorage(Storage):
    """Process-wide in-memory storage: ``memory://name/prefix``.

    Two `MemoryStorage` objects with the same URL share their contents, like two
    clients of one bucket. Useful for tests and for caching within one process. A copy
    pickled to another process is a storage of the same name there, with that
    process's contents.
    """

    schemes = ("memory",)
    conditional_create = True
    conditional_replace = True
    _spaces: ClassVar[dict[str, dict[str, tuple[bytes, int, dt.datetime]]]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()
    _versions: ClassVar[Iterator[int]] = itertools.count(1)

    def __init__(self, url: str = "memory://") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("memory", ""):
            raise InvalidKey(f"MemoryStorage takes memory:// URLs, not {url!r}")
        root = (parts.netloc + parts.path).strip("/")
        self.url = f"memory://{root}"
        self._prefix = f"{self.url}/" if root else self.url
        with self._guard:
            self._data = self._spaces.setdefault(root, {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.url,))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, MemoryStorage)
        return other.url == self.url

    def __hash__(self) -> int:
        return hash((type(self), self.url))

    def read_path(self, key: str) -> bytes:
        try:
            return self._data[key][0]
        except KeyError:
            raise RecordNotFound(
                f"no record under key {key!r} in {self.url}; write it first or check the key"
            ) from None

    def write_path(
        self, key: str, content: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        entry = (bytes(content), next(self._versions), dt.datetime.now(dt.UTC))
        if WriteCondition(if_absent, if_version):
            with self._guard:
                current = self._data.get(key)
                if if_absent and current is not None:
                    raise write_conflict(key, self.url, None)
                if if_version is not None and (current is None or str(current[1]) != if_version):
                    raise write_conflict(key, self.url, if_version)
                self._data[key] = entry
        else:
            self._data[key] = entry  # one dict assignment: atomic under the GIL
        return self.resolve_path(key)

    def version_of(self, key: str) -> str | None:
        current = self._data.get(key)
        return None if current is None else str(current[1])

    def exists(self, key: str) -> bool:
        return key in self._data

    def delete_path(self, key: str) -> None:
        self._data.pop(key, None)

    def list_paths(self, prefix: str = "") -> Iterator[str]:
        return iter(sorted(k for k in list(self._data) if k.startswith(prefix)))

    def list_entries(self, prefix: str = "") -> Iterator[list[StorageEntry]]:
        """Pages of entries with their sizes and the times they were written."""
        keys = list(self.list_paths(prefix))
        for start in range(0, len(keys), LIST_PAGE_SIZE):
            page = [(key, self._data.get(key)) for key in keys[start : start + LIST_PAGE_SIZE]]
            yield [StorageEntry(key, len(f[0]), f[2]) for key, f in page if f is not None]

    def resolve_path(self, key: str) -> str:
        return f"{self._prefix}{key}"

    async def aread_path(self, key: str) -> bytes:
        return self.read_path(key)

    async def aread_head(self, key: str, n: int) -> bytes:
        return self.read_head(key, n)

    async def awrite_path(
        self, key: str, content: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        return self.write_path(key, content, if_absent=if_absent, if_version=if_version)

    async def awrite_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        return self.write_parts(key, parts, if_absent=if_absent, if_version=if_version)

    async def aversion_of(self, key: str) -> str | None:
        return self.version_of(key)

    async def aexists(self, key: str) -> bool:
        return self.exists(key)

    async def adelete_path(self, key: str) -> None:
        self.delete_path(key)

    async def alist_paths(self, prefix: str = "") -> list[str]:
        return list(self.list_paths(prefix))
