"""The records of a store: ``moorage ls``, ``show``, ``get`` and ``rm``.

``show`` and ``get`` decode a value only when that runs no code: records serialized
with json or msgpack (compressed or not). A pickle-family record (pickle, cloudpickle,
dill, or a type moorage does not know) is decoded only with ``--decode``, since
unpickling runs whatever code the record holds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from moorage.cli.decoding import Refused, head_check, read_value
from moorage.cli.output import (
    echo_json,
    error,
    plain_lines,
    print_table,
    progress_bar,
    stdout_is_terminal,
    table_or_lines,
    when,
)
from moorage.cli.stores import listed_storage, open_store, pick_storage

if TYPE_CHECKING:
    from moorage.store.listing import RecordInfo

__all__ = ["get", "info_dict", "ls", "rm", "show"]

#: How much of a value ``show`` prints.
PREVIEW_CHARACTERS = 400

_DECODE_HELP = (
    "Also decode pickle-family records (pickle, cloudpickle, dill, unknown types). "
    "Unpickling runs code the record holds: only for records you trust."
)
_STORAGE_HELP = "A URL, path or storage name (default: the configured storage)."


def info_dict(info: RecordInfo) -> dict[str, Any]:
    """A `RecordInfo` as JSON: times as UTC text."""
    return {
        "key": info.key,
        "format": info.format,
        "serializer": info.serializer,
        "size": info.size,
        "last_modified": when(info.last_modified) or None,
        "expiration": when(info.expiration) or None,
        "expired": info.expired,
        "signed": info.signed,
        "problem": info.problem,
    }


def _info_row(info: RecordInfo) -> tuple[str, ...]:
    return (
        info.key,
        info.format,
        info.serializer or "",
        "" if info.size is None else str(info.size),
        when(info.last_modified),
        when(info.expiration) + (" (expired)" if info.expired else ""),
        "yes" if info.signed else "no",
    )


_LS_COLUMNS = ("key", "format", "serializer", "bytes", "modified", "expires", "signed")


@click.command(name="ls", short_help="List the records of a storage.")
@click.argument("storage", required=False)
@click.option("--prefix", default="", help="Only keys that start with this.")
@click.option("--expired", "only_expired", is_flag=True, help="Only expired records.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def ls(storage: str | None, prefix: str, only_expired: bool, as_json: bool) -> None:
    """List the records of STORAGE (a URL, a path or a storage's name; default: the
    configured storage): key, format, serializer, size, last modified, expiration."""
    store = open_store(storage)
    infos = (info for info in store.list(prefix) if info.expired or not only_expired)
    if as_json:
        # Streamed: one element per record as it is listed, never the whole listing.
        click.echo("[", nl=False)
        for number, info in enumerate(infos):
            click.echo(("," if number else "") + "\n  " + json.dumps(info_dict(info)), nl=False)
        click.echo("\n]")
        return
    if not stdout_is_terminal():  # plain lines, streamed
        plain_lines(_LS_COLUMNS, (_info_row(info) for info in infos))
        return
    where = listed_storage(store).url
    rows: list[tuple[str, ...]] = []
    with progress_bar(where) as report:  # a table needs the whole listing first
        for info in infos:
            rows.append(_info_row(info))
            if report is not None:
                report("listing", len(rows), None)
    print_table(f"records in {where}", _LS_COLUMNS, rows)


def _preview(value: Any) -> str:
    """The start of ``value``: JSON where it is JSON-able, else its repr."""
    text = _as_json_text(value)
    if text is None:
        text = repr(value)
    if len(text) > PREVIEW_CHARACTERS:
        text = f"{text[:PREVIEW_CHARACTERS]}... ({len(text)} characters)"
    return text


def _as_json_text(value: Any, indent: int | None = None) -> str | None:
    """``value`` as JSON text (datetimes, UUIDs, sets, dataclasses and models too), or
    None if it holds something JSON cannot say."""
    from pydantic_core import PydanticSerializationError, to_json

    try:
        return to_json(value, indent=indent, bytes_mode="base64").decode()
    except (PydanticSerializationError, ValueError, TypeError):
        return None


@click.command(short_help="Describe one record, with a preview of its value.")
@click.argument("key")
@click.argument("storage", required=False)
@click.option("--storage", "storage_option", default=None, help=_STORAGE_HELP)
@click.option("--decode", is_flag=True, help=_DECODE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def show(
    key: str, storage: str | None, storage_option: str | None, decode: bool, as_json: bool
) -> None:
    """Describe the record KEY of STORAGE (default: the configured storage): format,
    serializer, size, modification, expiration, signature and where it is stored, and a
    preview of its value if that is safe to decode (json, msgpack) or --decode is given.
    Exit status 1 if the record is damaged."""
    store = open_store(pick_storage(storage, storage_option))
    info = store.info(key)
    metadata, refused = head_check(store, info, decode)
    if not refused:
        try:
            result = read_value(store, key, decode)
        except Refused as exc:
            refused = str(exc)
    value: dict[str, Any] = {"decoded": not refused, "reason": refused or None}
    if not refused:
        value.update(type=type(result).__name__, preview=_preview(result))
    described = {
        **info_dict(info),
        "storage": listed_storage(store).url,
        "metadata": metadata,
        "value": value,
    }
    if as_json:
        echo_json(described)
    else:
        meta = metadata or {}
        serializer = meta.get("serializer")
        rows = [
            ("key", info.key),
            ("storage", described["storage"]),
            ("format", info.format),
            ("serializer", json.dumps(serializer) if serializer else info.serializer or ""),
            ("bytes", "" if info.size is None else str(info.size)),
            ("modified", when(info.last_modified)),
            ("expires", when(info.expiration) + (" (expired)" if info.expired else "")),
            ("signed", "yes" if info.signed else "no"),
            ("storage key", meta.get("storage_key") or ""),
            ("payload bytes", str(meta.get("payload_length", ""))),
            ("checksum", meta.get("checksum") or ""),
            ("written by", meta.get("moorage_version") or ""),
        ]
        if info.problem:
            rows.append(("problem", info.problem))
        if refused:
            rows.append(("value", refused))
        else:
            rows.append((f"value ({value['type']})", value["preview"]))
        table_or_lines(f"record {key}", ("field", "value"), rows)
    if info.format == "damaged":
        sys.exit(1)


@click.command(short_help="Write one record's value to stdout or a file.")
@click.argument("key")
@click.argument("storage", required=False)
@click.option("--storage", "storage_option", default=None, help=_STORAGE_HELP)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default=None,
    help="Write the value to this file (atomically: the whole value or nothing).",
)
@click.option("--decode", is_flag=True, help=_DECODE_HELP)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {key, type, value} (bytes as base64); with -o, what was written.",
)
def get(
    key: str,
    storage: str | None,
    storage_option: str | None,
    output: str | None,
    decode: bool,
    as_json: bool,
) -> None:
    """Write the value of the record KEY: bytes and text as they are, any other value as
    JSON. A pickle-family record is decoded only with --decode. Exit status 1 if the
    record is missing, expired, damaged, not safe to decode, or not JSON-able."""
    store = open_store(pick_storage(storage, storage_option))
    _, refused = head_check(store, store.info(key), decode)
    try:
        if refused:
            raise Refused(refused)
        result = read_value(store, key, decode)
    except Refused as exc:
        raise click.ClickException(
            f"record {key!r} in {listed_storage(store).url}: {exc}"
        ) from None
    data = _value_bytes(key, result)
    if output is not None and output != "-":
        _write_atomically(Path(output), data)
        if as_json:
            echo_json(
                {"key": key, "type": type(result).__name__, "file": output, "bytes": len(data)}
            )
        return
    if as_json:
        value = json.loads(_as_json_text(result) or "null")
        echo_json({"key": key, "type": type(result).__name__, "value": value})
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _value_bytes(key: str, value: Any) -> bytes:
    """What ``get`` writes: bytes as they are, text in UTF-8, anything else as JSON."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    text = _as_json_text(value, indent=2)
    if text is None:
        raise click.ClickException(
            f"the value of {key!r} is of type {type(value).__name__}, neither bytes, text "
            "nor JSON-able; read it in Python with ResultStore().read(key).result"
        )
    return (text + "\n").encode("utf-8")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, renamed
    over it once complete and flushed to disk: a reader never sees half a file. The file
    keeps the mode of the one it replaces; a new one gets the umask's usual mode."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0o022)
        os.umask(mask)
        mode = 0o666 & ~mask
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@click.command(name="rm", short_help="Remove records.")
@click.argument("keys", nargs=-1)
@click.option("--prefix", default=None, help="Remove every record whose key starts with this.")
@click.option("--storage", default=None, help=_STORAGE_HELP)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def rm(
    keys: tuple[str, ...], prefix: str | None, storage: str | None, yes: bool, as_json: bool
) -> None:
    """Remove the records KEYS, or every record under --prefix, from the configured storage
    (or --storage). Asks first unless --yes. Exits 1 if a key held no record."""
    if bool(keys) == (prefix is not None):
        raise click.UsageError("give the keys to remove, or --prefix, not both and not neither")
    store = open_store(storage)
    targets = list(keys) if keys else [info.key for info in store.list(prefix or "")]
    where = store._storage().url
    if not targets:
        error(f"nothing to remove under {prefix!r} in {where}")
        return
    if not yes:
        click.confirm(f"Remove {len(targets)} record(s) from {where}?", abort=True, err=True)
    removed: list[str] = []
    missing: list[str] = []
    for key in targets:
        (removed if store.delete(key) else missing).append(key)
    if as_json:
        echo_json({"removed": removed, "missing": missing})
    else:
        click.echo(f"removed {len(removed)} record(s) from {where}")
    for key in missing:
        error(f"no record under {key!r} in {where}")
    if missing:
        sys.exit(1)
