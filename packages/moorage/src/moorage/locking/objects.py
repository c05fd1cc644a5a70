"""Locks kept on the object store itself: ``s3://``, ``gs://`` and ``az://`` with nothing
but the bucket (`ObjectStoreLockManager`).

Each lock is one small JSON object, ``<storage URL>/.moorage-locks/<sha256 of the key>``,
written only with the storage's conditional writes (`moorage.storage.base.Storage`):

- acquire: no object -> create it with ``if_absent`` (``If-None-Match: *``,
  ``ifGenerationMatch=0``); an object that is free, lapsed or held by the same holder
  -> replace it with ``if_version`` set to the version read (``If-Match`` on the ETag,
  the generation). A `WriteConflict` means another writer changed it first: not taken.
- release: the holder replaces its lock by a "free" body, again with ``if_version``.
  The object then stays (a tombstone of a few hundred bytes per key ever locked): a
  delete after that write could remove a lock another process has just taken, and the
  storage layer offers no conditional delete.
- a holder's lease lapses at ``expires_at`` (the acquirer's wall clock plus the hold
  timeout); anyone may then take the lock over by the same compare-and-swap.

Every body carries a random nonce, so no two bodies are the same bytes (an S3 ETag is
the MD5 of the content: two equal bodies would share a version), and a writer can tell
its own write from another's after a refused request that was retried by the client
after it had in fact succeeded.

Lock objects are read as untrusted input: at most `MAX_LOCK_BYTES` are read, and a body
that is not a lock of this format counts as held until this process has seen that
same version, unchanged, for the manager's hold timeout (see `ObjectStoreLockManager`).

The decisions are written once as operations (`moorage.operations`): the sync methods
drive them with the storage's blocking calls, the async twins with its native async
ones, never through a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeGuard

from moorage.errors import ConfigurationError, LockError, RecordNotFound, WriteConflict
from moorage.locking.base import (
    DEFAULT_HOLD_TIMEOUT,
    LockInfo,
    LockManager,
    comparable_hold_timeout,
    expiry_from,
    release_error,
)
from moorage.operations import Call, Op, run_async, run_sync
from moorage.storage.base import Storage
from moorage.storage.conditions import WriteCondition

__all__ = [
    "LOCK_FOLDER",
    "MAX_HOLDER_CHARS",
    "MAX_LOCK_BYTES",
    "LockBody",
    "ObjectStoreLockManager",
    "decode_lock",
    "lock_object_name",
]

#: The folder, below the storage's root, that holds the lock objects.
LOCK_FOLDER = ".moorage-locks"
#: The most bytes of a lock object ever read; a longer object is not a lock.
MAX_LOCK_BYTES = 16 * 1024
#: The longest holder name taken (characters); bodies then stay far below the bound.
MAX_HOLDER_CHARS = 1024
#: How much of the key a body repeats, for people reading the bucket.
_KEY_SHOWN_CHARS = 256
#: The format of lock bodies this module writes; others count as unreadable.
_FORMAT = 1
#: Conditional writes a release may lose to its own holder's concurrent extensions
#: before it gives up (each loss means the lock changed under it).
_RELEASE_ATTEMPTS = 8
#: Unreadable versions remembered per process (oldest forgotten first).
_UNREADABLE_MEMORY = 4096


def lock_object_name(key: str) -> str:
    """The storage key of ``key``'s lock object: a fixed-length hash, so any key (any
    length, any characters) maps to one valid object name and distinct keys never share
    one."""
    if not isinstance(key, str):
        raise TypeError(f"a lock key is a str, not {type(key).__name__}: {key!r}")
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{LOCK_FOLDER}/{digest}"


@dataclass(frozen=True, slots=True)
class LockBody:
    """What one lock object holds: its ``holder`` (None: free), when the lease lapses
    (``expires_at``, wall-clock epoch seconds; None: never), when it was written, and a
    random ``nonce`` that makes every body's bytes unique."""

    holder: str | None
    expires_at: float | None
    created_at: float
    nonce: str

    @classmethod
    def new(cls, holder: str | None, expires_at: float | None, now: float) -> LockBody:
        return cls(holder, expires_at, now, secrets.token_hex(16))

    def encode(self, key: str) -> bytes:
        """The JSON bytes; the key is repeated (cut short) for people reading the bucket,
        never read back."""
        shown = key if len(key) <= _KEY_SHOWN_CHARS else key[:_KEY_SHOWN_CHARS] + "..."
        return json.dumps(
            {
                "moorage_lock": _FORMAT,
                "key": shown.encode("utf-8", "replace").decode("utf-8"),
                "holder": self.holder,
                "expires_at": self.expires_at,
                "created_at": self.created_at,
                "nonce": self.nonce,
            },
            separators=(",", ":"),
        ).encode("ascii")

    def info(self, now: float) -> LockInfo | None:
        """The lease it records, or None when it is free or has lapsed by ``now``."""
        if self.holder is None:
            return None
        info = LockInfo(self.holder, self.expires_at)
        return None if info.expired(now) else info


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def decode_lock(data: bytes) -> LockBody | None:
    """The lock recorded in ``data`` (bytes read from storage, untrusted), or None when
    they are not a lock body of this format: too long, not JSON, a field missing or of
    the wrong type."""
    if len(data) > MAX_LOCK_BYTES:
        return None
    try:
        found = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(found, dict) or found.get("moorage_lock") != _FORMAT:
        return None
    holder, expires = found.get("holder"), found.get("expires_at")
    created, nonce = found.get("created_at"), found.get("nonce")
    if holder is not None and not (isinstance(holder, str) and len(holder) <= MAX_HOLDER_CHARS):
        return None
    if expires is not None and not _number(expires):
        return None
    if not _number(created) or not (isinstance(nonce, str) and 0 < len(nonce) <= 64):
        return None
    return LockBody(holder, None if expires is None else float(expires), float(created), nonce)


