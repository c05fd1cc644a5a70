"""The plugin test kit applied to the core's own backends: memory storage, memory locks,
and every built-in serializer."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from moorage.locking import LockManager, MemoryLockManager
from moorage.serializers import (
    CompressedJSONSerializer,
    CompressedPickleSerializer,
    CompressedSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
)
from moorage.storage import MemoryStorage, Storage
from moorage.testing import (
    DEFAULT_GARBAGE,
    DEFAULT_SAMPLES,
    LockManagerContract,
    LockManagerFactory,
    SerializerContract,
    StorageContract,
)

# The broken test plugin warns whenever the registry loads; not this module's concern.
pytestmark = pytest.mark.filterwarnings("ignore:moorage plugin 'broken:RuntimeWarning")

# -- sample types (module level, so the json serializer can find them by name) --------------


class Point(BaseModel):
    x: int
    y: int
    label: str = ""
    tags: list[str] = []


@dataclasses.dataclass
class Item:
    name: str
    quantity: int
    price: Decimal
    added: dt.date


class Money:
    """A plain class: pickle round-trips it, json must refuse it."""

    def __init__(self, amount: Decimal, currency: str) -> None:
        self.amount = amount
        self.currency = currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.amount, self.currency) == (
            other.amount,
            other.currency,
        )

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __repr__(self) -> str:
        return f"Money({self.amount!r}, {self.currency!r})"


UTC_NOON = dt.datetime(2024, 9, 1, 12, 0, 30, 123456, tzinfo=dt.UTC)
PLUS_TWO = dt.datetime(2024, 2, 29, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=2)))

RICH_SAMPLES: tuple[Any, ...] = (
    UTC_NOON,
    PLUS_TWO,
    dt.date(2024, 2, 29),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("1.10"),
    Decimal("-12345678901234567890.000001"),
    {1, 2, "three"},
    (1, "two", 3.0),
    (),
    frozenset({"a", "b"}),
    b"raw \x00\xff bytes",
    Point(x=1, y=-2, label="p", tags=["a", "b"]),
    Item(name="widget", quantity=3, price=Decimal("9.99"), added=dt.date(2024, 1, 2)),
    {
        "when": UTC_NOON,
        "ids": [uuid.UUID(int=1), uuid.UUID(int=2)],
        "point": Point(x=0, y=0),
        "items": (Item("a", 1, Decimal("0.5"), dt.date(2020, 1, 1)),),
        "money": Decimal("0.01"),
        "flags": {True, False},
        "nested": [{"pair": (1, (2, (3,)))}, frozenset({(1, 2)})],
    },
    {1: "int key", (1, 2): "tuple key"},
)


# -- storage ----------------------------------------------------------------------------------


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        storage = MemoryStorage(f"memory://contract-{uuid.uuid4().hex}")
        yield storage
        for key in list(storage.list_paths()):  # free the process-wide space
            storage.delete_path(key)


class TestMemoryStorageWithPrefix(StorageContract):
    """A ``memory://name/prefix`` URL: same contract, keys below a prefix."""

    large_payload_size = 1024 * 1024

    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        storage = MemoryStorage(f"memory://contract-{uuid.uuid4().hex}/some/prefix")
        yield storage
        for key in list(storage.list_paths()):
            storage.delete_path(key)


# -- locks ------------------------------------------------------------------------------------


class TestMemoryLockManager(LockManagerContract):
    @pytest.fixture
    def make_lock_manager(self) -> LockManagerFactory:
        def make(*, hold_timeout: float | None) -> LockManager:
            return MemoryLockManager("memory://", hold_timeout=hold_timeout)

        return make


# -- serializers ------------------------------------------------------------------------------


@pytest.fixture
def allow_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """json reads models and dataclasses only when allowed: here through the setting, so
    a serializer rebuilt from its stored description allows them too."""
    names = [f"{cls.__module__}.{cls.__qualname__}" for cls in (Point, Item)]
    monkeypatch.setenv("MOORAGE_JSON_ALLOWED_CLASSES", json.dumps(names))


class TestPickleSerializer(SerializerContract):
    extra_samples = (*RICH_SAMPLES, Money(Decimal("5.00"), "EUR"), [Money(Decimal(1), "USD")])
    unserializable_samples = (threading.Lock(),)

    @pytest.fixture(params=["cloudpickle", "pickle"])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        return PickleSerializer(picklelib=request.param)


@pytest.mark.usefixtures("allow_samples")
class TestJSONSerializer(SerializerContract):
    extra_samples = RICH_SAMPLES
    unserializable_samples = (object(), Money(Decimal(1), "EUR"), threading.Lock(), 2**70)
    garbage = (
        *DEFAULT_GARBAGE,
        b'{"a": 1',
        # Tagged values must never reach arbitrary callables or classes.
        b'{"__class__": "os.system", "data": "echo pwned"}',
        b'{"__class__": "subprocess.Popen", "data": ["echo", "pwned"]}',
        b'{"__class__": "no_such_module_anywhere.Thing", "data": 1}',
    )

    @pytest.fixture
    def serializer(self) -> Serializer:
        return JSONSerializer()


class TestCompressedSerializer(SerializerContract):
    extra_samples = (*RICH_SAMPLES, b"\x00" * 100_000, "x" * 100_000)
    unserializable_samples = (threading.Lock(),)

    @pytest.fixture(params=["zlib", "lzma", "bz2"])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        return CompressedSerializer(compressionlib=request.param)


@pytest.mark.usefixtures("allow_samples")
class TestCompressedJSONInsideCompressed(SerializerContract):
    """The generic ``compressed`` type wrapping json (not the preset)."""

    extra_samples = RICH_SAMPLES
    unserializable_samples = (object(),)

    @pytest.fixture(params=["zlib", "lzma", "bz2"])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        return CompressedSerializer(serializer=JSONSerializer(), compressionlib=request.param)


class TestCompressedPickleSerializer(SerializerContract):
    extra_samples = (*RICH_SAMPLES, Money(Decimal("5.00"), "EUR"))
    unserializable_samples = (threading.Lock(),)

    @pytest.fixture
    def serializer(self) -> Serializer:
        return CompressedPickleSerializer()


@pytest.mark.usefixtures("allow_samples")
class TestCompressedJSONSerializer(SerializerContract):
    extra_samples = RICH_SAMPLES
    unserializable_samples = (object(),)

    @pytest.fixture
    def serializer(self) -> Serializer:
        return CompressedJSONSerializer()


def test_default_samples_are_json_shaped() -> None:
    """The kit's defaults must be something any JSON-like serializer can hold."""
    for sample in DEFAULT_SAMPLES:
        assert json.loads(json.dumps(sample)) == sample
