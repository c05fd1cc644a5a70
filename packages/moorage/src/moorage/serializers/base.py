"""Serializers: pydantic models that turn values into bytes and back.

Each serializer has a ``type`` discriminator. ``Serializer(type="json")`` builds the class
registered for that type (by a plugin's ``register_serializers`` hook or by subclassing
with a new ``type`` default). A record that names a type nobody provides gets an
`UnknownSerializer`, which fails with an install hint only when its payload is decoded.
A field annotated `Serializer` in any pydantic model takes a serializer, a type name
(``"json"``) or a description (``{"type": "pickle", "picklelib": "pickle"}``), as
Prefect's does. Serializers hold only their configuration: they pickle, and compare
equal when their class and configuration are.

Built-ins: ``pickle`` (cloudpickle), ``json`` (orjson with a tagged encoding for
datetimes, UUIDs, sets, models...), ``compressed`` wrapping another serializer, and the
presets ``compressed/pickle`` and ``compressed/json``.

``pickle`` runs code from data: reading a pickled payload runs whatever its writer put in
it. For storage others can write, set a ``signing_key`` (unsigned records are refused
before anything is unpickled) or use ``json``, which never imports a module while
reading and builds only the classes its reader allows (`JSONSerializer.allowed_classes`,
the ``json_allowed_classes`` setting).
"""

from __future__ import annotations

import bz2
import contextvars
import functools
import importlib
import lzma
import pickle
import sys
import zlib
from collections.abc import Callable, Hashable
from types import ModuleType
from typing import Annotated, Any, BinaryIO

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    PlainValidator,
    field_validator,
    model_validator,
)

from moorage.errors import ConfigurationError, SerializationError
from moorage.serializers import json_values as jsoncodec
from moorage.serializers.json_values import qualified_name

__all__ = [
    "CompressedJSONSerializer",
    "CompressedPickleSerializer",
    "CompressedSerializer",
    "ConfiguredSerializerField",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
    "SerializerField",
    "UnknownSerializer",
    "allowed_classes_from_settings",
    "coerce_serializer",
    "configured_serializer",
    "lookup_serializer_class",
    "reading_serializer",
    "resolve_allowed_classes",
]

BytesLike = bytes | bytearray | memoryview

#: Classes a payload may name (``type`` is a field name inside serializer classes).
Classes = tuple[type, ...]

#: Serializer classes declared by subclassing, by their ``type`` default.
_DECLARED: dict[str, type[Serializer]] = {}


def _plugins() -> ModuleType:
    """moorage.plugins.registry, imported on first use (it imports this module)."""
    return sys.modules.get("moorage.plugins.registry") or importlib.import_module(
        "moorage.plugins.registry"
    )


def lookup_serializer_class(type_name: str) -> type[Serializer] | None:
    """The class for ``type_name``: a plugin's registration first, then declared subclasses."""
    registry = _plugins().get_registry()
    if registry.provides("serializer", type_name):
        cls: type[Serializer] = registry.lookup("serializer", type_name)
        return cls
    return _DECLARED.get(type_name)


