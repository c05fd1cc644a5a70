"""Keeping a store in shape: ``moorage prune`` and ``moorage copy``.

Both run the store's own bulk operations (`ResultStore.prune`, `ResultStore.copy_to`),
which list a page at a time and remove or copy in batches; the commands add the
question before removing, the progress bar and the report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from typing import Any

import click

from moorage.cli.output import echo_json, error, progress_bar
from moorage.cli.stores import open_store, pick_storage
from moorage.cli.values import DURATION, SIZE

__all__ = ["copy", "prune", "size_text"]


def size_text(size: int) -> str:
    """``size`` bytes for people, in binary units: ``512 bytes``, ``1.5 KiB``, ``10.0 GiB``."""
    if size < 1024:
        return f"{size} byte{'' if size == 1 else 's'}"
    amount = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        amount /= 1024
        if amount < 1024 or unit == "TiB":
            break
    return f"{amount:.1f} {unit}"


def _report_dict(report: Any, **extra: Any) -> dict[str, Any]:
    """A store's report (a dataclass) for ``--json``, after ``extra`` (where it ran)."""
    return {**extra, **dataclasses.asdict(report)}


@click.command(short_help="Remove expired, old or excess records.")
@click.argument("storage", required=False)
@click.option("--storage", "storage_option", default=None, help="A URL, path or storage name.")
@click.option(
    "--expired/--no-expired",
    default=True,
    show_default=True,
    help="Remove the records whose expiration has passed.",
)
@click.option(
    "--older-than",
    type=DURATION,
    default=None,
    help="Remove records last modified longer ago than this: 90s, 15m, 12h, 7d, 2w.",
)
@click.option(
    "--max-size",
    type=SIZE,
    default=None,
    help="Then remove the oldest records until the rest hold at most this: 500MB, 10GB.",
)
@click.option("--prefix", default="", help="Only records whose keys start with this.")
@click.option(
    "--temp",
    is_flag=True,
    help="Also remove temporary files of writers killed mid-write (local storage).",
)
@click.option("--dry-run", is_flag=True, help="Remove nothing; report what would go.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def prune(
    storage: str | None,
    storage_option: str | None,
    expired: bool,
    older_than: dt.timedelta | None,
    max_size: int | None,
    prefix: str,
    temp: bool,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Remove records of STORAGE (default: the configured storage): the expired ones,
    those older than --older-than, then the oldest beyond --max-size. Records locked by
    another holder are kept. Unless --yes or --dry-run, it first works out what would go
    (removing nothing) and asks."""
    if not (expired or older_than is not None or max_size is not None or temp):
        raise click.UsageError(
            "nothing to prune by: --no-expired needs --older-than, --max-size or --temp"
        )
    store = open_store(pick_storage(storage, storage_option))
    where = store._storage().url
    rules: dict[str, Any] = {
        "expired": expired,
        "older_than": older_than,
        "prefix": prefix,
        "max_bytes": max_size,
        "temp": temp,
    }
    if not yes and not dry_run:
        with progress_bar(where) as progress:
            planned = store.prune(**rules, dry_run=True, progress=progress)
        if not planned.records and not planned.files:
            _print_prune(planned, where, as_json)
            return
        click.confirm(
            f"Remove {_what(planned)} ({size_text(planned.bytes)}) from {where}?",
            abort=True,
            err=True,
        )
    with progress_bar(where) as progress:
        report = store.prune(**rules, dry_run=dry_run, progress=progress)
    _print_prune(report, where, as_json)


def _what(report: Any) -> str:
    what = f"{report.records} record(s)"
    if report.files:
        what += f" and {report.files} temporary file(s)"
    return what


def _print_prune(report: Any, where: str, as_json: bool) -> None:
    if as_json:
        echo_json(_report_dict(report, storage=where))
        return
    verb = "would remove" if report.dry_run else "removed"
    click.echo(
        f"{verb} {_what(report)}, {size_text(report.bytes)}, of {report.examined} "
        f"examined in {where}"
    )


@click.command(short_help="Copy records from one storage to another.")
@click.argument("source")
@click.argument("target")
@click.option("--prefix", default="", help="Only records whose keys start with this.")
@click.option("--overwrite", is_flag=True, help="Replace different records already in TARGET.")
@click.option("--dry-run", is_flag=True, help="Copy nothing; report what would be copied.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def copy(
    source: str, target: str, prefix: str, overwrite: bool, dry_run: bool, as_json: bool
) -> None:
    """Copy the records of SOURCE into TARGET (each a URL, a path or a storage's name),
    byte for byte where both lay records out alike, so expiry and signatures travel.
    Records TARGET holds identically are skipped, and so are different ones unless
    --overwrite. Exit status 1 if a record could not be copied (each is named)."""
    from_store = open_store(source)
    to_store = open_store(target)
    origin, destination = from_store._storage().url, to_store._storage().url
    with progress_bar(origin) as progress:
        report = from_store.copy_to(to_store, prefix, overwrite, dry_run=dry_run, progress=progress)
    if as_json:
        echo_json(_report_dict(report, source=origin, target=destination))
    else:
        verb = "would copy" if report.dry_run else "copied"
        line = (
            f"{verb} {report.copied} record(s), {size_text(report.bytes)}, of "
            f"{report.examined} examined from {origin} to {destination}"
        )
        if report.identical:
            line += f"; {report.identical} already there, identical"
        if report.existing:
            line += f"; {report.existing} kept: another record is there (--overwrite replaces it)"
        click.echo(line)
    for key, reason in report.skipped:
        error(f"could not copy {key!r}: {reason}")
    if report.skipped:
        sys.exit(1)
