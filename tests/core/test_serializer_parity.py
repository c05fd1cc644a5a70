"""Serializers give the same answers as Prefect's: generic pydantic models in JSON, the
``picklelib`` check, ``Serializer`` fields in users' models, and serializers that pickle.

Where a test says "fresh process", the value is read by a new interpreter in which the
models' module is importable but not imported, and no parametrized class exists yet.
Set ``MOORAGE_TEST_PREFECT_PYTHON`` to an interpreter with Prefect installed to also
check that Prefect's own JSON serializer reads what moorage writes.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import textwrap
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pydantic
import pytest
from pydantic import BaseModel, ValidationError

from moorage.errors import ClassNotAllowed, MoorageError, SerializationError
from moorage.serializers import (
    CompressedJSONSerializer,
    CompressedPickleSerializer,
    CompressedSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
    coerce_serializer,
)
from moorage.serializers import json_values as jsoncodec

MODELS = """
from __future__ import annotations

import datetime as dt
from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
U = TypeVar("U")


class Box(BaseModel, Generic[T]):
    item: T


class Pair(BaseModel, Generic[T, U]):
    a: T
    b: U


class Plain(BaseModel):
    n: int


PartialBox = Box[list[T]]  # parametrized, and still generic
"""


class Models:
    """The models module, written to a folder of its own and imported here."""

    def __init__(self, folder: Path, name: str, module: types.ModuleType) -> None:
        self.folder = folder
        self.name = name
        self.module = module
        self.Box: Any = module.Box
        self.Pair: Any = module.Pair
        self.Plain: Any = module.Plain


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Models]:
    folder = tmp_path_factory.mktemp("parity-models")
    name = f"parity_models_{uuid.uuid4().hex[:12]}"
    (folder / f"{name}.py").write_text(MODELS)
    sys.path.insert(0, str(folder))
    try:
        yield Models(folder, name, importlib.import_module(name))
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)


def run_python(
    code: str,
    *,
    models: Models | None = None,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    python: str = sys.executable,
) -> Any:
    """Run ``code`` in a fresh interpreter; it prints one JSON line, returned parsed."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    environ["PYTHONWARNINGS"] = "ignore"
    if models is not None:
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(models.folder), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        environ["MODELS"] = models.name
    environ.update(env or {})
    done = subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        input=stdin,
        capture_output=True,
        env=environ,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


# -- 1. JSON and parametrized pydantic generic models ----------------------------------------


def test_a_parametrized_model_is_tagged_by_its_generic_class(models: Models) -> None:
    payload = JSONSerializer().dumps(models.Box[str](item="a"))
    assert json.loads(payload) == {"__class__": f"{models.name}.Box", "data": {"item": "a"}}
    nested = JSONSerializer().dumps([models.Box[models.Box[int]](item=models.Box[int](item=3))])
    assert json.loads(nested) == [
        {"__class__": f"{models.name}.Box", "data": {"item": {"item": 3}}}
    ]
    # A model that is not generic keeps its own name.
    assert json.loads(JSONSerializer().dumps(models.Plain(n=1)))["__class__"] == (
        f"{models.name}.Plain"
    )


