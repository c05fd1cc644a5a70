"""Retention: what `ResultStore.prune` removes, written once for sync and async.

A prune walks the storage's listing a page at a time. Each listed object is judged by
the rules (`PruneRules`): expired, last modified before a cut-off, or among the oldest
beyond a size budget. Expiry comes from the listing itself where the backend keeps it
there (`moorage.storage.Storage.lists_expiration`); otherwise from the record's head,
read concurrently (`Storage.io_concurrency` at a time) for just the objects the other
rules have not already condemned. Nothing is removed before the listing is complete:
removing while a listing is under way could disturb it, and the keys to remove are
kept anyway for the report. Removal then goes in batches (`Storage.delete_paths`: one
request per 1,000 keys on S3), metadata first for records split over a metadata
storage, so a reader never finds metadata without its payload.

A record whose key is locked by another holder (the store's lock manager) is kept: its
writer is at work on it. A record rewritten between the moment it was judged and its
removal can still go; the window is the length of one batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

from moorage.locking import LockManager
from moorage.operations import Call, Op, concurrently
from moorage.records.expiry import is_expired
from moorage.storage import LIST_PAGE_SIZE, PruneReport, Storage, StorageEntry, validate_prefix
from moorage.store.base import StoreBase
from moorage.store.listing import RecordInfo, page_infos_op

__all__ = ["Progress", "PruneRules", "anext_page", "next_page", "prune_op"]

#: Told how bulk work goes: ``progress(stage, done, total)`` with cumulative counts; the
#: stage is ``"examining"``, ``"removing"`` or ``"copying"``, and ``total`` is None
#: while it is unknown (a listing streams).
Progress: TypeAlias = Callable[[str, int, int | None], None]

#: A listed page and the iterators it comes from: (sync pages, async pages).
_Pages: TypeAlias = tuple[Iterator[list[StorageEntry]], AsyncIterator[list[StorageEntry]]]

_LAST = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class PruneRules:
    """What a prune removes: ``expired`` records, records last modified more than
    ``older_than`` before ``now``, and, while the rest holds more than ``max_bytes``,
    the oldest of the rest. ``dry_run`` removes nothing."""

    expired: bool = True
    older_than: dt.timedelta | None = None
    max_bytes: int | None = None
    dry_run: bool = False
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __post_init__(self) -> None:
        if self.older_than is not None and self.older_than < dt.timedelta(0):
            raise ValueError(f"older_than must not be negative, got {self.older_than}")
        if self.max_bytes is not None and self.max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {self.max_bytes}")

    def too_old(self, entry: StorageEntry) -> bool:
        """Whether the listing shows ``entry`` last modified before the cut-off."""
        if self.older_than is None or entry.modified is None:
            return False
        return entry.modified < self.now - self.older_than

    def needs_head(self, entry: StorageEntry) -> bool:
        """Whether only the record's head can decide ``entry``'s fate."""
        return self.expired and not entry.expiry_listed and not self.too_old(entry)

    def condemns(self, entry: StorageEntry, info: RecordInfo | None) -> bool:
        """Whether ``entry`` goes by the expiry and age rules; ``info`` is its head's
        account, where one was read."""
        if self.too_old(entry):
            return True
        if not self.expired:
            return False
        if entry.expiry_listed:
            return is_expired(entry.expiration, self.now)
        return info is not None and is_expired(info.expiration, self.now)


def next_page(pages: Iterator[list[StorageEntry]], _: object) -> list[StorageEntry] | None:
    """The next page of a listing, for `Call` (sync side)."""
    return next(pages, None)


async def anext_page(
    _: object, pages: AsyncIterator[list[StorageEntry]]
) -> list[StorageEntry] | None:
    """The next page of a listing, for `Call` (async side)."""
    return await anext(pages, None)


@dataclass
class _Tally:
    """What a prune has found so far."""

    progress: Progress | None
    examined: int = 0
    doomed: list[tuple[str, int]] = field(default_factory=list)
    kept: list[tuple[dt.datetime, str, int]] = field(default_factory=list)

    def tell(self, stage: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


def prune_op(
    store: StoreBase, rules: PruneRules, prefix: str, progress: Progress | None
) -> Op[PruneReport]:
    """Judge every record under ``prefix`` by ``rules``, then remove the condemned
    (unless ``rules.dry_run``); the report names them."""
    validate_prefix(prefix)
    if not rules.expired and rules.older_than is None and rules.max_bytes is None:
        return PruneReport(dry_run=rules.dry_run)  # no rule could remove a thing
    listed = store.metadata_storage or store._storage()
    tally = _Tally(progress)
    pages, apages = listed.list_entries(prefix), listed.alist_entries(prefix)
    while (page := (yield from Call(next_page, anext_page, pages, apages))) is not None:
        yield from _judge_page_op(store, listed, page, rules, tally)
    if rules.max_bytes is not None:
        tally.doomed += _beyond_budget(tally.kept, rules.max_bytes)
    keys = [key for key, _ in tally.doomed]
    if not rules.dry_run:
        keys = yield from _remove_op(store, keys, tally)
    sizes = dict(tally.doomed)
    return PruneReport(
        bytes=sum(sizes[key] for key in keys),
        records=len(keys),
        keys=tuple(keys),
        examined=tally.examined,
        dry_run=rules.dry_run,
    )


def _judge_page_op(
    store: StoreBase, listed: Storage, page: list[StorageEntry], rules: PruneRules, tally: _Tally
) -> Op[None]:
    asked = [entry for entry in page if rules.needs_head(entry)]
    heads = yield from page_infos_op(store, listed, asked)
    infos = {entry.key: info for entry, info in zip(asked, heads, strict=True)}
    for entry in page:
        info = infos.get(entry.key)
        if entry.key in infos and info is None:
            continue  # removed by someone else since it was listed
        size = entry.size or 0
        if rules.condemns(entry, info):
            tally.doomed.append((entry.key, size))
        elif rules.max_bytes is not None:
            tally.kept.append((entry.modified or _LAST, entry.key, size))
    tally.examined += len(page)
    tally.tell("examining", tally.examined, None)


def _beyond_budget(kept: list[tuple[dt.datetime, str, int]], budget: int) -> list[tuple[str, int]]:
    """The oldest of ``kept`` whose removal brings their total to ``budget`` bytes or
    less; objects whose modification time is unknown count as the newest."""
    total = sum(size for _, _, size in kept)
    chosen: list[tuple[str, int]] = []
    for _, key, size in sorted(kept):
        if total <= budget:
            break
        chosen.append((key, size))
        total -= size
    return chosen


def _remove_op(store: StoreBase, keys: list[str], tally: _Tally) -> Op[list[str]]:
    """Remove the records under ``keys`` in batches; the keys actually removed (those
    locked by another holder are kept)."""
    keys = yield from _unlocked_op(store, keys)
    storage = store._storage()
    meta = store.metadata_storage
    storages = (storage,) if meta is None else (meta, storage)
    done = 0
    tally.tell("removing", done, len(keys))
    for start in range(0, len(keys), LIST_PAGE_SIZE):
        batch = keys[start : start + LIST_PAGE_SIZE]
        for key in batch:
            store.forget(key)
        for target in storages:  # metadata first: the record is gone for every reader
            yield from Call(target.delete_paths, target.adelete_paths, batch)
        done += len(batch)
        tally.tell("removing", done, len(keys))
    return keys


def _unlocked_op(store: StoreBase, keys: list[str]) -> Op[list[str]]:
    manager = store.lock_manager
    if manager is None or not keys:
        return keys
    ops = [_locked_op(manager, key) for key in keys]
    locked = yield from concurrently(ops, store._storage().io_concurrency)
    return [key for key, held in zip(keys, locked, strict=True) if not held]


def _locked_op(manager: LockManager, key: str) -> Op[bool]:
    return (yield from Call(manager.is_locked, manager.ais_locked, key))
