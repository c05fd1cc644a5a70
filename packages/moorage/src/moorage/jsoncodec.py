"""The tagged JSON encoding used by the ``json`` serializer.

JSON has no datetimes, UUIDs, sets or models, so such values are written as tagged
objects, the same shape Prefect 3 uses, so either library reads the other's payloads:

- ``{"__class__": "datetime.datetime", "data": "2024-09-01T12:00:00+00:00"}``
- ``{"__exc_type__": "builtins.ValueError", "message": "bad input"}`` for exceptions.

Decoding builds only types it knows (the standard ones below) plus pydantic models,
dataclasses, enums and exceptions named by the tag; any other class name is refused, so a
JSON payload can never make moorage call an arbitrary constructor.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import importlib
import pathlib
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from moorage.errors import SerializationError

__all__ = ["decode", "dumps", "encode", "loads", "qualified_name"]

_SCALARS = (str, int, float, bool, type(None))


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode_bytes(value: bytes) -> str | dict[str, str]:
    """UTF-8 text where possible (as Prefect writes bytes), else ``{"base64": ...}``."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def _decode_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    return base64.b64decode(data["base64"])


def _decode_timedelta(data: Any) -> dt.timedelta:
    if isinstance(data, (int, float)):
        return dt.timedelta(seconds=data)
    from pydantic import TypeAdapter

    return TypeAdapter(dt.timedelta).validate_python(data)  # ISO 8601 "PT1H", as Prefect


def _tag(name: str, data: Any) -> dict[str, Any]:
    return {"__class__": name, "data": data}


# Exact types with a fixed tag: type -> (tag name, encoder of the data).
_ENCODERS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    dt.datetime: ("datetime.datetime", lambda v: v.isoformat()),
    dt.date: ("datetime.date", lambda v: v.isoformat()),
    dt.time: ("datetime.time", lambda v: v.isoformat()),
    dt.timedelta: ("datetime.timedelta", lambda v: v.total_seconds()),
    uuid.UUID: ("uuid.UUID", str),
    Decimal: ("decimal.Decimal", str),
    bytes: ("builtins.bytes", lambda v: _encode_bytes(v)),
    pathlib.PurePosixPath: ("pathlib.PurePosixPath", str),
    pathlib.PosixPath: ("pathlib.Path", str),
    pathlib.PureWindowsPath: ("pathlib.PureWindowsPath", str),
    complex: ("builtins.complex", lambda v: [v.real, v.imag]),
}

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime.datetime": dt.datetime.fromisoformat,
    "datetime.date": dt.date.fromisoformat,
    "datetime.time": dt.time.fromisoformat,
    "datetime.timedelta": lambda d: _decode_timedelta(d),
    "uuid.UUID": uuid.UUID,
    "decimal.Decimal": Decimal,
    "builtins.bytes": lambda d: _decode_bytes(d),
    "pathlib.Path": pathlib.Path,
    "pathlib.PosixPath": pathlib.Path,
    "pathlib.PurePosixPath": pathlib.PurePosixPath,
    "pathlib.PureWindowsPath": pathlib.PureWindowsPath,
    "builtins.complex": lambda d: complex(d[0], d[1]),
}


def encode(obj: Any) -> Any:
    """Turn ``obj`` into plain JSON values, tagging everything JSON cannot hold."""
    t = type(obj)
    if t in _SCALARS:
        return obj
    if t is list:
        return [encode(v) for v in obj]
    if t is dict:
        if (
            all(type(k) is str for k in obj)
            and "__class__" not in obj
            and "__exc_type__" not in obj
        ):
            return {k: encode(v) for k, v in obj.items()}
        return _tag("builtins.dict", [[encode(k), encode(v)] for k, v in obj.items()])
    if t is tuple:
        return _tag("builtins.tuple", [encode(v) for v in obj])
    if t is set or t is frozenset:
        return _tag(f"builtins.{t.__name__}", [encode(v) for v in obj])
    known = _ENCODERS.get(t)
    if known is not None:
        return _tag(known[0], known[1](obj))
    return _encode_other(obj, t)