def test_the_tag_is_what_prefect_writes(models: Models) -> None:
    # Prefect 3.9.1's prefect_json_object_encoder: {"__class__": to_qualified_name(origin),
    # "data": model_dump(mode="json")} (its _get_importable_class).
    value = models.Pair[int, dt.datetime](a=1, b=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    origin = value.__pydantic_generic_metadata__["origin"]
    prefect = {
        "__class__": f"{origin.__module__}.{origin.__qualname__}",
        "data": value.model_dump(mode="json"),
    }
    assert json.loads(JSONSerializer().dumps(value)) == prefect


def test_generic_models_round_trip_in_this_process(models: Models) -> None:
    Box, Pair = models.Box, models.Pair
    when = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
    payload = JSONSerializer().dumps(
        {"box": Box[str](item="a"), "pair": Pair[int, dt.datetime](a=1, b=when)}
    )

    # The generic classes allowed: the values come back as them, equal (pydantic
    # compares generic models by their generic class and fields). As with Prefect, a
    # field of a parameter's type gets its JSON value (the tag does not say the type).
    by_origin = JSONSerializer(allowed_classes=[Box, Pair]).loads(payload)
    assert by_origin == {"box": Box[str](item="a"), "pair": Pair(a=1, b="2024-09-01T12:00:00Z")}
    assert type(by_origin["box"]) is Box

    # The parametrizations allowed: the values come back as exactly those classes.
    exact = JSONSerializer(allowed_classes=[Box[str], Pair[int, dt.datetime]]).loads(payload)
    assert type(exact["box"]) is Box[str]
    assert type(exact["pair"]) is Pair[int, dt.datetime]
    assert exact["pair"].b == when  # a datetime again, not its ISO text

    # Allowing the generic class itself as well: it is what the tag names, so it wins.
    boxed = JSONSerializer().dumps(Box[str](item="a"))
    assert type(JSONSerializer(allowed_classes=[Box[str], Box]).loads(boxed)) is Box
    assert type(JSONSerializer(allowed_classes=[Box, Box[str]]).loads(boxed)) is Box


def test_two_parametrizations_allowed_build_the_generic_class(models: Models) -> None:
    Box = models.Box
    payload = JSONSerializer().dumps(Box[int](item=1))
    value = JSONSerializer(allowed_classes=[Box[str], Box[int]]).loads(payload)
    assert type(value) is Box  # the tag cannot say which one: neither is guessed
    assert value == Box[int](item=1)


def test_tags_of_earlier_versions_still_read(models: Models) -> None:
    """moorage used to tag ``Box[str]`` values as ``module.Box[str]``."""
    Box = models.Box
    old = json.dumps({"__class__": f"{models.name}.Box[str]", "data": {"item": "a"}}).encode()
    assert type(JSONSerializer(allowed_classes=[Box[str]]).loads(old)) is Box[str]
    assert JSONSerializer(allowed_classes=[Box]).loads(old) == Box(item="a")
    # Only another parametrization allowed: refused, never built as the wrong one.
    for other in (Box[int], models.module.PartialBox):
        with pytest.raises(ClassNotAllowed, match=r"Box\[str\]"):
            JSONSerializer(allowed_classes=[other]).loads(old)
    # A class that is not generic does not stand for "parametrizations" of itself.
    plain = json.dumps({"__class__": f"{models.name}.Plain[int]", "data": {"n": 1}}).encode()
    with pytest.raises(ClassNotAllowed, match=r"Plain\[int\]"):
        JSONSerializer(allowed_classes=[models.Plain]).loads(plain)


FRESH_READER = """
import base64, json, os, sys
from moorage.errors import MoorageError
from moorage.serializers import JSONSerializer

name = os.environ["MODELS"]
payload = sys.stdin.buffer.read()
out = {"imported_before_reading": name in sys.modules}
try:
    mode = os.environ["MODE"]
    if mode == "setting":
        serializer = JSONSerializer()  # the json_allowed_classes setting, from the env
    elif mode == "dotted":
        serializer = JSONSerializer(allowed_classes=[f"{name}.Box", f"{name}.Pair"])
    elif mode == "parametrized":
        import datetime as dt, importlib
        m = importlib.import_module(name)
        serializer = JSONSerializer(allowed_classes=[m.Box[str], m.Pair[int, dt.datetime]])
    else:
        serializer = JSONSerializer()
    value = serializer.loads(payload)
    out["value"] = {
        k: [type(v).__qualname__, v.model_dump(mode="json"), type(v.model_dump()).__name__]
        for k, v in value.items()
    }
    out["pair_b"] = type(value["pair"].b).__name__
except MoorageError as exc:
    out["error"] = [type(exc).__name__, str(exc)]
out["imported"] = name in sys.modules
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode", ["setting", "dotted", "parametrized"])
def test_generic_models_round_trip_in_a_fresh_process(models: Models, mode: str) -> None:
    when = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
    value = {"box": models.Box[str](item="a"), "pair": models.Pair[int, dt.datetime](a=1, b=when)}
    payload = JSONSerializer().dumps(value)
    env = {"MODE": mode}
    if mode == "setting":
        env["MOORAGE_JSON_ALLOWED_CLASSES"] = json.dumps(
            [f"{models.name}.Box", f"{models.name}.Pair"]
        )
    out = run_python(FRESH_READER, models=models, stdin=payload, env=env)
    assert "error" not in out, out
    assert out["imported_before_reading"] is False
    expected_names = (
        ["Box[str]", "Pair[int, datetime]"] if mode == "parametrized" else ["Box", "Pair"]
    )
    assert [out["value"]["box"][0], out["value"]["pair"][0]] == expected_names
    assert out["value"]["box"][1] == {"item": "a"}
    assert out["value"]["pair"][1] == {"a": 1, "b": "2024-09-01T12:00:00Z"}
    # Only the exact parametrization knows that b is a datetime, as with Prefect.
    assert out["pair_b"] == ("datetime" if mode == "parametrized" else "str")


def test_a_fresh_process_imports_nothing_a_tag_names(models: Models) -> None:
    for tag in (f"{models.name}.Box", f"{models.name}.Box[str]"):
        payload = json.dumps({"box": {"__class__": tag, "data": {"item": "a"}}}).encode()
        out = run_python(FRESH_READER, models=models, stdin=payload, env={"MODE": "none"})
        assert out["error"][0] == "ClassNotAllowed", out
        assert tag in out["error"][1]
        assert "json_allowed_classes" in out["error"][1]
        assert out["imported"] is False


#: Reads the JSON with Prefect's JSONSerializer, or (with DECODER=stand-in, or where
#: Prefect is not installed) with a stand-in that decodes tags the way Prefect 3.9.1 does
#: (a fact about its decoder, not its code): the text before the last dot is imported as a
#: module, the rest is taken from it, and the "data" is validated as that class with a
#: pydantic TypeAdapter.
PREFECT_DECODER = """
import importlib, json, sys
from pydantic import TypeAdapter

def tagged(obj):
    if "__class__" not in obj:
        return obj
    module, _, name = obj["__class__"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return TypeAdapter(cls).validate_python(obj["data"])

import os
try:
    if os.environ.get("DECODER") == "stand-in":
        raise ImportError("the stand-in was asked for")
    from prefect.serializers import JSONSerializer
    value = JSONSerializer().loads(sys.stdin.buffer.read())
    by = "prefect"
except ImportError:
    value = json.loads(sys.stdin.buffer.read().decode(), object_hook=tagged)
    by = "stand-in"
print(json.dumps({"by": by, "types": [type(v).__qualname__ for v in value],
                  "data": [v.model_dump(mode="json") for v in value]}))
"""


def _prefect_reads(models: Models, python: str, decoder: str = "prefect") -> dict[str, Any]:
    value = [models.Box[str](item="a"), models.Box[models.Plain](item=models.Plain(n=2))]
    out: dict[str, Any] = run_python(
        PREFECT_DECODER,
        models=models,
        stdin=JSONSerializer().dumps(value),
        python=python,
        env={"DECODER": decoder},
    )
    assert out["types"] == ["Box", "Box"], out
    assert out["data"] == [{"item": "a"}, {"item": {"n": 2}}]
    return out


def test_prefects_decoder_reads_generic_models_moorage_wrote(models: Models) -> None:
    assert _prefect_reads(models, sys.executable, decoder="stand-in")["by"] == "stand-in"


#: An interpreter with Prefect installed: MOORAGE_TEST_PREFECT_PYTHON, else this one when
#: it has Prefect (the bench environment does). Read when the module is imported: each
#: test runs with the MOORAGE_ variables cleared.
PREFECT_PYTHON = os.environ.get("MOORAGE_TEST_PREFECT_PYTHON") or (
    sys.executable if importlib.util.find_spec("prefect") is not None else None
)


@pytest.mark.skipif(
    not PREFECT_PYTHON,
    reason="no Prefect here, and MOORAGE_TEST_PREFECT_PYTHON names no interpreter with it",
)
def test_prefect_itself_reads_generic_models_moorage_wrote(models: Models) -> None:
    assert PREFECT_PYTHON is not None
    assert _prefect_reads(models, PREFECT_PYTHON)["by"] == "prefect"


def test_moorage_reads_generic_models_prefect_wrote(models: Models) -> None:
    # Exactly the bytes Prefect 3.9.1's JSONSerializer writes for Box[str](item="a") and
    # Pair[int, datetime](...) (json.dumps, with its spaces).
    m = models.name
    written = (
        f'{{"box": {{"__class__": "{m}.Box", "data": {{"item": "a"}}}}, '
        f'"pair": {{"__class__": "{m}.Pair", "data": {{"a": 1, "b": "2024-09-01T12:00:00Z"}}}}}}'
    )
    out = run_python(
        FRESH_READER, models=models, stdin=written.encode(), env={"MODE": "parametrized"}
    )
    assert out["value"]["box"][0] == "Box[str]"
    assert out["pair_b"] == "datetime"


MALFORMED = [
    "Box",
    "",
    ".Box",
    "Box.",
    "a..Box",
    "!!",
    "1mod.Box",
    "mod.Bo x",
    " mod.Box",
    "mod.Box[str",
    "mod.Box]",
    "[str]",
    "mod.",
    "..",
    "mod.Box[str]x",
]


@pytest.mark.parametrize("tag", MALFORMED)
def test_a_malformed_tag_fails_with_the_documented_error(tag: str) -> None:
    payload = json.dumps([{"__class__": tag, "data": 1}]).encode()
    for serializer in (JSONSerializer(), CompressedJSONSerializer().serializer):
        with pytest.raises(ClassNotAllowed) as caught:
            serializer.loads(payload)
        error = caught.value
        assert isinstance(error, SerializationError)
        assert isinstance(error, MoorageError)
        assert not isinstance(error, ValueError)
        assert repr(tag) in str(error)
        assert "malformed" in str(error)
        assert "module.QualName" in str(error)
    with pytest.raises(ClassNotAllowed, match="malformed"):
        jsoncodec.decode({"__class__": tag, "data": 1})


def test_a_well_formed_tag_is_refused_as_not_allowed_not_as_malformed() -> None:
    payload = json.dumps({"__class__": "myapp.models.Point", "data": 1}).encode()
    with pytest.raises(ClassNotAllowed, match="not allowed") as caught:
        JSONSerializer().loads(payload)
    assert "malformed" not in str(caught.value)


class _Local(BaseModel):
    n: int


def test_a_class_defined_in_a_function_still_reads() -> None:
    def make() -> type[BaseModel]:
        class Inner(BaseModel):
            n: int

        return Inner

    Inner = make()
    payload = JSONSerializer().dumps([Inner(n=1), _Local(n=2)])
    assert "<locals>" in payload.decode()
    assert JSONSerializer(allowed_classes=[Inner, _Local]).loads(payload) == [
        Inner(n=1),
        _Local(n=2),
    ]


# -- 2. PickleSerializer(picklelib=...) -------------------------------------------------------


def test_picklelib_fields_match_prefect() -> None:
    assert PickleSerializer().to_dict() == {
        "type": "pickle",
        "picklelib": "cloudpickle",
        "picklelib_version": None,
    }
    described = {"type": "pickle", "picklelib": "pickle", "picklelib_version": "4.0"}
    assert coerce_serializer(described).to_dict() == described
    assert PickleSerializer(picklelib="pickle", picklelib_version="4.0").to_dict() == described


def test_an_unsupported_picklelib_fails_at_construction() -> None:
    with pytest.raises(SerializationError) as caught:
        PickleSerializer(picklelib="marshal")  # has dumps and loads, but is no pickle
    assert "'marshal'" in str(caught.value)
    assert "cloudpickle, pickle, dill" in str(caught.value)
    with pytest.raises(SerializationError, match="'json'"):
        PickleSerializer(picklelib="json")


def test_a_picklelib_that_is_not_installed_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dill", None)  # import dill -> ImportError
    with pytest.raises(
        SerializationError, match=r"picklelib 'dill' is not installed: pip install dill"
    ):
        PickleSerializer(picklelib="dill")


@pytest.mark.parametrize("present", [(), ("dumps",), ("loads",), ("dumps=1", "loads")])
def test_a_picklelib_without_dumps_and_loads_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch, present: tuple[str, ...]
) -> None:
    shadow = types.ModuleType("dill")
    shadow.__file__ = "/somewhere/dill.py"
    for name in present:
        attr, _, plain = name.partition("=")
        setattr(shadow, attr, 1 if plain else (lambda *a, **k: b""))
    monkeypatch.setitem(sys.modules, "dill", shadow)
    with pytest.raises(SerializationError) as caught:
        PickleSerializer(picklelib="dill")
    message = str(caught.value)
    assert "'dill'" in message
    assert "/somewhere/dill.py" in message
    for function in ("dumps", "loads"):
        callable_present = function in present
        assert (
            function in message.split("has no callable")[1].split(":")[0]
        ) is not callable_present


def test_a_picklelib_named_by_a_record_is_checked_when_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A record's metadata stays readable, and reading it imports nothing it names.
    monkeypatch.delitem(sys.modules, "this", raising=False)
    described = coerce_serializer({"type": "pickle", "picklelib": "this"})
    nested = coerce_serializer(
        {"type": "compressed", "serializer": {"type": "pickle", "picklelib": "this"}}
    )
    assert "this" not in sys.modules
    for serializer in (described, nested):
        with pytest.raises(SerializationError, match="picklelib 'this' is not supported"):
            serializer.dumps(1)
    assert "this" not in sys.modules


# -- 3. Serializer fields in users' models ----------------------------------------------------


class Config(BaseModel):
    s: Serializer


class PickleConfig(BaseModel):
    s: PickleSerializer


def _msgpack() -> type[Serializer]:
    return pytest.importorskip("moorage_msgpack").MsgpackSerializer  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("json", lambda: JSONSerializer()),
        ("pickle", lambda: PickleSerializer()),
        ("compressed", lambda: CompressedSerializer()),
        ("compressed/pickle", lambda: CompressedPickleSerializer()),
        ("compressed/json", lambda: CompressedJSONSerializer()),
        ("msgpack", lambda: _msgpack()()),
        ({"type": "json"}, lambda: JSONSerializer()),
        ({"type": "pickle", "picklelib": "pickle"}, lambda: PickleSerializer(picklelib="pickle")),
        (
            {"type": "compressed", "serializer": "json", "compressionlib": "zlib"},
            lambda: CompressedSerializer(serializer=JSONSerializer(), compressionlib="zlib"),
        ),
        ({"type": "msgpack", "strict_types": False}, lambda: _msgpack()(strict_types=False)),
    ],
)
def test_a_serializer_field_takes_a_type_name_or_a_description(given: Any, expected: Any) -> None:
    want = expected()
    for config in (
        Config(s=given),
        Config.model_validate({"s": given}),
        Config.model_validate_json(json.dumps({"s": given})),
    ):
        assert type(config.s) is type(want)
        assert config.s == want
        config.s.loads(config.s.dumps([1, "a"]))


def test_a_serializer_field_dumps_the_whole_description() -> None:
    if tuple(int(p) for p in pydantic.VERSION.split(".")[:2]) < (2, 14):
        pytest.skip("polymorphic serialization needs pydantic 2.14")
    config = Config(
        s={"type": "compressed", "serializer": {"type": "pickle", "picklelib": "pickle"}}
    )
    assert config.model_dump()["s"] == {
        "type": "compressed",
        "serializer": {"type": "pickle", "picklelib": "pickle", "picklelib_version": None},
        "compressionlib": "lzma",
    }
    assert Config.model_validate_json(config.model_dump_json()) == config


def test_a_serializer_field_refuses_what_is_no_serializer() -> None:
    with pytest.raises(SerializationError, match="'no-such-type'"):
        Config(s="no-such-type")
    with pytest.raises(SerializationError, match="needs a type"):
        Config(s={})
    with pytest.raises(ValidationError):
        Config(s=5)
    with pytest.raises(ValidationError, match="bogus"):
        Config(s={"type": "pickle", "bogus": 1})
    with pytest.raises(SerializationError, match="picklelib 'marshal'"):
        Config(s={"type": "pickle", "picklelib": "marshal"})


def test_a_field_of_a_serializer_class_takes_only_that_class() -> None:
    assert PickleConfig(s="pickle").s == PickleSerializer()
    assert PickleConfig(s={"picklelib": "pickle"}).s == PickleSerializer(picklelib="pickle")
    with pytest.raises(SerializationError, match="not a PickleSerializer"):
        PickleConfig(s="json")
    with pytest.raises(SerializationError, match="not a PickleSerializer"):
        PickleSerializer(type="json")  # used to return a JSONSerializer never initialized


def test_serializer_fields_of_moorage_still_take_everything() -> None:
    from moorage.records.metadata import ResultRecordMetadata

    meta = ResultRecordMetadata(storage_key="k", serializer="compressed/json")
    assert meta.serializer == CompressedJSONSerializer()
    dumped = meta.model_dump(mode="json")
    assert dumped["serializer"]["serializer"] == {"type": "json"}
    assert ResultRecordMetadata.model_validate(dumped).serializer == CompressedJSONSerializer()


# -- 4. Serializers pickle, and compare by configuration --------------------------------------


SERIALIZERS = [
    "PickleSerializer()",
    "PickleSerializer(picklelib='pickle', picklelib_version='1')",
    "JSONSerializer()",
    "JSONSerializer(allowed_classes=['datetime.timezone'])",
    "Serializer(type='json', jsonlib='json')",
    "CompressedSerializer()",
    "CompressedSerializer(serializer='json', compressionlib='zlib')",
    "CompressedPickleSerializer()",
    "CompressedJSONSerializer(compressionlib='bz2')",
    "MsgpackSerializer()",
    "MsgpackSerializer(strict_types=False)",
]

PICKLED_READER = """
import base64, datetime as dt, json, pickle, sys
from moorage.serializers import *
from moorage_msgpack import MsgpackSerializer

cases = json.loads(sys.stdin.read())
out = []
for case in cases:
    copy = pickle.loads(base64.b64decode(case["pickled"]))
    fresh = eval(case["expr"])
    value = {"n": 1, "when": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "t": (1, 2)}
    out.append({
        "expr": case["expr"],
        "class": type(copy).__name__,
        "equal": copy == fresh and fresh == copy,
        "hash": hash(copy) == hash(fresh),
        "description": copy.to_dict(),
        "round_trip": copy.loads(copy.dumps(value)) == value,
        "reads_parent": copy.loads(base64.b64decode(case["payload"])) == value,
        "repickles": pickle.loads(pickle.dumps(copy)) == copy,
    })
print(json.dumps(out))
"""


def _build(expr: str) -> Serializer:
    from moorage_msgpack import MsgpackSerializer

    names = {**globals(), "MsgpackSerializer": MsgpackSerializer}
    built: Serializer = eval(expr, names)
    return built


@pytest.mark.parametrize("lib", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])
def test_serializers_pickle_and_work_in_a_fresh_process(lib: types.ModuleType) -> None:
    pytest.importorskip("moorage_msgpack")
    value = {"n": 1, "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "t": (1, 2)}
    cases = []
    for expr in SERIALIZERS:
        serializer = _build(expr)
        payload = serializer.dumps(value)
        assert serializer.loads(payload) == value  # used (caches filled) before pickling
        cases.append(
            {
                "expr": expr,
                "pickled": base64.b64encode(lib.dumps(serializer)).decode(),
                "payload": base64.b64encode(payload).decode(),
                "description": serializer.to_dict(),
                "class": type(serializer).__name__,
            }
        )
    out = run_python(PICKLED_READER, stdin=json.dumps(cases).encode())
    assert [o["expr"] for o in out] == SERIALIZERS
    for case, got in zip(cases, out, strict=True):
        assert got == {
            "expr": case["expr"],
            "class": case["class"],
            "equal": True,
            "hash": True,
            "description": case["description"],
            "round_trip": True,
            "reads_parent": True,
            "repickles": True,
        }


@pytest.mark.parametrize("expr", SERIALIZERS)
def test_a_serializer_pickles_after_use_and_copies(expr: str) -> None:
    pytest.importorskip("moorage_msgpack")
    serializer = _build(expr)
    serializer.loads(serializer.dumps([1]))
    for variant in (
        serializer,
        serializer.with_trusted_classes((dt.timezone,)),
        serializer.model_copy(),
    ):
        for lib in (pickle, cloudpickle):
            copy = lib.loads(lib.dumps(variant))
            assert copy == variant
            assert type(copy) is type(variant)
            assert copy.loads(copy.dumps([1])) == [1]


def test_serializers_compare_by_configuration() -> None:
    assert (
        PickleSerializer() == PickleSerializer(picklelib="cloudpickle") == Serializer(type="pickle")
    )
    assert PickleSerializer() != PickleSerializer(picklelib="pickle")
    assert PickleSerializer() != PickleSerializer(picklelib_version="3.1")
    assert JSONSerializer() == Serializer(type="json") == coerce_serializer({"type": "json"})
    assert JSONSerializer() != JSONSerializer(allowed_classes=[dt.timezone])
    assert CompressedSerializer() == CompressedSerializer(serializer="pickle")
    assert CompressedSerializer() != CompressedSerializer(compressionlib="zlib")
    assert CompressedSerializer() != CompressedPickleSerializer()  # another type
    assert hash(CompressedSerializer(serializer="json")) == hash(
        CompressedSerializer(serializer=JSONSerializer())
    )
    assert (
        len({PickleSerializer(), Serializer(type="pickle"), PickleSerializer(picklelib="pickle")})
        == 2
    )


def test_a_store_checks_a_configured_picklelib_at_once() -> None:
    from moorage import ResultStore, SerializationError

    with pytest.raises(SerializationError, match="'marshal' is not supported"):
        ResultStore(
            result_storage="memory://p", serializer={"type": "pickle", "picklelib": "marshal"}
        )
    nested = {"type": "compressed", "serializer": {"type": "pickle", "picklelib": "marshal"}}
    with pytest.raises(SerializationError, match="marshal"):
        ResultStore(result_storage="memory://p", serializer=nested)
    store = ResultStore(
        result_storage="memory://p", serializer={"type": "pickle", "picklelib": "pickle"}
    )
    store.write([1], key="k")
    assert store.read("k").result == [1]