class Serializer(BaseModel):
    """Base class of serializers. Subclasses define ``type``, `dumps` and `loads`."""

    # polymorphic_serialization (pydantic 2.14+): a field annotated `Serializer` dumps
    # the whole description of the serializer it holds, not only ``type``.
    model_config = ConfigDict(
        extra="forbid", frozen=True, defer_build=True, polymorphic_serialization=True
    )

    type: str

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        default = cls.model_fields["type"].default
        if isinstance(default, str):
            _DECLARED[default] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> Serializer:
        requested = kwargs.get("type")
        if isinstance(requested, str) and requested != cls._default_type():
            target = lookup_serializer_class(requested)
            if target is None:
                registry = _plugins().get_registry()
                raise SerializationError(registry.missing_message("serializer", requested))
            if not issubclass(target, cls):
                raise SerializationError(
                    f"{cls.__name__}(type={requested!r}) names a {target.__name__}, which is "
                    f"not a {cls.__name__}; use Serializer(type={requested!r}) or "
                    f"{target.__name__}(...)"
                )
            if target is not cls:
                return super().__new__(target)
        elif cls is Serializer:
            raise SerializationError(
                "Serializer() needs a type, e.g. Serializer(type='pickle') or 'json'"
            )
        return super().__new__(cls)

    def __init__(self, /, **data: Any) -> None:
        # Defining __init__ makes pydantic build serializers by calling the class with the
        # fields it validated, so a field annotated `Serializer` in any pydantic model
        # goes through __new__, which picks the class ``type`` names: {"type": "json"}
        # becomes a JSONSerializer, as Prefect's Serializer validates.
        super().__init__(**data)

    @model_validator(mode="wrap")
    @classmethod
    def _from_type_name(cls, data: Any, handler: ModelWrapValidatorHandler[Serializer]) -> Any:
        """A type name (``"json"``, ``"compressed/pickle"``) where a serializer is expected
        stands for ``{"type": name}``."""
        if isinstance(data, str):
            return cls(type=data)
        return handler(data)

    @classmethod
    def _default_type(cls) -> str | None:
        field = cls.model_fields.get("type")
        default = field.default if field is not None else None
        return default if isinstance(default, str) else None

    @classmethod
    def type_name(cls) -> str:
        name = cls._default_type()
        if name is None:
            raise TypeError(f"{cls.__name__} has no default 'type'")
        return name

    def dumps(self, obj: Any) -> bytes:
        """Serialize ``obj`` to bytes."""
        raise NotImplementedError

    def loads(self, data: BytesLike) -> Any:
        """Rebuild a value from bytes made by `dumps`."""
        raise NotImplementedError

    def dump_parts(self, obj: Any) -> list[BytesLike]:
        """`dumps` as buffers to write one after the other (joined, they are the payload).
        Override to hand large buffers of ``obj`` over without copying them."""
        return [self.dumps(obj)]

    def load_stream(self, stream: BinaryIO) -> Any:
        """`loads` from a stream holding exactly the payload. Override to build large
        values straight from the stream, without a copy of the payload in memory."""
        return self.loads(stream.read())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready description stored in record metadata."""
        return self.model_dump(mode="json")

    def trusted_classes(self) -> Classes | None:
        """The classes this serializer, as configured, lets a payload name (see
        `JSONSerializer.allowed_classes`); None when it has no such list (pickle)."""
        return None

    def check_usable(self) -> None:
        """Raise `SerializationError` now if this serializer could not work (a library
        missing): called for serializers a user configures, never for those a stored
        record describes (whose libraries are checked when they are used)."""

    def with_trusted_classes(self, classes: Classes) -> Serializer:
        """This serializer, letting payloads name ``classes`` and nothing else. A record
        names its serializer, but which classes may be built comes from configuration:
        a reader decodes with ``described.with_trusted_classes(...)`` (see
        `reading_serializer`)."""
        return self


#: Fields that are configuration, never data: left out of stored descriptions, and
#: dropped from any description read back, so a record cannot widen what its reader allows.
_CONFIGURATION_ONLY = ("allowed_classes",)


def _resolve_dotted(name: str) -> type:
    """The class a dotted name (``package.module.QualName``) names, importing its module.
    Done when a serializer is configured, never while data is read."""
    parts = name.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise ConfigurationError(
            f"allowed class {name!r} is not a dotted name such as 'myapp.models.Point'"
        )
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            target: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # that module does not exist: try a shorter module path
            raise ConfigurationError(
                f"allowed class {name!r}: importing {module_name!r} failed: {exc}"
            ) from exc
        except Exception as exc:
            raise ConfigurationError(
                f"allowed class {name!r}: importing {module_name!r} failed: {exc!r}"
            ) from exc
        for attr in parts[split:]:
            target = getattr(target, attr, None)
        if target is None:
            break
        if not isinstance(target, type):
            raise ConfigurationError(
                f"allowed class {name!r} names a {type(target).__name__}, not a class"
            )
        return target
    raise ConfigurationError(
        f"allowed class {name!r} cannot be found: no importable module defines it; check the "
        "spelling (package.module.QualName) and that its package is installed"
    )


def resolve_allowed_classes(value: Any) -> tuple[type, ...]:
    """Classes and dotted names, as classes; `ConfigurationError` for anything else."""
    if isinstance(value, (str, type)):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise ConfigurationError(
            f"allowed_classes takes a list of classes or dotted names, not {value!r}"
        ) from None
    resolved: list[type] = []
    for item in items:
        if isinstance(item, str):
            item = _resolve_dotted(item)
        elif not isinstance(item, type):
            raise ConfigurationError(f"allowed_classes takes classes or dotted names, not {item!r}")
        if item not in resolved:
            resolved.append(item)
    return tuple(resolved)


_from_settings: tuple[tuple[str | type, ...], Classes] | None = None


def allowed_classes_from_settings() -> tuple[type, ...]:
    """The ``json_allowed_classes`` setting, resolved to classes (and remembered)."""
    global _from_settings
    from moorage.config.settings import MoorageSettings, get_settings

    names = tuple(get_settings().json_allowed_classes)
    if not names:
        return ()
    known = _from_settings
    if known is not None and known[0] == names:
        return known[1]
    try:
        classes = resolve_allowed_classes(names)
    except ConfigurationError as exc:
        from moorage.config.problems import value_error

        raise value_error(
            "json_allowed_classes", list(names), str(exc), list(MoorageSettings.model_fields)
        ) from None
    _from_settings = (names, classes)
    return classes


def reading_serializer(described: Serializer, configured: Serializer | None) -> Serializer:
    """The serializer that decodes a payload whose record names ``described``: that
    type, allowing only the classes the reader configured (``configured``'s list where it
    has one, else the ``json_allowed_classes`` setting), never what the record says."""
    classes = configured.trusted_classes() if configured is not None else None
    if classes is None:
        classes = allowed_classes_from_settings()
    return described.with_trusted_classes(classes)


AllowedClasses = Annotated[
    tuple[type, ...],
    PlainValidator(resolve_allowed_classes),
    PlainSerializer(lambda classes: [qualified_name(c) for c in classes], return_type=list),
]


def coerce_serializer(value: Any) -> Serializer:
    """Accept a serializer, a type name or a stored description (dict)."""
    if isinstance(value, Serializer):
        return value
    if isinstance(value, str):
        return Serializer(type=value)
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return _from_description(value)
    raise TypeError(
        "a serializer must be a Serializer, a type name such as 'pickle' or 'json', or a "
        f"dict with a 'type' key; got {type(value).__name__}"
    )


#: Serializers built from stored descriptions, by the description (its items, or its JSON
#: when nested): every record read carries one, nearly always the same few, and building
#: one is most of what parsing a record's metadata costs. Serializers are frozen, so
#: sharing them is safe. Kept for one registry (plugins decide which class a type names)
#: and one ``json_allowed_classes`` setting, and bounded.
_DESCRIBED: dict[Hashable, Serializer] = {}
#: True while a serializer is built from a stored description: checks that would import
#: a library the record names (``picklelib``) wait until the serializer is used.
_DESCRIBED_BUILD: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "moorage_described_build", default=False
)
_described_for: object = None
_DESCRIBED_MAX = 256


def _from_description(value: dict[str, Any]) -> Serializer:
    global _described_for
    from moorage.config.settings import get_settings

    # json serializers take their allowed classes from settings when built.
    basis = (_plugins().get_registry(), tuple(get_settings().json_allowed_classes))
    if _described_for != basis:
        _DESCRIBED.clear()
        _described_for = basis
    key: Hashable | None
    try:  # flat descriptions (nearly all): their items, in the order they were stored
        key = tuple(value.items())
        hash(key)
    except TypeError:  # nested (a wrapped serializer): its JSON, if it is JSON at all
        try:
            key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            key = None
    if key is not None:
        found = _DESCRIBED.get(key)
        if found is not None:
            return found
    cls = lookup_serializer_class(value["type"]) or UnknownSerializer
    if any(name in value for name in _CONFIGURATION_ONLY):
        value = {k: v for k, v in value.items() if k not in _CONFIGURATION_ONLY}
    token = _DESCRIBED_BUILD.set(True)
    try:
        serializer = cls.model_validate(value)
    finally:
        _DESCRIBED_BUILD.reset(token)
    if key is not None:
        if len(_DESCRIBED) >= _DESCRIBED_MAX:
            _DESCRIBED.clear()
        _DESCRIBED[key] = serializer
    return serializer


SerializerField = Annotated[
    Serializer,
    PlainValidator(coerce_serializer),
    PlainSerializer(lambda s: s.to_dict(), return_type=dict),
]


def configured_serializer(value: Any) -> Serializer:
    """`coerce_serializer` for a serializer the user configures (a store's): checked at
    once (`Serializer.check_usable`), so a bad ``picklelib`` fails where it is given."""
    serializer = coerce_serializer(value)
    serializer.check_usable()
    return serializer


#: A store's serializer field: like `SerializerField`, and checked when it is set.
ConfiguredSerializerField = Annotated[
    Serializer,
    PlainValidator(configured_serializer),
    PlainSerializer(lambda s: s.to_dict(), return_type=dict),
]


class UnknownSerializer(Serializer):
    """Stands in for a serializer type that no installed plugin provides."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    type: str

    def __new__(cls, *args: Any, **kwargs: Any) -> UnknownSerializer:
        return object.__new__(cls)

    def _fail(self) -> SerializationError:
        return SerializationError(
            f"the record was written with serializer {self.type!r}, which is not available: "
            + _plugins().get_registry().missing_message("serializer", self.type)
        )

    def dumps(self, obj: Any) -> bytes:
        raise self._fail()

    def loads(self, data: BytesLike) -> Any:
        raise self._fail()


_PICKLE_LIBS = ("cloudpickle", "pickle", "dill")
_PROTOCOL = pickle.HIGHEST_PROTOCOL


class PickleSerializer(Serializer):
    """Pickle with cloudpickle (default) or the standard ``pickle`` module.

    Payloads are raw pickle bytes (protocol 5); reading a payload needs the classes it
    references. Never read pickles from storage you do not trust; set ``signing_key`` to
    refuse tampered records before unpickling.
    """

    type: str = "pickle"
    #: The module that pickles: ``cloudpickle``, ``pickle`` or ``dill``. Checked when the
    #: serializer is built (importable, with callable ``dumps`` and ``loads``); a
    #: serializer described by a stored record is checked when it is used instead, so a
    #: record's metadata can be read where its library is not installed.
    picklelib: str = "cloudpickle"
    #: As in Prefect: the library's version, when the writer recorded one.
    picklelib_version: str | None = None

    @field_validator("picklelib")
    @classmethod
    def _check_picklelib(cls, value: str) -> str:
        if not _DESCRIBED_BUILD.get():
            _pickle_module(value)
        return value

    def _lib(self) -> Any:
        return _pickle_module(self.picklelib)

    def check_usable(self) -> None:
        self._lib()

    def dumps(self, obj: Any) -> bytes:
        data: bytes = self._pickling(obj, lambda lib: lib.dumps(obj, protocol=_PROTOCOL))
        return data

    def dump_parts(self, obj: Any) -> list[BytesLike]:
        # The pickler hands large bytes and (protocol 5) array buffers to the file's
        # write() as they are, so the parts reference them instead of copying them.
        sink = _PartsSink()
        self._pickling(obj, lambda lib: lib.dump(obj, sink, protocol=_PROTOCOL))
        return sink.parts

    def loads(self, data: BytesLike) -> Any:
        try:
            return self._unpickler().loads(data)
        except Exception as exc:
            raise _unpickling_error(exc) from exc

    def load_stream(self, stream: BinaryIO) -> Any:
        # The unpickler reads large bytes and bytearrays straight into the new objects.
        try:
            return self._unpickler().load(stream)
        except Exception as exc:
            raise _unpickling_error(exc) from exc

    def _unpickler(self) -> Any:
        # cloudpickle's output is ordinary pickle: the standard loader reads it faster.
        return pickle if self.picklelib != "dill" else self._lib()

    def _pickling(self, obj: Any, run: Callable[[Any], Any]) -> Any:
        lib = self._lib()
        try:
            return run(lib)
        except Exception as exc:
            raise SerializationError(
                f"could not pickle a {type(obj).__qualname__} with {self.picklelib}: {exc}"
            ) from exc


def _pickle_module(name: str) -> ModuleType:
    """The pickle library ``name``, imported; `SerializationError` naming it and the fix
    when it is not one moorage supports, not installed, or has no ``dumps``/``loads``."""
    if name not in _PICKLE_LIBS:
        supported = ", ".join(_PICKLE_LIBS)
        raise SerializationError(
            f"picklelib {name!r} is not supported; use one of {supported} "
            "(PickleSerializer(picklelib='pickle'), for instance)"
        )
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise SerializationError(
            f"picklelib {name!r} is not installed: pip install {name}, or use "
            "picklelib='pickle' (the standard library)"
        ) from exc
    missing = [f for f in ("dumps", "loads") if not callable(getattr(module, f, None))]
    if missing:
        where = getattr(module, "__file__", None) or "(no file)"
        raise SerializationError(
            f"picklelib {name!r} has no callable {' or '.join(missing)}: the module imported "
            f"under that name ({where}) is not the pickle library. Rename or remove what "
            f"shadows it, or reinstall it (pip install --force-reinstall {name}), or use "
            "picklelib='pickle'"
        )
    return module


def _unpickling_error(exc: Exception) -> SerializationError:
    return SerializationError(f"could not unpickle the payload: {exc!r}")


class _PartsSink:
    """A write-only file collecting what a pickler writes, without copying it."""

    def __init__(self) -> None:
        self.parts: list[BytesLike] = []

    def write(self, data: Any) -> int:
        # An array's buffer arrives as a PickleBuffer, possibly Fortran-ordered: raw()
        # is its bytes in memory order either way, which is what the pickle holds.
        view = data.raw() if isinstance(data, pickle.PickleBuffer) else memoryview(data)
        view = view.cast("B") if view.ndim != 1 or view.format != "B" else view
        self.parts.append(data if type(data) is bytes else view)
        return view.nbytes


class JSONSerializer(Serializer):
    """JSON via orjson, with tagged values for what JSON cannot hold (see `jsoncodec`).

    Unknown fields (such as Prefect's ``jsonlib`` and ``object_encoder``) are kept so
    records read from Prefect can be written back unchanged.
    """

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    type: str = "json"
    #: Classes a payload may name, beyond the standard value types: pydantic models,
    #: dataclasses, enums, exceptions. Classes or dotted names (``"myapp.models.Point"``),
    #: resolved when the serializer is built. Default: the ``json_allowed_classes`` setting.
    #: Configuration only: never stored in a record, never read from one.
    allowed_classes: AllowedClasses = Field(
        default_factory=lambda: allowed_classes_from_settings(), exclude=True
    )

    def dumps(self, obj: Any) -> bytes:
        return jsoncodec.dumps(obj)

    def loads(self, data: BytesLike) -> Any:
        return jsoncodec.loads(data, _tags(self.allowed_classes))

    def trusted_classes(self) -> Classes | None:
        return self.allowed_classes

    def with_trusted_classes(self, classes: Classes) -> Serializer:
        if classes == self.allowed_classes:
            return self
        return self.model_copy(update={"allowed_classes": classes})


@functools.lru_cache(maxsize=64)
def _tags(classes: Classes) -> jsoncodec.Allowed:
    return jsoncodec.allowed_by_name(classes)


def _zstd() -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise SerializationError(
            "compressionlib 'zstd' needs the zstandard package: pip install zstandard"
        ) from exc
    return zstandard.ZstdCompressor().compress, zstandard.ZstdDecompressor().decompress


def _lz4() -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    try:
        import lz4.frame  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise SerializationError(
            "compressionlib 'lz4' needs the lz4 package: pip install lz4"
        ) from exc
    return lz4.frame.compress, lz4.frame.decompress


def _module(mod: ModuleType) -> Callable[[], tuple[Callable[..., bytes], Callable[..., bytes]]]:
    return lambda: (mod.compress, mod.decompress)


_COMPRESSORS: dict[str, Callable[[], tuple[Callable[..., bytes], Callable[..., bytes]]]] = {
    "zlib": _module(zlib),
    "lzma": _module(lzma),
    "bz2": _module(bz2),
    "zstd": _zstd,
    "zstandard": _zstd,
    "lz4": _lz4,
}


def compression_functions(lib: str) -> tuple[Callable[..., bytes], Callable[..., bytes]]:
    """``(compress, decompress)`` for a compression library name."""
    factory = _COMPRESSORS.get(lib)
    if factory is None:
        raise SerializationError(
            f"unknown compressionlib {lib!r}; use one of {', '.join(sorted(_COMPRESSORS))}"
        )
    return factory()


class CompressedSerializer(Serializer):
    """Compresses the output of another serializer (default: pickle with lzma)."""

    type: str = "compressed"
    serializer: SerializerField = Field(default_factory=lambda: PickleSerializer())
    compressionlib: str = "lzma"

    def check_usable(self) -> None:
        self.serializer.check_usable()

    def dumps(self, obj: Any) -> bytes:
        compress, _ = compression_functions(self.compressionlib)
        return compress(self.serializer.dumps(obj))

    def dump_parts_measured(self, obj: Any) -> tuple[list[BytesLike], int]:
        """The compressed payload as buffers, and the length of the uncompressed bytes
        (stored in a native record's metadata, the cap when it is read back)."""
        from moorage.format.integrity import compress_parts

        streamed = compress_parts(self.compressionlib, self.serializer.dump_parts(obj))
        if streamed is not None:
            return list(streamed[0]), streamed[1]
        compress, _ = compression_functions(self.compressionlib)
        inner = self.serializer.dumps(obj)
        return [compress(inner)], len(inner)

    def dump_parts(self, obj: Any) -> list[BytesLike]:
        return self.dump_parts_measured(obj)[0]

    def loads(self, data: BytesLike) -> Any:
        from moorage.config.settings import get_settings

        limit = get_settings().max_payload_bytes
        return self.loads_bounded(data, limit, why="the max_payload_bytes setting")

    def loads_bounded(self, data: BytesLike, limit: int, *, why: str, exact: bool = False) -> Any:
        """`loads`, decompressing incrementally: `~moorage.errors.RecordCorrupted` as soon
        as the uncompressed bytes pass ``limit`` (or, ``exact``, differ from it)."""
        from moorage.format.integrity import decompress_bounded

        raw = decompress_bounded(self.compressionlib, data, limit, why=why, exact=exact)
        return self.serializer.loads(raw)

    def trusted_classes(self) -> Classes | None:
        return self.serializer.trusted_classes()

    def with_trusted_classes(self, classes: Classes) -> Serializer:
        inner = self.serializer.with_trusted_classes(classes)
        if inner is self.serializer:
            return self
        return self.model_copy(update={"serializer": inner})


class CompressedPickleSerializer(CompressedSerializer):
    """Preset: pickle, compressed."""

    type: str = "compressed/pickle"
    serializer: SerializerField = Field(default_factory=lambda: PickleSerializer())


class CompressedJSONSerializer(CompressedSerializer):
    """Preset: json, compressed."""

    type: str = "compressed/json"
    serializer: SerializerField = Field(default_factory=lambda: JSONSerializer())
