"""The storage contract: what every storage backend implements, and what it gets.

A storage object stores bytes under relative keys below its root. Subclasses implement
the sync five (`read_path`, `write_path`, `exists`, `delete_path`, `list_paths`) plus
`resolve_path`; the base class supplies the async twins (the plugin's own async write
when it has one, else the sync method run in a worker thread), `read_head` (from
`read_path`) and `write_parts` (joins the parts). Remote backends override the async
twins with native async I/O, and any backend may override `read_head` and `write_parts`
to avoid fetching or copying a whole payload.

Conditional writes are optional capabilities a backend declares: `conditional_create`
(``if_absent=True``: write only where nothing is stored, decided by the storage itself)
and `conditional_replace` (`version_of` plus ``if_version=``: write only over the
version read before). A failed condition raises `WriteConflict` and writes nothing. The
store commits transactions with them, and falls back to a check under the key's lock on
a backend that declares neither.

Keys are validated (`moorage.storage.keys`) here and only here: every key-taking method of
every subclass is wrapped when the subclass is defined, so a plugin cannot forget the
check and no I/O happens for a key that could escape the root.
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import partial
from typing import Any, BinaryIO, ClassVar, Protocol, TypeVar

from moorage.buffers import BytesLike
from moorage.operations import in_thread
from moorage.storage.conditions import PruneReport, WriteCondition
from moorage.storage.entries import LIST_PAGE_SIZE, StorageEntry
from moorage.storage.keys import validate_key, validate_keys, validate_prefix

__all__ = ["ListsExpiration", "Storage", "WritesHeadLast"]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

# Methods whose first argument after self is a key, and the validator that applies.
_KEY_TAKING = (
    "read_path",
    "read_head",
    "write_path",
    "write_parts",
    "exists",
    "delete_path",
    "resolve_path",
    "aread_path",
    "aread_head",
    "awrite_path",
    "awrite_parts",
    "aexists",
    "adelete_path",
    "read_stream",
    "aread_stream",
    "version_of",
    "aversion_of",
    "write_head_last",
    "awrite_head_last",
)
_KEY_METHODS: dict[str, Callable[[object], object]] = dict.fromkeys(_KEY_TAKING, validate_key)
_KEY_METHODS["list_paths"] = validate_prefix
_KEY_METHODS["alist_paths"] = validate_prefix
_KEY_METHODS["list_entries"] = validate_prefix
_KEY_METHODS["alist_entries"] = validate_prefix
_KEY_METHODS["delete_paths"] = validate_keys
_KEY_METHODS["adelete_paths"] = validate_keys

#: How many single deletes `Storage.adelete_paths` runs at once by default.
DELETES_AT_ONCE = 16


def _checked(method: _F, check: Callable[[object], object]) -> _F:
    if getattr(method, "__moorage_checked__", False):
        return method
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def async_wrapper(self: Any, key: Any = "", *args: Any, **kwargs: Any) -> Any:
            check(key)
            return await method(self, key, *args, **kwargs)

        wrapper: Any = async_wrapper
    else:

        @functools.wraps(method)
        def sync_wrapper(self: Any, key: Any = "", *args: Any, **kwargs: Any) -> Any:
            check(key)
            return method(self, key, *args, **kwargs)

        wrapper = sync_wrapper
    wrapper.__moorage_checked__ = True
    return wrapper  # type: ignore[no-any-return]


class ListsExpiration(Protocol):
    """The writes of a storage that declares `Storage.lists_expiration`: they take the
    record's expiry stamp, kept as the object's metadata."""

    def write_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
        expiry: str | None = None,
    ) -> str: ...

    async def awrite_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
        expiry: str | None = None,
    ) -> str: ...


class WritesHeadLast(Protocol):
    """The writes of a storage that declares `Storage.writes_head_last`: a file whose
    first ``head_size`` bytes are known only once the rest went by (a record's head holds
    its payload's checksum). ``body`` is written first; right after each span of a part
    is written, while it is in cache, ``observe(view, start, stop)`` sees it (the part as
    a flat byte view, and the span's bounds in it); then ``head()``, exactly
    ``head_size`` bytes, fills the room left before it. Atomic and conditional as
    `Storage.write_parts` (``if_absent`` only): what is stored is
    ``[*head(), *body]``, and an exception from ``observe`` or ``head`` leaves nothing."""

    def write_head_last(
        self,
        key: str,
        head_size: int,
        body: Sequence[BytesLike],
        observe: Callable[[memoryview, int, int], object],
        head: Callable[[], Sequence[BytesLike]],
        *,
        if_absent: bool = False,
    ) -> str: ...

    async def awrite_head_last(
        self,
        key: str,
        head_size: int,
        body: Sequence[BytesLike],
        observe: Callable[[memoryview, int, int], object],
        head: Callable[[], Sequence[BytesLike]],
        *,
        if_absent: bool = False,
    ) -> str: ...


class Storage(ABC):
    """Base class of every storage backend.

    Subclasses set `url` (shown in messages and reprs; never include secrets in it) and
    implement the abstract methods. Keys are validated before any method body runs.
    """

    #: The storage's location, for messages: ``file:///data/results``, ``s3://bucket/p``.
    url: str = ""
    #: Schemes this class serves; informational, used by `moorage plugins`.
    schemes: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, check in _KEY_METHODS.items():
            method = cls.__dict__.get(name)
            if method is not None and callable(method):
                setattr(cls, name, _checked(method, check))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- the sync contract ---------------------------------------------------------

    @abstractmethod
    def read_path(self, key: str) -> bytes:
        """Return the bytes under ``key``; raise `RecordNotFound` if there are none."""

    def read_head(self, key: str, n: int) -> bytes:
        """Return at most the first ``n`` bytes under ``key``."""
        return self.read_path(key)[:n]

    @abstractmethod
    def write_path(
        self, key: str, content: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        """Store ``content`` under ``key`` atomically; return the resolved location.

        ``if_absent`` and ``if_version`` are passed only to a backend that declares
        `conditional_create` or `conditional_replace`; one that does must raise
        `WriteConflict`, and write nothing, when its condition does not hold.
        """

    def write_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        """Store the concatenation of ``parts`` atomically, under the same conditions as
        `write_path`.

        The default joins the parts (one copy); backends that can write a sequence of
        buffers (``os.writev``, multipart uploads) override it to avoid that copy.
        """
        condition = WriteCondition(if_absent, if_version)
        return self.write_path(key, b"".join(parts), **condition.kwargs())

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` holds bytes, found without downloading them."""

    # -- conditional writes: optional ------------------------------------------------

    #: Whether writes honour ``if_absent=True`` atomically: the storage itself refuses
    #: to replace an existing object (a conditional request, a hard link, a lock held
    #: by the storage), so of two racing writers exactly one succeeds.
    conditional_create: ClassVar[bool] = False
    #: Whether `version_of` is implemented and writes honour ``if_version``.
    conditional_replace: ClassVar[bool] = False

    def version_of(self, key: str) -> str | None:
        """An opaque token naming the object now stored under ``key`` (an ETag, a
        generation number), or None when there is none. A write given
        ``if_version=token`` succeeds only while that same object is stored. Only called
        when `conditional_replace` is true."""
        raise NotImplementedError(f"{type(self).__name__} has no object versions")

    async def aversion_of(self, key: str) -> str | None:
        return await in_thread(self.version_of, key)

    @abstractmethod
    def delete_path(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    def delete_paths(self, keys: Sequence[str]) -> None:
        """Remove every key in ``keys``; missing keys are not errors. Backends whose
        service deletes many objects in one request override it (S3's DeleteObjects
        takes 1,000 keys); this default deletes them one at a time, once every key
        has passed its check."""
        for key in validate_keys(keys):
            self.delete_path(key)

    @abstractmethod
    def list_paths(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys below the root that start with ``prefix``."""

    @abstractmethod
    def resolve_path(self, key: str) -> str:
        """The absolute path or URL of ``key``."""

    # -- async twins: a worker thread by default -------------------------------------

    async def aread_path(self, key: str) -> bytes:
        return await in_thread(self.read_path, key)

    async def aread_head(self, key: str, n: int) -> bytes:
        return await in_thread(self.read_head, key, n)

    async def awrite_path(
        self, key: str, content: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        condition = WriteCondition(if_absent, if_version)
        return await in_thread(partial(self.write_path, key, content, **condition.kwargs()))

    async def awrite_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        conditions = WriteCondition(if_absent, if_version).kwargs()
        if type(self).awrite_path is not Storage.awrite_path:
            # The plugin writes natively async: use that rather than a worker thread.
            return await self.awrite_path(key, b"".join(parts), **conditions)
        return await in_thread(partial(self.write_parts, key, parts, **conditions))

    async def aexists(self, key: str) -> bool:
        return await in_thread(self.exists, key)

    async def adelete_path(self, key: str) -> None:
        await in_thread(self.delete_path, key)

    async def adelete_paths(self, keys: Sequence[str]) -> None:
        """Async twin of `delete_paths`: the plugin's own batch delete in a worker thread
        if it has one, else `adelete_path` for each key, `DELETES_AT_ONCE` at a time."""
        keys = validate_keys(keys)  # all of them, before anything is deleted
        if type(self).delete_paths is not Storage.delete_paths:
            await in_thread(self.delete_paths, keys)
            return
        import asyncio

        limit = asyncio.Semaphore(DELETES_AT_ONCE)

        async def delete(key: str) -> None:
            async with limit:
                await self.adelete_path(key)

        # Every delete is awaited, even after one failed; then the first failure is raised.
        outcomes = await asyncio.gather(*(delete(k) for k in keys), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def alist_paths(self, prefix: str = "") -> list[str]:
        return await in_thread(lambda: list(self.list_paths(prefix)))

    # -- listings with sizes: pages, so that no listing sits in memory whole ---------------

    #: How many requests the store's bulk work (the heads read by `ResultStore.list`,
    #: `prune` and `copy_to`) sends to this storage at once. 1 suits local disk and
    #: memory, where a request takes microseconds and threads would only add overhead;
    #: object stores, whose every request waits on the network, set more.
    io_concurrency: ClassVar[int] = 1

    #: Whether the listing tells each record's expiration. Writes of such a backend take
    #: ``expiry=`` (a stamp made by `moorage.storage.entries.expiry_stamp`, or None for
    #: none), which the store passes to such a backend only, and which the backend keeps
    #: as object metadata under `EXPIRY_METADATA_KEY`; `list_entries` hands it back
    #: through `moorage.storage.entries.listed_entry`, so `StorageEntry.expiry_listed`
    #: is True for objects written with it. Prune then decides expiry from the listing
    #: alone, without reading a single head.
    lists_expiration: ClassVar[bool] = False

    #: Whether the backend implements `WritesHeadLast`: the store then writes a large
    #: native record payload first, checksumming each slice just written, and its head
    #: (which holds that checksum) last, instead of reading the payload once more before.
    writes_head_last: ClassVar[bool] = False

    def list_entries(self, prefix: str = "") -> Iterator[list[StorageEntry]]:
        """Yield the objects whose keys start with ``prefix``, as pages of at most
        `LIST_PAGE_SIZE` `StorageEntry` each, in key order within a page. Backends
        override it to give each entry's size and modification time from their own
        listing; this default knows the keys only (size and time None)."""
        page: list[StorageEntry] = []
        for key in self.list_paths(prefix):
            page.append(StorageEntry(key))
            if len(page) == LIST_PAGE_SIZE:
                yield page
                page = []
        if page:
            yield page

    async def alist_entries(self, prefix: str = "") -> AsyncIterator[list[StorageEntry]]:
        """Async twin of `list_entries`: each page is fetched in a worker thread."""
        pages = self.list_entries(prefix)
        while (page := await in_thread(next, pages, None)) is not None:
            yield page

    # -- streamed reads: optional --------------------------------------------------------

    #: Whether `read_stream` is implemented: the store then decodes large records from
    #: an open file instead of a copy of the whole object in memory.
    streams_reads: ClassVar[bool] = False
    #: Objects smaller than this are better read whole: `read_stream` may hand them over
    #: as bytes.
    stream_threshold: ClassVar[int] = 1 << 20

    def read_stream(self, key: str, consume: Callable[[BinaryIO | bytes, int], _T]) -> _T:
        """Return ``consume(source, size)`` for the object under ``key``: ``source`` is
        a binary stream open on it (closed afterwards) or, for objects smaller than
        `stream_threshold`, its bytes. Only called when `streams_reads` is true.
        `RecordNotFound` if there is no object; errors raised by ``consume`` pass through
        unchanged. The store's ``consume`` is `moorage.storage.streams.read_record`: the
        reading happens there, the decisions in a pure decoder of the format layer."""
        raise NotImplementedError(f"{type(self).__name__} does not stream reads")

    async def aread_stream(self, key: str, consume: Callable[[BinaryIO | bytes, int], _T]) -> _T:
        return await in_thread(self.read_stream, key, consume)

    # -- housekeeping: optional ---------------------------------------------------------

    def prune_temp(self, dry_run: bool = False) -> PruneReport:
        """Remove temporary files left by writers that are gone (killed mid-write) and
        report what went; with ``dry_run``, remove nothing and report what would go.
        Storages that leave no such files (object stores write atomically on the
        server) keep this default, which does nothing. The store passes ``dry_run``
        only when it is true, so an override written without it keeps working."""
        return PruneReport(dry_run=dry_run)

    async def aprune_temp(self, dry_run: bool = False) -> PruneReport:
        if type(self).prune_temp is Storage.prune_temp:
            return PruneReport(dry_run=dry_run)
        if dry_run:
            return await in_thread(self.prune_temp, dry_run=True)
        return await in_thread(self.prune_temp)

    # -- helpers for the core --------------------------------------------------------

    def key_for_location(self, location: str) -> str | None:
        """The key of an absolute location inside this storage, or None if it is outside.

        Used to follow the ``storage_key`` of records written on another machine.
        """
        probe = self.resolve_path("k")
        root = probe[:-1]
        if location.startswith(root) and len(location) > len(root):
            return location[len(root) :]
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release connections or file handles the backend holds."""
