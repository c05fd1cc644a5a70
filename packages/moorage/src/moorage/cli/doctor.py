"""``moorage doctor``: reach what the settings name and say what is wrong, with the fix.

Each storage of the store (the result storage, and the metadata storage if there is
one) and the lock manager are probed (`moorage.cli.probes`). Then the store as a whole:
whether a signing key is set, pickle-family records on a shared storage without one,
and a sample of the stored records' heads read with the store's signing key and
without any (records signed with another key fail).

Every check ends ``ok``, ``warn`` (works, but should be fixed), ``fail`` (does not work)
or ``skip`` (could not be tried, because an earlier step failed). The command exits 1
when any check warns or fails.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from moorage.cli.output import echo_json, table_or_lines
from moorage.cli.probes import PROBE_PREFIX, Check, Status, failed, lock_check, storage_checks
from moorage.cli.stores import listed_storage, open_store, safe_to_decode

if TYPE_CHECKING:
    from moorage.storage import Storage
    from moorage.store.store import ResultStore

__all__ = ["SAMPLED_RECORDS", "doctor", "run_checks"]

#: How many stored records' heads are read to check their signatures.
SAMPLED_RECORDS = 5
#: Storage schemes on one machine only: pickle there is no one else's to tamper with.
_PRIVATE_SCHEMES = ("file", "memory")


def _signing_checks(store: ResultStore, storages: list[Storage]) -> Iterator[Check]:
    """Whether a signing key is set, and whether records that may run code on reading
    sit where other machines could write them without one."""
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
        return failed(name, exc)
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
        yield failed("settings", exc)
        return
    if store.metadata_storage is not None:
        storages.append(store.metadata_storage)
    roles = ("result storage", "metadata storage")
    unreached = False
    for role, each in zip(roles, storages, strict=False):
        for check in storage_checks(role, each):
            unreached |= check.check.endswith(": reached") and check.status == "fail"
            yield check
    yield lock_check(store.lock_manager)
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
