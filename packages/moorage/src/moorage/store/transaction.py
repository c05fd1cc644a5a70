"""Transactions: compute a record at most once, and commit it or nothing.

```python
with store.transaction("counter", isolation_level="SERIALIZABLE", overwrite=True) as txn:
    record = txn.read()
    txn.stage((record.result if record else 0) + 1)
```

- ``READ_COMMITTED``: no lock. If a record is already stored under the key, the
  transaction starts out committed and `Transaction.read` returns it, so the caller
  reads instead of recomputing. Two concurrent transactions may both compute, but only
  one commits: the commit creates the record only if the key is still free, decided
  by the storage itself (a conditional write; see `moorage.storage.base`). The other
  commit writes nothing, and its transaction reads and returns the winner's record
  (`Transaction.record`). With ``overwrite=True`` every commit writes: the last wins.
- ``SERIALIZABLE``: the key's lock is held from the start to the end, so one
  transaction at a time reads, computes and writes it. It needs a lock manager. Reads
  inside go to storage, never the memory cache, so they see other processes' commits;
  the commit checks that the lock is still held (a lock whose hold timeout passed may
  have been taken by someone else) and writes nothing if it is not. Where the storage
  has object versions (S3's ETags, GCS generations, Azure ETags), the commit is also
  conditional on the version found at `begin`, so a holder whose lock lapsed cannot
  overwrite a newer commit even between that check and its write (`WriteConflict`).

Leaving the block normally commits: the staged value is written, then the lock is
released. An exception rolls back: nothing is written and the lock is released. Each
step is an operation (see `moorage.operations`) shared by the ``with`` and ``async with``
forms.
"""

from __future__ import annotations

import datetime as dt
import logging
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

from moorage.errors import (
    ConfigurationError,
    LockError,
    RecordExpired,
    RecordNotFound,
    WriteConflict,
)
from moorage.format.record import ResultRecord
from moorage.locking import IsolationLevel
from moorage.operations import Call, Op, run_async, run_sync
from moorage.storage import ALWAYS, IF_ABSENT, WriteCondition, validate_key
from moorage.store.base import StoreBase
from moorage.store.defaults import generate_default_holder
from moorage.store.reading import probe_op, read_op, version_op
from moorage.store.writing import persist_op

__all__ = ["Transaction", "TransactionOptions", "TransactionState"]

_NOTHING: Any = object()

logger = logging.getLogger("moorage.transactions")


class TransactionOptions(TypedDict, total=False):
    """The keyword options of `ResultStore.transaction` (all optional)."""

    #: Compute again even if a record is committed (default False).
    overwrite: bool
    #: The lock holder's name (default: this host, process, thread and asyncio task).
    holder: str | None
    #: The longest wait for the lock, in seconds (default None: until it is free).
    lock_timeout: float | None
    #: How long the lock lasts if this process dies (default: the lock manager's).
    hold_timeout: float | None
    #: The committed record's expiration, a datetime or a timedelta (default None).
    expiration: dt.datetime | dt.timedelta | None
    #: Commit even if the lock lapsed while the value was computed (default False:
    #: `LockError`, nothing written). The write then stays under the condition found at
    #: `Transaction.begin` (create only, or replace only that version where the storage
    #: has versions), which is what tasks want: a long computation keeps its result
    #: unless someone else committed first, whose record it then returns.
    keep_after_lapse: bool


