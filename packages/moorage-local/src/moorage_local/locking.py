"""File locks: ``file:///dir``, correct across processes and threads.

Each key has one lock file in the folder, named by an injective, case-safe encoding of
the key (``my.key.lock``; ``%2f`` for ``/``, ``%41`` for ``A``; keys whose name would be
long become ``#<sha256>.lock``). The file holds JSON::

    {"key": ..., "holder": ..., "expires_at": <epoch seconds or null>,
     "created_at": ..., "pid": ..., "hostname": ..., "version": 1}

Every change (take, extend, take over an expired lock, release) happens while holding an
exclusive ``flock`` on the folder's guard file ``.moorage-guard``, opened afresh for each
operation: threads of one process exclude each other as processes do, and the kernel
drops the guard when a process dies, so a killed process never wedges the folder. New
contents go to a temporary file renamed over the lock file, so a reader without the
guard (`lock_holder`) sees the old holder or the new one, never a half-written file.

A lock file that cannot be parsed (left by a power cut, or edited by hand) counts as held
by an unknown holder until `CORRUPT_LOCK_GRACE` seconds after it was last modified; then
the next acquirer replaces it. moorage itself never leaves one behind in normal
operation, since it writes lock files by rename.

Expiry uses the wall clock (``time.time()``), so machines sharing a lock folder over a
network file system need synchronised clocks.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from moorage.config.options import parse_optional_seconds
from moorage.errors import ConfigurationError, map_exceptions
from moorage.locking import (
    DEFAULT_HOLD_TIMEOUT,
    LockInfo,
    LockManager,
    expiry_from,
    release_error,
)
from moorage_local.atomic_writes import open_temp, replace_with
from moorage_local.errors import Translate, lock_error
from moorage_local.folders import READ_FLAGS
from moorage_local.options import parse_local_options, root_from_url

if sys.platform != "win32":
    import fcntl

__all__ = ["CORRUPT_LOCK_GRACE", "GUARD_NAME", "FileLockManager", "lock_file_name"]

#: Seconds after its last change during which an unparsable lock file still counts as held.
CORRUPT_LOCK_GRACE = 30.0

#: The file whose flock serializes every lock change in a folder.
GUARD_NAME = ".moorage-guard"
_MAX_NAME = 120  # longer encoded names are hashed; stays far below NAME_MAX (255)
_UNSAFE = re.compile(r"[^a-z0-9_.-]")
_GUARD_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
_HOSTNAME = socket.gethostname()
_OPTIONS = {"hold_timeout": parse_optional_seconds}

# Threads of this process take the folder guard one at a time, and never while the
# process forks: a child must not inherit an open guard file, or its copy would keep the
# flock after the parent closed its own.
_in_process = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_in_process.acquire,
        after_in_parent=_in_process.release,
        after_in_child=_in_process.release,
    )


def lock_file_name(key: str) -> str:
    """The lock file's name for ``key``: one name per key, also on case-blind file systems.

    Characters other than lowercase letters, digits, ``_``, ``.`` and ``-`` become
    ``%xx`` escapes of their UTF-8 bytes; a name longer than 120 characters becomes
    ``#`` and the key's sha256 (``#`` never appears in an escaped name).
    """
    name = _UNSAFE.sub(_escape, key)
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"#{digest}.lock"
    return f"{name}.lock"


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02x}" for byte in match[0].encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class _LockFile:
    """A lock file as read: its lock (None when unparsable) and modification time."""

    info: LockInfo | None
    created_at: float | None
    mtime: float


class FileLockManager(LockManager):
    """Locks kept as files in a local folder: ``FileLockManager("file:///var/locks")``.

    ``url`` is an absolute ``file://`` URL or a plain path; the folder is created on the
    first acquire. ``hold_timeout`` (seconds, None for never) is the default lifetime of a
    lock; strings such as ``"30"`` are accepted, and a ``?hold_timeout=`` in the URL
    applies when the argument is left at its default. No other options exist.

    The manager holds no open files between operations: it pickles as its folder and
    hold timeout, and a copy unpickled in another process locks in the same folder. Two
    managers of one folder and hold timeout compare and hash equal.
    """

    schemes = ("file",)

    def __init__(
        self,
        url: str | os.PathLike[str],
        hold_timeout: float | str | None = DEFAULT_HOLD_TIMEOUT,
        **options: object,
    ) -> None:
        folder, url_options = root_from_url(url, "FileLockManager")
        self.folder = folder
        self.url = Path(folder).as_uri()
        given: dict[str, object] = {**url_options, **options}
        if "hold_timeout" not in url_options or hold_timeout != DEFAULT_HOLD_TIMEOUT:
            given["hold_timeout"] = hold_timeout  # the URL's applies only to the default
        parsed = parse_local_options(given, _OPTIONS, "FileLockManager", self.url)
        super().__init__(parsed["hold_timeout"])
        self._guard_path = os.path.join(folder, GUARD_NAME)

    def lock_path(self, key: str) -> str:
        """The absolute path of ``key``'s lock file."""
        return os.path.join(self.folder, lock_file_name(key))

    # -- the primitives ---------------------------------------------------------------

    def try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """Take, extend or take over the lock on ``key`` without waiting."""
        path = self.lock_path(key)
        with map_exceptions(self._errors("acquire", key)), self._guard():
            now = time.time()
            found = _read_lock_file(path)
            current = _holder(found, now, path)
            if current is not None and current != holder:
                return False
            created = now
            if current is not None and found is not None and found.created_at is not None:
                created = found.created_at  # re-acquired: keeps its creation time
            self._write(path, key, holder, created, expiry_from(now, hold_timeout))
            return True

    def release_lock(self, key: str, holder: str) -> None:
        """Free the lock; `LockError` unless ``holder`` holds it now."""
        path = self.lock_path(key)
        with map_exceptions(self._errors("release", key)), self._guard():
            current = _holder(_read_lock_file(path), time.time(), path)
            if current != holder:
                raise release_error(key, holder, current, self.url)
            os.unlink(path)

    def lock_holder(self, key: str) -> str | None:
        """The holder of the unexpired lock on ``key``, read from its file, else None."""
        path = self.lock_path(key)
        with map_exceptions(self._errors("read", key)):
            return _holder(_read_lock_file(path), time.time(), path)

    # -- internals ---------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Hold the folder's guard: an exclusive flock, dropped when the file is closed."""
        if sys.platform == "win32":  # pragma: no cover
            raise ConfigurationError(
                f"file locks ({self.url}) need POSIX flock, which Windows lacks; "
                "use memory:// within one process or redis:// across processes"
            )
        with _in_process:
            try:
                fd = os.open(self._guard_path, _GUARD_FLAGS, 0o666)
            except FileNotFoundError:
                os.makedirs(self.folder, exist_ok=True)
                fd = os.open(self._guard_path, _GUARD_FLAGS, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _write(
        self, path: str, key: str, holder: str, created: float, expires: float | None
    ) -> None:
        """Replace the lock file atomically: temporary file, then rename."""
        content = {
            "key": key,
            "holder": holder,
            "expires_at": expires,
            "created_at": created,
            "pid": os.getpid(),
            "hostname": _HOSTNAME,
            "version": 1,
        }
        fd, temp = open_temp(self.folder)
        replace_with(path, fd, temp, (json.dumps(content).encode(),))

    def _errors(self, action: str, key: str) -> Translate:
        """How an `OSError` while ``action``-ing the lock on ``key`` becomes a `LockError`."""
        return partial(lock_error, self.url, action, key)


def _read_lock_file(path: str) -> _LockFile | None:
    """The lock file at ``path`` as read, or None if there is none."""
    try:
        fd = os.open(path, READ_FLAGS)
    except FileNotFoundError:
        return None
    try:
        mtime = os.fstat(fd).st_mtime
        raw = os.read(fd, 1 << 16)  # a lock file is a few hundred bytes
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
        holder, expires, created = data["holder"], data["expires_at"], data.get("created_at")
    except (ValueError, KeyError, TypeError, AttributeError):
        return _LockFile(None, None, mtime)
    if not isinstance(holder, str) or not (expires is None or _is_number(expires)):
        return _LockFile(None, None, mtime)
    return _LockFile(
        LockInfo(holder, None if expires is None else float(expires)),
        float(created) if _is_number(created) else None,
        mtime,
    )


def _holder(found: _LockFile | None, now: float, path: str) -> str | None:
    """Who holds the lock at ``now``: None if free, expired, or unreadable for long."""
    if found is None:
        return None
    if found.info is None:
        if now - found.mtime >= CORRUPT_LOCK_GRACE:
            return None
        return f"<unknown: unreadable lock file {path}>"
    return None if found.info.expired(now) else found.info.holder


def _is_number(value: object) -> bool:
    """A finite int or float (JSON also parses NaN and Infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
