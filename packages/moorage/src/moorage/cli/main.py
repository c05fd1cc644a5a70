"""The ``moorage`` command line (also ``python -m moorage``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from moorage.errors import MoorageError

__all__ = ["main"]


class _Group(click.Group):
    """Every command's `MoorageError` (invalid settings, a missing plugin) is printed as
    one message on stderr with exit status 1, never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MoorageError as exc:
            raise click.ClickException(str(exc)) from None


def _to_terminal() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def _print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    flagged: Sequence[bool] = (),
) -> None:
    """A table on a terminal, the last cell of ``flagged`` rows in red. Elsewhere (a pipe, a file)
    tab-separated lines, a header first, every value whole: rich would cut values to fit
    80 columns. Empty values are written as ``-``."""
    if not _to_terminal():
        for row in (columns, *rows):
            click.echo("\t".join(" ".join(cell.split()) or "-" for cell in row))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")  # a narrow terminal wraps, never cuts
    for number, row in enumerate(rows):
        cells = [Text(cell) for cell in row]
        if number < len(flagged) and flagged[number]:
            cells[-1].stylize("red")
        table.add_row(*cells)
    Console().print(table)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="moorage")
def main() -> None:
    """moorage: durable results for Python."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def plugins(as_json: bool) -> None:
    """List the loaded plugins: name, version and what each registers."""
    from moorage.plugins.registry import get_registry

    registry = get_registry()
    infos = [info.as_dict() for info in registry.plugins]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    rows = [
        (
            info.name,
            info.version or "-",
            ", ".join(info.registers.get("storage", [])),
            ", ".join(info.registers.get("serializer", [])),
            ", ".join(info.registers.get("lock_manager", [])),
            f"skipped: {info.error}" if info.error else "ok",
        )
        for info in registry.plugins
    ]
    columns = ("name", "version", "storages", "serializers", "lock managers", "status")
    flagged = [info.error is not None for info in registry.plugins]
    _print_table("moorage plugins", columns, rows, flagged)
    if registry.skipped:
        click.echo(f"not loaded (MOORAGE_PLUGINS): {', '.join(registry.skipped)}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config(as_json: bool) -> None:
    """Show the resolved settings, secrets masked (and check the serializer they name)."""
    from moorage.config.settings import get_settings
    from moorage.plugins.catalog import default_serializer

    data = get_settings().masked()
    default_serializer()  # a misspelt type fails here, naming where it was set
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = [
        (name, value if isinstance(value, str) else json.dumps(value))
        for name, value in data.items()
    ]
    _print_table("moorage settings", ("setting", "value"), rows)


def _store(storage: str | None) -> Any:
    """The configured store, or one on ``storage`` (a URL, a path or a storage's name)."""
    from moorage.store.store import ResultStore

    return ResultStore() if storage is None else ResultStore(result_storage=storage)


def _when(moment: Any) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@main.command(name="ls", short_help="List the records of a storage.")
@click.argument("storage", required=False)
@click.option("--prefix", default="", help="Only keys that start with this.")
@click.option("--expired", "only_expired", is_flag=True, help="Only expired records.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def ls(storage: str | None, prefix: str, only_expired: bool, as_json: bool) -> None:
    """List the records of STORAGE (a URL, a path or a storage's name; default: the
    configured storage): key, format, serializer, size, last modified, expiration."""
    store = _store(storage)
    infos = (info for info in store.list(prefix) if info.expired or not only_expired)
    if as_json:
        # Streamed: one element per record as it is listed, never the whole listing.
        click.echo("[", nl=False)
        for number, info in enumerate(infos):
            click.echo(("," if number else "") + "\n  " + json.dumps(_info_dict(info)), nl=False)
        click.echo("\n]")
        return
    rows = (
        (
            info.key,
            info.format,
            info.serializer or "",
            "" if info.size is None else str(info.size),
            _when(info.last_modified),
            _when(info.expiration) + (" (expired)" if info.expired else ""),
            "yes" if info.signed else "no",
        )
        for info in infos
    )
    columns = ("key", "format", "serializer", "bytes", "modified", "expires", "signed")
    if not _to_terminal():  # plain lines, streamed
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(cell or "-" for cell in row))
        return
    listed = list(rows)
    _print_table(f"records in {store._storage().url}", columns, listed)


@main.command(name="rm", short_help="Remove records.")
@click.argument("keys", nargs=-1)
@click.option("--prefix", default=None, help="Remove every record whose key starts with this.")
@click.option("--storage", default=None, help="A URL, path or storage name (default: configured).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def rm(
    keys: tuple[str, ...], prefix: str | None, storage: str | None, yes: bool, as_json: bool
) -> None:
    """Remove the records KEYS, or every record under --prefix, from the configured storage
    (or --storage). Asks first unless --yes. Exits 1 if a key held no record."""
    if bool(keys) == (prefix is not None):
        raise click.UsageError("give the keys to remove, or --prefix, not both and not neither")
    store = _store(storage)
    targets = list(keys) if keys else [info.key for info in store.list(prefix or "")]
    where = store._storage().url
    if not targets:
        click.echo(f"nothing to remove under {prefix!r} in {where}", err=True)
        return
    if not yes:
        click.confirm(f"Remove {len(targets)} record(s) from {where}?", abort=True, err=True)
    removed: list[str] = []
    missing: list[str] = []
    for key in targets:
        (removed if store.delete(key) else missing).append(key)
    if as_json:
        click.echo(json.dumps({"removed": removed, "missing": missing}, indent=2))
    else:
        click.echo(f"removed {len(removed)} record(s) from {where}")
    for key in missing:
        click.echo(f"no record under {key!r} in {where}", err=True)
    if missing:
        sys.exit(1)


def _info_dict(info: Any) -> dict[str, Any]:
    return {
        "key": info.key,
        "format": info.format,
        "serializer": info.serializer,
        "size": info.size,
        "last_modified": _when(info.last_modified) or None,
        "expiration": _when(info.expiration) or None,
        "expired": info.expired,
        "signed": info.signed,
        "problem": info.problem,
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
