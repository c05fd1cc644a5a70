"""Serializers: dispatch by type, tagged JSON, compression, the unknown-type placeholder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pydantic
import pytest

from moorage import SerializationError
from moorage.plugins import catalog
from moorage.plugins.registry import reset_registry
from moorage.serializers import (
    CompressedJSONSerializer,
    CompressedPickleSerializer,
    CompressedSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
    UnknownSerializer,
    coerce_serializer,
)


class Point(pydantic.BaseModel):
    x: int
    when: dt.datetime


@dataclasses.dataclass
class Box:
    label: str
    size: Decimal


class Color(enum.Enum):
    RED = "red"


def test_type_dispatch() -> None:
    assert type(Serializer(type="pickle")) is PickleSerializer
    assert type(Serializer(type="json")) is JSONSerializer
    assert type(Serializer(type="compressed")) is CompressedSerializer
    assert type(Serializer(type="compressed/pickle")) is CompressedPickleSerializer
    assert type(Serializer(type="compressed/json")) is CompressedJSONSerializer
    with pytest.raises(SerializationError, match="needs a type"):
        Serializer()


def test_subclass_with_new_type_registers() -> None:
    class Reversed(Serializer):
        type: str = "test-reversed"

        def dumps(self, obj: object) -> bytes:
            return str(obj).encode()[::-1]

        def loads(self, data: bytes | bytearray | memoryview) -> object:
            return bytes(data)[::-1].decode()

    made = Serializer(type="test-reversed")
    assert type(made) is Reversed
    assert made.loads(made.dumps("abc")) == "abc"
    assert type(coerce_serializer({"type": "test-reversed"})) is Reversed


def test_json_tagged_roundtrip() -> None:
    value = {
        "when": dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC),
        "day": dt.date(2024, 1, 2),
        "t": dt.time(3, 4),
        "span": dt.timedelta(seconds=90),
        "id": uuid.UUID(int=7),
        "amount": Decimal("1.10"),
        "tags": {"a", "b"},
        "frozen": frozenset({1}),
        "pair": (1, "two"),
        "raw": b"\x00\xff",
        "path": Path("/tmp/x"),
        "model": Point(x=1, when=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        "box": Box("b", Decimal("2")),
        "color": Color.RED,
        "int_keys": {1: "one"},
        "__class__": "a plain key that looks like a tag",
        "nested": [[{"deep": {1, 2}}]],
    }
    json_serializer = JSONSerializer(allowed_classes=[Point, Box, Color])
    back = json_serializer.loads(json_serializer.dumps(value))
    assert back == value
    assert type(back["pair"]) is tuple
    assert type(back["model"]) is Point


def test_json_refuses_unknown_objects() -> None:
    with pytest.raises(SerializationError, match="pickle"):
        JSONSerializer().dumps(object())
    with pytest.raises(SerializationError, match="refusing"):
        JSONSerializer().loads(b'{"__class__": "subprocess.Popen", "data": ["ls"]}')
    with pytest.raises(SerializationError, match="not valid JSON"):
        JSONSerializer().loads(b"{nope")


def test_json_reads_exceptions_as_prefect_writes_them() -> None:
    error = JSONSerializer().loads(b'{"__exc_type__": "builtins.ValueError", "message": "bad"}')
    assert isinstance(error, ValueError)
    assert str(error) == "bad"
    assert JSONSerializer().loads(JSONSerializer().dumps(KeyError("k"))).__class__ is KeyError


@pytest.mark.parametrize("lib", ["zlib", "lzma", "bz2"])
def test_compressed(lib: str) -> None:
    serializer = CompressedSerializer(serializer="json", compressionlib=lib)
    value = {"x": list(range(100))}
    data = serializer.dumps(value)
    assert len(data) < len(JSONSerializer().dumps(value))
    assert serializer.loads(data) == value
    again = coerce_serializer(serializer.to_dict())
    assert again == serializer
    assert again.loads(data) == value


def test_json_reads_prefect_encodings() -> None:
    """Prefect (through pydantic) writes timedeltas as ISO 8601 and bytes as text."""
    value = JSONSerializer().loads(
        b'{"span": {"__class__": "datetime.timedelta", "data": "PT1H30M"},'
        b' "raw": {"__class__": "builtins.bytes", "data": "hello"}}'
    )
    assert value == {"span": dt.timedelta(hours=1, minutes=30), "raw": b"hello"}
    assert JSONSerializer().dumps(b"hello") == b'{"__class__":"builtins.bytes","data":"hello"}'
    with pytest.raises(SerializationError, match="tagged"):
        JSONSerializer().loads(b'{"__class__": "uuid.UUID", "data": "not-a-uuid"}')


def test_compressed_errors() -> None:
    with pytest.raises(SerializationError, match="unknown compressionlib"):
        CompressedSerializer(compressionlib="nope").dumps(1)
    with pytest.raises(SerializationError, match="decompress"):
        CompressedSerializer(compressionlib="zlib").loads(b"not compressed")


def test_unknown_type_placeholder_fails_only_on_use(monkeypatch: pytest.MonkeyPatch) -> None:
    # As without moorage-msgpack installed: no plugins, and its class not declared.
    monkeypatch.setenv("MOORAGE_PLUGINS", "")
    declared = catalog.declared_serializer_class
    monkeypatch.setattr(
        catalog,
        "declared_serializer_class",
        lambda name: None if name == "msgpack" else declared(name),
    )
    reset_registry()
    placeholder = coerce_serializer({"type": "msgpack", "use_bin_type": True})
    assert isinstance(placeholder, UnknownSerializer)
    assert placeholder.to_dict() == {"type": "msgpack", "use_bin_type": True}
    with pytest.raises(SerializationError, match=r'pip install "moorage\[msgpack\]"'):
        placeholder.loads(b"\x81")
    with pytest.raises(SerializationError, match=r'pip install "moorage\[msgpack\]"'):
        Serializer(type="msgpack")
    with pytest.raises(SerializationError, match="no-such-type"):
        Serializer(type="no-such-type")


def test_pickle_options() -> None:
    assert PickleSerializer(picklelib="pickle").loads(
        PickleSerializer(picklelib="pickle").dumps([1])
    ) == [1]
    with pytest.raises(SerializationError, match="not supported"):
        PickleSerializer(picklelib="marshal").dumps(1)
    with pytest.raises(SerializationError, match="could not pickle"):
        PickleSerializer().dumps(__import__("threading").Lock())
    with pytest.raises(SerializationError, match="unpickle"):
        PickleSerializer().loads(b"garbage")


@pytest.mark.parametrize("first_import", ["moorage.serializers", "moorage.serializers.base"])
def test_a_plugin_type_is_found_however_serializers_are_first_imported(first_import: str) -> None:
    # The plugin registry answers which class a type names even in a process that imported
    # nothing but the serializers (the face plugs the registry in).
    code = (
        f"import {first_import}\n"
        "from moorage.serializers import Serializer\n"
        "print(type(Serializer(type='example-json')).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "ExampleJSONSerializer"
