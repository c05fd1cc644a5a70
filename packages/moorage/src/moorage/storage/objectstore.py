"""Shared base for object-store backends built on fsspec's async filesystems.

moorage-s3, moorage-gcs and moorage-azure each subclass `ObjectStorage` and supply only
what is particular to their service, as the hooks of
`moorage.storage.objectbackend.ObjectBackend`: how to build the filesystem, a few
primitives (a read, a HEAD, a write in one request or in parts, a delete, a listing),
which of the service's answers mean "not found", "empty range" or "condition failed",
and what its failures mean. Every operation of the storage contract is written once,
here, on top of those:

- each operation is one coroutine taking the filesystem it runs on, run on fsspec's I/O
  loop by the sync and the async method alike (`moorage.storage.ioloop`);
- every filesystem is built with ``skip_instance_cache=True`` (two storages with
  different credentials never share a client) and with the listings cache off, so
  ``exists`` sees another writer's new object at once;
- ``exists`` and `version_of` ask for the object's metadata (a HEAD request),
  ``read_head`` asks for a byte range, listings ask for names: none of them downloads a
  payload; a large write goes up in parts through `moorage.storage.upload`;
- ``delete_paths`` cuts its keys into batches of `remove_batch` and hands each to the
  backend's `_remove_many` (one S3 DeleteObjects request, or single deletes run a few
  at a time), each request bounded on its own; keys that could not be deleted are
  named in the error, with the service's reason for each;
- a backend that declares ``lists_expiration`` gets each write's ``expiry=`` stamp in
  its `_put` / `_put_parts` hooks, to keep as the object's metadata, and reads it back
  in its listing; for any other backend the stamp is dropped here (the store passes it
  to such backends only, so nothing is lost);
- a listing goes a page at a time (`list_entries`, and `list_paths` on top of it): each
  page is one request of the service's paginated listing, fetched only when the caller
  asks for it, so no listing is held whole before its first page is handed over;
- every exception leaving a backend passes through `moorage.errors.map_exceptions` with
  one translation (`ObjectStorage._error`): a refused condition is a `WriteConflict`,
  anything else a `StorageError` whose message names the URL and the fix, never the
  credentials;
- no call hangs: each backend bounds every request attempt with its timeouts, and an
  operation whose size is known (a listing's page counts as one small request) runs
  under an overall limit (`time_limit`), past which it is cancelled and reported as a
  `StorageError` naming the URL and key.

This module imports fsspec; only the plugin packages (which depend on it) import it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from fsspec.asyn import AsyncFileSystem

import moorage.storage.entries as listing
from moorage.buffers import BytesLike
from moorage.config.secrets import mask_secrets
from moorage.errors import (
    MoorageError,
    RecordNotFound,
    StorageError,
    map_exceptions,
)
from moorage.storage.conditions import ALWAYS, WriteCondition, write_conflict
from moorage.storage.entries import StorageEntry
from moorage.storage.ioloop import await_on_loop, run_on_loop
from moorage.storage.objectbackend import EntriesPage, ObjectBackend, RemoveFailed
from moorage.storage.upload import Buffers

__all__ = ["ObjectStorage"]

_T = TypeVar("_T")


class ObjectStorage(ObjectBackend):
    """The storage contract on an object store reached by fsspec, each operation written
    once over the hooks of `ObjectBackend` (see there for what a backend supplies)."""

    # -- the filesystem and the two shells ---------------------------------------------

    def _filesystem(self) -> AsyncFileSystem:
        """This storage's filesystem; its coroutines run on fsspec's I/O thread."""
        pid = os.getpid()
        with self._guard:
            if self._fs is None or self._fs_pid != pid:  # a forked child builds its own
                self._fs = self.make_filesystem(asynchronous=False, loop=None)
                self._fs_pid = pid
            return self._fs

    def _run(
        self,
        op: Callable[..., Coroutine[Any, Any, _T]],
        action: str,
        key: str | None,
        *args: Any,
        nbytes: int | None = None,
    ) -> _T:
        with map_exceptions(lambda exc: self._error(exc, action, key)):
            fs = self._filesystem()
            return run_on_loop(fs, lambda: self._bounded(op(fs, *args), action, key, nbytes))

    async def _arun(
        self,
        op: Callable[..., Coroutine[Any, Any, _T]],
        action: str,
        key: str | None,
        *args: Any,
        nbytes: int | None = None,
    ) -> _T:
        with map_exceptions(lambda exc: self._error(exc, action, key)):
            fs = self._filesystem()
            return await await_on_loop(fs, self._bounded(op(fs, *args), action, key, nbytes))

    # -- errors -----------------------------------------------------------------------

    def _error(self, exc: BaseException, action: str, key: str | None) -> MoorageError:
        """The one translation of this storage's failures (see `map_exceptions`)."""
        if isinstance(exc, RemoveFailed):
            return self._remove_failed(exc)
        specific = self.describe_error(exc, action, key)
        if specific is not None:
            return StorageError(specific)
        where = self._where(key)
        if isinstance(exc, FileNotFoundError):
            return StorageError(
                f"cannot {action} {where}: the {self.bucket_word} {self.bucket!r} does not "
                f"exist or is not visible with these credentials; create it or fix the URL"
            )
        if isinstance(exc, PermissionError):
            return StorageError(
                f"cannot {action} {where}: access denied; check the credentials given to "
                f"this storage (options, named storage or the SDK's environment variables)"
            )
        if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return StorageError(
                f"cannot {action} {where}: the endpoint is unreachable or timed out "
                f"({type(exc).__name__}); check the endpoint URL and the network"
            )
        return StorageError(f"cannot {action} {where}: {type(exc).__name__}: {self._masked(exc)}")

    def _remove_failed(self, exc: RemoveFailed) -> MoorageError:
        """The error of a batch delete that left keys behind: one key's failure as
        `delete_path` would report it; several, counted and named (the first few), each
        with the service's reason where it gave one per key, and the message of the
        first failed request in full where they were requests of their own."""
        reasons: list[str] = []
        first: str | None = None
        for key, why in exc.failures.items():
            if isinstance(why, BaseException):
                mapped = why if isinstance(why, MoorageError) else self._error(why, "delete", key)
                if len(exc.failures) == 1:
                    return mapped
                first = first or str(mapped)
                reasons.append(repr(key))
                continue
            if len(exc.failures) == 1:
                return StorageError(
                    f"cannot delete {self._where(key)}: {why}; it is still there, try again "
                    "or check the permissions to delete it"
                )
            reasons.append(f"{key!r} ({why})")
        shown = "; ".join(reasons[:_NAMED])
        more = f"; and {len(reasons) - _NAMED} more" if len(reasons) > _NAMED else ""
        cause = f" The first failure: {first}" if first else ""
        return StorageError(
            f"cannot delete {len(reasons)} of {exc.asked} keys in {self.url}: {shown}{more}; "
            f"the other keys were deleted, these are still there; try again or check the "
            f"permissions to delete them.{cause}"
        )

    def _masked(self, exc: BaseException) -> str:
        """The exception's text with every option value that could be a secret hidden."""
        return mask_secrets(str(exc), self.options.values(), min_length=6)

    def _missing(self, key: str) -> RecordNotFound:
        return RecordNotFound(
            f"no record under key {key!r} in {self.url}; write it first or check the key"
        )

    # -- the operations, each written once --------------------------------------------

    async def _read(self, fs: AsyncFileSystem, key: str, n: int | None) -> bytes:
        try:
            if n == 0:
                if await self._head(fs, key) is None:
                    raise FileNotFoundError(self._path(key))
                return b""
            return await self._get(fs, key, n)
        except Exception as exc:
            if n and self.is_empty_range(exc):
                return b""  # a range past the end of an empty object: its head is empty
            if not self.is_not_found(exc) or await self._bucket_missing(fs, exc):
                raise
            raise self._missing(key) from None

    async def _write(
        self,
        fs: AsyncFileSystem,
        key: str,
        parts: Sequence[BytesLike],
        condition: WriteCondition = ALWAYS,
        expiry: str | None = None,
    ) -> str:
        buffers = Buffers(parts)
        # Only a stamp goes as a keyword: a backend's hooks without ``expiry`` still work.
        stamped = {"expiry": expiry} if expiry is not None and self.lists_expiration else {}
        try:
            if self.in_parts(buffers.size):
                await self._put_parts(fs, key, buffers, condition, **stamped)
            else:
                await self._put(fs, key, buffers, condition, **stamped)
        except Exception as exc:
            if condition and self.is_conflict(exc, condition):
                raise write_conflict(key, self.url, condition.if_version) from exc
            raise
        return self.resolve_path(key)

    async def _version(self, fs: AsyncFileSystem, key: str) -> str | None:
        info = await self._head(fs, key)
        return None if info is None else self.version_token(key, info)

    async def _exists(self, fs: AsyncFileSystem, key: str) -> bool:
        return await self._head(fs, key) is not None

    async def _delete(self, fs: AsyncFileSystem, key: str) -> None:
        await self._remove(fs, key)

    async def _delete_batch(self, fs: AsyncFileSystem, keys: list[str]) -> None:
        await self._remove_many(fs, keys)

    def _batches(self, keys: Sequence[str]) -> list[list[str]]:
        """``keys`` without repeats, in batches of at most `remove_batch` (S3 refuses a
        DeleteObjects request that names a key twice)."""
        distinct = list(dict.fromkeys(keys))
        size = max(1, self.remove_batch)
        return [distinct[i : i + size] for i in range(0, len(distinct), size)]

    async def _page(
        self, fs: AsyncFileSystem, prefix: str, token: str | None, limit: int
    ) -> EntriesPage:
        """One page of a listing (`_entries_page`), the keys that are not the prefix's
        left out (as are folder markers), in key order."""
        found, following = await self._entries_page(fs, prefix, token, limit)
        kept = [e for e in found if e.key and not e.key.endswith("/") and e.key.startswith(prefix)]
        kept.sort(key=_key)
        return kept, following

    # -- the storage contract: thin sync and async shells -----------------------------

    def read_path(self, key: str) -> bytes:
        return self._run(self._read, "read", key, key, None)

    def read_head(self, key: str, n: int) -> bytes:
        return self._run(self._read, "read", key, key, n, nbytes=n)

    def write_path(
        self,
        key: str,
        content: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
        expiry: str | None = None,
    ) -> str:
        return self.write_parts(
            key, [content], if_absent=if_absent, if_version=if_version, expiry=expiry
        )

    def write_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
        expiry: str | None = None,
    ) -> str:
        """Write ``parts`` as the object under ``key``; ``expiry`` (see
        ``lists_expiration``) is kept with it by a backend that declares that, and
        ignored by any other."""
        condition = WriteCondition(if_absent, if_version)
        return self._run(
            self._write, "write", key, key, parts, condition, expiry, nbytes=_size(parts)
        )

    def version_of(self, key: str) -> str | None:
        return self._run(self._version, "check", key, key, nbytes=0)

    def exists(self, key: str) -> bool:
        return self._run(self._exists, "check", key, key, nbytes=0)

    def delete_path(self, key: str) -> None:
        self._run(self._delete, "delete", key, key, nbytes=0)

    def delete_paths(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` a batch (`remove_batch` keys) at a time, each batch one call
        of the backend's `_remove_many`, every request in it bounded on its own."""
        for batch in self._batches(keys):
            self._run(self._delete_batch, _deleting(batch), None, batch)

    def list_paths(self, prefix: str = "") -> Iterator[str]:
        return iter(sorted(entry.key for page in self.list_entries(prefix) for entry in page))

    def list_entries(self, prefix: str = "") -> Iterator[list[StorageEntry]]:
        """The service's listing a page at a time: each page one bounded request on the
        I/O loop, asked for only when the one before has been taken, its failures mapped
        like any operation's."""
        limit = listing.LIST_PAGE_SIZE  # read per call: a test may lower it
        token: str | None = None
        while True:
            found, token = self._run(self._page, "list", None, prefix, token, limit, nbytes=0)
            yield from _pages(found, limit)
            if token is None:
                return

    async def aread_path(self, key: str) -> bytes:
        return await self._arun(self._read, "read", key, key, None)

    async def aread_head(self, key: str, n: int) -> bytes:
        return await self._arun(self._read, "read", key, key, n, nbytes=n)

    async def awrite_path(
        self,
        key: str,
        content: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
        expiry: str | None = None,
    ) -> str:
        return await self.awrite_parts(
            key, [content], if_absent=if_absent, if_version=if_version, expiry=expiry
        )

    async def awrite_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
        expiry: str | None = None,
    ) -> str:
        condition = WriteCondition(if_absent, if_version)
        return await self._arun(
            self._write, "write", key, key, parts, condition, expiry, nbytes=_size(parts)
        )

    async def aversion_of(self, key: str) -> str | None:
        return await self._arun(self._version, "check", key, key, nbytes=0)

    async def aexists(self, key: str) -> bool:
        return await self._arun(self._exists, "check", key, key, nbytes=0)

    async def adelete_path(self, key: str) -> None:
        await self._arun(self._delete, "delete", key, key, nbytes=0)

    async def adelete_paths(self, keys: Sequence[str]) -> None:
        """Async twin of `delete_paths`: each batch awaited from the I/O loop."""
        for batch in self._batches(keys):
            await self._arun(self._delete_batch, _deleting(batch), None, batch)

    async def alist_paths(self, prefix: str = "") -> list[str]:
        return sorted([entry.key async for page in self.alist_entries(prefix) for entry in page])

    async def alist_entries(self, prefix: str = "") -> AsyncIterator[list[StorageEntry]]:
        """Async twin of `list_entries`: each page awaited from the I/O loop."""
        limit = listing.LIST_PAGE_SIZE
        token: str | None = None
        while True:
            found, token = await self._arun(
                self._page, "list", None, prefix, token, limit, nbytes=0
            )
            for page in _pages(found, limit):
                yield page
            if token is None:
                return

    def resolve_path(self, key: str) -> str:
        return f"{self.url}/{key}"

    def close(self) -> None:
        with self._guard:
            self._fs = None


#: How many of the keys a batch delete left behind its error names.
_NAMED = 5


def _deleting(keys: list[str]) -> str:
    """The action of a batch delete in messages: ``cannot delete 'k' from URL``, or
    ``cannot delete 3 keys ('a', 'b', 'c') from URL``; at most `_NAMED` keys named."""
    if len(keys) == 1:
        return f"delete {keys[0]!r} from"
    named = ", ".join(repr(key) for key in keys[:_NAMED])
    return f"delete {len(keys)} keys ({named}{', ...' if len(keys) > _NAMED else ''}) from"


def _size(parts: Sequence[BytesLike]) -> int:
    return sum(memoryview(part).nbytes for part in parts)


def _key(entry: StorageEntry) -> str:
    return entry.key


def _pages(entries: list[StorageEntry], limit: int) -> Iterator[list[StorageEntry]]:
    """``entries`` in pages of at most ``limit`` (a service, or the generic default,
    may answer with more than asked), none of them empty."""
    if len(entries) <= limit:
        if entries:
            yield entries
        return
    for start in range(0, len(entries), limit):
        yield entries[start : start + limit]
