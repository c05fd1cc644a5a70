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

Waiting is fair: a waiting `acquire_lock` joins the key's queue of waiters, a queue file
beside the lock file (``my.key.queue``, written by rename under the same guard)::

    [{"holder": ..., "seen": <epoch seconds of its latest attempt>}, ...]

A free lock goes to the first waiter of the queue, so a holder that releases and asks
again at once waits behind those already waiting. Each attempt of a waiter refreshes its
``seen``; a waiter unseen for `QUEUE_GRACE` seconds (a killed process) loses its place,
and one that gives up leaves at once (`stop_waiting`). A plain `try_acquire` never joins
the queue and takes a free lock only when nobody waits (or it is the first waiter). The
first two waiters look at the lock and queue files while they wait (a read without the
guard: every millisecond early in a wait, slowing to every `FIRST_WAITER_POLL` seconds
as it goes on) and try again as soon as the lock is free and they are first, so a lock
changes hands within milliseconds; the others poll with the shared backoff. A queue
file that cannot be parsed counts as one unknown waiter seen at its last modification.

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
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeGuard

from moorage.config.options import parse_optional_seconds
from moorage.errors import ConfigurationError, map_exceptions
from moorage.locking import (
    DEFAULT_HOLD_TIMEOUT,
    LockInfo,
    LockManager,
    expiry_from,
    release_error,
)
from moorage.operations import in_thread
from moorage_local.atomic_writes import open_temp, replace_with
from moorage_local.errors import Translate, lock_error
from moorage_local.folders import READ_FLAGS
from moorage_local.options import parse_local_options, root_from_url

if sys.platform != "win32":
    import fcntl

__all__ = [
    "CORRUPT_LOCK_GRACE",
    "FIRST_WAITER_POLL",
    "GUARD_NAME",
    "QUEUE_GRACE",
    "FileLockManager",
    "lock_file_name",
    "queue_file_name",
]

#: Seconds after its last change during which an unparsable lock file still counts as held.
CORRUPT_LOCK_GRACE = 30.0

#: Seconds a waiter keeps its place in a queue after its latest attempt. A waiter tries
#: at least every 0.1 s (the shared backoff's cap), so only a waiter that stopped without
#: leaving (a killed process, a stalled machine) is dropped; a free lock waits at most
#: this long for a waiter that will never come.
QUEUE_GRACE = 2.0

#: The longest pause (seconds) between the looks of the first two waiters at the lock and
#: queue files (reads without the guard), so that a release reaches the next waiter
#: within this time. Early in a wait, while the shared backoff's delays are short, they
#: look every millisecond (a twentieth of the delay, at least 1 ms).
FIRST_WAITER_POLL = 0.005
_FIRST_LOOKS = 0.001
#: How many waiters at the head of a queue watch the files every `FIRST_WAITER_POLL`
#: seconds: the first, and the next one, which is first as soon as the first takes the
#: lock (a holder that releases and asks again at once is usually that one).
_WATCHERS = 2

#: A queue file larger than this (bytes) is not read; no waiter joins one that would be.
MAX_QUEUE_BYTES = 1 << 20

#: The file whose flock serializes every lock change in a folder.
GUARD_NAME = ".moorage-guard"
_MAX_NAME = 120  # longer encoded names are hashed; stays far below NAME_MAX (255)
_UNSAFE = re.compile(r"[^a-z0-9_.-]")
_GUARD_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
_HOSTNAME = socket.gethostname()
_OPTIONS = {"hold_timeout": parse_optional_seconds}
# A waiter rewrites its ``seen`` only when it is this old, so that polling does not
# rewrite the queue file at every attempt.
_REFRESH_AFTER = QUEUE_GRACE / 4

#: The lock file and holder of this thread's (or asyncio task's) waiting acquire when it
#: is among the first `_WATCHERS` waiters: its waits watch the files instead of sleeping
#: through the backoff.
_watching: ContextVar[tuple[str, str] | None] = ContextVar("moorage_watching", default=None)

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


def queue_file_name(key: str) -> str:
    """The name of ``key``'s queue file: its lock file's name ending in ``.queue``."""
    return lock_file_name(key).removesuffix(".lock") + ".queue"