class TransactionState(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


class Transaction:
    """One key's transaction on a result store; build it with `ResultStore.transaction`.

    Use it as a context manager (``with`` or ``async with``), or call `begin`,
    `commit` and `rollback` (and their ``a`` twins) yourself.
    """

    def __init__(
        self,
        store: StoreBase,
        key: str,
        isolation_level: IsolationLevel | str = IsolationLevel.READ_COMMITTED,
        **options: Unpack[TransactionOptions],
    ) -> None:
        self.store = store
        self.key = validate_key(key)
        try:
            self.isolation_level = IsolationLevel(isolation_level)
        except ValueError:
            levels = ", ".join(level.value for level in IsolationLevel)
            raise ConfigurationError(
                f"unknown isolation level {isolation_level!r}; use one of {levels}"
            ) from None
        if self.serializable and store.lock_manager is None:
            raise ConfigurationError(
                f"transaction on {key!r} asks for SERIALIZABLE isolation, which needs a lock "
                "manager; give the store lock_manager='file:///path/to/locks' or "
                "'redis://host:6379/0' (or set MOORAGE_LOCK_MANAGER), or use READ_COMMITTED"
            )
        self.overwrite = options.get("overwrite", False)
        #: Fixed when the transaction is made, so every step uses the same holder even if
        #: the commit runs in another thread.
        self.holder = options.get("holder") or generate_default_holder()
        self.lock_timeout = options.get("lock_timeout")
        self.hold_timeout = options.get("hold_timeout")
        self.expiration = options.get("expiration")
        self.keep_after_lapse = options.get("keep_after_lapse", False)
        self.state = TransactionState.PENDING
        #: The record committed under the key, once known: the one this transaction
        #: wrote, or the one another writer committed first.
        self.record: ResultRecord[Any] | None = None
        self._staged: Any = _NOTHING
        self._locked = False
        self._condition: WriteCondition | None = None

    def __repr__(self) -> str:
        return (
            f"Transaction(key={self.key!r}, isolation_level={self.isolation_level.value}, "
            f"state={self.state.value})"
        )

    @property
    def serializable(self) -> bool:
        return self.isolation_level is IsolationLevel.SERIALIZABLE

    def is_committed(self) -> bool:
        """Whether a record is committed under the key: found at `begin` (and not
        ``overwrite``), or written by this transaction's commit."""
        return self.state is TransactionState.COMMITTED

    def is_active(self) -> bool:
        return self.state in (TransactionState.ACTIVE, TransactionState.STAGED)

    def stage(self, value: Any, expiration: dt.datetime | dt.timedelta | None = _NOTHING) -> None:
        """Set the value the commit writes (replacing any staged before)."""
        if self.state in (TransactionState.PENDING, TransactionState.ROLLED_BACK):
            raise LockError(
                f"cannot stage a value in the {self.state.value.lower()} transaction on "
                f"{self.key!r}; stage inside the 'with' block"
            )
        self._staged = value
        if expiration is not _NOTHING:
            self.expiration = expiration
        self.state = TransactionState.STAGED

    # -- operations, shared by both shells -------------------------------------------

    def _begin_op(self) -> Op[None]:
        if self.state is not TransactionState.PENDING:
            raise LockError(f"the transaction on {self.key!r} has already begun")
        if self.serializable:
            manager = self.store.require_lock_manager()
            acquire = Call(
                manager.acquire_lock,
                manager.aacquire_lock,
                self.key,
                self.holder,
                self.lock_timeout,
                self.hold_timeout,
            )
            if not (yield from acquire):
                raise LockError(
                    f"could not lock {self.key!r} in {manager.url} within "
                    f"{self.lock_timeout} s for a SERIALIZABLE transaction; another holder "
                    "has it. Retry later or raise lock_timeout"
                )
            self._locked = True
        self.state = TransactionState.ACTIVE
        if self.overwrite and not self.serializable:
            self._condition = ALWAYS  # unlocked overwrites: the last writer wins
            return
        found = yield from probe_op(self.store, self.key)
        if found == "valid" and not self.overwrite:
            self.state = TransactionState.COMMITTED
            return
        if found == "missing":
            self._condition = IF_ABSENT
            return
        # Replacing what is there (an expired or unreadable record, or under overwrite):
        # only that version where the storage has versions, else as the lock allows.
        version = yield from version_op(self.store, self.key)
        self._condition = ALWAYS if version is None else WriteCondition(if_version=version)

    def read_record_op(self) -> Op[ResultRecord[Any] | None]:
        """The record under the key (`read`), as an operation."""
        if self.record is not None:
            return self.record
        try:
            return (yield from read_op(self.store, self.key, self.holder, not self.serializable))
        except (RecordNotFound, RecordExpired):
            return None

    def _commit_op(self) -> Op[None]:
        try:
            if self.state is TransactionState.STAGED:
                yield from self._check_still_locked_op()
                record = self.store.new_record(self._staged, self.key, self.expiration)
                yield from self._write_op(record)
            elif self.state is TransactionState.ACTIVE:
                self.state = TransactionState.ROLLED_BACK  # nothing staged, nothing written
        except Exception:
            yield from self._rollback_op()
            raise
        self._staged = _NOTHING
        yield from self._release_op()

    def _write_op(self, record: ResultRecord[Any]) -> Op[None]:
        """Write the staged record under the condition found at `begin`; if another
        writer committed first, take its record instead (this one is not written)."""
        # A transaction that found a record and stages anyway replaces it (a task
        # recomputing an unreadable result): as an overwrite would.
        condition = self._condition or ALWAYS
        try:
            yield from persist_op(self.store, record, self.holder, condition, self._locked)
        except WriteConflict as conflict:
            if not condition.if_absent or self.overwrite:
                raise  # a newer commit came after this transaction began: keep it
            winner = yield from self._winner_op(conflict)
            self.record, self.state = winner, TransactionState.COMMITTED
            return
        self.record, self.state = record, TransactionState.COMMITTED

    def _winner_op(self, conflict: WriteConflict) -> Op[ResultRecord[Any]]:
        try:
            return (yield from read_op(self.store, self.key, self.holder, use_cache=False))
        except (RecordNotFound, RecordExpired) as exc:
            raise WriteConflict(
                f"another writer committed {self.key!r} first, but its record cannot be "
                f"read now ({exc}); nothing was written. Run the transaction again"
            ) from conflict

    def _check_still_locked_op(self) -> Op[None]:
        if not self._locked:
            return
        manager = self.store.require_lock_manager()
        still = Call(manager.is_lock_holder, manager.ais_lock_holder, self.key, self.holder)
        if (yield from still):
            return
        if self.keep_after_lapse:
            logger.warning(
                "the lock on %r in %s lapsed before the commit; committing under the "
                "condition found at the start (%s). Give a longer hold_timeout "
                "(MOORAGE_LOCK_HOLD_TIMEOUT) to keep other callers from computing it too",
                self.key,
                manager.url,
                "create only" if self._condition and self._condition.if_absent else "replace",
            )
            return
        raise LockError(
            f"the lock on {self.key!r} in {manager.url} lapsed before the commit (its "
            "hold timeout passed), so another holder may have written meanwhile; "
            "nothing was written. Give the transaction a longer hold_timeout"
        )

    def _rollback_op(self) -> Op[None]:
        if self.state is not TransactionState.COMMITTED:
            self.state = TransactionState.ROLLED_BACK
        self._staged = _NOTHING
        yield from self._release_op()

    def _release_op(self) -> Op[None]:
        if self._locked:
            self._locked = False
            manager = self.store.require_lock_manager()
            try:
                yield from Call(manager.release_lock, manager.arelease_lock, self.key, self.holder)
            except LockError:
                pass  # the lock lapsed and another holder took it: it is not ours to free

    # -- sync shell -------------------------------------------------------------------

    def begin(self) -> None:
        """Lock the key (SERIALIZABLE) and find out whether a record is committed."""
        run_sync(self._begin_op())

    def read(self) -> ResultRecord[Any] | None:
        """The record stored under the key, or None if there is none (or it expired)."""
        return run_sync(self.read_record_op())

    def commit(self) -> None:
        """Write the staged value (if any), then release the lock."""
        run_sync(self._commit_op())

    def rollback(self) -> None:
        """Discard the staged value and release the lock; nothing is written."""
        run_sync(self._rollback_op())

    def __enter__(self) -> Self:
        self.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    # -- async shell ------------------------------------------------------------------

    async def abegin(self) -> None:
        await run_async(self._begin_op())

    async def aread(self) -> ResultRecord[Any] | None:
        return await run_async(self.read_record_op())

    async def acommit(self) -> None:
        await run_async(self._commit_op())

    async def arollback(self) -> None:
        await run_async(self._rollback_op())

    async def __aenter__(self) -> Self:
        await self.abegin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.acommit()
        else:
            await self.arollback()
