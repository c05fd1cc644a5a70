"""Reading never runs code that data names.

A JSON tag (``__class__``, ``__exc_type__``) or a msgpack extension resolves only to the
standard value types and to the classes the reader's configuration allows: reading a
record never imports a module, whatever its format (native, native split, Prefect
combined, Prefect split, raw payload). Modules are planted below the storage root and in
the working directory, both on ``sys.path``; each would leave a marker file if imported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import pickle
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pydantic
import pytest

from moorage import (
    ClassNotAllowed,
    ConfigurationError,
    MoorageError,
    RecordCorrupted,
    SerializationError,
)
from moorage.results import ResultStore
from moorage.serializers import (
    CompressedJSONSerializer,
    CompressedSerializer,
    JSONSerializer,
    Serializer,
)
from moorage.serializers.compression import compression_functions
from moorage.store.memory_cache import ResultCache
from moorage_msgpack import MsgpackSerializer

# -- classes a test allows (module level, so dotted names find them) ------------------------

BUILT: list[str] = []


class Model(pydantic.BaseModel):
    x: int

    @pydantic.field_validator("x")
    @classmethod
    def _count(cls, value: int) -> int:
        BUILT.append("Model")
        return value


@dataclasses.dataclass
class Pair:
    left: int
    right: dt.date


class Colour(enum.Enum):
    RED = "red"


class Oops(Exception):
    pass


ALLOWED = (Model, Pair, Colour, Oops)
VALUE = {"m": Model(x=1), "p": Pair(1, dt.date(2024, 2, 29)), "c": Colour.RED, "e": [1]}


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# -- planted modules ----------------------------------------------------------------------

_MODULE = """\
import pathlib
pathlib.Path({marker!r}).write_text("imported")


class X:
    def __init__(self, *args, **kwargs):
        pathlib.Path({marker!r} + "-built").write_text("built")

    @classmethod
    def model_validate(cls, data):
        return cls()


class E(Exception):
    def __init__(self, *args):
        pathlib.Path({marker!r} + "-raised").write_text("built")
        super().__init__(*args)
"""


@dataclasses.dataclass
class Planted:
    root: Path  # the storage root
    markers: Path
    class_tags: list[str]
    exception_tags: list[str]
    modules: list[str]  # names that must not appear in sys.modules

    def check_nothing_ran(self, before: set[str]) -> None:
        assert sorted(p.name for p in self.markers.iterdir()) == []
        imported = [m for m in set(sys.modules) - before if m.split(".")[0] in self.modules]
        assert imported == []
        assert not any(name in sys.modules for name in self.modules if name not in before)


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Planted]:
    uid = uuid.uuid4().hex[:8]
    root, cwd, markers = tmp_path / "store", tmp_path / "cwd", tmp_path / "markers"
    for folder in (root, cwd, markers):
        folder.mkdir()
    below_root = f"results_{uid}"  # results_<uid>/pwn.py below the storage root
    (root / below_root).mkdir()
    (root / below_root / "pwn.py").write_text(_MODULE.format(marker=str(markers / "root")))
    in_cwd = f"pwn_{uid}"
    (cwd / f"{in_cwd}.py").write_text(_MODULE.format(marker=str(markers / "cwd")))
    # zoneinfo imports ``tzdata`` for a zone it lacks: a planted one must never run.
    (cwd / "tzdata").mkdir()
    (cwd / "tzdata" / "__init__.py").write_text(_MODULE.format(marker=str(markers / "tzdata")))
    monkeypatch.chdir(cwd)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.syspath_prepend(str(cwd))
    before = set(sys.modules)
    yield Planted(
        root=root,
        markers=markers,
        class_tags=[
            f"{below_root}.pwn.X",
            f"{in_cwd}.X",
            "unittest.__main__.X",  # importing it runs test discovery, then SystemExit
            "this.X",
        ],
        exception_tags=[f"{below_root}.pwn.E", f"{in_cwd}.E", "unittest.__main__.E"],
        modules=[below_root, in_cwd, "unittest.__main__", "this", "tzdata"],
    )
    for name in set(sys.modules) - before:
        if name.split(".")[0] in (below_root, in_cwd, "this", "tzdata") or name == (
            "unittest.__main__"
        ):
            del sys.modules[name]


# -- writing a payload as it is, in each record format --------------------------------------

FORMATS = ["native", "native-split", "prefect", "prefect-split", "raw"]


def _store(root: Path, fmt: str, serializer: Serializer | str) -> ResultStore:
    """A store at ``root`` (its metadata storage, when split, beside it)."""
    root.mkdir(exist_ok=True)
    split = fmt.endswith("-split")
    return ResultStore(
        result_storage=root,
        metadata_storage=root.parent / "meta" if split else None,
        record_format="prefect" if fmt.startswith("prefect") else "moorage",
        serializer=serializer,
        cache=ResultCache(),
        cache_result_in_memory=False,
    )


def _write(root: Path, fmt: str, serializer: Serializer, payload: bytes, key: str) -> None:
    """Store ``payload`` as the serializer's output, in the format ``fmt``."""
    if fmt == "raw":
        if isinstance(serializer, CompressedSerializer):
            compress, _ = compression_functions(serializer.compressionlib)
            payload = compress(payload)
        (root / key).write_bytes(payload)
        return
    inner = serializer.serializer if isinstance(serializer, CompressedSerializer) else serializer
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(inner), "dumps", lambda self, obj: obj)
        _store(root, fmt, serializer).write(payload, key=key)


