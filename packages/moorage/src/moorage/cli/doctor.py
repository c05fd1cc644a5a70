"""``moorage doctor``: reach what the settings name and say what is wrong, with the fix.

For each storage of the store (the result storage, and the metadata storage if there
is one) a probe object is written under `PROBE_PREFIX`, read back, found in a listing
and deleted, so a refused permission shows as the step that failed; the probe's
modification time from the listing is compared with the local clock. The lock manager
takes, checks and frees a probe lock. Then the store as a whole: whether a signing key
is set, pickle-family records on a shared storage without one, temporary files left by
killed writers, and a sample of the stored records' heads read with the store's
signing key (a key other than the writers' fails them all).

Every check ends ``ok``, ``warn`` (works, but should be fixed), ``fail`` (does not work)
or ``skip`` (could not be tried, because an earlier step failed). The command exits 1
when any check warns or fails.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import click

from moorage.cli.output import echo_json, table_or_lines
from moorage.cli.stores import listed_storage, open_store, safe_to_decode

if TYPE_CHECKING:
    from moorage.locking import LockManager
    from moorage.storage import Storage, StorageEntry
    from moorage.store.store import ResultStore

__all__ = ["CLOCK_SKEW_LIMIT", "PROBE_PREFIX", "SAMPLED_RECORDS", "Check", "doctor", "run_checks"]

#: Where probe objects and locks go: one key under it per run, removed by the run.
PROBE_PREFIX = ".moorage-doctor/"
#: A storage clock further than this from the local clock gets a warning: expiry and
#: age rules compare the two.
CLOCK_SKEW_LIMIT = dt.timedelta(seconds=30)
#: How many stored records' heads are read to check their signatures.
SAMPLED_RECORDS = 5
#: Storage schemes on one machine only: pickle there is no one else's to tamper with.
_PRIVATE_SCHEMES = ("file", "memory")

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it went, what was seen, and what to do."""

    check: str
    status: Status
    detail: str
    fix: str = ""


def _split(exc: BaseException) -> tuple[str, str]:
    """An error's message as (what went wrong, what to do): moorage's messages name the
    fix after the first ``"; "``."""
    message = str(exc) if str(exc) else type(exc).__name__
    what, _, fix = message.partition("; ")
    return what, fix


def _failed(check: str, exc: BaseException) -> Check:
    what, fix = _split(exc)
    return Check(check, "fail", what, fix)


def _storage_checks(role: str, storage: Storage) -> Iterator[Check]:
    """Reach ``storage``; write, read, list and delete a probe; compare clocks; count
    temporary files."""
    temp = _temp_check(role, storage)  # first: a local listing removes stale ones it passes
    try:  # under the probes' prefix: proves the storage answers without walking it all
        pages = storage.list_entries(PROBE_PREFIX)
        try:
            next(pages, None)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()
    except Exception as exc:
        yield _failed(f"{role}: reached", exc)
    else:
        yield Check(f"{role}: reached", "ok", f"{storage.url} answered a listing")

    probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    data = b"moorage doctor probe " + probe.encode()
    before = dt.datetime.now(dt.UTC)
    try:
        storage.write_path(probe, data)
    except Exception as exc:
        yield _failed(f"{role}: write", exc)
        for step in ("read", "list", "clock", "delete"):
            yield Check(f"{role}: {step}", "skip", "no probe was written")
    else:
        after = dt.datetime.now(dt.UTC)
        yield Check(f"{role}: write", "ok", f"wrote {probe}")
        yield from _probe_checks(role, storage, probe, data, before, after)
    yield temp


