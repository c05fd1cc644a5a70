"""What an object-store backend supplies to `moorage.storage.objectstore.ObjectStorage`.

`ObjectBackend` holds a storage's place (``scheme://bucket/prefix``) and options, and
the hooks the shared operations run on, each with a default that works on any fsspec
async filesystem:

- configuration and messages: `make_filesystem` (the one hook without a default),
  `describe_error`, `time_limit`, `limit_advice`, `split_location`;
- the service's primitives: `_get` (a whole or ranged read), `_head` (metadata, no
  payload), `version_token`, `_put` (one request) and `_put_parts` (an upload in parts,
  with `in_parts` saying when), `_remove`, `_remove_many` (a batch of keys: by default
  `_remove` for each, `REMOVES_AT_ONCE` at a time; a service with a batch delete
  overrides it), `_entries_page` (one page of a listing by prefix: keys, sizes,
  modification times, the expiry stamps of a backend with ``lists_expiration``, and the
  token of the next page);
- what the service's answers mean: `is_not_found`, `is_empty_range`, `is_conflict`
  (a refused write condition), `_bucket_missing`.

The defaults use fsspec's generic async methods (``_cat_file``, ``_info``,
``_pipe_file``, ``_rm_file``, ``_find``, the coroutines behind fsspec's public
``cat_file``, ``info``...), so a third-party backend that supplies only
`make_filesystem` gets a working, unconditional storage; moorage-s3, moorage-gcs and
moorage-azure override the primitives with their clients' direct requests. Each
primitive runs on fsspec's I/O loop and may raise its client's exceptions as they come:
the operations and the one error translation of `ObjectStorage` decide what they mean.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from fsspec.asyn import AsyncFileSystem

from moorage.errors import ConfigurationError, StorageError
from moorage.landing import land
from moorage.storage.base import Storage
from moorage.storage.conditions import WriteCondition
from moorage.storage.entries import StorageEntry
from moorage.storage.ioloop import within
from moorage.storage.upload import Buffers

__all__ = [
    "REMOVES_AT_ONCE",
    "EntriesPage",
    "ObjectBackend",
    "RemoveFailed",
    "as_size",
    "as_utc",
]

_T = TypeVar("_T")

#: One page of a listing: its entries (keys relative to the storage's root), and the
#: token that asks for the next page, None after the last.
EntriesPage = tuple[list[StorageEntry], str | None]

# Where fsspec filesystems put an object's modification time in ``info``: s3fs, adlfs,
# gcsfs, then the generic name of local-like filesystems.
_MODIFIED_FIELDS = ("LastModified", "last_modified", "updated", "mtime")

#: How many single deletes the default `ObjectBackend._remove_many` has in flight at
#: once: enough to hide the network's round trips, few enough not to flood the service.
REMOVES_AT_ONCE = 16


class RemoveFailed(Exception):
    """Some objects of a batch delete (`ObjectBackend._remove_many`) are still there.

    ``failures`` maps each key that could not be deleted to why: the exception its own
    request raised, or the service's code and message for it where one request deleted
    many (S3's DeleteObjects answers per key). ``asked`` is how many keys the batch
    held; the others were deleted. `ObjectStorage` turns it into a `StorageError` that
    names the keys, the reasons and the URL.
    """

    def __init__(self, failures: dict[str, BaseException | str], asked: int) -> None:
        first = next(iter(failures.items()), ("?", "?"))
        super().__init__(f"{len(failures)} of {asked} deletes failed; first {first[0]!r}")
        self.failures = failures
        self.asked = asked


def as_utc(value: object) -> dt.datetime | None:
    """A listing's modification time as an aware UTC datetime: from a datetime (a naive
    one is taken as UTC, as object stores report), an RFC 3339 string (GCS's
    ``updated``) or POSIX seconds; None for anything else (the time is then unknown)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return None


