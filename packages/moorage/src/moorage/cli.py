"""The ``moorage`` command line (also ``python -m moorage``)."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="moorage")
def main() -> None:
    """moorage: durable results for Python."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def plugins(as_json: bool) -> None:
    """List the loaded plugins: name, version and what each registers."""
    from moorage.plugins import get_registry

    registry = get_registry()
    infos = [info.as_dict() for info in registry.plugins]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    table = Table(title="moorage plugins")
    for column in ("name", "version", "storages", "serializers", "lock managers", "status"):
        table.add_column(column)
    for info in registry.plugins:
        regs = info.registers
        table.add_row(
            info.name,
            info.version or "-",
            ", ".join(regs.get("storage", [])),
            ", ".join(regs.get("serializer", [])),
            ", ".join(regs.get("lock_manager", [])),
            f"[red]skipped: {info.error}[/red]" if info.error else "ok",
        )
    Console().print(table)
    if registry.skipped:
        click.echo(f"not loaded (MOORAGE_PLUGINS): {', '.join(registry.skipped)}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config(as_json: bool) -> None:
    """Show the resolved settings, secrets masked."""
    from moorage.settings import get_settings

    data = get_settings().masked()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    table = Table(title="moorage settings")
    table.add_column("setting")
    table.add_column("value")
    for name, value in data.items():
        table.add_row(name, json.dumps(value) if not isinstance(value, str) else value)
    Console().print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
