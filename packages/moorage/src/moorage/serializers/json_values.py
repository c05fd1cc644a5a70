"""The tagged JSON encoding used by the ``json`` serializer.

JSON has no datetimes, UUIDs, sets or models, so such values are written as tagged
objects, the same shape Prefect 3 uses, so either library reads the other's payloads:

- ``{"__class__": "datetime.datetime", "data": "2024-09-01T12:00:00+00:00"}``
- ``{"__exc_type__": "builtins.ValueError", "message": "bad input"}`` for exceptions.

Decoding never imports a module. A tag resolves only to the standard value types below
and to the classes the caller allows (``allowed``: pydantic models, dataclasses, enums,
exceptions), looked up by their ``module.QualName``; any other tag is refused
(`ClassNotAllowed`, which also says when the tag is no ``module.QualName`` at all), and
an exception whose class is neither a built-in exception nor allowed comes back as a
plain `Exception` with its message.

A parametrized pydantic model (``Box[str]``) is tagged with its generic class's name
(``module.Box``), an importable name, as Prefect writes it; a reader that allows
``Box[str]`` gets that class back, one that allows ``Box`` gets a ``Box``.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import datetime as dt
import decimal
import enum
import pathlib
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType, ModuleType
from typing import Any

import orjson

from moorage.buffers import BytesLike
from moorage.errors import ClassNotAllowed, SerializationError
from moorage.serializers.failures import serialization_errors

__all__ = [
    "allowed_by_name",
    "decode",
    "dumps",
    "encode",
    "generic_origin",
    "loads",
    "qualified_name",
    "tag_name",
]

_SCALARS = (str, int, float, bool, type(None))


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def generic_origin(cls: type) -> type | None:
    """The generic class a parametrized pydantic model was made from (``Model`` for
    ``Model[str]``), or None when ``cls`` is not a parametrized pydantic model."""
    metadata = getattr(cls, "__pydantic_generic_metadata__", None)
    origin = metadata.get("origin") if isinstance(metadata, Mapping) else None
    return origin if isinstance(origin, type) and origin is not cls else None


def tag_name(cls: type) -> str:
    """The ``__class__`` tag of a value of class ``cls``: its ``module.QualName``; for a
    parametrized pydantic model (``Model[str]``), the name of its generic class
    (``module.Model``), an importable name, which is what Prefect writes too."""
    return qualified_name(generic_origin(cls) or cls)


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
        return _tag(tag_name(t), pydantic_dump(mode="json"))
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


#: Classes a tag may name, by their ``module.QualName``: what the caller allows.
Allowed = Mapping[str, type]

_NOTHING_ALLOWED: Allowed = MappingProxyType({})

#: Modules whose other classes are validated with pydantic (``datetime.timezone``...).
#: Each is imported by this module already: a tag names an attribute, never a module.
_STANDARD_MODULES: dict[str, ModuleType] = {
    "datetime": dt,
    "uuid": uuid,
    "decimal": decimal,
    "pathlib": pathlib,
}

#: The setting that allows classes, named in error messages.
ALLOW_HINT = (
    "allow the class with JSONSerializer(allowed_classes=[...]) or the json_allowed_classes "
    "setting (classes or dotted names)"
)


def allowed_by_name(classes: Iterable[type]) -> Allowed:
    """The tag-to-class mapping for ``classes``: each under its ``module.QualName``.

    A parametrized pydantic model (``Model[str]``) is also found under the tag its values
    carry, its generic class's name (``module.Model``), unless that class is allowed
    itself. When several parametrizations of one class are allowed, and not the class
    itself, that tag cannot say which one a value had: it builds the generic class."""
    by_name: dict[str, type] = {}
    by_origin: dict[str, type] = {}
    for cls in classes:
        by_name[qualified_name(cls)] = cls
        origin = generic_origin(cls)
        if origin is not None:
            name = qualified_name(origin)
            by_origin[name] = cls if by_origin.get(name, cls) is cls else origin
    for name, cls in by_origin.items():
        by_name.setdefault(name, cls)
    return MappingProxyType(by_name)


def _standard_class(name: str) -> type | None:
    """``datetime.X``, ``uuid.X``, ``decimal.X``, ``pathlib.X`` (also ``pathlib._local.X``,
    as Python 3.13 names path classes): a class of a module already imported, or None."""
    module_name, _, attr = name.partition(".")
    if module_name == "pathlib" and attr.startswith("_local."):
        attr = attr[len("_local.") :]
    module = _STANDARD_MODULES.get(module_name)
    if module is None or not attr.isidentifier() or attr.startswith("_"):
        return None
    found = getattr(module, attr, None)
    return found if isinstance(found, type) else None


def _decode_tag(name: Any, data: Any, allowed: Allowed) -> Any:
    if not isinstance(name, str):
        raise SerializationError(f"a JSON payload holds a __class__ tag that is not text: {name!r}")
    known = _DECODERS.get(name)
    if known is not None:
        return known(data)
    if name == "builtins.tuple":
        return tuple(decode(data, allowed))
    if name in ("builtins.set", "builtins.frozenset"):
        items = decode(data, allowed)
        return set(items) if name == "builtins.set" else frozenset(items)
    if name == "builtins.dict":
        return {decode(k, allowed): decode(v, allowed) for k, v in data}
    cls = allowed.get(name) or _allowed_generic(name, allowed)
    if cls is None:
        standard = _standard_class(name)
        if standard is not None:
            from pydantic import TypeAdapter

            return TypeAdapter(standard).validate_python(data)
        if not _well_formed(name):
            raise ClassNotAllowed(
                f"a JSON payload holds the malformed class tag {name!r}: a tag names a class "
                "as 'module.QualName' (such as 'myapp.models.Point'), so no class is built "
                "from it. The payload was not written by moorage's or Prefect's json "
                "serializer, or it was altered: check what wrote it, and read it with the "
                "serializer that wrote it (json_allowed_classes cannot allow such a name)"
            )
        raise ClassNotAllowed(
            f"refusing to build a {name} from JSON: the class is not allowed, and reading a "
            f"payload never imports a module; {ALLOW_HINT}, or use serializer='pickle'"
        )
    if issubclass(cls, enum.Enum):
        return cls(decode(data, allowed))
    validate = getattr(cls, "model_validate", None)
    if validate is not None:
        return validate(data)
    if dataclasses.is_dataclass(cls):
        from pydantic import TypeAdapter

        return TypeAdapter(cls).validate_python(decode(data, allowed))
    raise SerializationError(
        f"refusing to build a {name} from JSON: only standard value types, enums, pydantic "
        "models and dataclasses are decoded. Use serializer='pickle' for other types"
    )


def _qualname_parts(name: str) -> list[str] | None:
    """The dot-separated parts of ``module.QualName``, or None when ``name`` is not one
    (a class defined in a function has ``<locals>`` in its qualified name)."""
    parts = name.split(".")
    if len(parts) < 2 or not all(p.isidentifier() or p == "<locals>" for p in parts):
        return None
    return parts


def _well_formed(name: str) -> bool:
    """``module.QualName``, or ``module.QualName[...]`` (a parametrized pydantic model, as
    moorage tagged them before tagging them by their generic class)."""
    base, bracket, _ = name.partition("[")
    return _qualname_parts(base) is not None and (not bracket or name.endswith("]"))


def _allowed_generic(name: str, allowed: Allowed) -> type | None:
    """For a tag naming a parametrization (``module.Model[str]``) the reader does not
    allow as such: the generic class ``module.Model``, if the reader allows it."""
    base, bracket, _ = name.partition("[")
    if not bracket or not name.endswith("]"):
        return None
    cls = allowed.get(base)
    metadata = getattr(cls, "__pydantic_generic_metadata__", None)
    if cls is None or not isinstance(metadata, Mapping) or generic_origin(cls) is not None:
        return None  # not allowed, not a pydantic model, or a parametrization itself
    return cls if metadata.get("parameters") else None


def _exception_class(name: Any, allowed: Allowed) -> type[BaseException] | None:
    cls = allowed.get(name) if isinstance(name, str) else None
    if cls is None and isinstance(name, str) and name.startswith("builtins."):
        found = getattr(builtins, name[len("builtins.") :], None)
        cls = found if isinstance(found, type) and issubclass(found, Exception) else None
    return cls if cls is not None and issubclass(cls, BaseException) else None


def _decode_exception(name: Any, message: Any, allowed: Allowed) -> BaseException:
    cls = _exception_class(name, allowed)
    if cls is None:
        return Exception(message)
    try:
        return cls(message)
    except Exception:
        return Exception(f"{name}: {message}")


def decode(obj: Any, allowed: Allowed = _NOTHING_ALLOWED) -> Any:
    """Rebuild tagged values inside parsed JSON; classes only from ``allowed``."""
    t = type(obj)
    if t is dict:
        if "__class__" in obj and "data" in obj and len(obj) == 2:
            return _decode_tag(obj["__class__"], obj["data"], allowed)
        if "__exc_type__" in obj and len(obj) == 2 and "message" in obj:
            return _decode_exception(obj["__exc_type__"], obj["message"], allowed)
        return {k: decode(v, allowed) for k, v in obj.items()}
    if t is list:
        return [decode(v, allowed) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """``obj`` as JSON bytes; `SerializationError` for what JSON cannot hold (integers
    beyond 64 bits, say)."""
    with serialization_errors(lambda exc: f"the json serializer cannot encode this value: {exc}"):
        return orjson.dumps(encode(obj))


def loads(data: BytesLike | str, allowed: Allowed = _NOTHING_ALLOWED) -> Any:
    """Parse and decode a payload; tags may name only the standard types and ``allowed``."""
    with serialization_errors(lambda exc: f"payload is not valid JSON: {exc}"):
        parsed = orjson.loads(data)
    # A tagged value whose data does not fit its type fails in its type's own way.
    with serialization_errors(lambda exc: f"cannot rebuild a tagged JSON value: {exc!r}"):
        return decode(parsed, allowed)
