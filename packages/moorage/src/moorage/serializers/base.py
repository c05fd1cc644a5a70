"""The `Serializer` base class: a pydantic model that turns values into bytes and back.

Each serializer has a ``type`` discriminator. ``Serializer(type="json")`` builds the class
that type names; which class that is, this layer asks of `serializer_types`, the
`SerializerTypes` in use. By default that knows only the subclasses declared in this
process (a subclass with a new ``type`` default declares itself); the plugin system
installs its own (`moorage.plugins.catalog`), which asks the plugin registry first. A
record that names a type nobody provides gets an `UnknownSerializer`, which fails with
an install hint only when its payload is decoded. Serializers hold only their
configuration: they pickle, and compare equal when their class and configuration are.

The built-ins live beside this module: `~moorage.serializers.pickle_serializer`,
`~moorage.serializers.json_serializer` and `~moorage.serializers.compressed`.
"""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ModelWrapValidatorHandler, model_validator

from moorage.buffers import BytesLike
from moorage.errors import SerializationError

__all__ = [
    "Classes",
    "DeclaredTypes",
    "Serializer",
    "SerializerTypes",
    "UnknownSerializer",
    "declared_serializer_class",
    "describing",
    "description_of",
    "is_describing",
    "serializer_types",
    "use_serializer_types",
]

#: Classes a payload may name (``type`` is a field name inside serializer classes).
Classes = tuple[type, ...]

#: Counts subclass declarations: where two subclasses declare one type, the later wins.
_declarations = itertools.count()


class SerializerTypes(Protocol):
    """Which class a serializer type names: what `Serializer` asks when built by name."""

    def find(self, type_name: str) -> type[Serializer] | None:
        """The class for ``type_name``, or None when nothing provides it."""

    def missing(self, type_name: str) -> str:
        """Why ``type_name`` cannot be built, and what to install or write instead."""

    def generation(self) -> object:
        """A token that changes whenever `find` may answer differently (a new registry)."""


class DeclaredTypes:
    """The `SerializerTypes` of this layer alone: subclasses declared in this process."""

    def find(self, type_name: str) -> type[Serializer] | None:
        return declared_serializer_class(type_name)

    def missing(self, type_name: str) -> str:
        return (
            f"no serializer class for type {type_name!r}: no Serializer subclass declares "
            "it; import the module that defines it, or install the plugin that registers it"
        )

    def generation(self) -> object:
        return None


_types: SerializerTypes = DeclaredTypes()


def use_serializer_types(types: SerializerTypes) -> None:
    """Install how type names become classes (the plugin system does, when imported)."""
    global _types
    _types = types


def serializer_types() -> SerializerTypes:
    """The `SerializerTypes` in use."""
    return _types


def declared_serializer_class(type_name: str) -> type[Serializer] | None:
    """The `Serializer` subclass declared last whose ``type`` default is ``type_name``.

    Python's own record of subclasses is the list: nothing is kept besides it."""
    found: type[Serializer] | None = None
    pending: list[type[Serializer]] = [Serializer]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if cls._default_type() == type_name and (
                found is None or cls._declared > found._declared
            ):
                found = cls
    return found


#: True while a serializer is built from a stored description: checks that would import
#: a library the record names (``picklelib``) wait until the serializer is used.
_DESCRIBING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "moorage_describing", default=False
)


@contextmanager
def describing() -> Iterator[None]:
    """Serializers built inside are described by a stored record (see `is_describing`)."""
    token = _DESCRIBING.set(True)
    try:
        yield
    finally:
        _DESCRIBING.reset(token)


def is_describing() -> bool:
    """Whether the serializer being built comes from a stored record's description."""
    return _DESCRIBING.get()


class Serializer(BaseModel):
    """Base class of serializers. Subclasses define ``type``, `dumps` and `loads`."""

    # polymorphic_serialization (pydantic 2.14+): a field annotated `Serializer` dumps
    # the whole description of the serializer it holds, not only ``type``.
    model_config = ConfigDict(
        extra="forbid", frozen=True, defer_build=True, polymorphic_serialization=True
    )

    #: When the class was declared, among subclasses (see `declared_serializer_class`).
    _declared: ClassVar[int] = -1
    #: Whether `loads` only builds plain data (and classes the reader's configuration
    #: names), never running code a payload names: true for ``json`` and ``msgpack``,
    #: false for the pickle family and, by default, for a plugin's serializer.
    decodes_data_only: ClassVar[bool] = False

    type: str

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._declared = next(_declarations)

    def runs_no_code(self) -> bool:
        """Whether decoding a payload with this serializer runs no code the payload
        names (see `decodes_data_only`): what ``ResultStore.read(key,
        allow=Serializer.runs_no_code)`` asks before decoding an untrusted record."""
        return self.decodes_data_only

    def __new__(cls, *args: Any, **kwargs: Any) -> Serializer:
        requested = kwargs.get("type")
        if isinstance(requested, str) and requested != cls._default_type():
            types = serializer_types()
            target = types.find(requested)
            if target is None:
                raise SerializationError(types.missing(requested))
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
        `reading_serializer`). Asked only of serializers whose `trusted_classes` is not
        None: one that overrides this must override that too."""
        return self


#: Descriptions of serializers (`Serializer.to_dict`), by the serializer's id, each with
#: the serializer it describes (which keeps the id from being reused while it is here).
_DESCRIPTIONS: dict[int, tuple[Serializer, dict[str, Any]]] = {}
_DESCRIPTIONS_MAX = 256


def description_of(serializer: Serializer) -> dict[str, Any]:
    """``serializer.to_dict()``, made once per frozen serializer (every write stores one)
    and shared: the caller must not change it. A serializer whose class is not frozen is
    described anew each time."""
    entry = _DESCRIPTIONS.get(id(serializer))
    if entry is not None and entry[0] is serializer:
        return entry[1]
    described = serializer.to_dict()
    if serializer.model_config.get("frozen"):
        if len(_DESCRIPTIONS) >= _DESCRIPTIONS_MAX:
            _DESCRIPTIONS.clear()
        _DESCRIPTIONS[id(serializer)] = (serializer, described)
    return described


class UnknownSerializer(Serializer):
    """Stands in for a serializer type that no installed plugin provides."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    type: str

    def __new__(cls, *args: Any, **kwargs: Any) -> UnknownSerializer:
        return object.__new__(cls)

    def _fail(self) -> SerializationError:
        return SerializationError(
            f"the record was written with serializer {self.type!r}, which is not available: "
            + serializer_types().missing(self.type)
        )

    def dumps(self, obj: Any) -> bytes:
        raise self._fail()

    def loads(self, data: BytesLike) -> Any:
        raise self._fail()
