"""moorage.serializers.json_values: the tagged JSON encoding of the ``json`` serializer.

Round trips for every supported type, the exact shape of the tags (Prefect reads the
same ones), refusal of classes the reader does not allow (without importing anything),
and `SerializationError` for malformed payloads.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import json
import pathlib
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

import pydantic
import pytest

from moorage.errors import ClassNotAllowed, SerializationError
from moorage.serializers import json_values

T = TypeVar("T")


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Reading(pydantic.BaseModel):
    at: dt.datetime
    values: list[float]


class Box(pydantic.BaseModel, Generic[T]):
    item: T


class Refused(Exception):
    pass


ALLOWED = json_values.allowed_by_name([Colour, Point, Reading, Box[str], Refused])

UTC = dt.UTC
SAMPLES: list[Any] = [
    None,
    True,
    0,
    -(2**63),
    2**64 - 1,
    3.25,
    "text ✓",
    [1, "two", None],
    {"a": 1, "b": [True, {"c": None}]},
    {1: "int key", (1, 2): "tuple key"},
    {"__class__": "not a tag", "data": 1, "more": 2},
    (1, (2, 3)),
    {1, 2, 3},
    frozenset({"x"}),
    dt.datetime(2024, 9, 1, 12, 0, tzinfo=UTC),
    dt.datetime(2024, 9, 1, 12, 0, 0, 123456),
    dt.date(2024, 2, 29),
    dt.time(23, 59, 1),
    dt.timedelta(days=1, seconds=3.5),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("3.14159265358979323846"),
    b"utf-8 bytes",
    b"\xff\x00 not utf-8",
    pathlib.PurePosixPath("/a/b"),
    Path("/tmp/x"),
    pathlib.PureWindowsPath("C:/Users/x"),
    complex(1.5, -2),
    [dt.date(2024, 1, 1), {"nested": (uuid.UUID(int=7), b"\x80")}],
    Colour.BLUE,
    Point(1, 2),
    Reading(at=dt.datetime(2024, 1, 1, tzinfo=UTC), values=[1.0, 2.5]),
    Box[str](item="in a box"),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_round_trip(value: Any) -> None:
    again = json_values.loads(json_values.dumps(value), ALLOWED)
    assert again == value
    assert type(again) is type(value)


def test_tags_have_prefects_shape() -> None:
    def wire(value: Any) -> Any:
        return json.loads(json_values.dumps(value))

    assert wire(dt.datetime(2024, 9, 1, 12, tzinfo=UTC)) == {
        "__class__": "datetime.datetime",
        "data": "2024-09-01T12:00:00+00:00",
    }
    assert wire(b"hi") == {"__class__": "builtins.bytes", "data": "hi"}
    assert wire(b"\xff") == {"__class__": "builtins.bytes", "data": {"base64": "/w=="}}
    assert wire((1, 2)) == {"__class__": "builtins.tuple", "data": [1, 2]}
    assert wire(ValueError("bad input")) == {
        "__exc_type__": "builtins.ValueError",
        "message": "bad input",
    }
    assert wire(Point(1, 2)) == {
        "__class__": f"{__name__}.Point",
        "data": {"x": 1, "y": 2},
    }
    # A parametrized model is tagged with its generic class's (importable) name.
    assert wire(Box[int](item=1))["__class__"] == f"{__name__}.Box"


def test_timedelta_as_iso_duration_as_prefect_may_write_it() -> None:
    payload = b'{"__class__": "datetime.timedelta", "data": "PT1H30M"}'
    assert json_values.loads(payload) == dt.timedelta(hours=1, minutes=30)


def test_container_and_scalar_subclasses_become_their_base() -> None:
    ordered = collections.OrderedDict([("b", 1), ("a", 2)])
    assert json_values.loads(json_values.dumps(ordered)) == {"b": 1, "a": 2}
    assert type(json_values.loads(json_values.dumps(ordered))) is dict


def test_exceptions() -> None:
    builtin = json_values.loads(json_values.dumps(ValueError("bad input")))
    assert type(builtin) is ValueError
    assert builtin.args == ("bad input",)
    allowed = json_values.loads(json_values.dumps(Refused("no")), ALLOWED)
    assert type(allowed) is Refused
    # Not allowed: a plain Exception with the message, never the class itself.
    plain = json_values.loads(json_values.dumps(Refused("no")))
    assert type(plain) is Exception
    assert str(plain) == "no"


def test_classes_not_allowed_are_refused() -> None:
    payload = json_values.dumps(Point(1, 2))
    with pytest.raises(ClassNotAllowed, match=r"Point.*not allowed"):
        json_values.loads(payload)
    with pytest.raises(ClassNotAllowed):
        json_values.loads(json_values.dumps(Colour.RED))
    with pytest.raises(ClassNotAllowed):
        json_values.loads(json_values.dumps(Reading(at=dt.datetime.now(UTC), values=[])))


def test_a_tag_never_imports_its_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"moorage_probe_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "raise AssertionError('imported because a payload named it')\nclass Thing: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    payload = json.dumps({"__class__": f"{name}.Thing", "data": {}}).encode()
    with pytest.raises(ClassNotAllowed, match=f"refusing to build a {name}.Thing"):
        json_values.loads(payload, ALLOWED)
    exception = json.dumps({"__exc_type__": f"{name}.Thing", "message": "m"}).encode()
    assert type(json_values.loads(exception)) is Exception
    assert name not in sys.modules


def test_malformed_class_tags_are_refused() -> None:
    for tag in ("nodots", "not a name.X", "1module.X", "module.X[int"):
        payload = json.dumps({"__class__": tag, "data": 1}).encode()
        with pytest.raises(ClassNotAllowed, match="malformed class tag"):
            json_values.loads(payload, ALLOWED)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"a": ',
        b"\xff\xfe",
        b'{"__class__": 42, "data": 1}',
        b'{"__class__": "uuid.UUID", "data": "not-a-uuid"}',
        b'{"__class__": "datetime.date", "data": "yesterday"}',
        b'{"__class__": "decimal.Decimal", "data": "many"}',
        b'{"__class__": "builtins.bytes", "data": {"base64": "a"}}',
        b'{"__class__": "builtins.dict", "data": [[1]]}',
        b'{"__class__": "builtins.complex", "data": "1+2j"}',
        b'{"__class__": "builtins.set", "data": [[1, 2]]}',
    ],
)
def test_malformed_payloads_raise_serialization_error(payload: bytes) -> None:
    with pytest.raises(SerializationError):
        json_values.loads(payload, ALLOWED)


def test_data_that_does_not_fit_an_allowed_class() -> None:
    payload = json.dumps({"__class__": f"{__name__}.Point", "data": {"x": "one"}}).encode()
    with pytest.raises(SerializationError):
        json_values.loads(payload, ALLOWED)


@pytest.mark.parametrize("value", [object(), 2**64, {1, object()}, Path], ids=repr)
def test_what_json_cannot_hold_raises_serialization_error(value: Any) -> None:
    with pytest.raises(SerializationError):
        json_values.dumps(value)


def test_allowed_by_name_finds_parametrizations_under_their_generic_name() -> None:
    allowed = json_values.allowed_by_name([Box[str]])
    assert allowed[f"{__name__}.Box"] is Box[str]
    both = json_values.allowed_by_name([Box[str], Box[int]])
    assert both[f"{__name__}.Box"] is Box  # which parametrization is unknowable
    assert json_values.allowed_by_name([Box, Box[str]])[f"{__name__}.Box"] is Box
