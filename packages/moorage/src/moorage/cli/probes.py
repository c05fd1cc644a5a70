"""The probes of `moorage doctor`: what a storage and a lock manager are asked, and the
`Check` each answer becomes.

A storage is reached (a listing under `PROBE_PREFIX`, which proves the service answers
and the bucket, container or folder exists without walking the records), then a probe
object is written, read back, found in a listing and deleted, so a refused permission
shows as the step that failed; the probe's modification time from the listing is
compared with the local clock. A lock manager takes, checks and frees a probe lock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from moorage.locking import LockManager
    from moorage.storage import Storage, StorageEntry

__all__ = [
    "CLOCK_SKEW_LIMIT",
    "PROBE_PREFIX",
    "Check",
    "Status",
    "clock_check",
    "failed",
    "lock_check",
    "storage_checks",
]

#: Where probe objects and locks go: one key under it per run, removed by the run.
PROBE_PREFIX = ".moorage-doctor/"
#: A storage clock further than this from the local clock gets a warning: expiry and
#: age rules compare the two.
CLOCK_SKEW_LIMIT = dt.timedelta(seconds=30)

#: How a check ended (see `moorage.cli.doctor`).
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


def failed(check: str, exc: BaseException) -> Check:
    """A failed check, from the error that failed it."""
    what, fix = _split(exc)
    return Check(check, "fail", what, fix)


def storage_checks(role: str, storage: Storage) -> Iterator[Check]:
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
        yield failed(f"{role}: reached", exc)
    else:
        yield Check(f"{role}: reached", "ok", f"{storage.url} answered a listing")

    probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    data = b"moorage doctor probe " + probe.encode()
    before = dt.datetime.now(dt.UTC)
    try:
        storage.write_path(probe, data)
    except Exception as exc:
        yield failed(f"{role}: write", exc)
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
        yield failed(f"{role}: read", exc)
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
        yield failed(f"{role}: list", exc)
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
    yield clock_check(role, entry, before, after)
    try:
        storage.delete_path(probe)
        if storage.exists(probe):
            raise RuntimeError(f"the probe {probe} is still there after its deletion")
    except Exception as exc:
        yield failed(f"{role}: delete", exc)
    else:
        yield Check(f"{role}: delete", "ok", "deleted the probe")


def clock_check(
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
        return failed(name, exc)
    if report.files:
        return Check(
            name,
            "warn",
            f"{report.files} temporary file(s), {report.bytes} bytes, left by writers "
            "killed mid-write",
            "remove them with: moorage prune --temp",
        )
    return Check(name, "ok", "none left by killed writers")


def lock_check(manager: LockManager | None) -> Check:
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
        return failed(name, exc)
    return Check(name, "ok", f"{manager.url}: took, checked and freed a probe lock")
