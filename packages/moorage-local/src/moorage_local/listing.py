"""Walking the files below a folder in key order, without following links.

Used by `LocalStorage.list_paths` (which keys exist), `LocalStorage.list_entries` (the
same keys with each file's size and modification time) and `LocalStorage.prune_temp`
(which temporary files are left). The walk keeps a stack of open folders instead of
recursing, reads only regular files and folders (symbolic links and special files are
skipped), and never descends deeper than a key can reach (`MAX_KEY_DEPTH`).

Memory: a listing is a generator, so it holds the sorted names of the folders it is in
(one list per level, the price of sorted keys) and, for `list_entries`, one page of
entries; never the whole listing. Each file is ``stat``-ed only when its entry is made.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence

from moorage.errors import InvalidKey, StorageError, map_exceptions
from moorage.storage import MAX_KEY_DEPTH, StorageEntry, validate_key
from moorage_local.errors import Translate
from moorage_local.folders import ABSENT, DIR_FLAGS, RootFolder
from moorage_local.temp_files import TEMP_PREFIX, remove_if_stale

__all__ = ["entry_pages", "listed_files", "open_listed_folder", "walk_files"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def listed_files(
    tree: RootFolder, prefix: str, errors: Callable[[str], Translate]
) -> Iterator[tuple[int, str, str]]:
    """(folder descriptor, name, key) of every file a listing of ``prefix`` shows, in
    key order: regular files whose keys start with ``prefix`` and that a key can name.
    Temporary files are skipped (and removed if stale), as are links and special files.
    The descriptor is open only until the next item is asked for. ``errors(where)``
    maps a failure to read the folder or file ``where`` (a key or key prefix)."""
    head, _, start = prefix.rpartition("/")
    names = head.split("/") if head else ()
    with map_exceptions(errors(prefix)):
        fd = open_listed_folder(tree, prefix, names)
    if fd is None:
        return
    now = time.time()
    for folder, key_prefix, name in walk_files(
        fd, head + "/" if head else "", start, len(names), errors
    ):
        if name.startswith(TEMP_PREFIX):
            remove_if_stale(folder, name, now)
            continue
        key = key_prefix + name
        try:
            validate_key(key)
        except InvalidKey:
            continue  # a file no key can name (too long, not UTF-8, a backslash...)
        yield folder, name, key


def entry_pages(
    files: Iterator[tuple[int, str, str]], errors: Callable[[str], Translate], page_size: int
) -> Iterator[list[StorageEntry]]:
    """The files of `listed_files` as pages of at most ``page_size`` `StorageEntry`,
    each with the file's size and modification time (UTC) from one ``stat`` relative to
    its folder that does not follow links. A file removed, or replaced by a folder or a
    link, between reading its folder and the ``stat`` is left out."""
    page: list[StorageEntry] = []
    for folder, name, key in files:
        entry = _stat_entry(folder, name, key, errors)
        if entry is None:
            continue
        page.append(entry)
        if len(page) >= page_size:
            yield page
            page = []
    if page:
        yield page


def _stat_entry(
    folder: int, name: str, key: str, errors: Callable[[str], Translate]
) -> StorageEntry | None:
    with map_exceptions(errors(key)):
        try:
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in ABSENT:
                return None
            raise
    if not stat.S_ISREG(info.st_mode):
        return None
    # From the integer nanoseconds: exact to the microsecond, where the float
    # ``st_mtime`` can be a microsecond off for times far from 1970.
    modified = _EPOCH + dt.timedelta(microseconds=info.st_mtime_ns // 1000)
    return StorageEntry(key, info.st_size, modified)


def open_listed_folder(tree: RootFolder, prefix: str, names: Sequence[str]) -> int | None:
    """A new descriptor of the folder ``names`` below the root, whose files a listing of
    ``prefix`` reads (the listing's own: scandir moves its offset); None if there is no
    such folder, or a file or a link is in the way. Other `OSError`s pass through."""
    try:
        root = tree.open()
    except FileNotFoundError:
        return None
    opened: list[int] = []
    try:
        if not names:
            return os.open(".", DIR_FLAGS, dir_fd=root)
        tree.descend(root, prefix, names, opened)
        return opened.pop()
    except (StorageError, FileNotFoundError, NotADirectoryError):
        return None
    finally:
        for folder in opened:
            os.close(folder)


def walk_files(
    fd: int, key_prefix: str, start: str, depth: int, errors: Callable[[str], Translate]
) -> Iterator[tuple[int, str, str]]:
    """(folder descriptor, key prefix, name) of every regular file below the folder
    ``fd`` whose name starts with ``start``, in key order. ``fd`` is owned (closed)
    here; ``depth`` is the number of segments of ``key_prefix``. ``errors(where)`` maps
    a failure to read the folder ``where`` (a key prefix)."""
    try:
        entries = _entries(fd, key_prefix + start, start, errors)
    except BaseException:
        os.close(fd)
        raise
    stack: list[tuple[int, str, Iterator[str]]] = [(fd, key_prefix, iter(entries))]
    try:
        while stack:
            folder, prefix, pending = stack[-1]
            for name in pending:
                if not name.endswith("/"):
                    yield folder, prefix, name
                elif depth + len(stack) < MAX_KEY_DEPTH:
                    child = _open_folder(folder, name[:-1], errors(prefix + name))
                    if child is None:
                        continue
                    try:
                        below = _entries(child, prefix + name, "", errors)
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


def _open_folder(parent: int, name: str, translate: Translate) -> int | None:
    """A descriptor of the sub-folder ``name``; None if it went, or became a link,
    since the folder was read."""
    with map_exceptions(translate):
        try:
            return os.open(name, DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (*ABSENT, errno.ELOOP):
                return None
            raise


def _entries(fd: int, where: str, start: str, errors: Callable[[str], Translate]) -> list[str]:
    """The names of the folder's sub-folders (as ``name/``) and regular files that
    start with ``start``, sorted, so that keys come out in sorted order. Bare names, not
    (name, kind) pairs: a folder of 100,000 files costs half the memory."""
    found: list[str] = []
    with map_exceptions(errors(where)):
        try:
            with os.scandir(fd) as scan:
                for entry in scan:
                    name = entry.name
                    if not name.startswith(start):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        found.append(name + "/")
                    elif entry.is_file(follow_symlinks=False):
                        found.append(name)
        except OSError as exc:
            if exc.errno in ABSENT:
                return []
            raise
    found.sort()
    return found