def as_size(value: object) -> int | None:
    """A listing's object size in bytes (GCS's JSON API sends it as a string), or None
    when it gives none."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class ObjectBackend(Storage):
    """A bucket (or container) and a key prefix on an object store reached by fsspec,
    and the hooks its operations run on.

    Subclasses set `schemes` and implement `make_filesystem`, and usually the
    primitives and `describe_error`. ``url`` is ``scheme://bucket/prefix`` without the
    query string, so nothing passed as an option (keys, tokens, connection strings)
    reaches a repr or a message.
    """

    #: What to tell the user when the bucket does not exist: "create it with ...".
    bucket_word: ClassVar[str] = "bucket"
    #: Requests the store's bulk work (heads read by list, prune and copy_to) sends at
    #: once: each waits on the network, so several in flight hide the round trips.
    io_concurrency: ClassVar[int] = 16
    #: The most keys one `_remove_many` call is given (a longer `delete_paths` is cut
    #: into batches of this many, deleted one batch after the other): the most the
    #: service's batch delete takes in one request (S3: 1,000). An instance may set a
    #: lower value, as the tests do to see batches without writing thousands of keys.
    remove_batch: int = 1000

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

    def __reduce__(self) -> tuple[Any, ...]:
        """Unpickled through `moorage.landing.land`: a worker that receives equal
        storages task after task shares one, and with it one client."""
        return (land, (type(self), self.__getstate__()))

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class, at the same URL, with the same options
        (credentials included: two storages with different keys are not the same)."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ObjectBackend)
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

    async def _bounded(
        self, work: Coroutine[Any, Any, _T], action: str, key: str | None, nbytes: int | None
    ) -> _T:
        """``work``, cancelled once `time_limit` (for ``action`` moving ``nbytes``) has
        passed, then reported as a `StorageError` naming the URL and key."""

        def expired(limit: float) -> StorageError:
            return StorageError(
                f"cannot {action} {self._where(key)}: no complete answer within {limit:.3g} s "
                "(the limit its connect and read timeouts and attempts allow); the endpoint "
                f"accepts connections but stopped answering or reading; {self.limit_advice()}"
            )

        return await within(self.time_limit(action, nbytes), work, expired)

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
        self,
        fs: AsyncFileSystem,
        key: str,
        buffers: Buffers,
        condition: WriteCondition,
        expiry: str | None = None,
    ) -> None:
        """Store the buffers as the object in one request, with the condition if any,
        and, for a backend with ``lists_expiration``, the ``expiry`` stamp (if not None)
        as the object's metadata under `moorage.storage.entries.EXPIRY_METADATA_KEY`, in
        that same request. ``expiry`` is passed only when not None, and only to a backend
        that declares ``lists_expiration``. fsspec's generic ``pipe_file`` can send
        neither a condition nor metadata, so the default refuses both."""
        if condition:
            raise ConfigurationError(
                f"{type(self).__name__} cannot write {self._where(key)} conditionally; its "
                "storage declares no conditional writes"
            )
        if expiry is not None:
            raise ConfigurationError(
                f"{type(self).__name__} cannot keep an expiry stamp with {self._where(key)}; "
                "only a backend that declares lists_expiration takes expiry="
            )
        await fs._pipe_file(self._path(key), bytes(buffers.data(0, buffers.size)))

    async def _put_parts(
        self,
        fs: AsyncFileSystem,
        key: str,
        buffers: Buffers,
        condition: WriteCondition,
        expiry: str | None = None,
    ) -> None:
        """Store the buffers as the object, uploaded in parts (`moorage.storage.upload`),
        the condition and the ``expiry`` metadata (as for `_put`) sent with the request
        that makes the object appear."""
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

    async def _remove_many(self, fs: AsyncFileSystem, keys: list[str]) -> None:
        """Delete the objects of ``keys`` (distinct, at most `remove_batch`); missing
        ones are no error. Keys that could not be deleted raise `RemoveFailed` once all
        the others are done; a failure of the whole request (a missing bucket, refused
        credentials) may raise as it comes. Each request is bounded in time on its own
        (`_bounded`): the batch as a whole has no limit.

        The default runs `_remove` for each key, `REMOVES_AT_ONCE` at a time; a service
        with a batch delete overrides it with that (S3's DeleteObjects).
        """
        gate = asyncio.Semaphore(REMOVES_AT_ONCE)

        async def remove(key: str) -> None:
            async with gate:
                await self._bounded(self._remove(fs, key), "delete", key, 0)

        outcomes = await asyncio.gather(*(remove(key) for key in keys), return_exceptions=True)
        failures: dict[str, BaseException | str] = {}
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, Exception):
                failures[key] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome  # a cancellation or an exit: not a delete that failed
        if failures:
            raise RemoveFailed(failures, len(keys))

    async def _entries_page(
        self, fs: AsyncFileSystem, prefix: str, token: str | None, limit: int
    ) -> EntriesPage:
        """One page of the listing of the objects whose key starts with ``prefix``,
        fetched with one request: up to ``limit`` entries, keys relative to the root, in
        the service's (key) order, each with the size and modification time the listing
        gives; and the token for the next page (None: this was the last). ``token`` is
        None for the first page. The entries may include more than asked (keys not
        starting with ``prefix``, folder markers ending in ``/``: they are filtered),
        never fewer.

        The default has no pages to offer: fsspec's generic ``_find`` lists everything
        in one go (the shared operations cut it into pages of ``limit``), with the size
        and the time of each object's ``info``. Backends override it with their
        service's own paginated listing.
        """
        folder = prefix.rpartition("/")[0]  # list below the prefix's folder, not the root
        try:
            found: dict[str, dict[str, Any]] = await fs._find(
                f"{self._root}/{folder}" if folder else self._root, detail=True
            )
        except FileNotFoundError:
            if not await self._bucket_exists(fs):
                raise
            found = {}
        start = len(self._root) + 1
        entries = [
            StorageEntry(name[start:], as_size(info.get("size")), _modified(info))
            for name, info in found.items()
            if name.startswith(self._root + "/")
        ]
        return entries, None

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

    # -- names ------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def _name(self, key: str) -> str:
        """The object's name inside the bucket."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str | None) -> str:
        return f"{key!r} in {self.url}" if key is not None else self.url


def _modified(info: dict[str, Any]) -> dt.datetime | None:
    """The modification time in a generic fsspec ``info``, where it names one."""
    for field in _MODIFIED_FIELDS:
        if field in info:
            return as_utc(info[field])
    return None
