"""Local filesystem storage: plain paths and ``file://`` URLs.

A write goes to a temporary file in the key's folder (named ``.moorage-tmp-...``, never
listed as a key) and is renamed over the target, so a reader sees the old bytes or the
new bytes, never a part, even when the writer is killed mid-write. With ``durable=True``
the file and its folder are also fsynced, so the write survives a power cut.

Symlink policy: the root is resolved once, when the storage is built, so the root itself
may be (or lie below) a symbolic link. Below the root nothing is followed, even when
another process swaps a folder for a link while a call runs: every file and folder is
opened relative to its parent folder's descriptor (``openat``) with ``O_NOFOLLOW``, one
folder level at a time, starting from a descriptor of the root that each process opens
once. A key whose folders pass through a symbolic link, or whose file is one, is refused
(`StorageError` on read, write and delete), `exists` says False for it and listings skip
links.

Temporary files name their writer (host, process id, a token drawn when the process
starts). Those whose writer is gone, or older than `STALE_TEMP_AGE`, are removed on the
first write into a folder by each process, when a listing passes them, and by
`LocalStorage.prune_temp` (``ResultStore.prune(temp=True)``).
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import secrets
import socket
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from moorage.errors import ConfigurationError, InvalidKey, RecordNotFound, StorageError
from moorage.storage.base import (
    MAX_KEY_DEPTH,
    BytesLike,
    PruneReport,
    Storage,
    validate_key,
    write_conflict,
)

_T = TypeVar("_T")


class _Missing:
    """What `LocalStorage._at_key` returns for a key that is not there."""


_MISSING = _Missing()

__all__ = [
    "READ_FLAGS",
    "STALE_TEMP_AGE",
    "TEMP_PREFIX",
    "LocalStorage",
    "check_options",
    "coerce_bool",
    "explain",
    "open_temp",
    "replace_with",
    "root_from_url",
    "write_all",
]

#: Name prefix of the temporary files a write renames into place; never a key.
TEMP_PREFIX = ".moorage-tmp-"
#: Seconds after its last change when a temporary file counts as abandoned, whoever
#: wrote it (a live writer changes its file far more often than that).
STALE_TEMP_AGE = 3600.0

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO at a key must not block the open
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
#: Flags for opening a stored file: never through a link, never blocking on a FIFO.
READ_FLAGS = os.O_RDONLY | _O_BINARY | _O_CLOEXEC | _O_NOFOLLOW | _O_NONBLOCK
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY | _O_CLOEXEC | _O_NOFOLLOW
#: A folder below the root: opened only if it is a folder and not a link.
_DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC | _O_NOFOLLOW
#: The root itself, which may be (or lie below) a link.
_ROOT_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC
_CLEANED_FOLDERS = 4096  # folders remembered per storage as cleaned of stale temp files
# Concurrent deletes may prune a new folder before the write lands in it; each retry
# means another thread made progress, and under heavy load 10 were seen to run out.
_CREATE_ATTEMPTS = 100
_IOV_MAX = 1024  # buffers per os.writev call; POSIX guarantees at least 16, Linux has 1024
_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

_FIXES = {
    errno.EACCES: "check that this user may create and write files in that folder",
    errno.EPERM: "check that this user may create and write files in that folder",
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some space or raise the disk quota",
    errno.EROFS: "the file system is read-only; use a folder on a writable one",
    errno.ENAMETOOLONG: "use a shorter key",
}
_STORAGE_FIXES = {
    errno.ENOTDIR: "a file is in the way of a folder of this key; choose another key",
    errno.EEXIST: "a file is in the way of a folder of this key; choose another key",
    errno.EISDIR: "the key names a folder that holds other keys; choose another key",
    errno.ENOTEMPTY: "the key names a folder that holds other keys; choose another key",
}


def explain(exc: OSError, fixes: Mapping[int, str] = _STORAGE_FIXES) -> str:
    """What went wrong in ``exc`` (with the file it names) and what to do about it."""
    code = exc.errno or 0
    fix = fixes.get(code) or _FIXES.get(code) or "check the folder and the file system"
    path = exc.filename2 or exc.filename  # a failed rename names its target second
    where = f" ({path})" if path else ""
    return f"{exc.strerror or exc}{where}; {fix}"


def coerce_bool(name: str, value: object, url: str) -> bool:
    """Read a boolean option that may come from a URL query string (``"true"``, ``"0"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigurationError(
        f"option {name}={value!r} for {url} is not a boolean; use true/false, yes/no, on/off or 1/0"
    )


def check_options(options: Mapping[str, object], known: set[str], kind: str, url: str) -> None:
    """Raise `ConfigurationError` naming any option of ``options`` not in ``known``."""
    unknown = sorted(set(options) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ConfigurationError(
            f"unknown option {', '.join(map(repr, unknown))} for {kind} at {url}; "
            f"accepted options: {allowed}"
        )


def root_from_url(url_or_path: str | os.PathLike[str], kind: str) -> tuple[str, dict[str, str]]:
    """The absolute, resolved folder of a ``file://`` URL or a plain path, and URL options.

    Plain paths are taken literally (``~`` is expanded, relative paths are relative to the
    working directory); ``file://`` URLs must be absolute and may carry options in their
    query string (``file:///data/results?durable=true``).
    """
    raw = os.fspath(url_or_path)
    if not isinstance(raw, str):
        raise ConfigurationError(f"{kind} takes a str path or a file:// URL, not {raw!r}")
    options: dict[str, str] = {}
    if raw[:5].lower() == "file:":
        parts = urlsplit(raw)
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigurationError(
                f"{kind} URL {raw!r} is not an absolute local file URL; write "
                "file:///absolute/folder (three slashes), or pass a plain path"
            )
        if os.name == "nt" and path[2:3] == ":":  # file:///C:/data
            path = path[1:]
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
    elif "://" in raw:
        raise ConfigurationError(
            f"{kind} takes a plain path or a file:// URL, not {raw!r}; other schemes need "
            "their own plugin"
        )
    else:
        path = os.path.expanduser(raw)
    if not path:
        raise ConfigurationError(f"{kind} needs a folder; got an empty path")
    return os.path.realpath(path), options


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

    _root_fd: int | None = None
    _closer: weakref.finalize[Any, Any] | None = None

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
        merged: dict[str, object] = {**url_options, **options}
        check_options(merged, {"durable"}, "LocalStorage", self.url)
        value: object = merged.get("durable", False) if durable is None else durable
        self.durable = coerce_bool("durable", value, self.url)
        self._prefix = root if root.endswith(os.sep) else root + os.sep
        self._cleaned: set[str] = set()
        self._retired: list[weakref.finalize[Any, Any]] = []

    def __repr__(self) -> str:
        return f"LocalStorage({self.url!r}, durable={self.durable!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in ("_root_fd", "_closer", "_cleaned", "_retired"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cleaned = set()
        self._retired = []

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, LocalStorage)
        return (self.root, self.durable) == (other.root, other.durable)

    def __hash__(self) -> int:
        return hash((type(self), self.root, self.durable))

    def close(self) -> None:
        """Close this process's descriptor of the root; the next call opens it again."""
        with _ROOTS_GUARD:
            closer, self._root_fd, self._closer = self._closer, None, None
            retired, self._retired = self._retired, []
        for done in (*retired, closer):
            if done is not None:
                done()

    # -- the root's descriptor -------------------------------------------------------

    def _root(self, *, create: bool = False) -> int:
        """This process's descriptor of the root folder (FileNotFoundError if missing)."""
        fd = self._root_fd
        if fd is not None:
            return fd
        with _ROOTS_GUARD:
            if self._root_fd is not None:
                return self._root_fd
            try:
                fd = os.open(self.root, _ROOT_FLAGS)
            except FileNotFoundError:
                if not create:
                    raise
                os.makedirs(self.root, exist_ok=True)
                fd = os.open(self.root, _ROOT_FLAGS)
            self._closer = weakref.finalize(self, os.close, fd)
            self._root_fd = fd
            _OPEN_ROOTS.add(self)
            return fd

    def _root_moved(self, fd: int) -> bool:
        """Whether ``fd`` is no longer the folder at `root` (it was removed or replaced);
        if so, the next call opens the root again. Asked only after something was
        missing, so hits pay nothing for it."""
        try:
            now = os.stat(self.root)
        except OSError:
            now = None
        then = os.fstat(fd)
        if now is not None and (now.st_ino, now.st_dev) == (then.st_ino, then.st_dev):
            return False
        with _ROOTS_GUARD:
            if self._root_fd == fd and self._closer is not None:
                # Other threads may still be using ``fd``: keep it open until close().
                self._retired.append(self._closer)
                self._root_fd = self._closer = None
        return True

    def _forget_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptors (the child opens its own)."""
        for done in (*self._retired, self._closer):
            if done is not None:
                done()
        self._retired = []
        self._root_fd = self._closer = None
        self._cleaned = set()

    # -- paths and checks ----------------------------------------------------------------

    def resolve_path(self, key: str) -> str:
        """The absolute path of ``key``'s file."""
        return self._path(key)

    def _path(self, key: str) -> str:
        """`resolve_path` for a key the public method already validated."""
        if key.rpartition("/")[2].startswith(TEMP_PREFIX):
            raise InvalidKey(
                f"invalid storage key {key!r}: names starting with {TEMP_PREFIX!r} are "
                "reserved for LocalStorage's temporary files"
            )
        return self._prefix + (key if os.sep == "/" else key.replace("/", os.sep))

    def _descend(
        self,
        root: int,
        key: str,
        names: Sequence[str],
        opened: list[int],
        created: list[tuple[int, str]] | None = None,
    ) -> int:
        """Open the folders ``names`` one level at a time from ``root``, never through a
        link; return the last one's descriptor. Every descriptor opened is appended to
        ``opened`` (the caller closes them). With ``created``, missing folders are made
        and recorded there as (parent descriptor, name).

        Raises FileNotFoundError for a missing folder (without ``created``),
        NotADirectoryError for a file in the way, and `StorageError` for a link.
        """
        fd = root
        for depth, name in enumerate(names):
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if created is None:
                    raise
                try:
                    os.mkdir(name, dir_fd=fd)
                    created.append((fd, name))
                except FileExistsError:
                    pass  # made meanwhile by another writer
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except NotADirectoryError:
                    raise self._not_a_folder(fd, key, names[: depth + 1]) from None
            except NotADirectoryError:
                raise self._not_a_folder(fd, key, names[: depth + 1]) from None
            opened.append(child)
            fd = child
        return fd

    def _not_a_folder(self, parent: int, key: str, names: Sequence[str]) -> Exception:
        """The error for a folder of ``key`` that is a link or a file."""
        where = os.path.join(self.root, *names)
        try:
            is_link = stat.S_ISLNK(os.stat(names[-1], dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            is_link = False
        if is_link:
            return StorageError(
                f"key {key!r} in {self.url} passes through the symbolic link {where}; "
                "LocalStorage does not follow links below its root. Replace the link "
                "with a folder, or point the storage at the link's target"
            )
        return NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), where)

    def _error(self, action: str, key: str, exc: OSError) -> StorageError:
        if exc.filename is not None and not os.path.isabs(os.fsdecode(exc.filename)):
            # A call relative to a folder's descriptor names the file, not its path.
            exc = OSError(exc.errno, exc.strerror, self._prefix + key)
        return StorageError(f"cannot {action} key {key!r} in {self.url}: {explain(exc)}")

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
        fd = self._open(key)
        try:
            size = self._size(key, fd)
            return _read_fd(fd, size if limit is None else min(size, limit))
        except OSError as exc:
            raise self._error("read", key, exc) from exc
        finally:
            os.close(fd)

    #: `read_stream` hands the store an open file for large records, which are then
    #: decoded without a copy of the whole file in memory.
    streams_reads = True

    def read_stream(self, key: str, consume: Callable[[BinaryIO | bytes, int], _T]) -> _T:
        """``consume(file, size)`` on ``key``'s file, open unbuffered for reading; a file
        smaller than `stream_threshold` is read whole and passed as bytes."""
        fd = self._open(key)
        try:
            size = self._size(key, fd)
            if size < self.stream_threshold:
                return consume(_read_fd(fd, size), size)
            with open(fd, "rb", buffering=0, closefd=False) as stream:
                return consume(stream, size)
        except OSError as exc:
            raise self._error("read", key, exc) from exc
        finally:
            os.close(fd)

    def _open(self, key: str) -> int:
        """A descriptor of ``key``'s file, opened for reading without following links."""

        def open_file(folder: int, name: str, parents: list[int]) -> int:
            try:
                return os.open(name, READ_FLAGS, dir_fd=folder)
            except OSError as exc:
                if exc.errno == errno.ELOOP and _is_link(folder, name):
                    raise StorageError(
                        f"key {key!r} in {self.url} is a symbolic link "
                        f"({self._prefix + key}); LocalStorage does not follow links "
                        "below its root. Replace it with the file itself"
                    ) from exc
                raise

        fd = self._at_key(key, "read", open_file)
        if isinstance(fd, _Missing):
            raise self._not_found(key)
        return fd

    def _at_key(
        self,
        key: str,
        action: str,
        use: Callable[[int, str, list[int]], _T],
        *,
        blocked_is_missing: bool = False,
    ) -> _T | _Missing:
        """``use(folder, name, parents)`` on the folder that holds ``key``, opened from
        the root one level at a time without following links (``parents`` are the root
        and the folders on the way). `_MISSING` when the key's folder or file is absent;
        then, if the root was removed or replaced meanwhile, the root is opened again and
        ``use`` tried once more. A link or a file in the way raises `StorageError`, or
        counts as missing with ``blocked_is_missing``."""
        self._path(key)
        head, _, name = key.rpartition("/")
        names = head.split("/") if head else ()
        for retry in (False, True):
            try:
                root = self._root()
            except FileNotFoundError:
                return _MISSING
            except OSError as exc:
                raise self._error(action, key, exc) from exc
            opened: list[int] = []
            try:
                try:
                    folder = self._descend(root, key, names, opened) if names else root
                except StorageError:
                    if blocked_is_missing:
                        return _MISSING
                    raise
                return use(folder, name, [root, *opened])
            except OSError as exc:
                if exc.errno not in _ABSENT:
                    raise self._error(action, key, exc) from exc
                if retry or not self._root_moved(root):
                    return _MISSING
            finally:
                for fd in opened:
                    os.close(fd)
        raise AssertionError("unreachable")  # pragma: no cover

    def _size(self, key: str, fd: int) -> int:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise self._not_found(key, " (it is a folder or a special file, not a record)")
        return info.st_size

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a regular file below the root (one ``stat`` for flat keys)."""

        def is_file(folder: int, name: str, parents: list[int]) -> bool:
            return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)

        return self._at_key(key, "check", is_file, blocked_is_missing=True) is True

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

    def _write(
        self, key: str, parts: Sequence[BytesLike], if_absent: bool, if_version: str | None
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
        for attempt in range(_CREATE_ATTEMPTS):
            opened: list[int] = []
            created: list[tuple[int, str]] = []
            root: int | None = None
            try:
                root = self._root(create=True)
                folder = self._descend(root, key, names, opened, created) if names else root
                try:
                    _replace_at(folder, name, parts, durable=self.durable, exclusive=if_absent)
                except FileExistsError:
                    raise write_conflict(key, self.url, None) from None
                if self.durable:
                    os.fsync(folder)
                if head not in self._cleaned:
                    self._clean_folder(folder, head)
                return path
            except FileNotFoundError as exc:
                # A delete pruned a folder meanwhile, or the root itself was removed.
                _remove_folders(created)
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise self._error("write", key, exc) from exc
                if root is not None:
                    self._root_moved(root)
            except OSError as exc:
                _remove_folders(created)
                raise self._error("write", key, exc) from exc
            except BaseException:
                _remove_folders(created)
                raise
            finally:
                for fd in opened:
                    os.close(fd)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- temporary files of writers that are gone ---------------------------------------

    def _clean_folder(self, folder: int, head: str) -> None:
        """Remove stale temporary files from the folder a write just used: once per
        folder and process, so the cost stays off every later write."""
        if len(self._cleaned) >= _CLEANED_FOLDERS:
            self._cleaned.clear()
        self._cleaned.add(head)
        try:
            fd = os.open(".", _DIR_FLAGS, dir_fd=folder)  # scandir moves its own offset
        except OSError:
            return
        try:
            with os.scandir(fd) as scan:
                names = [e.name for e in scan if e.name.startswith(TEMP_PREFIX)]
            for temp in names:
                _remove_if_stale(fd, temp, time.time())
        except OSError:
            pass  # cleaning is a courtesy: the write itself succeeded
        finally:
            os.close(fd)

    def prune_temp(self) -> PruneReport:
        """Remove the temporary files of writers that are gone (their process is not
        running on this host) or that were last changed `STALE_TEMP_AGE` seconds ago or
        more, in every folder below the root; return how many files and bytes went."""
        files = size = 0
        now = time.time()
        try:
            fd = os.open(".", _DIR_FLAGS, dir_fd=self._root())
        except FileNotFoundError:
            return PruneReport()
        except OSError as exc:
            raise StorageError(f"cannot prune {self.url}: {explain(exc)}") from exc
        for folder, _, name in self._files(fd, "", "", 0, "prune"):
            if name.startswith(TEMP_PREFIX):
                removed = _remove_if_stale(folder, name, now)
                if removed is not None:
                    files += 1
                    size += removed
        return PruneReport(files=files, bytes=size)

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
                if _is_folder(folder, name):  # unlink says EPERM for folders on macOS
                    return
                raise
            for depth in range(len(names) - 1, -1, -1):
                try:
                    os.rmdir(names[depth], dir_fd=parents[depth])
                except OSError:
                    break  # not empty (or gone): stop pruning

        self._at_key(key, "delete", unlink)

    def list_paths(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys that start with ``prefix``, in sorted order.

        Only regular files count: temporary files, symbolic links and other special
        files are skipped, and only folders that can hold matching keys are read.
        Stale temporary files met on the way are removed.
        """
        head, _, start = prefix.rpartition("/")
        names = head.split("/") if head else ()
        try:
            root = self._root()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error("list", prefix, exc) from exc
        opened: list[int] = []
        try:
            if names:
                self._descend(root, prefix, names, opened)
                fd = opened.pop()  # this call's own descriptor: scandir may move its offset
            else:
                fd = os.open(".", _DIR_FLAGS, dir_fd=root)
        except (StorageError, FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise self._error("list", prefix, exc) from exc
        finally:
            for folder in opened:
                os.close(folder)
        now = time.time()
        for folder, key_prefix, name in self._files(
            fd, head + "/" if head else "", start, len(names)
        ):
            if name.startswith(TEMP_PREFIX):
                _remove_if_stale(folder, name, now)
                continue
            key = key_prefix + name
            try:
                validate_key(key)
            except InvalidKey:
                continue  # a file no key can name (too long, not UTF-8, a backslash...)
            yield key

    def _files(
        self, fd: int, key_prefix: str, start: str, depth: int, action: str = "list"
    ) -> Iterator[tuple[int, str, str]]:
        """(folder descriptor, key prefix, name) of every regular file below the folder
        ``fd`` whose name starts with ``start``, in key order, without following links
        and without recursion. ``fd`` is owned (closed) here; ``depth`` is the number of
        segments of ``key_prefix``. Folders deeper than any key can be are not read."""
        try:
            entries = self._entries(fd, key_prefix + start, start, action)
        except BaseException:
            os.close(fd)
            raise
        stack: list[tuple[int, str, Iterator[tuple[str, bool]]]] = [(fd, key_prefix, iter(entries))]
        try:
            while stack:
                folder, prefix, pending = stack[-1]
                for name, is_folder in pending:
                    if not is_folder:
                        yield folder, prefix, name
                    elif depth + len(stack) < MAX_KEY_DEPTH:
                        try:
                            child = os.open(name[:-1], _DIR_FLAGS, dir_fd=folder)
                        except OSError as exc:
                            if exc.errno in (*_ABSENT, errno.ELOOP):
                                continue  # gone, or swapped for a link, meanwhile
                            raise self._error(action, prefix + name, exc) from exc
                        try:
                            below = self._entries(child, prefix + name, "", action)
                        except BaseException:
                            os.close(child)
                            raise
                        stack.append((child, prefix + name, iter(below)))
                        break
                else:
                    stack.pop()
                    os.close(folder)
        finally:
            for folder, _, _ in stack:
                os.close(folder)

    def _entries(self, fd: int, where: str, start: str, action: str) -> list[tuple[str, bool]]:
        """The folder's sub-folders (as ``name/``) and regular files whose names start
        with ``start``, sorted, so that keys come out in sorted order."""
        found: list[tuple[str, bool]] = []
        try:
            with os.scandir(fd) as scan:
                for entry in scan:
                    name = entry.name
                    if not name.startswith(start):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        found.append((name + "/", True))
                    elif entry.is_file(follow_symlinks=False):
                        found.append((name, False))
        except OSError as exc:
            if exc.errno in _ABSENT:
                return []
            raise self._error(action, where, exc) from exc
        found.sort()
        return found


def _is_link(folder: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _is_folder(folder: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _remove_folders(created: list[tuple[int, str]]) -> None:
    """Undo the folders a failed write made, deepest first, as far as they are empty."""
    for parent, name in reversed(created):
        try:
            os.rmdir(name, dir_fd=parent)
        except OSError:
            break  # another writer put something there meanwhile: keep it
    created.clear()


def _replace_at(
    folder: int, name: str, parts: Sequence[BytesLike], *, durable: bool, exclusive: bool = False
) -> None:
    """Write ``parts`` to a new temporary file in the folder ``folder`` and rename it
    over ``name`` (``exclusive``: link it to ``name``, FileExistsError if ``name``
    exists); on any failure the temporary file is removed."""
    temp = _temp_name()
    fd = os.open(temp, _TEMP_FLAGS, 0o666, dir_fd=folder)
    replace_with(name, fd, temp, parts, durable=durable, dir_fd=folder, exclusive=exclusive)


def _remove_if_stale(folder: int, name: str, now: float) -> int | None:
    """Remove the temporary file ``name`` if its writer is gone or it is older than
    `STALE_TEMP_AGE`; return its size if this call removed it, else None."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    if now - info.st_mtime < STALE_TEMP_AGE and not _writer_gone(name):
        return None
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        return None  # removed meanwhile, or not ours to remove
    return info.st_size


def _writer_gone(name: str) -> bool:
    """Whether the process that made the temporary file ``name`` has certainly ended.

    Names are ``<prefix><host>-<pid>-<token>-<n>``. Only writers of this host (and of
    this process-id namespace) can be checked; a process id now used by another process
    counts as alive, except this process's own id with another token.
    """
    fields = name[len(TEMP_PREFIX) :].rsplit("-", 3)
    if len(fields) != 4 or fields[0] != _HOST or not fields[1].isdigit() or os.name == "nt":
        return False
    pid = int(fields[1])
    if pid == _PROCESS.pid:
        return fields[2] != _PROCESS.token
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # EPERM: alive, another user's
    return False


def _host_name() -> str:
    """This host as it appears in temporary file names: the host name, and on Linux the
    process-id namespace, so containers sharing a host name never judge each other's
    process ids."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:48] or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return host
    return f"{host}.{namespace:x}"


class _Process:
    """This process's writer identity; drawn again in a forked child."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.token = secrets.token_hex(4)
        self.writer = f"{_HOST}-{self.pid}-{self.token}-"


_HOST = _host_name()
_PROCESS = _Process()
_COUNTER = itertools.count()
_ROOTS_GUARD = threading.Lock()
#: Storages holding a descriptor of their root, to be dropped in a forked child.
_OPEN_ROOTS: weakref.WeakSet[LocalStorage] = weakref.WeakSet()


def _temp_name() -> str:
    """A new temporary file name: its writer's identity and a counter, unique without a
    system call for randomness on every write (O_EXCL still refuses a clash)."""
    return f"{TEMP_PREFIX}{_PROCESS.writer}{next(_COUNTER)}"


def _after_fork_in_child() -> None:
    global _PROCESS, _ROOTS_GUARD
    _PROCESS = _Process()
    _ROOTS_GUARD = threading.Lock()  # another thread may have held it at the fork
    for storage in list(_OPEN_ROOTS):
        storage._forget_after_fork()
    _OPEN_ROOTS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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


def write_all(fd: int, parts: Sequence[BytesLike]) -> None:
    """Write every byte of ``parts`` to ``fd``, with as few system calls as possible."""
    pending = [view for view in map(_flat, parts) if view.nbytes]
    writev = getattr(os, "writev", None)
    while pending:
        if writev is None or len(pending) == 1:
            written = os.write(fd, pending[0])
        else:
            written = writev(fd, pending[:_IOV_MAX])
        if written <= 0:
            raise OSError(errno.EIO, "the file system accepted no bytes")
        done = 0
        while done < len(pending) and written >= pending[done].nbytes:
            written -= pending[done].nbytes
            done += 1
        del pending[:done]
        if written:
            pending[0] = pending[0][written:]


def _flat(part: BytesLike) -> memoryview:
    view = memoryview(part)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def open_temp(folder: str) -> tuple[int, str]:
    """Create a new, uniquely named temporary file in ``folder``: its fd and path."""
    temp = os.path.join(folder, _temp_name())
    return os.open(temp, _TEMP_FLAGS, 0o666), temp


def replace_with(
    path: str,
    fd: int,
    temp: str,
    parts: Sequence[BytesLike],
    *,
    durable: bool = False,
    dir_fd: int | None = None,
    exclusive: bool = False,
) -> None:
    """Write ``parts`` to the temporary file ``fd`` (at ``temp``), close it and rename it
    over ``path``; on any failure the temporary file is removed. With ``dir_fd``, both
    names are relative to that folder's descriptor.

    ``exclusive`` never replaces: the complete file gets the name ``path`` only if no
    file has it (a hard link, which the kernel refuses with FileExistsError if the name
    exists, then the temporary name is removed), so of racing writers exactly one wins
    and readers still never see a partial file.
    """
    try:
        try:
            write_all(fd, parts)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            if _link_new(temp, path, dir_fd):
                try:
                    os.unlink(temp, dir_fd=dir_fd)
                except OSError:
                    pass  # the record is in place; prune_temp removes the leftover
        else:
            os.replace(temp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


#: errno values of file systems that cannot make hard links (FAT, some network mounts).
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def _link_new(temp: str, path: str, dir_fd: int | None) -> bool:
    """Give the file ``temp`` the new name ``path``, failing with FileExistsError if the
    name is taken: a hard link (True: ``temp`` still names the file), else, on file
    systems without links, a rename with ``RENAME_NOREPLACE`` (False: ``temp`` is gone)."""
    try:
        os.link(temp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINKS or not _rename_noreplace(temp, path, dir_fd):
            raise
        return False
    return True


def _rename_noreplace(temp: str, path: str, dir_fd: int | None) -> bool:
    """``renameat2(..., RENAME_NOREPLACE)`` through libc; False where it is missing.
    Raises FileExistsError if ``path`` exists."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at = -100 if dir_fd is None else dir_fd  # AT_FDCWD
    if renameat2(at, os.fsencode(temp), at, os.fsencode(path), 1) == 0:  # RENAME_NOREPLACE
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(code, os.strerror(code), path)


def _fsync_folder(folder: str) -> None:
    if os.name == "nt":  # folders cannot be opened (nor need syncing) on Windows
        return
    fd = os.open(folder, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
