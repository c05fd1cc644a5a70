"""File system errors as moorage errors that say what to do.

The functions here are ``translate`` functions for `moorage.errors.map_exceptions`, the
one place backend exceptions become ours: bind the first arguments (with
`functools.partial`) and hand the result to ``map_exceptions``. Each turns an `OSError`
into a `StorageError` or `LockError` naming the key, the URL and a fix, and leaves every
other exception alone (it surfaces as itself).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping

from moorage.errors import LockError, MoorageError, StorageError

__all__ = ["Translate", "explain", "lock_error", "prune_error", "storage_error"]

#: A ``translate`` function for `moorage.errors.map_exceptions`.
Translate = Callable[[Exception], MoorageError | None]

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
_LOCK_FIXES = {
    errno.ENOTDIR: "the lock folder or one of its parents is a file; use a folder",
}


def explain(exc: OSError, fixes: Mapping[int, str] = _STORAGE_FIXES) -> str:
    """What went wrong in ``exc`` (with the file it names) and what to do about it."""
    code = exc.errno or 0
    fix = fixes.get(code) or _FIXES.get(code) or "check the folder and the file system"
    path = exc.filename2 or exc.filename  # a failed rename names its target second
    where = f" ({path})" if path else ""
    return f"{exc.strerror or exc}{where}; {fix}"


def storage_error(
    url: str, prefix: str, action: str, key: str, exc: Exception
) -> StorageError | None:
    """An `OSError` met while ``action``-ing ``key`` of the storage at ``url`` (whose root
    folder, with a trailing separator, is ``prefix``) as a `StorageError`."""
    if not isinstance(exc, OSError):
        return None
    if exc.filename is not None and not os.path.isabs(os.fsdecode(exc.filename)):
        # A call relative to a folder's descriptor names the file, not its path.
        exc = OSError(exc.errno, exc.strerror, prefix + key)
    return StorageError(f"cannot {action} key {key!r} in {url}: {explain(exc)}")


def prune_error(url: str, exc: Exception) -> StorageError | None:
    """An `OSError` met while opening the storage at ``url`` to prune it."""
    if not isinstance(exc, OSError):
        return None
    return StorageError(f"cannot prune {url}: {explain(exc)}")


def lock_error(url: str, action: str, key: str, exc: Exception) -> LockError | None:
    """An `OSError` met while ``action``-ing the lock on ``key`` in the folder at ``url``."""
    if not isinstance(exc, OSError):
        return None
    return LockError(f"cannot {action} lock on key {key!r} in {url}: {explain(exc, _LOCK_FIXES)}")
