"""What moorage runs with: ``moorage plugins`` and ``moorage config``."""

from __future__ import annotations

import json

import click

from moorage.cli.output import echo_json, error, table_or_lines

__all__ = ["config", "plugins"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def plugins(as_json: bool) -> None:
    """List the loaded plugins: name, version and what each registers."""
    from moorage.plugins.registry import get_registry

    registry = get_registry()
    if as_json:
        echo_json([info.as_dict() for info in registry.plugins])
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
    styles = ["red" if info.error is not None else None for info in registry.plugins]
    table_or_lines("moorage plugins", columns, rows, styles)
    if registry.skipped:
        error(f"not loaded (MOORAGE_PLUGINS): {', '.join(registry.skipped)}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config(as_json: bool) -> None:
    """Show the resolved settings, secrets masked (and check the serializer they name)."""
    from moorage.config.settings import get_settings
    from moorage.plugins.catalog import default_serializer

    data = get_settings().masked()
    default_serializer()  # a misspelt type fails here, naming where it was set
    if as_json:
        echo_json(data)
        return
    rows = [
        (name, value if isinstance(value, str) else json.dumps(value))
        for name, value in data.items()
    ]
    table_or_lines("moorage settings", ("setting", "value"), rows)