def _read_error(store: ResultStore, key: str) -> BaseException:
    try:
        value = store.read(key).result
    except BaseException as exc:  # SystemExit must not escape either
        return exc
    pytest.fail(f"reading {key!r} returned {value!r}")


JSON_SERIALIZERS = [JSONSerializer, CompressedJSONSerializer]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("make", JSON_SERIALIZERS, ids=["json", "compressed-json"])
def test_json_class_tags_import_nothing(planted: Planted, fmt: str, make: type[Serializer]) -> None:
    before = set(sys.modules)
    for i, tag in enumerate(planted.class_tags):
        key = f"class-{i}"
        payload = json.dumps({"v": [{"__class__": tag, "data": 1}]}).encode()
        _write(planted.root, fmt, make(), payload, key)
        error = _read_error(_store(planted.root, fmt, make()), key)
        assert isinstance(error, ClassNotAllowed), repr(error)
        assert isinstance(error, SerializationError)
        assert isinstance(error, MoorageError)
        assert tag in str(error)
        assert "json_allowed_classes" in str(error)
    planted.check_nothing_ran(before)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("make", JSON_SERIALIZERS, ids=["json", "compressed-json"])
def test_json_exception_tags_import_nothing(
    planted: Planted, fmt: str, make: type[Serializer]
) -> None:
    before = set(sys.modules)
    tags = [*planted.exception_tags, "builtins.SystemExit"]
    payload = json.dumps([{"__exc_type__": tag, "message": "boom"} for tag in tags]).encode()
    _write(planted.root, fmt, make(), payload, "exc")
    values = _store(planted.root, fmt, make()).read("exc").result
    assert [(type(v), str(v)) for v in values] == [(Exception, "boom")] * len(tags)
    planted.check_nothing_ran(before)


def test_a_record_cannot_allow_classes_itself(planted: Planted) -> None:
    """A stored serializer description that lists allowed classes widens nothing."""
    before = set(sys.modules)
    tag = planted.class_tags[0]
    described = {"type": "json", "allowed_classes": [tag.rpartition(".")[0] + ".X"]}
    record = {
        "metadata": {
            "storage_key": "k",
            "expiration": None,
            "serializer": described,
            "prefect_version": "3.9.1",
            "storage_block_id": None,
        },
        "result": json.dumps({"__class__": tag, "data": 1}),
    }
    (planted.root / "k").write_bytes(json.dumps(record).encode())
    error = _read_error(_store(planted.root, "prefect", "pickle"), "k")
    assert isinstance(error, SerializationError), repr(error)
    planted.check_nothing_ran(before)


def test_msgpack_extensions_import_nothing(planted: Planted) -> None:
    before = set(sys.modules)
    zoned = msgpack.ExtType(1, b"2024-01-01T00:00:00+00:00[Nowhere/Planted_Zone]")
    unknown = msgpack.ExtType(99, planted.class_tags[0].encode())
    for fmt in ("native", "native-split", "raw"):  # Prefect's format has no msgpack
        _write(planted.root, fmt, MsgpackSerializer(), msgpack.packb([zoned]), f"{fmt}-zone")
        value = _store(planted.root, fmt, "msgpack").read(f"{fmt}-zone").result
        assert value == [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]
        _write(planted.root, fmt, MsgpackSerializer(), msgpack.packb([unknown]), f"{fmt}-ext")
        error = _read_error(_store(planted.root, fmt, "msgpack"), f"{fmt}-ext")
        assert isinstance(error, MoorageError), repr(error)
    planted.check_nothing_ran(before)


# -- allowed classes ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["native", "native-split", "prefect", "prefect-split"])
@pytest.mark.parametrize("by", ["class", "dotted name"])
def test_allowed_classes_round_trip(tmp_path: Path, fmt: str, by: str) -> None:
    root = tmp_path / "store"
    allowed = ALLOWED if by == "class" else [_dotted(cls) for cls in ALLOWED]
    for serializer in (
        JSONSerializer(allowed_classes=allowed),
        CompressedSerializer(serializer=JSONSerializer(allowed_classes=allowed)),
    ):
        store = _store(root, fmt, serializer)
        store.write(VALUE, key="v")
        back = store.read("v").result
        assert back == VALUE
        assert type(back["m"]) is Model
        assert type(back["p"]) is Pair
        # Nothing about the allowance is stored: the record names the plain type.
        assert "allowed_classes" not in serializer.to_dict()
        error = _read_error(_store(root, fmt, "json"), "v")
        assert isinstance(error, SerializationError), repr(error)


