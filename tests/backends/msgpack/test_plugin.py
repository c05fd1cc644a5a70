"""The msgpack serializer as an installed plugin: discovery, the registry, records written
and read through a ResultStore, and ``moorage plugins``."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import moorage_msgpack
from moorage.cli.main import main
from moorage.errors import SerializationError
from moorage.format.native import is_native, parse_native_head
from moorage.plugins.registry import get_registry
from moorage.serializers import Serializer, coerce_serializer
from moorage.store.store import ResultStore
from moorage_msgpack import MsgpackSerializer

# The suite's broken test plugin warns whenever the registry loads; not this module's concern.
pytestmark = pytest.mark.filterwarnings("ignore:moorage plugin 'broken:RuntimeWarning")

VALUE: dict[str, Any] = {
    "when": dt.datetime(2024, 9, 1, 12, 0, 30, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "day": dt.date(2024, 2, 29),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "total": Decimal("1234.50"),
    "pairs": [(1, "a"), (2, "b")],
    "tags": {"x", "y"},
    "raw": b"\x00\xff",
    "big": 2**100,
    "by_id": {1: "one", (2, 3): "pair"},
}


def test_the_entry_point_registers_the_serializer_type() -> None:
    registry = get_registry()
    assert registry.provides("serializer", "msgpack")
    assert registry.lookup("serializer", "msgpack") is MsgpackSerializer
    [info] = [p for p in registry.plugins if p.name == "msgpack"]
    assert info.error is None
    assert info.module == "moorage_msgpack"
    assert info.distribution == "moorage-msgpack"
    assert info.version == "0.1.0"
    assert info.registers == {"serializer": ["msgpack"]}


def test_serializer_type_builds_the_plugin_class() -> None:
    built = Serializer(type="msgpack")
    assert type(built) is MsgpackSerializer
    assert built.strict_types is True
    lenient = Serializer(type="msgpack", strict_types=False)  # type: ignore[call-arg]
    assert type(lenient) is MsgpackSerializer
    assert lenient.strict_types is False
    assert type(coerce_serializer("msgpack")) is MsgpackSerializer


def test_stored_descriptions_build_the_serializer_again() -> None:
    for serializer in (MsgpackSerializer(), MsgpackSerializer(strict_types=False)):
        described = serializer.to_dict()
        assert described == {"type": "msgpack", "strict_types": serializer.strict_types}
        rebuilt = coerce_serializer(json.loads(json.dumps(described)))
        assert rebuilt == serializer
        assert type(rebuilt) is MsgpackSerializer
    # A description without options (e.g. hand-written) takes the defaults.
    assert coerce_serializer({"type": "msgpack"}) == MsgpackSerializer()


def test_the_compressed_serializer_wraps_msgpack() -> None:
    wrapped = Serializer(
        type="compressed",
        serializer="msgpack",  # type: ignore[call-arg]
        compressionlib="zlib",
    )
    described = wrapped.to_dict()
    assert described["serializer"] == {"type": "msgpack", "strict_types": True}
    rebuilt = coerce_serializer(json.loads(json.dumps(described)))
    assert rebuilt == wrapped
    assert rebuilt.loads(wrapped.dumps(VALUE)) == VALUE


def _record_parts(path: Path) -> tuple[dict[str, Any], bytes]:
    raw = path.read_bytes()
    assert is_native(raw)
    head = parse_native_head(raw, path.name, "test")
    metadata = json.loads(raw[head.metadata_offset : head.payload_offset])
    return metadata, raw[head.payload_offset :]


def test_result_store_writes_and_reads_msgpack_records(tmp_path: Path) -> None:
    root = tmp_path / "results"
    store = ResultStore(result_storage=root, serializer="msgpack", cache_result_in_memory=False)
    assert type(store.serializer) is MsgpackSerializer
    store.write(VALUE, key="daily/totals")

    metadata, payload = _record_parts(root / "daily" / "totals")
    assert metadata["serializer"] == {"type": "msgpack", "strict_types": True}
    assert MsgpackSerializer().loads(payload) == VALUE  # the payload is plain msgpack output

    # A store with another serializer reads the record by the serializer it names.
    other = ResultStore(result_storage=root, serializer="json", cache_result_in_memory=False)
    record = other.read("daily/totals")
    assert record.result == VALUE
    assert type(record.serializer) is MsgpackSerializer
    assert record.serializer == MsgpackSerializer()


def test_options_are_kept_in_the_record(tmp_path: Path) -> None:
    store = ResultStore(
        result_storage=tmp_path,
        serializer=MsgpackSerializer(strict_types=False),
        cache_result_in_memory=False,
    )
    store.write({"ordered": collections.OrderedDict(a=1)}, key="k")
    metadata, _ = _record_parts(tmp_path / "k")
    assert metadata["serializer"] == {"type": "msgpack", "strict_types": False}
    record = ResultStore(result_storage=tmp_path, cache_result_in_memory=False).read("k")
    assert record.serializer == MsgpackSerializer(strict_types=False)
    assert record.result == {"ordered": {"a": 1}}


async def test_async_write_and_read(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path, serializer="msgpack", cache_result_in_memory=False)
    await store.awrite(VALUE, key="async/record")
    assert (await store.aread("async/record")).result == VALUE


def test_unencodable_values_fail_the_write_and_store_nothing(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path, serializer="msgpack")
    with pytest.raises(SerializationError, match=r"threading\.Event.*serializer='pickle'"):
        store.write({"ok": 1, "bad": threading.Event()}, key="bad")
    assert not store.exists("bad")
    assert list(tmp_path.rglob("*")) == []


def _read_in_new_process(root: Path, key: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Read ``key`` below ``root`` in a new interpreter that never imports moorage_msgpack
    itself, and print the serializer's module and the result's repr."""
    code = (
        "import sys\n"
        "from moorage.store.store import ResultStore\n"
        "record = ResultStore(result_storage=sys.argv[1]).read(sys.argv[2])\n"
        "print(type(record.serializer).__module__, repr(record.result))\n"
    )
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, str(root), key],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def test_a_new_process_reads_the_record_through_the_entry_point(tmp_path: Path) -> None:
    ResultStore(result_storage=tmp_path, serializer="msgpack").write(VALUE, key="shared")
    done = _read_in_new_process(tmp_path, "shared")
    assert done.returncode == 0, done.stderr
    module, _, result = done.stdout.strip().partition(" ")
    assert module == "moorage_msgpack.serializer"
    assert eval(result, {"datetime": dt, "UUID": uuid.UUID, "Decimal": Decimal}) == VALUE


def test_without_the_plugin_loaded_reading_names_the_missing_package(tmp_path: Path) -> None:
    ResultStore(result_storage=tmp_path, serializer="msgpack").write([1], key="k")
    done = _read_in_new_process(tmp_path, "k", MOORAGE_PLUGINS="local")
    assert done.returncode != 0
    assert "SerializationError" in done.stderr
    assert "'msgpack'" in done.stderr
    assert 'pip install "moorage[msgpack]"' in done.stderr


def test_cli_lists_the_plugin() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    entry = listed["msgpack"]
    assert entry["version"] == "0.1.0"
    assert entry["distribution"] == "moorage-msgpack"
    assert entry["module"] == moorage_msgpack.__name__
    assert entry["registers"] == {"serializer": ["msgpack"]}
    assert entry["error"] is None
