"""Copying records between stores (`ResultStore.copy_to`), written once for sync and
async.

The source's listing is walked a page at a time, each record's head read (as
`ResultStore.list` does), and the records of a page copied `Storage.io_concurrency` at
a time. Where both stores lay records out alike (the same record format, both combined
or both split over a metadata storage, and not Prefect's split layout, whose metadata
names its payload's absolute location), a record is copied byte for byte: its expiry,
checksum and signature travel unchanged, and a record already stored identically in the
target is skipped. Elsewhere the record is read (decoded: the source's trust rules
apply, its signing key included) and written again by the target store, in its format
and with its signing key, keeping the expiration. Raw payloads (no metadata) are copied
byte for byte; damaged records are skipped and named.

A record is created in the target only where nothing is stored (a conditional write
where the target storage decides it), so a copy never clobbers a concurrent writer; with
``overwrite`` a different record in the target is replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from moorage.errors import RecordNotFound, WriteConflict
from moorage.operations import Call, Op, concurrently
from moorage.storage import ALWAYS, IF_ABSENT, Storage, WriteCondition, validate_prefix
from moorage.storage.entries import expiry_stamp
from moorage.store.base import StoreBase
from moorage.store.listing import RecordInfo, page_infos_op
from moorage.store.reading import probe_op, read_op
from moorage.store.retention import Progress, anext_page, next_page
from moorage.store.writing import persist_op, write_parts_op

__all__ = ["CopyReport", "copy_op"]

_Kind = Literal["copied", "identical", "existing", "skipped"]


@dataclass(frozen=True)
class CopyReport:
    """What a copy did (with ``dry_run``, would do): ``copied`` records (``keys``,
    ``bytes`` as the source stores them), ``identical`` ones skipped
    because the target holds the same bytes, ``existing`` ones skipped because the
    target holds another record there (no ``overwrite``), and ``skipped`` ones that
    could not be copied, each with its reason; ``examined`` records listed in all."""

    copied: int = 0
    identical: int = 0
    existing: int = 0
    bytes: int = 0
    keys: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    examined: int = 0
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class _Outcome:
    key: str
    kind: _Kind
    size: int = 0
    reason: str = ""


@dataclass
class _Tally:
    dry_run: bool
    examined: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    size: int = 0
    keys: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, outcome: _Outcome) -> None:
        self.counts[outcome.kind] = self.counts.get(outcome.kind, 0) + 1
        if outcome.kind == "copied":
            self.keys.append(outcome.key)
            self.size += outcome.size
        elif outcome.kind == "skipped":
            self.skipped.append((outcome.key, outcome.reason))

    def report(self) -> CopyReport:
        return CopyReport(
            copied=self.counts.get("copied", 0),
            identical=self.counts.get("identical", 0),
            existing=self.counts.get("existing", 0),
            bytes=self.size,
            keys=tuple(self.keys),
            skipped=tuple(self.skipped),
            examined=self.examined,
            dry_run=self.dry_run,
        )


def same_layout(source: StoreBase, target: StoreBase) -> bool:
    """Whether a record of ``source`` is, byte for byte, a valid record of ``target``."""
    split = source.metadata_storage is not None
    if split != (target.metadata_storage is not None):
        return False
    if source.record_format != target.record_format:
        return False
    return not (split and source.record_format == "prefect")


def copy_op(
    source: StoreBase,
    target: StoreBase,
    prefix: str,
    overwrite: bool,
    dry_run: bool,
    progress: Progress | None,
) -> Op[CopyReport]:
    """Copy every record of ``source`` under ``prefix`` into ``target``."""
    validate_prefix(prefix)
    listed = source.metadata_storage or source._storage()
    verbatim = same_layout(source, target)
    tally = _Tally(dry_run)
    limit = max(listed.io_concurrency, target._storage().io_concurrency)
    pages, apages = listed.list_entries(prefix), listed.alist_entries(prefix)
    while (page := (yield from Call(next_page, anext_page, pages, apages))) is not None:
        infos = [info for info in (yield from page_infos_op(source, listed, page)) if info]
        ops = [_copy_one_op(source, target, info, verbatim, overwrite, dry_run) for info in infos]
        for outcome in (yield from concurrently(ops, limit)):
            tally.add(outcome)
        tally.examined += len(page)
        if progress is not None:
            progress("copying", tally.examined, None)
    return tally.report()


def _copy_one_op(
    source: StoreBase,
    target: StoreBase,
    info: RecordInfo,
    verbatim: bool,
    overwrite: bool,
    dry_run: bool,
) -> Op[_Outcome]:
    key = info.key
    if info.format == "damaged":
        return _Outcome(key, "skipped", reason=f"damaged: {info.problem}")
    try:
        if info.format == "raw":
            stores = (source._storage(), target._storage())
            return (yield from _copy_bytes_op(target, info, [stores], overwrite, dry_run))
        if verbatim:
            return (
                yield from _copy_bytes_op(target, info, _pairs(source, target), overwrite, dry_run)
            )
        return (yield from _copy_decoded_op(source, target, info, overwrite, dry_run))
    except RecordNotFound:
        return _Outcome(key, "skipped", reason="removed from the source while it was copied")


def _pairs(source: StoreBase, target: StoreBase) -> list[tuple[Storage, Storage]]:
    """(from, to) storages of a record's objects, payload first: the metadata, written
    last, is what makes a split record exist."""
    pairs = [(source._storage(), target._storage())]
    if source.metadata_storage is not None and target.metadata_storage is not None:
        pairs.append((source.metadata_storage, target.metadata_storage))
    return pairs


def _read_or_none_op(storage: Storage, key: str) -> Op[bytes | None]:
    try:
        return (yield from Call(storage.read_path, storage.aread_path, key))
    except RecordNotFound:
        return None


def _copy_bytes_op(
    target: StoreBase,
    info: RecordInfo,
    pairs: Sequence[tuple[Storage, Storage]],
    overwrite: bool,
    dry_run: bool,
) -> Op[_Outcome]:
    key = info.key
    found: list[tuple[Storage, bytes]] = []
    differs = absent = False
    for origin, destination in pairs:
        data = yield from Call(origin.read_path, origin.aread_path, key)
        there = yield from _read_or_none_op(destination, key)
        found.append((destination, data))
        absent = absent or there is None
        differs = differs or there != data
    if not differs:
        return _Outcome(key, "identical")
    if not absent and not overwrite:
        return _Outcome(key, "existing")
    size = sum(len(data) for _, data in found)
    if dry_run:
        return _Outcome(key, "copied", size)
    stamp = expiry_stamp(info.expiration) if info.format != "raw" else None
    try:
        for destination, data in found:
            condition = _creation(destination, overwrite)
            yield from write_parts_op(destination, key, [data], condition, stamp)
    except WriteConflict:
        return _Outcome(key, "existing")  # another writer created it meanwhile
    target.forget(key)
    return _Outcome(key, "copied", size)


def _creation(storage: Storage, overwrite: bool) -> WriteCondition:
    """Create only where nothing is stored, where the storage can decide it."""
    return IF_ABSENT if not overwrite and storage.conditional_create else ALWAYS


def _copy_decoded_op(
    source: StoreBase, target: StoreBase, info: RecordInfo, overwrite: bool, dry_run: bool
) -> Op[_Outcome]:
    key = info.key
    if not overwrite and (yield from probe_op(target, key)) != "missing":
        return _Outcome(key, "existing")
    record = yield from read_op(source, key, None, use_cache=False)
    if dry_run:
        return _Outcome(key, "copied", info.size or 0)
    copy = target.new_record(record.result, key, record.metadata.expiration)
    try:
        yield from persist_op(target, copy, None, ALWAYS if overwrite else IF_ABSENT)
    except WriteConflict:
        return _Outcome(key, "existing")
    return _Outcome(key, "copied", info.size or 0)