def test_dotted_names_resolve_when_configured() -> None:
    assert JSONSerializer(allowed_classes=[_dotted(Model)]).allowed_classes == (Model,)
    assert JSONSerializer(allowed_classes=_dotted(Model)).allowed_classes == (Model,)
    assert Serializer(type="json", allowed_classes=[Pair]).trusted_classes() == (Pair,)
    for bad, says in [
        ("no_such_package_anywhere.Thing", "cannot be found"),
        (f"{__name__}.NoSuchClass", "cannot be found"),
        ("Thing", "not a dotted name"),
        ("os.path.join", "not a class"),
        (42, "classes or dotted names"),
    ]:
        with pytest.raises(ConfigurationError, match=says):
            JSONSerializer(allowed_classes=[bad])
    with pytest.raises(ConfigurationError, match="no_such_package_anywhere"):
        ResultStore(serializer=JSONSerializer(allowed_classes=["no_such_package_anywhere.X"]))


def test_allowed_exception_comes_back_as_itself() -> None:
    serializer = JSONSerializer(allowed_classes=[Oops])
    back = serializer.loads(serializer.dumps([Oops("bad"), ValueError("v")]))
    assert [(type(e), str(e)) for e in back] == [(Oops, "bad"), (ValueError, "v")]
    plain = JSONSerializer().loads(serializer.dumps(Oops("bad")))
    assert (type(plain), str(plain)) == (Exception, "bad")


def test_not_allowed_models_are_never_built() -> None:
    data = JSONSerializer().dumps(Model(x=1))
    BUILT.clear()
    with pytest.raises(SerializationError, match="json_allowed_classes"):
        JSONSerializer().loads(data)
    assert BUILT == []
    back = JSONSerializer(allowed_classes=[Model]).loads(data)
    assert BUILT == ["Model"]
    assert type(back) is Model
    assert back.x == 1


def test_setting_allows_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path /= "store"
    monkeypatch.setenv("MOORAGE_JSON_ALLOWED_CLASSES", json.dumps([_dotted(c) for c in ALLOWED]))
    assert JSONSerializer().allowed_classes == ALLOWED
    _store(tmp_path, "native", "json").write(VALUE, key="v")
    assert _store(tmp_path, "native", "json").read("v").result == VALUE
    # A reader whose serializer has no list of its own (pickle) uses the setting too.
    assert _store(tmp_path, "native", "pickle").read("v").result == VALUE
    # An explicit list replaces the setting.
    error = _read_error(_store(tmp_path, "native", JSONSerializer(allowed_classes=[])), "v")
    assert isinstance(error, SerializationError)


def test_setting_with_a_bad_name_fails_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_JSON_ALLOWED_CLASSES", '["no_such_package_anywhere.Thing"]')
    with pytest.raises(ConfigurationError) as info:
        ResultStore(serializer="json")
    message = str(info.value)
    assert "MOORAGE_JSON_ALLOWED_CLASSES" in message
    assert "no_such_package_anywhere.Thing" in message


def test_allowed_classes_travel_with_the_serializer() -> None:
    serializer = JSONSerializer(allowed_classes=[Model])
    assert pickle.loads(pickle.dumps(serializer)) == serializer
    assert serializer.to_dict() == {"type": "json"}


# -- damaged Prefect records ---------------------------------------------------------------

_META = {
    "storage_key": "/elsewhere/k",
    "expiration": None,
    "serializer": {"type": "json"},
    "prefect_version": "3.9.1",
    "storage_block_id": None,
}


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"metadatA": _META, "result": "1"}, "metadatA"),
        ({"Metadata": _META, "result": "1"}, "Metadata"),
        ({"metadata": _META, "resullt": "1"}, "resullt"),
        ({"metadata": {**_META, "serializer": "json"}, "result": "1"}, "metadata"),
        ({"metadata": _META, "result": "1", "extra": 2}, "extra"),
    ],
)
def test_damaged_prefect_record_is_corrupted(
    tmp_path: Path, document: dict[str, Any], named: str
) -> None:
    tmp_path /= "store"
    tmp_path.mkdir()
    (tmp_path / "k").write_bytes(json.dumps(document).encode())
    with pytest.raises(RecordCorrupted) as info:
        _store(tmp_path, "native", "json").read("k")
    assert "'k'" in str(info.value)
    assert named in str(info.value)


def test_raw_json_objects_still_read_whole(tmp_path: Path) -> None:
    tmp_path /= "store"
    tmp_path.mkdir()
    for value in ({"result": 1, "other": 2}, {"metadata": 1}, {"meta": 1, "result": 2}):
        (tmp_path / "k").write_bytes(json.dumps(value).encode())
        assert _store(tmp_path, "native", "json").read("k").result == value