def _probe_checks(
    role: str,
    storage: Storage,
    probe: str,
    data: bytes,
    before: dt.datetime,
    after: dt.datetime,
) -> Iterator[Check]:
    try:
        back = storage.read_path(probe)
    except Exception as exc:
        yield _failed(f"{role}: read", exc)
    else:
        if bytes(back) == data:
            yield Check(f"{role}: read", "ok", "read the probe back, byte for byte")
        else:
            yield Check(
                f"{role}: read",
                "fail",
                f"the probe came back changed ({len(back)} bytes, {len(data)} written)",
                "check what sits between this machine and the storage (a proxy, a gateway)",
            )
    entry: StorageEntry | None = None
    try:
        for page in storage.list_entries(PROBE_PREFIX):
            entry = next((e for e in page if e.key == probe), entry)
    except Exception as exc:
        yield _failed(f"{role}: list", exc)
    else:
        if entry is None:
            yield Check(
                f"{role}: list",
                "fail",
                f"the probe {probe} was written but is not listed",
                "the storage's listing lags or hides objects; ls, prune and copy rely on it",
            )
        else:
            yield Check(f"{role}: list", "ok", "the probe is listed")
    yield _clock_check(role, entry, before, after)
    try:
        storage.delete_path(probe)
        if storage.exists(probe):
            raise RuntimeError(f"the probe {probe} is still there after its deletion")
    except Exception as exc:
        yield _failed(f"{role}: delete", exc)
    else:
        yield Check(f"{role}: delete", "ok", "deleted the probe")


def _clock_check(
    role: str, entry: StorageEntry | None, before: dt.datetime, after: dt.datetime
) -> Check:
    """The storage's clock, from the probe's listed modification time, against the local
    clock's readings just before and after the write."""
    name = f"{role}: clock"
    if entry is None or entry.modified is None:
        return Check(name, "skip", "the listing gives no modification time to compare")
    slack = dt.timedelta(seconds=1)  # listings round times to the second
    if entry.modified < before - slack:
        skew = entry.modified - before
    elif entry.modified > after + slack:
        skew = entry.modified - after
    else:
        skew = dt.timedelta(0)
    seconds = skew.total_seconds()
    direction = "behind" if seconds < 0 else "ahead of"
    detail = f"the storage's clock is {abs(seconds):.0f} s {direction} this one"
    if abs(skew) > CLOCK_SKEW_LIMIT:
        return Check(
            name,
            "warn",
            detail,
            "synchronise this machine's clock (NTP): expiry and --older-than compare the two",
        )
    return Check(name, "ok", "within 1 s of this machine's" if not seconds else detail)


def _temp_check(role: str, storage: Storage) -> Check:
    name = f"{role}: temp files"
    from moorage.storage import Storage

    if type(storage).prune_temp is Storage.prune_temp:
        return Check(name, "ok", "none: this storage writes atomically, leaving none")
    try:
        report = storage.prune_temp(dry_run=True)
    except Exception as exc:
        return _failed(name, exc)
    if report.files:
        return Check(
            name,
            "warn",
            f"{report.files} temporary file(s), {report.bytes} bytes, left by writers "
            "killed mid-write",
            "remove them with: moorage prune --temp",
        )
    return Check(name, "ok", "none left by killed writers")


def _lock_check(manager: LockManager | None) -> Check:
    name = "lock manager"
    if manager is None:
        return Check(name, "ok", "none configured (SERIALIZABLE transactions need one)")
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    holder = f"moorage-doctor-{uuid.uuid4().hex}"
    try:
        if not manager.try_acquire(key, holder, 30.0):
            raise RuntimeError(f"a fresh probe lock {key!r} was refused")
        try:
            if manager.lock_holder(key) != holder:
                raise RuntimeError(f"the probe lock {key!r} was taken but its holder is not ours")
        finally:
            manager.release_lock(key, holder)
    except Exception as exc:
        return _failed(name, exc)
    return Check(name, "ok", f"{manager.url}: took, checked and freed a probe lock")


def _signing_checks(store: ResultStore, storages: list[Storage]) -> Iterator[Check]:
    if store.signing_key is not None:
        yield Check("signing key", "ok", "set: records are signed and checked on read")
    else:
        yield Check("signing key", "ok", "not set: records carry checksums, not signatures")
    described = store.serializer.to_dict()
    shared = [s.url for s in storages if s.url.split("://")[0] not in _PRIVATE_SCHEMES]
    name = "pickle on shared storage"
    if safe_to_decode(described):
        yield Check(name, "ok", f"the serializer, {described['type']}, runs no stored code")
    elif not shared:
        yield Check(name, "ok", f"{described['type']} records stay on this machine")
    elif store.signing_key is None:
        yield Check(
            name,
            "warn",
            f"{described['type']} records on {', '.join(shared)} without a signing key: "
            "whoever can write there can run code in every reader",
            "set MOORAGE_SIGNING_KEY to a secret shared by every machine that writes or "
            "reads these records",
        )
    else:
        yield Check(name, "ok", f"{described['type']} records are signed")