def _queue_of(lock_path: str) -> str:
    """The queue file's path beside the lock file at ``lock_path`` (see `queue_file_name`)."""
    return lock_path.removesuffix(".lock") + ".queue"


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

    def queue_path(self, key: str) -> str:
        """The absolute path of ``key``'s queue file (waiting acquirers, first first)."""
        return _queue_of(self.lock_path(key))

    # -- the primitives ---------------------------------------------------------------

    def try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """Take, extend or take over the lock on ``key`` without waiting. A free lock is
        refused while others wait for it in its queue, unless ``holder`` is the first."""
        return self._attempt(key, holder, hold_timeout, join=False)[0]

    def try_acquire_waiting(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        """One attempt of a waiting acquire: as `try_acquire`, and if refused, ``holder``
        joins the queue (or refreshes its place in it)."""
        taken, place = self._attempt(key, holder, hold_timeout, join=True)
        self._watch(key, holder, place)
        return taken

    async def atry_acquire_waiting(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        taken, place = await in_thread(self._attempt, key, holder, hold_timeout, join=True)
        self._watch(key, holder, place)  # in this task's context
        return taken

    def stop_waiting(self, key: str, holder: str) -> None:
        """Leave ``key``'s queue, so the next waiter may take the lock at once."""
        _watching.set(None)
        path = self.queue_path(key)
        with map_exceptions(self._errors("stop waiting for", key)), self._guard():
            now = time.time()
            queue = _read_queue(path, now)
            if queue is not None:
                live = _live(queue, now)
                live.pop(holder, None)
                if live != queue:
                    self._write_queue(path, live)

    async def astop_waiting(self, key: str, holder: str) -> None:
        _watching.set(None)
        await in_thread(self.stop_waiting, key, holder)

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

    # -- waiting -----------------------------------------------------------------------

    def wait_until_free(self, key: str, delay: float) -> None:
        """Sleep ``delay``. One of the first two waiters instead looks at the files every
        millisecond or so (up to `FIRST_WAITER_POLL` seconds) and returns as soon as its
        turn has come."""
        watching = _watching.get()
        if watching is None or watching[0] != (path := self.lock_path(key)):
            time.sleep(delay)
            return
        queue_path, holder = _queue_of(path), watching[1]
        pause = _look_pause(delay)
        deadline = time.monotonic() + delay
        while not _my_turn(path, queue_path, holder):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(pause, left))

    async def await_until_free(self, key: str, delay: float) -> None:
        """Async twin of `wait_until_free`."""
        import asyncio

        watching = _watching.get()
        if watching is None or watching[0] != (path := self.lock_path(key)):
            await asyncio.sleep(delay)
            return
        queue_path, holder = _queue_of(path), watching[1]
        pause = _look_pause(delay)
        deadline = time.monotonic() + delay
        while not await in_thread(_my_turn, path, queue_path, holder):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(pause, left))

    def _watch(self, key: str, holder: str, place: int | None) -> None:
        """Remember, in this context, to watch ``key`` for ``holder`` while it waits
        among the first `_WATCHERS` (``place`` counts from 0; None: not waiting)."""
        watch = place is not None and place < _WATCHERS
        _watching.set((self.lock_path(key), holder) if watch else None)

    # -- internals ---------------------------------------------------------------------

    def _attempt(
        self, key: str, holder: str, hold_timeout: float | None, *, join: bool
    ) -> tuple[bool, int | None]:
        """Under the guard, take the lock if ``holder`` may: it holds it, or the lock is
        free and nobody waits or ``holder`` waits first. If not, and with ``join``, put
        ``holder`` in the queue or refresh its place. Returns whether the lock was taken
        and, if not, ``holder``'s place in the queue (0 for the first; None if it is not
        in it)."""
        path = self.lock_path(key)
        queue_path = _queue_of(path)
        with map_exceptions(self._errors("acquire", key)), self._guard():
            now = time.time()
            found = _read_lock_file(path)
            current = _holder(found, now, path)
            held_by_other = current is not None and current != holder
            if held_by_other and not join:
                return False, None
            queue = _read_queue(queue_path, now)  # one failed open when nobody waits
            live = {} if queue is None else _live(queue, now)
            if held_by_other or (current is None and not _may_take(live, holder)):
                if not join:
                    return False, None
                return False, self._join(queue_path, queue, live, holder, now)
            created = now
            if current is not None and found is not None and found.created_at is not None:
                created = found.created_at  # re-acquired: keeps its creation time
            self._write(path, key, holder, created, expiry_from(now, hold_timeout))
            if queue is not None:
                live.pop(holder, None)
                if live != queue:
                    self._write_queue(queue_path, live)
            return True, None

    def _join(
        self,
        path: str,
        queue: dict[str, float] | None,
        live: dict[str, float],
        holder: str,
        now: float,
    ) -> int | None:
        """Put ``holder`` in the queue ``live`` (the queue file's live waiters) or refresh
        its ``seen``, writing the file if anything changed; its place (None: the queue is
        full)."""
        seen = live.get(holder)
        if seen is None or now - seen >= _REFRESH_AFTER:
            grown = {**live, holder: now}
            if seen is not None or len(_queue_bytes(grown)) <= MAX_QUEUE_BYTES:
                live = grown  # a new waiter joins only a queue that stays readable
        if live != queue:
            self._write_queue(path, live)
        return next((n for n, waiter in enumerate(live) if waiter == holder), None)

    def _write_queue(self, path: str, live: dict[str, float]) -> None:
        """Replace the queue file atomically with ``live``, or remove it when empty."""
        if not live:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            return
        fd, temp = open_temp(self.folder)
        replace_with(path, fd, temp, (_queue_bytes(live),))

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


