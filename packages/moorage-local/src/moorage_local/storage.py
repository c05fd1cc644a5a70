"""Local filesystem storage: plain paths and ``file://`` URLs.

A write goes to a temporary file in the key's folder (named ``.moorage-tmp-...``, never
listed as a key) and is renamed over the target, so a reader sees the old bytes or the
new bytes, never a part, even when the writer is killed mid-write. With ``durable=True``
the file and its folder are also fsynced, so the write survives a power cut.

Symlink policy: the root is resolved once, when the storage is built, so the root itself
may be (or lie below) a symbolic link. Below the root nothing is followed: a key whose
folders pass through a symbolic link, or whose file is one, is refused (`StorageError`
on read and write), `exists` says False for it and listings skip links. Nested keys pay
one ``lstat`` per folder level for this; flat keys pay nothing extra.
"""

from __future__ import annotations

import errno
import itertools
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from moorage.errors import ConfigurationError, InvalidKey, RecordNotFound, StorageError
from moorage.storage import BytesLike, Storage

_T = TypeVar("_T")

__all__ = [
    "READ_FLAGS",
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

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO at a key must not block the open
#: Flags for opening a stored file: never through a link, never blocking on a FIFO.
READ_FLAGS = os.O_RDONLY | _O_BINARY | _O_CLOEXEC | _O_NOFOLLOW | _O_NONBLOCK
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY | _O_CLOEXEC | _O_NOFOLLOW
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
    order.
    """

    schemes = ("file",)

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        *,
        durable: bool | str | None = None,
        **options: object,
    ) -> None:
        root, url_options = root_from_url(url_or_path, "LocalStorage")
        self.root = root
        self.url = Path(root).as_uri()
        merged: dict[str, object] = {**url_options, **options}
        check_options(merged, {"durable"}, "LocalStorage", self.url)
        value: object = merged.get("durable", False) if durable is None else durable
        self.durable = coerce_bool("durable", value, self.url)
        self._prefix = root if root.endswith(os.sep) else root + os.sep

    def __repr__(self) -> str:
        return f"LocalStorage({self.url!r}, durable={self.durable!r})"

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

    def _check_folders(self, key: str, *, create: bool = False) -> None:
        """Refuse a key whose folders are symbolic links; create missing ones if asked.

        Raises FileNotFoundError for a missing folder (unless ``create``) and
        NotADirectoryError for a file in the way.
        """
        folder = self.root
        for name in key.split("/")[:-1]:
            folder = os.path.join(folder, name)
            try:
                mode = os.lstat(folder).st_mode
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(folder)
                except FileExistsError:
                    pass
                mode = os.lstat(folder).st_mode
            if stat.S_ISLNK(mode):
                raise StorageError(
                    f"key {key!r} in {self.url} passes through the symbolic link {folder}; "
                    "LocalStorage does not follow links below its root. Replace the link "
                    "with a folder, or point the storage at the link's target"
                )
            if not stat.S_ISDIR(mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder)

    def _error(self, action: str, key: str, exc: OSError) -> StorageError:
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
        path = self._path(key)
        try:
            if "/" in key:
                self._check_folders(key)
            return os.open(path, READ_FLAGS)
        except OSError as exc:
            if exc.errno in _ABSENT:
                raise self._not_found(key) from None
            if exc.errno == errno.ELOOP and os.path.islink(path):
                raise StorageError(
                    f"key {key!r} in {self.url} is a symbolic link ({path}); LocalStorage "
                    "does not follow links below its root. Replace it with the file itself"
                ) from exc
            raise self._error("read", key, exc) from exc

    def _size(self, key: str, fd: int) -> int:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise self._not_found(key, " (it is a folder or a special file, not a record)")
        return info.st_size

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a regular file below the root (one ``stat`` for flat keys)."""
        try:
            if "/" in key:
                self._check_folders(key)
            return stat.S_ISREG(os.lstat(self._path(key)).st_mode)
        except (StorageError, FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            if exc.errno in _ABSENT:
                return False
            raise self._error("check", key, exc) from exc

    # -- writing -------------------------------------------------------------------

    def write_path(self, key: str, content: bytes) -> str:
        """Store ``content`` under ``key`` atomically; return the file's absolute path."""
        return self._write(key, (content,))

    def write_parts(self, key: str, parts: Sequence[BytesLike]) -> str:
        """Store the concatenation of ``parts`` atomically, without joining them."""
        return self._write(key, parts)

    def _write(self, key: str, parts: Sequence[BytesLike]) -> str:
        path = self._path(key)
        folder = os.path.dirname(path)
        try:
            fd, temp = self._create_temp(key, folder)
            replace_with(path, fd, temp, parts, durable=self.durable)
            if self.durable:
                _fsync_folder(folder)
        except OSError as exc:
            raise self._error("write", key, exc) from exc
        return path

    def _create_temp(self, key: str, folder: str) -> tuple[int, str]:
        """Open a new temporary file in ``folder``, creating missing folders if needed."""
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                if "/" in key:
                    self._check_folders(key, create=attempt > 0)
                return open_temp(folder)
            except FileNotFoundError:
                # First write below this folder, or a delete pruned it meanwhile.
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
                os.makedirs(self.root, exist_ok=True)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- deleting and listing --------------------------------------------------------------

    def delete_path(self, key: str) -> None:
        """Remove ``key``'s file (a missing key is fine) and its folders left empty."""
        path = self._path(key)
        try:
            if "/" in key:
                self._check_folders(key)
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            if exc.errno in _ABSENT or os.path.isdir(path):
                return  # a folder of other keys is not itself a key
            raise self._error("delete", key, exc) from exc
        folder = os.path.dirname(path)
        while len(folder) > len(self._prefix):
            try:
                os.rmdir(folder)
            except OSError:
                break  # not empty (or gone): stop pruning
            folder = os.path.dirname(folder)

    def list_paths(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys that start with ``prefix``, in sorted order.

        Only regular files count: temporary files, symbolic links and other special
        files are skipped, and only folders that can hold matching keys are read.
        """
        head, _, start = prefix.rpartition("/")
        folder = self.root
        if head:
            try:
                self._check_folders(head + "/")
            except (StorageError, FileNotFoundError, NotADirectoryError):
                return
            folder = os.path.join(self.root, *head.split("/"))
        yield from self._walk(folder, head + "/" if head else "", start)

    def _walk(self, folder: str, key_prefix: str, start: str = "") -> Iterator[str]:
        entries: list[tuple[str, str]] = []
        try:
            with os.scandir(folder) as scan:
                for entry in scan:
                    name = entry.name
                    if not name.startswith(start):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        entries.append((name + "/", entry.path))
                    elif entry.is_file(follow_symlinks=False) and not name.startswith(TEMP_PREFIX):
                        entries.append((name, entry.path))
        except OSError as exc:
            if exc.errno in _ABSENT:
                return
            raise self._error("list", key_prefix + start, exc) from exc
        entries.sort()  # a folder sorts as "name/", so keys come out in sorted order
        for name, path in entries:
            if name.endswith("/"):
                yield from self._walk(path, key_prefix + name)
            else:
                yield key_prefix + name


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
    """Create a new, uniquely named temporary file in ``folder``: its fd and path.

    Names are a random token drawn once per process, the process id and a counter: unique
    without a system call for randomness on every write (O_EXCL still refuses a clash).
    """
    temp = os.path.join(folder, f"{TEMP_PREFIX}{_TOKEN}-{os.getpid()}-{next(_COUNTER)}")
    return os.open(temp, _TEMP_FLAGS, 0o666), temp


_TOKEN = secrets.token_hex(4)
_COUNTER = itertools.count()


def replace_with(
    path: str, fd: int, temp: str, parts: Sequence[BytesLike], *, durable: bool = False
) -> None:
    """Write ``parts`` to the temporary file ``fd`` (at ``temp``), close it and rename it
    over ``path``; on any failure the temporary file is removed."""
    try:
        try:
            write_all(fd, parts)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _fsync_folder(folder: str) -> None:
    if os.name == "nt":  # folders cannot be opened (nor need syncing) on Windows
        return
    fd = os.open(folder, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
