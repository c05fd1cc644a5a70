"""Shared base for object-store backends built on fsspec's async filesystems.

moorage-s3, moorage-gcs and moorage-azure each subclass `ObjectStorage` and supply only
what is particular to their service: how to build the filesystem (`make_filesystem`),
a few primitives (`_get`, `_head`, `_put`, `_put_parts`, `_remove`, `_names`), which of
the service's answers mean "not found", "empty range" or "condition failed", and what
its failures mean (`describe_error`). Every operation of the storage contract is written
once, here, on top of those:

- each operation is one coroutine taking the filesystem it runs on, run on fsspec's I/O
  loop by the sync and the async method alike (`moorage.storage.ioloop`);
- every filesystem is built with ``skip_instance_cache=True`` (two storages with
  different credentials never share a client) and with the listings cache off, so
  ``exists`` sees another writer's new object at once;
- ``exists`` and `version_of` ask for the object's metadata (a HEAD request),
  ``read_head`` asks for a byte range, listings ask for names: none of them downloads a
  payload; a large write goes up in parts through `moorage.storage.upload`;
- every exception leaving a backend passes through `moorage.errors.map_exceptions` with
  one translation (`ObjectStorage._error`): a refused condition is a `WriteConflict`,
  anything else a `StorageError` whose message names the URL and the fix, never the
  credentials;
- no call hangs: each backend bounds every request attempt with its timeouts, and an
  operation whose size is known runs under an overall limit (`time_limit`), past which
  it is cancelled and reported as a `StorageError` naming the URL and key.

The defaults of the primitives use fsspec's generic async methods, so a third-party
backend that supplies only `make_filesystem` gets a working (unconditional) storage.
This module imports fsspec; only the plugin packages (which depend on it) import it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from fsspec.asyn import AsyncFileSystem

from moorage.buffers import BytesLike
from moorage.errors import (
    ConfigurationError,
    MoorageError,
    RecordNotFound,
    StorageError,
    map_exceptions,
)
from moorage.storage.base import Storage
from moorage.storage.conditions import ALWAYS, WriteCondition, write_conflict
from moorage.storage.ioloop import await_on_loop, run_on_loop, within
from moorage.storage.upload import Buffers

__all__ = ["ObjectStorage"]

_T = TypeVar("_T")


class ObjectStorage(Storage):
    """A bucket (or container) and a key prefix on an object store reached by fsspec.

    Subclasses set `schemes` and implement `make_filesystem`, and usually the
    primitives and `describe_error`. ``url`` is ``scheme://bucket/prefix`` without the
    query string, so nothing passed as an option (keys, tokens, connection strings)
    reaches a repr or a message.
    """

    #: What to tell the user when the bucket does not exist: "create it with ...".
    bucket_word: ClassVar[str] = "bucket"

    def __init__(self, url: str, **options: Any) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in self.schemes:
            raise ConfigurationError(
                f"{type(self).__name__} takes {', '.join(s + '://' for s in self.schemes)} "
                f"URLs, not {url.split('?')[0]!r}"
            )
        self.scheme = parts.scheme.lower()
        self.bucket, self.prefix = self.split_location(parts.netloc, parts.path)
        if not self.bucket:
            raise ConfigurationError(
                f"no {self.bucket_word} in {url.split('?')[0]!r}; write it as "
                f"{self.scheme}://{self.bucket_word.upper()}/optional/prefix"
            )
        self.url = f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.options = options
        self._root = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        self._guard = threading.Lock()
        self._fs: AsyncFileSystem | None = None
        self._fs_pid = 0

    # -- travelling: configuration only ---------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the configuration; the client and its lock are built again, lazily,
        in the process that unpickles (a client's sessions belong to their process)."""
        state = dict(self.__dict__)
        for name in ("_guard", "_fs", "_fs_pid"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._guard = threading.Lock()
        self._fs = None
        self._fs_pid = 0

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class, at the same URL, with the same options
        (credentials included: two storages with different keys are not the same)."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ObjectStorage)
        return self.url == other.url and self.options == other.options

    def __hash__(self) -> int:
        return hash((type(self), self.url))

    # -- what a backend supplies: configuration and messages ---------------------------

    def split_location(self, netloc: str, path: str) -> tuple[str, str]:
        """``(bucket, prefix)`` from the URL's host and path parts."""
        return netloc, path.strip("/")

    def make_filesystem(self, *, asynchronous: bool, loop: Any) -> AsyncFileSystem:
        """Build a new filesystem from `options`, not shared with any other storage."""
        raise NotImplementedError

    def describe_error(self, exc: BaseException, action: str, key: str | None) -> str | None:
        """A message for a backend-specific failure, or None to use the generic one."""
        return None

    def time_limit(self, action: str, nbytes: int | None) -> float | None:
        """Seconds an operation moving ``nbytes`` (None: not known in advance, as for a
        whole-object read or a listing) may take in all, or None for no overall limit;
        the client library's per-request timeouts still apply. See
        `moorage.storage.ioloop.overall_limit`."""
        return None

    def limit_advice(self) -> str:
        """What to check or raise when an operation ran out of its overall limit."""
        return "check that the service is up and responsive, or raise its timeout options"

    # -- what a backend supplies: the service's primitives -----------------------------
    # Each runs on the I/O loop and may raise its client's exceptions as they come: the
    # operations below and `_error` decide what they mean.

    async def _get(self, fs: AsyncFileSystem, key: str, n: int | None) -> bytes:
        """The object's bytes, or its first ``n`` (``n > 0``)."""
        if n is None:
            return bytes(await fs._cat_file(self._path(key)))
        return bytes(await fs._cat_file(self._path(key), start=0, end=n))

    async def _head(self, fs: AsyncFileSystem, key: str) -> dict[str, Any] | None:
        """The object's metadata, without its payload; None when no object is there."""
        try:
            info: dict[str, Any] = await fs._info(self._path(key))
        except FileNotFoundError:
            return None
        return info if info.get("type", "file") == "file" else None

    def version_token(self, key: str, info: dict[str, Any]) -> str:
        """The version (ETag, generation) in `_head`'s metadata, for backends that
        declare `conditional_replace`."""
        raise NotImplementedError(f"{type(self).__name__} has no object versions")

    def in_parts(self, size: int) -> bool:
        """Whether a write of ``size`` bytes goes up in parts (`_put_parts`)."""
        return False

    async def _put(
        self, fs: AsyncFileSystem, key: str, buffers: Buffers, condition: WriteCondition
    ) -> None:
        """Store the buffers as the object in one request, with the condition if any.
        fsspec's generic ``pipe_file`` cannot send one, so the default refuses them."""
        if condition:
            raise ConfigurationError(
                f"{type(self).__name__} cannot write {self._where(key)} conditionally; its "
                "storage declares no conditional writes"
            )
        await fs._pipe_file(self._path(key), bytes(buffers.data(0, buffers.size)))

    async def _put_parts(
        self, fs: AsyncFileSystem, key: str, buffers: Buffers, condition: WriteCondition
    ) -> None:
        """Store the buffers as the object, uploaded in parts (`moorage.storage.upload`),
        the condition sent with the request that makes the object appear."""
        raise NotImplementedError(f"{type(self).__name__} has no uploads in parts")

    def is_conflict(self, exc: BaseException, condition: WriteCondition) -> bool:
        """Whether ``exc``, raised by a write with this condition, is the service
        refusing the condition (nothing was written)."""
        return False

    async def _remove(self, fs: AsyncFileSystem, key: str) -> None:
        """Delete the object; a missing one is no error."""
        try:
            await fs._rm_file(self._path(key))
        except FileNotFoundError:
            pass

    async def _names(self, fs: AsyncFileSystem, prefix: str) -> list[str]:
        """Keys (relative to the root) of the objects whose key starts with ``prefix``,
        in any order; may include more (they are filtered), never fewer."""
        folder = prefix.rpartition("/")[0]  # list below the prefix's folder, not the root
        try:
            found = await fs._find(f"{self._root}/{folder}" if folder else self._root)
        except FileNotFoundError:
            if not await self._bucket_exists(fs):
                raise
            found = []
        start = len(self._root) + 1
        return [name[start:] for name in found if name.startswith(self._root + "/")]

    def is_not_found(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the object (or its bucket) is not there."""
        return isinstance(exc, FileNotFoundError)

    def is_empty_range(self, exc: BaseException) -> bool:
        """Whether ``exc`` answers a ranged read of an empty object (it exists)."""
        return False

    async def _bucket_missing(self, fs: AsyncFileSystem, exc: BaseException) -> bool:
        """Whether the not-found ``exc`` means the bucket, not the object, is missing."""
        return not await self._bucket_exists(fs)

    async def _bucket_exists(self, fs: AsyncFileSystem) -> bool:
        try:
            exists: bool = await fs._exists(self.bucket)
        except Exception:
            return False
        return exists

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

    async def _bounded(
        self, work: Coroutine[Any, Any, _T], action: str, key: str | None, nbytes: int | None
    ) -> _T:
        """``work``, cancelled once `time_limit` has passed."""

        def expired(limit: float) -> StorageError:
            return StorageError(
                f"cannot {action} {self._where(key)}: no complete answer within {limit:.3g} s "
                "(the limit its connect and read timeouts and attempts allow); the endpoint "
                f"accepts connections but stopped answering or reading; {self.limit_advice()}"
            )

        return await within(self.time_limit(action, nbytes), work, expired)

    # -- errors -----------------------------------------------------------------------

    def _where(self, key: str | None) -> str:
        return f"{key!r} in {self.url}" if key is not None else self.url

    def _error(self, exc: BaseException, action: str, key: str | None) -> MoorageError:
        """The one translation of this storage's failures (see `map_exceptions`)."""
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

    def _masked(self, exc: BaseException) -> str:
        """The exception's text with every option value that could be a secret hidden."""
        from moorage.config.secrets import mask_secrets

        return mask_secrets(str(exc), self.options.values(), min_length=6)

    def _missing(self, key: str) -> RecordNotFound:
        return RecordNotFound(
            f"no record under key {key!r} in {self.url}; write it first or check the key"
        )

    # -- the operations, each written once --------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def _name(self, key: str) -> str:
        """The object's name inside the bucket."""
        return f"{self.prefix}/{key}" if self.prefix else key

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
    ) -> str:
        buffers = Buffers(parts)
        try:
            if self.in_parts(buffers.size):
                await self._put_parts(fs, key, buffers, condition)
            else:
                await self._put(fs, key, buffers, condition)
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

    async def _list(self, fs: AsyncFileSystem, prefix: str) -> list[str]:
        names = await self._names(fs, prefix)
        return sorted(k for k in names if k and not k.endswith("/") and k.startswith(prefix))

    # -- the storage contract: thin sync and async shells -----------------------------

    def read_path(self, key: str) -> bytes:
        return self._run(self._read, "read", key, key, None)

    def read_head(self, key: str, n: int) -> bytes:
        return self._run(self._read, "read", key, key, n, nbytes=n)

    def write_path(
        self, key: str, content: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        return self.write_parts(key, [content], if_absent=if_absent, if_version=if_version)

    def write_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        condition = WriteCondition(if_absent, if_version)
        return self._run(self._write, "write", key, key, parts, condition, nbytes=_size(parts))

    def version_of(self, key: str) -> str | None:
        return self._run(self._version, "check", key, key, nbytes=0)

    def exists(self, key: str) -> bool:
        return self._run(self._exists, "check", key, key, nbytes=0)

    def delete_path(self, key: str) -> None:
        self._run(self._delete, "delete", key, key, nbytes=0)

    def list_paths(self, prefix: str = "") -> Iterator[str]:
        return iter(self._run(self._list, "list", None, prefix))

    async def aread_path(self, key: str) -> bytes:
        return await self._arun(self._read, "read", key, key, None)

    async def aread_head(self, key: str, n: int) -> bytes:
        return await self._arun(self._read, "read", key, key, n, nbytes=n)

    async def awrite_path(
        self, key: str, content: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        return await self.awrite_parts(key, [content], if_absent=if_absent, if_version=if_version)

    async def awrite_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        condition = WriteCondition(if_absent, if_version)
        return await self._arun(
            self._write, "write", key, key, parts, condition, nbytes=_size(parts)
        )

    async def aversion_of(self, key: str) -> str | None:
        return await self._arun(self._version, "check", key, key, nbytes=0)

    async def aexists(self, key: str) -> bool:
        return await self._arun(self._exists, "check", key, key, nbytes=0)

    async def adelete_path(self, key: str) -> None:
        await self._arun(self._delete, "delete", key, key, nbytes=0)

    async def alist_paths(self, prefix: str = "") -> list[str]:
        return await self._arun(self._list, "list", None, prefix)

    def resolve_path(self, key: str) -> str:
        return f"{self.url}/{key}"

    def close(self) -> None:
        with self._guard:
            self._fs = None


def _size(parts: Sequence[BytesLike]) -> int:
    return sum(memoryview(part).nbytes for part in parts)
