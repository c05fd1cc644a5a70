"""Walking from a storage's root folder to a key's folder, never through a link.

The root is resolved once, when the storage is built, so the root itself may be (or lie
below) a symbolic link. Below it nothing is followed, even when another process swaps a
folder for a link while a call runs: every folder is opened relative to its parent's
descriptor (``openat``) with ``O_NOFOLLOW``, one level at a time, starting from a
descriptor of the root that each process opens once (`RootFolder.open`). A key whose
folders pass through a link is refused with `StorageError`.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from moorage.errors import StorageError

__all__ = [
    "ABSENT",
    "DIR_FLAGS",
    "MISSING",
    "READ_FLAGS",
    "Missing",
    "RootFolder",
    "is_folder",
    "is_link",
    "remove_folders",
]

_T = TypeVar("_T")

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
#: Flags for opening a stored file: never through a link, never blocking on a FIFO (a
#: FIFO at a key must not block the open); binary on Windows.
READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | _O_CLOEXEC
    | _O_NOFOLLOW
    | getattr(os, "O_NONBLOCK", 0)
)
#: A folder below the root: opened only if it is a folder and not a link.
DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC | _O_NOFOLLOW
#: The root itself, which may be (or lie below) a link.
_ROOT_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC
#: errno values that mean a key's file or one of its folders is not there.
ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG)


class Missing:
    """What `RootFolder.at_key` returns for a key that is not there."""


MISSING = Missing()


class RootFolder:
    """A storage's root folder, opened once per process, and the way down to keys' folders.

    Holds this process's state of the root: its descriptor, and which folders this
    process has cleaned of stale temporary files (`cleaned`). A forked child drops both
    and opens the root afresh; `close` lets the descriptor go (the next call reopens it).
    """

    def __init__(self, path: str, url: str) -> None:
        self.path = path
        self.url = url
        self.cleaned: set[str] = set()
        self._fd: int | None = None
        self._closer: weakref.finalize[Any, Any] | None = None
        self._retired: list[weakref.finalize[Any, Any]] = []

    def open(self, *, create: bool = False) -> int:
        """This process's descriptor of the root folder (FileNotFoundError if missing;
        with ``create``, the folder is made)."""
        fd = self._fd
        if fd is not None:
            return fd
        with _ROOTS_GUARD:
            if self._fd is not None:
                return self._fd
            try:
                fd = os.open(self.path, _ROOT_FLAGS)
            except FileNotFoundError:
                if not create:
                    raise
                os.makedirs(self.path, exist_ok=True)
                fd = os.open(self.path, _ROOT_FLAGS)
            self._closer = weakref.finalize(self, os.close, fd)
            self._fd = fd
            _OPEN_ROOTS.add(self)
            return fd

    def moved(self, fd: int) -> bool:
        """Whether ``fd`` is no longer the folder at `path` (it was removed or replaced);
        if so, the next call opens the root again. Asked only after something was
        missing, so hits pay nothing for it."""
        try:
            now = os.stat(self.path)
        except OSError:
            now = None
        then = os.fstat(fd)
        if now is not None and (now.st_ino, now.st_dev) == (then.st_ino, then.st_dev):
            return False
        with _ROOTS_GUARD:
            if self._fd == fd and self._closer is not None:
                # Other threads may still be using ``fd``: keep it open until close().
                self._retired.append(self._closer)
                self._fd = self._closer = None
        return True

    def close(self) -> None:
        """Close this process's descriptor of the root; the next call opens it again."""
        with _ROOTS_GUARD:
            closer, self._fd, self._closer = self._closer, None, None
            retired, self._retired = self._retired, []
        for done in (*retired, closer):
            if done is not None:
                done()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptors (the child opens its own)."""
        for done in (*self._retired, self._closer):
            if done is not None:
                done()
        self._retired = []
        self._fd = self._closer = None
        self.cleaned = set()

    def descend(
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
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if created is None:
                    raise
                try:
                    os.mkdir(name, dir_fd=fd)
                    created.append((fd, name))
                except FileExistsError:
                    pass  # made meanwhile by another writer
                try:
                    child = os.open(name, DIR_FLAGS, dir_fd=fd)
                except NotADirectoryError:
                    raise self._not_a_folder(fd, key, names[: depth + 1]) from None
            except NotADirectoryError:
                raise self._not_a_folder(fd, key, names[: depth + 1]) from None
            opened.append(child)
            fd = child
        return fd

    def _not_a_folder(self, parent: int, key: str, names: Sequence[str]) -> Exception:
        """The error for a folder of ``key`` that is a link or a file."""
        where = os.path.join(self.path, *names)
        if is_link(parent, names[-1]):
            return StorageError(
                f"key {key!r} in {self.url} passes through the symbolic link {where}; "
                "LocalStorage does not follow links below its root. Replace the link "
                "with a folder, or point the storage at the link's target"
            )
        return NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), where)

    def at_key(
        self,
        key: str,
        use: Callable[[int, str, list[int]], _T],
        *,
        blocked_is_missing: bool = False,
    ) -> _T | Missing:
        """``use(folder, name, parents)`` on the folder that holds ``key``, opened from
        the root one level at a time without following links (``parents`` are the root
        and the folders on the way). `MISSING` when the key's folder or file is absent;
        then, if the root was removed or replaced meanwhile, the root is opened again and
        ``use`` tried once more. A link or a file in the way raises `StorageError`, or
        counts as missing with ``blocked_is_missing``. Other `OSError`s pass through, for
        the caller to map."""
        head, _, name = key.rpartition("/")
        names = head.split("/") if head else ()
        for retry in (False, True):
            try:
                root = self.open()
            except FileNotFoundError:
                return MISSING
            opened: list[int] = []
            try:
                try:
                    folder = self.descend(root, key, names, opened) if names else root
                except StorageError:
                    if blocked_is_missing:
                        return MISSING
                    raise
                return use(folder, name, [root, *opened])
            except OSError as exc:
                if exc.errno not in ABSENT:
                    raise
                if retry or not self.moved(root):
                    return MISSING
            finally:
                for fd in opened:
                    os.close(fd)
        raise AssertionError("unreachable")  # pragma: no cover


def is_link(folder: int, name: str) -> bool:
    """Whether ``name`` in the folder ``folder`` (a descriptor) is a symbolic link."""
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def is_folder(folder: int, name: str) -> bool:
    """Whether ``name`` in the folder ``folder`` (a descriptor) is a folder, not a link."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def remove_folders(created: list[tuple[int, str]]) -> None:
    """Undo the folders a failed write made, deepest first, as far as they are empty."""
    for parent, name in reversed(created):
        try:
            os.rmdir(name, dir_fd=parent)
        except OSError:
            break  # another writer put something there meanwhile: keep it
    created.clear()


_ROOTS_GUARD = threading.Lock()
#: Roots holding a descriptor, to be dropped in a forked child.
_OPEN_ROOTS: weakref.WeakSet[RootFolder] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _ROOTS_GUARD
    _ROOTS_GUARD = threading.Lock()  # another thread may have held it at the fork
    for root in list(_OPEN_ROOTS):
        root.forget_after_fork()
    _OPEN_ROOTS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