@dataclass(frozen=True, slots=True)
class _Seen:
    """A lock object as read: its ``version`` (None: there is none) and its body (None
    with a version: unreadable)."""

    version: str | None
    body: LockBody | None


_ABSENT = _Seen(None, None)


def _hold_timeout_value(value: float | str | None) -> float | None:
    """A hold timeout given as a number, None, or text from a URL's query
    (``"30"``, ``"inf"``, ``"none"``)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none", "null", "never"):
            return None
        try:
            return float(text)
        except ValueError:
            raise ConfigurationError(
                f"hold_timeout must be seconds, 'inf' or 'none', got {value!r}"
            ) from None
    return value


class ObjectStoreLockManager(LockManager):
    """Locks as objects next to the records: ``s3://bucket/prefix``, ``gs://...``,
    ``az://...`` (see ``docs/object-locks.md``).

    ``storage`` is a storage object or a URL (with its options as keyword arguments, as
    `moorage.plugins.resolve.storage_from` takes them); its lock objects go under
    ``.moorage-locks/`` below that URL. The storage must declare `conditional_create`
    and `conditional_replace` (S3, GCS and Azure Blob storages do); any other is refused
    with `ConfigurationError`, since without them two processes could both take a lock.

    Costs, in requests to the store: acquiring a key never locked before, 2 (a HEAD that
    finds nothing, a create); any other acquire or extension, 3 (HEAD, GET, replace);
    a refused attempt while another holds the lock, 2 (HEAD, GET); a release, 3 (HEAD,
    GET, replace); `lock_holder`, 1 (GET). A refused conditional write costs one GET
    more, to tell a request retried after it had succeeded. Every request is bounded by
    the storage's own timeouts and retry limits.

    Leases lapse by the wall clocks of the machines involved: the acquirer records
    ``expires_at`` from its clock, others compare it with theirs, so clocks must agree
    to well within the hold timeouts used (NTP does that).

    A lock object whose body cannot be read as a lock (another program wrote it, or a
    future format) counts as held; once this process has seen the same version of it,
    unchanged, for the manager's hold timeout, it counts as lapsed and may be taken over
    by compare-and-swap. With ``hold_timeout=None`` it stays held until deleted.

    The manager pickles as its storage's configuration and its hold timeout; the storage
    builds its client again in the receiving process.
    """

    schemes = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
    process_state: ClassVar[tuple[str, ...]] = ("_unreadable_since", "_unreadable_guard")

    def __init__(
        self,
        storage: Storage | str,
        hold_timeout: float | str | None = DEFAULT_HOLD_TIMEOUT,
        **storage_options: Any,
    ) -> None:
        super().__init__(_hold_timeout_value(hold_timeout))
        if isinstance(storage, str):
            from moorage.plugins.resolve import storage_from

            storage = storage_from(storage, **storage_options)
        elif storage_options:
            raise ConfigurationError(
                f"storage options {sorted(storage_options)} were given with a storage "
                f"object ({storage.url}); give them to the storage, or pass its URL instead"
            )
        if not (storage.conditional_create and storage.conditional_replace):
            raise ConfigurationError(
                f"cannot keep locks in {storage.url}: {type(storage).__name__} does not "
                "declare conditional writes (conditional_create and conditional_replace), "
                "without which two processes could take one lock; use an s3://, gs:// or "
                "az:// URL, or a file:// or redis:// lock manager"
            )
        self.storage = storage
        self.url = storage.url
        self.start_process_state()

    def start_process_state(self) -> None:
        #: (object name, version) of unreadable lock objects -> when first seen
        #: (monotonic seconds), for taking them over after the hold timeout.
        self._unreadable_since: dict[tuple[str, str], float] = {}
        self._unreadable_guard = threading.Lock()

    def configuration_key(self) -> tuple[object, ...]:
        """The storage (compared by class, URL and options, credentials included) and the
        hold timeout."""
        return (self.url, comparable_hold_timeout(self.hold_timeout), self.storage)

    def lock_url(self, key: str) -> str:
        """Where ``key``'s lock object lives (for messages and cleanup)."""
        return self.storage.resolve_path(lock_object_name(key))

    # -- reading --------------------------------------------------------------------------

    def _read_op(self, name: str) -> Op[bytes | None]:
        """The first `MAX_LOCK_BYTES` + 1 bytes of the object (enough to tell an
        oversized one), or None when there is none."""
        storage = self.storage
        try:
            data = yield from Call(storage.read_head, storage.aread_head, name, MAX_LOCK_BYTES + 1)
        except RecordNotFound:
            return None
        return data

    def _observe_op(self, name: str) -> Op[_Seen]:
        """The object's version, then its body.

        The version is read first on purpose. If another writer replaces the object
        between the two reads, the body read is newer than the version; a decision taken
        on that body is then written with ``if_version`` set to the older version, which
        the store refuses, so nothing unsafe is written. Read the other way round, an old
        body could be paired with a new version, and a write based on a lock that no
        longer exists would succeed. An object deleted between the two reads counts as
        absent: the create that follows is conditional too.
        """
        storage = self.storage
        version = yield from Call(storage.version_of, storage.aversion_of, name)
        if version is None:
            return _ABSENT
        data = yield from self._read_op(name)
        if data is None:
            return _ABSENT
        return _Seen(version, decode_lock(data))

    def _current(self, name: str, seen: _Seen, now: float) -> LockInfo | None:
        """Who holds the lock as ``seen``: None when there is no object, it is free, its
        lease lapsed, or it is unreadable and has been for the hold timeout."""
        if seen.version is None:
            return None
        if seen.body is not None:
            return seen.body.info(now)
        if self._unreadable_lapsed(name, seen.version):
            return None
        return LockInfo(f"<unreadable lock object {self.storage.resolve_path(name)}>", None)

    def _unreadable_lapsed(self, name: str, version: str) -> bool:
        """Whether this process has seen ``version`` of the unreadable object ``name``
        for the hold timeout (remembered from the first sighting)."""
        if self.hold_timeout is None or math.isinf(self.hold_timeout):
            return False
        now = time.monotonic()
        with self._unreadable_guard:
            seen = self._unreadable_since
            first = seen.setdefault((name, version), now)
            while len(seen) > _UNREADABLE_MEMORY:
                del seen[next(iter(seen))]
        return now - first >= self.hold_timeout

    # -- writing ---------------------------------------------------------------------------

    def _put_op(self, name: str, key: str, body: LockBody, version: str | None) -> Op[bool]:
        """Write ``body`` over ``version`` (None: only where nothing is stored); True if
        the object now holds it. A refused write is re-read: the client may have
        retried a request whose first attempt had in fact succeeded, and the store then
        refuses the retry because of our own write, which the nonce identifies."""
        storage = self.storage
        condition = WriteCondition(if_absent=version is None, if_version=version)
        data = body.encode(key)
        try:
            yield from Call(
                storage.write_path, storage.awrite_path, name, data, **condition.kwargs()
            )
        except WriteConflict:
            found = yield from self._read_op(name)
            mine = None if found is None else decode_lock(found)
            return mine is not None and mine.nonce == body.nonce
        return True

    # -- the operations ---------------------------------------------------------------------

    def _try_acquire_op(self, key: str, holder: str, hold_timeout: float | None) -> Op[bool]:
        _check_holder(holder)
        name = lock_object_name(key)
        seen = yield from self._observe_op(name)
        now = time.time()
        current = self._current(name, seen, now)
        if current is not None and (seen.body is None or current.holder != holder):
            return False
        body = LockBody.new(holder, expiry_from(now, hold_timeout), now)
        return (yield from self._put_op(name, key, body, seen.version))

    def _release_op(self, key: str, holder: str) -> Op[None]:
        name = lock_object_name(key)
        for _ in range(_RELEASE_ATTEMPTS):
            seen = yield from self._observe_op(name)
            now = time.time()
            current = self._current(name, seen, now)
            if current is None or seen.body is None or current.holder != holder:
                shown = None if current is None else current.holder
                raise release_error(key, holder, shown, self.url)
            free = LockBody.new(None, None, now)
            if (yield from self._put_op(name, key, free, seen.version)):
                return
            # The lock changed under us (an extension by the same holder elsewhere, or a
            # takeover after the lease lapsed): decide again on what is there now.
        raise LockError(
            f"cannot release lock on key {key!r} in {self.url}: it changed "
            f"{_RELEASE_ATTEMPTS} times while being released (holder {holder!r} extending "
            "it from several places at once?); release it again"
        )

    def _holder_op(self, key: str) -> Op[str | None]:
        name = lock_object_name(key)
        data = yield from self._read_op(name)
        if data is None:
            return None
        body = decode_lock(data)
        if body is None:  # unreadable: its version decides how long it has been so
            seen = yield from self._observe_op(name)
            current = self._current(name, seen, time.time())
        else:
            current = body.info(time.time())
        return None if current is None else current.holder

    # -- the primitives, sync and async -------------------------------------------------------

    def try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        return run_sync(self._try_acquire_op(key, holder, hold_timeout))

    def release_lock(self, key: str, holder: str) -> None:
        run_sync(self._release_op(key, holder))

    def lock_holder(self, key: str) -> str | None:
        return run_sync(self._holder_op(key))

    async def atry_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        return await run_async(self._try_acquire_op(key, holder, hold_timeout))

    async def arelease_lock(self, key: str, holder: str) -> None:
        await run_async(self._release_op(key, holder))

    async def alock_holder(self, key: str) -> str | None:
        return await run_async(self._holder_op(key))

    def close(self) -> None:
        self.storage.close()


def _check_holder(holder: object) -> None:
    if not isinstance(holder, str) or len(holder) > MAX_HOLDER_CHARS:
        shown = repr(holder) if len(repr(holder)) <= 80 else repr(holder)[:60] + "..."
        raise ConfigurationError(
            f"a lock holder must be a str of at most {MAX_HOLDER_CHARS} characters, got "
            f"{shown}; use a shorter holder name (for example a hash)"
        )


def object_lock_factory(
    storage_factory: Callable[..., Storage],
) -> Callable[..., ObjectStoreLockManager]:
    """A lock-manager factory for a plugin's ``register_lock_managers``: it builds the
    storage with ``storage_factory(url, **options)`` and keeps the locks there."""

    def factory(
        url: str, hold_timeout: float | str | None = DEFAULT_HOLD_TIMEOUT, **options: Any
    ) -> ObjectStoreLockManager:
        return ObjectStoreLockManager(storage_factory(url, **options), hold_timeout)

    factory.__name__ = factory.__qualname__ = "ObjectStoreLockManager"
    return factory