def _read_small(path: str, limit: int) -> tuple[bytes, float] | None:
    """At most ``limit`` bytes of the file at ``path`` and its modification time, read
    through one descriptor; None if there is no such file."""
    try:
        fd = os.open(path, READ_FLAGS)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, limit), os.fstat(fd).st_mtime
    finally:
        os.close(fd)


def _read_lock_file(path: str) -> _LockFile | None:
    """The lock file at ``path`` as read, or None if there is none."""
    found = _read_small(path, 1 << 16)  # a lock file is a few hundred bytes
    if found is None:
        return None
    raw, mtime = found
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


def _look_pause(delay: float) -> float:
    """The pause between a watching waiter's looks at the files during a wait of
    ``delay`` seconds (the shared backoff's, which grows as the wait goes on)."""
    return min(FIRST_WAITER_POLL, max(_FIRST_LOOKS, delay / 20))


def _my_turn(path: str, queue_path: str, holder: str) -> bool:
    """Whether the files show the lock at ``path`` free and ``holder`` first in line,
    read without the guard (an error counts as yes: the attempt that follows takes the
    guard and reports it)."""
    try:
        now = time.time()
        if _holder(_read_lock_file(path), now, path) is not None:
            return False
        queue = _read_queue(queue_path, now)
        return queue is None or _may_take(_live(queue, now), holder)
    except OSError:
        return True


def _read_queue(path: str, now: float) -> dict[str, float] | None:
    """The queue file at ``path`` as {holder: seen}, first waiter first; None if there is
    none. Its content is untrusted: one that cannot be parsed, is too large, or holds
    anything but a list of ``{"holder": str, "seen": finite number}`` counts as one
    unknown waiter seen at the file's last modification, dropped after `QUEUE_GRACE`.
    A ``seen`` in the future (another machine's clock) counts as ``now``."""
    found = _read_small(path, MAX_QUEUE_BYTES + 1)
    if found is None:
        return None
    raw, mtime = found
    queue = _parse_queue(raw) if len(raw) <= MAX_QUEUE_BYTES else None
    if queue is None:
        return {f"<unknown: unreadable queue file {path}>": min(mtime, now)}
    return {holder: min(seen, now) for holder, seen in queue.items()}


def _parse_queue(raw: bytes) -> dict[str, float] | None:
    """A queue file's bytes as {holder: seen}, or None if they are not a valid queue."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    queue: dict[str, float] = {}
    for entry in data:
        if not isinstance(entry, dict):
            return None
        holder, seen = entry.get("holder"), entry.get("seen")
        if not isinstance(holder, str) or not _is_number(seen):
            return None
        queue.setdefault(holder, float(seen))
    return queue


def _live(queue: dict[str, float], now: float) -> dict[str, float]:
    """The waiters of ``queue`` seen within `QUEUE_GRACE` seconds, in order."""
    return {holder: seen for holder, seen in queue.items() if now - seen < QUEUE_GRACE}


def _may_take(live: dict[str, float], holder: str) -> bool:
    """Whether ``holder`` may take a free lock: nobody waits, or it is the first."""
    return not live or next(iter(live)) == holder


def _queue_bytes(live: dict[str, float]) -> bytes:
    return json.dumps([{"holder": h, "seen": seen} for h, seen in live.items()]).encode()


def _is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float (JSON also parses NaN and Infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