def _encode_other(obj: Any, t: type) -> Any:
    if isinstance(obj, BaseException):
        return {"__exc_type__": qualified_name(t), "message": str(obj)}
    if isinstance(obj, enum.Enum):
        return _tag(qualified_name(t), encode(obj.value))
    pydantic_dump = getattr(obj, "model_dump", None)
    if pydantic_dump is not None and hasattr(t, "model_validate"):
        return _tag(qualified_name(t), pydantic_dump(mode="json"))
    if dataclasses.is_dataclass(obj):
        fields = {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return _tag(qualified_name(t), fields)
    # Subclasses of containers and scalars (OrderedDict, defaultdict, str enums...).
    base: type[Any]
    for base in (dict, list, tuple, str, int, float):
        if isinstance(obj, base):
            return encode(base(obj))
    raise SerializationError(
        f"the json serializer cannot encode a {qualified_name(t)}; it handles JSON values, "
        "datetimes, UUIDs, Decimals, sets, tuples, bytes, paths, enums, pydantic models and "
        "dataclasses. Use serializer='pickle' for arbitrary objects"
    )


def _resolve_class(name: str) -> type:
    module_name, _, qualname = name.rpartition(".")
    candidates = [(module_name, qualname)]
    # Nested qualnames (Outer.Inner): try shorter module paths.
    parts = name.split(".")
    for i in range(len(parts) - 2, 0, -1):
        candidates.append((".".join(parts[:i]), ".".join(parts[i:])))
    for mod, qual in candidates:
        try:
            target: Any = importlib.import_module(mod)
        except ImportError:
            continue
        try:
            for attr in qual.split("."):
                target = getattr(target, attr)
        except AttributeError:
            continue
        if isinstance(target, type):
            return target
    raise SerializationError(
        f"a JSON payload names the class {name!r}, which cannot be imported here; install "
        "the package that defines it, or read the record where it was written"
    )


def _decode_tag(name: str, data: Any) -> Any:
    known = _DECODERS.get(name)
    if known is not None:
        return known(data)
    if name == "builtins.tuple":
        return tuple(decode(data))
    if name in ("builtins.set", "builtins.frozenset"):
        items = decode(data)
        return set(items) if name == "builtins.set" else frozenset(items)
    if name == "builtins.dict":
        return {decode(k): decode(v) for k, v in data}
    cls = _resolve_class(name)
    if issubclass(cls, enum.Enum):
        return cls(decode(data))
    validate = getattr(cls, "model_validate", None)
    if validate is not None:
        return validate(data)
    if dataclasses.is_dataclass(cls):
        from pydantic import TypeAdapter

        return TypeAdapter(cls).validate_python(decode(data))
    if name.startswith(("datetime.", "uuid.", "decimal.", "pathlib.")):
        from pydantic import TypeAdapter

        return TypeAdapter(cls).validate_python(data)
    raise SerializationError(
        f"refusing to build a {name} from JSON: only standard value types, enums, pydantic "
        "models and dataclasses are decoded. Use serializer='pickle' for other types"
    )


def _decode_exception(name: str, message: str) -> BaseException:
    try:
        cls = _resolve_class(name)
    except SerializationError:
        cls = Exception
    if not issubclass(cls, BaseException):
        cls = Exception
    try:
        return cls(message)
    except Exception:
        return Exception(f"{name}: {message}")


def decode(obj: Any) -> Any:
    """Rebuild tagged values inside parsed JSON."""
    t = type(obj)
    if t is dict:
        if "__class__" in obj and "data" in obj and len(obj) == 2:
            return _decode_tag(obj["__class__"], obj["data"])
        if "__exc_type__" in obj and len(obj) == 2 and "message" in obj:
            return _decode_exception(obj["__exc_type__"], obj["message"])
        return {k: decode(v) for k, v in obj.items()}
    if t is list:
        return [decode(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(encode(obj))
    except TypeError as exc:  # e.g. integers beyond 64 bits
        raise SerializationError(f"the json serializer cannot encode this value: {exc}") from exc


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"payload is not valid JSON: {exc}") from exc
    try:
        return decode(parsed)
    except SerializationError:
        raise
    except Exception as exc:  # a tagged value whose data does not fit its type
        raise SerializationError(f"cannot rebuild a tagged JSON value: {exc!r}") from exc