def _sample_check(store: ResultStore) -> Check:
    """A few stored records' heads, read with the store's signing key and without any:
    a head only the keyed read refuses was signed with another key (or not at all)."""
    name = "record signatures"
    storage = listed_storage(store)
    try:
        keys = list(itertools.islice(_stored_keys(storage), SAMPLED_RECORDS))
        unkeyed = store.model_copy(update={"signing_key": None})
        seen = [(store.info(key), unkeyed.info(key)) for key in keys]
    except Exception as exc:
        return _failed(name, exc)
    if not seen:
        return Check(name, "ok", "no records to sample")
    wrong = [key.key for key, plain in seen if key.format == "damaged" and plain.signed]
    unsigned = [
        key.key
        for key, plain in seen
        if key.format == "damaged" and plain.format == "moorage" and not plain.signed
    ]
    signed = [plain.key for _, plain in seen if plain.signed]
    sampled = f"of {len(seen)} records sampled"
    if wrong:
        return Check(
            name,
            "fail",
            f"{len(wrong)} {sampled} are signed with another key than this store's "
            f"(first: {wrong[0]!r}), so every read refuses them",
            "set MOORAGE_SIGNING_KEY to the key their writers use, or write them again",
        )
    if unsigned:
        return Check(
            name,
            "warn",
            f"{len(unsigned)} {sampled} are not signed (first: {unsigned[0]!r}) and this "
            "store refuses them",
            "write them again with the signing key set, or remove them with moorage rm",
        )
    if signed and store.signing_key is None:
        return Check(
            name,
            "warn",
            f"{len(signed)} {sampled} are signed, but no signing key is set, so their "
            "signatures are not checked",
            "set MOORAGE_SIGNING_KEY to the key their writers use",
        )
    return Check(name, "ok", f"the heads of {len(seen)} records sampled pass their checks")


def _stored_keys(storage: Storage) -> Iterator[str]:
    pages = storage.list_entries("")
    try:
        for page in pages:
            for entry in page:
                if not entry.key.startswith(PROBE_PREFIX):
                    yield entry.key
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def run_checks(storage: str | None) -> Iterator[Check]:
    """Every check, in order, for the configured store (or one on ``storage``)."""
    try:
        store = open_store(storage)
        storages = [store._storage()]
    except Exception as exc:
        yield _failed("settings", exc)
        return
    if store.metadata_storage is not None:
        storages.append(store.metadata_storage)
    roles = ("result storage", "metadata storage")
    unreached = False
    for role, each in zip(roles, storages, strict=False):
        for check in _storage_checks(role, each):
            unreached |= check.check.endswith(": reached") and check.status == "fail"
            yield check
    yield _lock_check(store.lock_manager)
    yield from _signing_checks(store, storages)
    if unreached:
        yield Check("record signatures", "skip", "a storage could not be reached")
    else:
        yield _sample_check(store)


_STYLES: dict[Status, str | None] = {"ok": "green", "warn": "yellow", "fail": "red", "skip": None}


@click.command(short_help="Check the storages and lock manager; say what is wrong.")
@click.argument("storage", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print {ok, checks: [...]} as JSON.")
def doctor(storage: str | None, as_json: bool) -> None:
    """Check what the settings name (or STORAGE instead of the configured storage): each
    storage reached and written, read, listed and deleted with a probe, its clock, the
    lock manager, the signing key, and a sample of stored records. Each problem comes with
    its fix. Exit status 1 if any check warns or fails."""
    started = time.monotonic()
    checks = list(run_checks(storage))
    ok = not any(check.status in ("warn", "fail") for check in checks)
    if as_json:
        echo_json({"ok": ok, "checks": [asdict(check) for check in checks]})
    else:
        rows = [(c.check, c.status, c.detail, c.fix) for c in checks]
        styles = [_STYLES[c.status] for c in checks]
        table_or_lines("moorage doctor", ("check", "status", "detail", "fix"), rows, styles, 1)
        failed = sum(c.status == "fail" for c in checks)
        warned = sum(c.status == "warn" for c in checks)
        seconds = time.monotonic() - started
        click.echo(f"{failed} failed, {warned} warning(s), in {seconds:.1f} s", err=True)
    if not ok:
        sys.exit(1)
