"""Walking the files below a folder in key order, without following links.

Used by `LocalStorage.list_paths` (which keys exist) and `LocalStorage.prune_temp`
(which temporary files are left). The walk keeps a stack of open folders instead of
recursing, reads only regular files and folders (symbolic links and special files are
skipped), and never descends deeper than a key can reach (`MAX_KEY_DEPTH`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator, Sequence

from moorage.errors import StorageError, map_exceptions
from moorage.storage import MAX_KEY_DEPTH
from moorage_local.errors import Translate
from moorage_local.folders import ABSENT, DIR_FLAGS, RootFolder

__all__ = ["open_listed_folder", "walk_files"]


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
    stack: list[tuple[int, str, Iterator[tuple[str, bool]]]] = [(fd, key_prefix, iter(entries))]
    try:
        while stack:
            folder, prefix, pending = stack[-1]
            for name, is_folder in pending:
                if not is_folder:
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


def _entries(
    fd: int, where: str, start: str, errors: Callable[[str], Translate]
) -> list[tuple[str, bool]]:
    """The folder's sub-folders (as ``name/``) and regular files whose names start
    with ``start``, sorted, so that keys come out in sorted order."""
    found: list[tuple[str, bool]] = []
    with map_exceptions(errors(where)):
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
            if exc.errno in ABSENT:
                return []
            raise
    found.sort()
    return found
