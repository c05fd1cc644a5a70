"""Local filesystem storage: plain paths and ``file://`` URLs.

A write goes to a temporary file in the key's folder (named ``.moorage-tmp-...``, never
listed as a key) and is renamed over the target, so a reader sees the old bytes or the
new bytes, never a part, even when the writer is killed mid-write. With ``durable=True``
the file and its folder are also fsynced, so the write survives a power cut.

Symlink policy: the root is resolved once, so it may be (or lie below) a link; below it
nothing is followed (see `moorage_local.folders`). A key whose folders pass through a
symbolic link, or whose file is one, is refused (`StorageError` on read, write and
delete), `exists` says False for it and listings skip links.

Temporary files name their writer (host, process id, a token drawn when the process
starts). Those whose writer is gone, or older than `STALE_TEMP_AGE`, are removed on the
first write into a folder by each process, when a listing passes them, and by
`LocalStorage.prune_temp` (``ResultStore.prune(temp=True)``).

The parts live in their own modules: `moorage_local.folders` (walking to a key's folder
below the root), `moorage_local.atomic_writes` (temporary file, then rename or link),
`moorage_local.temp_files`, `moorage_local.listing` and `moorage_local.errors`.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import moorage.storage.entries as pages
from moorage.buffers import BytesLike
from moorage.config.options import parse_bool
from moorage.errors import (
    ConfigurationError,
    InvalidKey,
    RecordNotFound,
    StorageError,
    map_exceptions,
)
from moorage.operations import in_thread
from moorage.storage import PruneReport, Storage, StorageEntry, write_conflict
from moorage_local.atomic_writes import HeadLast, replace_at
from moorage_local.errors import Translate, prune_error, storage_error
from moorage_local.folders import (
    DIR_FLAGS,
    READ_FLAGS,
    Missing,
    RootFolder,
    is_folder,
    is_link,
    remove_folders,
)
from moorage_local.listing import entry_pages, listed_files, walk_files
from moorage_local.options import parse_local_options, root_from_url
from moorage_local.temp_files import STALE_TEMP_AGE, TEMP_PREFIX, clean_folder, remove_if_stale

__all__ = ["STALE_TEMP_AGE", "TEMP_PREFIX", "LocalStorage"]

_T = TypeVar("_T")

_CLEANED_FOLDERS = 4096  # folders remembered per storage as cleaned of stale temp files
# Concurrent deletes may prune a new folder before the write lands in it; each retry
# means another thread made progress, and under heavy load 10 were seen to run out.
_CREATE_ATTEMPTS = 100


def _parse_durable(name: str, value: object) -> bool:
    """`parse_bool`; a blank ``?durable=`` in a URL leaves the default, False."""
    return False if value == "" else parse_bool(name, value)


_OPTIONS = {"durable": _parse_durable}


class LocalStorage(Storage):
    """Bytes in files below a local folder: ``LocalStorage("~/results")``,
    ``LocalStorage("file:///data/results", durable=True)``.

    ``url_or_path`` is a plain path (``~`` expanded, relative to the working directory) or
    an absolute ``file://`` URL. Options (also accepted from the URL's query string):

    - ``durable``: fsync each written file and its folder before returning, so a write
      survives a power cut, not only a crash of the process. Default: the URL's
      ``?durable=`` value, else False. Strings such as ``"true"`` or ``"0"`` are accepted.

    The root folder is created on the first write. `list_paths` yields keys in sorted
    order. Each process opens the root once and keeps it open (a forked child and an
    unpickled copy open their own); `close` lets it go.
    """

    schemes = ("file",)
    #: ``if_absent`` writes link the finished temporary file to the key's name, which
    #: the file system refuses if the name exists: of two racing writers one wins.
    #: There is no compare-and-swap for files, so no ``if_version``.
    conditional_create = True

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        *,
        durable: bool | str | None = None,
        **options: object,
    ) -> None:
        if os.open not in os.supports_dir_fd:
            raise ConfigurationError(
                "LocalStorage opens files relative to folder descriptors (dir_fd), which "
                "this platform does not offer; use it on Linux, macOS or a BSD, or use "
                "memory:// or an object store here"
            )
        root, url_options = root_from_url(url_or_path, "LocalStorage")
        self.root = root
        self.url = Path(root).as_uri()
        given: dict[str, object] = {**url_options, **options}
        if durable is not None:
            given["durable"] = durable
        parsed = parse_local_options(given, _OPTIONS, "LocalStorage", self.url)
        self.durable: bool = parsed.get("durable", False)
        self._prefix = root if root.endswith(os.sep) else root + os.sep
        self._tree = RootFolder(root, self.url)

    def __repr__(self) -> str:
        return f"LocalStorage({self.url!r}, durable={self.durable!r})"

    def __getstate__(self) -> dict[str, Any]:
        """The configuration; this process's descriptor of the root stays behind."""
        state = dict(self.__dict__)
        del state["_tree"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._tree = RootFolder(self.root, self.url)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, LocalStorage)
        return (self.root, self.durable) == (other.root, other.durable)

    def __hash__(self) -> int:
        return hash((type(self), self.root, self.durable))

    def close(self) -> None:
        """Close this process's descriptor of the root; the next call opens it again."""
        self._tree.close()

    # -- keys, paths and errors ----------------------------------------------------------

    def resolve_path(self, key: str) -> str:
        """The absolute path of ``key``'s file."""
        return self._path(key)

    def _path(self, key: str) -> str:
        """`resolve_path` for a key the core already validated; refuses the names the
        file system holds for temporary files, the one rule that is about disks."""
        if key.rpartition("/")[2].startswith(TEMP_PREFIX):
            raise InvalidKey(
                f"invalid storage key {key!r}: names starting with {TEMP_PREFIX!r} are "
                "reserved for LocalStorage's temporary files"
            )
        return self._prefix + (key if os.sep == "/" else key.replace("/", os.sep))

    def _errors(self, action: str, key: str) -> Translate:
        """How an `OSError` while ``action``-ing ``key`` becomes a `StorageError`."""
        return partial(storage_error, self.url, self._prefix, action, key)

    def _not_found(self, key: str, why: str = "") -> RecordNotFound:
        return RecordNotFound(
            f"no record under key {key!r} in {self.url}{why}; write it first or check the key"
        )

    # -- reading -------------------------------------------------------------------

    def read_path(self, key: str) -> bytes:
        """The bytes under ``key``; `RecordNotFound` if there is no file."""
        return self._read(key, None)

    def read_head(self, key: str, n: int) -> bytes:
        """At most the first ``n`` bytes under ``key``, reading nothing beyond them."""
        return self._read(key, max(n, 0))

    def _read(self, key: str, limit: int | None) -> bytes:
        with map_exceptions(self._errors("read", key)):
            fd = self._open(key)
            try:
                size = self._size(key, fd)
                return _read_fd(fd, size if limit is None else min(size, limit))
            finally:
                os.close(fd)

    #: `read_stream` hands the store an open file for large records, which are then
    #: decoded without a copy of the whole file in memory.
    streams_reads = True

    def read_stream(self, key: str, consume: Callable[[BinaryIO | bytes, int], _T]) -> _T:
        """``consume(file, size)`` on ``key``'s file, open unbuffered for reading; a file
        smaller than `stream_threshold` is read whole and passed as bytes."""
        with map_exceptions(self._errors("read", key)):
            fd = self._open(key)
            try:
                size = self._size(key, fd)
                if size < self.stream_threshold:
                    return consume(_read_fd(fd, size), size)
                with open(fd, "rb", buffering=0, closefd=False) as stream:
                    return consume(stream, size)
            finally:
                os.close(fd)

    def _open(self, key: str) -> int:
        """A descriptor of ``key``'s file, opened for reading without following links."""

        def open_file(folder: int, name: str, parents: list[int]) -> int:
            try:
                return os.open(name, READ_FLAGS, dir_fd=folder)
            except OSError as exc:
                if exc.errno == errno.ELOOP and is_link(folder, name):
                    raise StorageError(
                        f"key {key!r} in {self.url} is a symbolic link "
                        f"({self._prefix + key}); LocalStorage does not follow links "
                        "below its root. Replace it with the file itself"
                    ) from exc
                raise

        self._path(key)
        fd = self._tree.at_key(key, open_file)
        if isinstance(fd, Missing):
            raise self._not_found(key)
        return fd

    def _size(self, key: str, fd: int) -> int:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise self._not_found(key, " (it is a folder or a special file, not a record)")
        return info.st_size

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a regular file below the root (one ``stat`` for flat keys)."""

        def is_file(folder: int, name: str, parents: list[int]) -> bool:
            return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)

        self._path(key)
        with map_exceptions(self._errors("check", key)):
            return self._tree.at_key(key, is_file, blocked_is_missing=True) is True

    # -- writing -------------------------------------------------------------------

    def write_path(
        self, key: str, content: bytes, *, if_absent: bool = False, if_version: str | None = None
    ) -> str:
        """Store ``content`` under ``key`` atomically; return the file's absolute path.
        With ``if_absent``, `WriteConflict` if a file is already there."""
        return self._write(key, (content,), if_absent, if_version)

    def write_parts(
        self,
        key: str,
        parts: Sequence[BytesLike],
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        """Store the concatenation of ``parts`` atomically, without joining them."""
        return self._write(key, parts, if_absent, if_version)

    #: `write_head_last` is offered: a record's payload checksum can be computed as the
    #: payload is written, the head (which holds it) written last.
    writes_head_last = True

    def write_head_last(
        self,
        key: str,
        head_size: int,
        body: Sequence[BytesLike],
        observe: Callable[[memoryview, int, int], object],
        head: Callable[[], Sequence[BytesLike]],
        *,
        if_absent: bool = False,
    ) -> str:
        """Store a file whose first ``head_size`` bytes are known only once the rest is
        written (a record whose head holds its payload's checksum): ``body`` goes first,
        and right after each span of a part is written, while the CPU still has it in
        cache, ``observe(view, start, stop)`` sees it (the part as a flat byte view and
        the span's bounds); then ``head()``, exactly ``head_size`` bytes, fills the room
        left before it. Atomic and conditional as `write_parts`, and the bytes stored are
        those of ``write_parts(key, [*head(), *body])``; an exception from ``observe`` or
        ``head`` (a head of another size: ValueError) leaves nothing behind and goes on
        as it is. See `moorage_local.atomic_writes.HeadLast`."""
        content = HeadLast(head_size, body, observe, head)
        return self._write(key, content, if_absent, None)

    async def awrite_head_last(
        self,
        key: str,
        head_size: int,
        body: Sequence[BytesLike],
        observe: Callable[[memoryview, int, int], object],
        head: Callable[[], Sequence[BytesLike]],
        *,
        if_absent: bool = False,
    ) -> str:
        """`write_head_last` in a worker thread."""
        return await in_thread(
            self.write_head_last, key, head_size, body, observe, head, if_absent=if_absent
        )

    def _write(
        self,
        key: str,
        parts: Sequence[BytesLike] | HeadLast,
        if_absent: bool,
        if_version: str | None,
    ) -> str:
        if if_version is not None:
            raise ConfigurationError(
                f"LocalStorage cannot write {key!r} in {self.url} only over a given version: "
                "files have no compare-and-swap (conditional_replace is False); hold the "
                "key's lock instead"
            )
        path = self._path(key)
        head, _, name = key.rpartition("/")
        names = head.split("/") if head else ()
        tree = self._tree
        with map_exceptions(self._errors("write", key)):
            for attempt in range(_CREATE_ATTEMPTS):
                opened: list[int] = []
                created: list[tuple[int, str]] = []
                root: int | None = None
                try:
                    root = tree.open(create=True)
                    folder = tree.descend(root, key, names, opened, created) if names else root
                    try:
                        replace_at(folder, name, parts, durable=self.durable, exclusive=if_absent)
                    except FileExistsError:
                        raise write_conflict(key, self.url, None) from None
                    if self.durable:
                        os.fsync(folder)
                    if head not in tree.cleaned:
                        self._clean_folder(folder, head)
                    return path
                except FileNotFoundError:
                    # A delete pruned a folder meanwhile, or the root itself was removed.
                    remove_folders(created)
                    if attempt == _CREATE_ATTEMPTS - 1:
                        raise
                    if root is not None:
                        tree.moved(root)
                except BaseException:
                    remove_folders(created)
                    raise
                finally:
                    for fd in opened:
                        os.close(fd)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- temporary files of writers that are gone ---------------------------------------

    def _clean_folder(self, folder: int, head: str) -> None:
        """Remove stale temporary files from the folder a write just used: once per
        folder and process, so the cost stays off every later write."""
        cleaned = self._tree.cleaned
        if len(cleaned) >= _CLEANED_FOLDERS:
            cleaned.clear()
        cleaned.add(head)
        clean_folder(folder)

    def prune_temp(self, dry_run: bool = False) -> PruneReport:
        """Remove the temporary files of writers that are gone (their process is not
        running on this host) or that were last changed `STALE_TEMP_AGE` seconds ago or
        more, in every folder below the root; return how many files and bytes went
        (with ``dry_run``, would go: nothing is removed)."""
        files = size = 0
        now = time.time()
        with map_exceptions(partial(prune_error, self.url)):
            try:
                fd = os.open(".", DIR_FLAGS, dir_fd=self._tree.open())
            except FileNotFoundError:
                return PruneReport(dry_run=dry_run)
        for folder, _, name in walk_files(fd, "", "", 0, partial(self._errors, "prune")):
            if name.startswith(TEMP_PREFIX):
                removed = remove_if_stale(folder, name, now, dry_run)
                if removed is not None:
                    files += 1
                    size += removed
        return PruneReport(files=files, bytes=size, dry_run=dry_run)

    # -- deleting and listing --------------------------------------------------------------

    def delete_path(self, key: str) -> None:
        """Remove ``key``'s file (a missing key is fine) and its folders left empty."""
        names = key.split("/")[:-1]

        def unlink(folder: int, name: str, parents: list[int]) -> None:
            try:
                os.unlink(name, dir_fd=folder)
            except IsADirectoryError:
                return  # a folder of other keys is not itself a key
            except PermissionError:
                if is_folder(folder, name):  # unlink says EPERM for folders on macOS
                    return
                raise
            for depth in range(len(names) - 1, -1, -1):
                try:
                    os.rmdir(names[depth], dir_fd=parents[depth])
                except OSError:
                    break  # not empty (or gone): stop pruning

        self._path(key)
        with map_exceptions(self._errors("delete", key)):
            self._tree.at_key(key, unlink)

    def list_paths(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys that start with ``prefix``, in sorted order.

        Only regular files count: temporary files, symbolic links and other special
        files are skipped, and only folders that can hold matching keys are read.
        Stale temporary files met on the way are removed.
        """
        for _, _, key in listed_files(self._tree, prefix, partial(self._errors, "list")):
            yield key

    def list_entries(self, prefix: str = "") -> Iterator[list[StorageEntry]]:
        """The keys of `list_paths`, in the same order, as pages of at most
        `LIST_PAGE_SIZE` entries, each with the file's size and modification time
        (UTC) from a ``stat`` that does not follow links. Lazy: the folders are walked
        and the files stat-ed as pages are asked for, so a listing of any size holds
        one page (and the names of the folders it is in) at a time."""
        errors = partial(self._errors, "list")
        page_size = pages.LIST_PAGE_SIZE  # read per call: a test may lower it
        return entry_pages(listed_files(self._tree, prefix, errors), errors, page_size)


def _read_fd(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd`` (fewer if the file ends first)."""
    data = os.read(fd, size)
    if len(data) < size:  # > 2 GiB (one read's cap) or truncated meanwhile
        chunks = [data]
        size -= len(data)
        while size > 0 and (chunk := os.read(fd, size)):
            chunks.append(chunk)
            size -= len(chunk)
        data = b"".join(chunks)
    return data
