"""The storage contract, key validation, and the built-in ``memory://`` storage.

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

Keys are validated here and only here: every key-taking method of every subclass is
wrapped when the subclass is defined, so a plugin cannot forget the check and no I/O
happens for a key that could escape the root.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO, ClassVar, TypeAlias, TypeVar
from urllib.parse import urlsplit

from moorage.errors import ConfigurationError, InvalidKey, RecordNotFound, WriteConflict
from moorage.operations import in_thread

__all__ = [
    "ALWAYS",
    "IF_ABSENT",
    "MAX_KEY_BYTES",
    "MAX_KEY_DEPTH",
    "MAX_SEGMENT_BYTES",
    "BytesLike",
    "MemoryStorage",
    "PruneReport",
    "Storage",
    "WriteCondition",
    "validate_key",
    "validate_prefix",
    "write_conflict",
]

BytesLike: TypeAlias = bytes | bytearray | memoryview

_KEY_RULES = (
    "a key is a relative, '/'-separated path: no leading '/', no '..' or '.' segment, "
    "no empty segment, no backslash, no NUL"
)


#: Longest key, in bytes of UTF-8: what S3, GCS and Azure accept for an object name.
MAX_KEY_BYTES = 1024
#: Longest segment (the text between two ``/``), in bytes of UTF-8: a file name's limit.
MAX_SEGMENT_BYTES = 255
#: Most segments in one key: folders nested deeper than this are not keys' folders.
MAX_KEY_DEPTH = 128


def _shown(key: str) -> str:
    """``repr(key)``, cut short for long keys: safe to print, whatever the key holds."""
    if len(key) <= 80:
        return repr(key)
    return f"{key[:60]!r}... ({len(key)} characters)"


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid storage key, else raise `InvalidKey`.

    Valid keys are relative, ``/``-separated, with no ``.`` or ``..`` segment, no empty
    segment (so no leading, trailing or doubled ``/``), no NUL and no backslash. They
    encode as UTF-8 (no lone surrogates), and every backend can store them: at most
    `MAX_KEY_BYTES` bytes, segments of at most `MAX_SEGMENT_BYTES` bytes, at most
    `MAX_KEY_DEPTH` segments.
    """
    if type(key) is not str:
        raise InvalidKey(f"storage key {key!r} is a {type(key).__name__}, not a str; {_KEY_RULES}")
    if not key or key[0] == "/" or key[-1] == "/" or "//" in key or "\\" in key or "\x00" in key:
        raise InvalidKey(f"invalid storage key {_shown(key)}: {_KEY_RULES}")
    if "." in key:
        for segment in key.split("/"):
            if segment in (".", ".."):
                raise InvalidKey(f"invalid storage key {_shown(key)}: {_KEY_RULES}")
    if key.isascii():
        size = len(key)
    else:
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidKey(
                f"invalid storage key {_shown(key)}: {key[exc.start]!r} at index {exc.start} "
                "cannot be encoded as UTF-8 (a lone surrogate); keys must be valid Unicode "
                "text, so decode file names and bytes strictly before using them as keys"
            ) from None
    if size > MAX_SEGMENT_BYTES:  # shorter keys are within every limit
        _check_size(key, size)
    return key


def _check_size(key: str, size: int) -> None:
    if size > MAX_KEY_BYTES:
        raise InvalidKey(
            f"invalid storage key {_shown(key)}: it is {size} bytes of UTF-8, over the "
            f"limit of {MAX_KEY_BYTES} that every storage can hold; use a shorter key "
            "(for example a hash of the long part)"
        )
    segments = key.split("/")
    if len(segments) > MAX_KEY_DEPTH:
        raise InvalidKey(
            f"invalid storage key {_shown(key)}: it has {len(segments)} segments, over the "
            f"limit of {MAX_KEY_DEPTH}; use fewer '/'-separated levels"
        )
    for segment in segments:
        if len(segment) * 4 > MAX_SEGMENT_BYTES and len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidKey(
                f"invalid storage key {_shown(key)}: its segment {_shown(segment)} is "
                f"{len(segment.encode())} bytes of UTF-8, over the limit of "
                f"{MAX_SEGMENT_BYTES} for one segment (a file name); split it with '/' or "
                "shorten it"
            )


def validate_prefix(prefix: object) -> str:
    """Validate a listing prefix: empty, or a key optionally followed by one ``/``."""
    if prefix == "":
        return ""
    if type(prefix) is str and prefix.endswith("/") and len(prefix) > 1:
        validate_key(prefix[:-1])
        return prefix
    return validate_key(prefix)


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed: ``files`` files holding ``bytes`` bytes in all."""

    files: int = 0
    bytes: int = 0

    def __add__(self, other: PruneReport) -> PruneReport:
        return PruneReport(files=self.files + other.files, bytes=self.bytes + other.bytes)


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """When a write may happen: ``if_absent``, only where nothing is stored;
    ``if_version``, only over that version of the object; neither, always."""

    if_absent: bool = False
    if_version: str | None = None

    def __post_init__(self) -> None:
        if self.if_absent and self.if_version is not None:
            raise ConfigurationError(
                "a write takes if_absent=True (create) or if_version=... (replace), not "
                "both: an object cannot be missing and at a version"
            )

    def __bool__(self) -> bool:
        """Whether there is a condition at all."""
        return self.if_absent or self.if_version is not None

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments that pass this condition on to a storage's write; none
        when there is no condition, so a backend that declares no conditional writes is
        called as before."""
        if self.if_absent:
            return {"if_absent": True}
        if self.if_version is not None:
            return {"if_version": self.if_version}
        return {}


#: No condition: the write replaces whatever is stored.
ALWAYS = WriteCondition()
#: Create only: the write fails with `WriteConflict` if anything is stored.
IF_ABSENT = WriteCondition(if_absent=True)


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
)
_KEY_METHODS: dict[str, Callable[[object], str]] = dict.fromkeys(_KEY_TAKING, validate_key)
_KEY_METHODS["list_paths"] = validate_prefix
_KEY_METHODS["alist_paths"] = validate_prefix


def _checked(method: _F, check: Callable[[object], str]) -> _F:
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

    async def alist_paths(self, prefix: str = "") -> list[str]:
        return await in_thread(lambda: list(self.list_paths(prefix)))

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
        unchanged."""
        raise NotImplementedError(f"{type(self).__name__} does not stream reads")

    async def aread_stream(self, key: str, consume: Callable[[BinaryIO | bytes, int], _T]) -> _T:
        return await in_thread(self.read_stream, key, consume)

    # -- housekeeping: optional ---------------------------------------------------------

    def prune_temp(self) -> PruneReport:
        """Remove temporary files left by writers that are gone (killed mid-write) and
        report what went. Storages that leave no such files (object stores write
        atomically on the server) keep this default, which does nothing."""
        return PruneReport()

    async def aprune_temp(self) -> PruneReport:
        if type(self).prune_temp is Storage.prune_temp:
            return PruneReport()
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


def write_conflict(key: str, url: str, if_version: str | None) -> WriteConflict:
    """The `WriteConflict` of a failed conditional write, in the words every backend uses."""
    if if_version is None:
        return WriteConflict(
            f"record {key!r} in {url} was written by someone else first; nothing was "
            "written. Read the record that is there, or write with overwrite"
        )
    return WriteConflict(
        f"record {key!r} in {url} changed since version {if_version!r} was read (another "
        "writer committed, or it was deleted); nothing was written. Read it again"
    )


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
    _spaces: ClassVar[dict[str, dict[str, tuple[bytes, int]]]] = {}
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
        entry = (bytes(content), next(self._versions))
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
