"""The serializer contract kit applied to the msgpack serializer."""

from __future__ import annotations

import collections
import enum
import threading

import msgpack
import pytest

from moorage.serializers import Serializer
from moorage.testing import DEFAULT_GARBAGE, SerializerContract
from moorage_msgpack import ExtCode, MsgpackSerializer

from .samples import RICH

# The suite's broken test plugin warns whenever the registry loads; not this module's concern.
pytestmark = pytest.mark.filterwarnings("ignore:moorage plugin 'broken:RuntimeWarning")


class Colour(enum.Enum):
    RED = "red"


class Plain:
    """A class of no supported type: only pickle stores it."""


GARBAGE = (
    *DEFAULT_GARBAGE,
    b"\x92\x01",  # an array of two items with one of them
    msgpack.packb(msgpack.ExtType(99, b"future")),  # a code no version assigns yet
    msgpack.packb([msgpack.ExtType(ExtCode.UUID, b"too short")]),
    msgpack.packb(msgpack.ExtType(ExtCode.DECIMAL, b"1.2.3")),
    msgpack.packb(msgpack.ExtType(ExtCode.DATETIME, msgpack.packb([2024, 13, 1]))),
    msgpack.packb(msgpack.ExtType(ExtCode.BIGINT, b"")),
    msgpack.packb(msgpack.ExtType(ExtCode.TIMEDELTA, b"\x00" * 11)),
    msgpack.packb([msgpack.ExtType(ExtCode.TUPLE, b"data")]),  # a marker has no data
    msgpack.packb([1, msgpack.ExtType(ExtCode.TUPLE, b"")]),  # a marker must come first
    msgpack.packb([msgpack.ExtType(ExtCode.SET, b""), [1], [2]]),  # unhashable members
    bytes.fromhex("81 92 c70008 9101 00"),  # {([1],): 0}: an unhashable key
)


class TestMsgpackSerializer(SerializerContract):
    extra_samples = RICH
    garbage = GARBAGE
    unserializable_samples = (
        object(),
        Plain(),
        threading.Lock(),
        Colour.RED,
        collections.OrderedDict(a=1),  # a subclass: refused with strict_types
        [1, {"deep": (2, {3, Plain()})}],
        "lone surrogate \ud800",
    )

    @pytest.fixture
    def serializer(self) -> Serializer:
        return MsgpackSerializer()


class TestMsgpackSerializerLenient(SerializerContract):
    """``strict_types=False`` keeps the contract, and its description round-trips."""

    extra_samples = RICH
    garbage = GARBAGE
    unserializable_samples = (object(), Plain(), Colour.RED)

    @pytest.fixture
    def serializer(self) -> Serializer:
        return Serializer(type="msgpack", strict_types=False)
