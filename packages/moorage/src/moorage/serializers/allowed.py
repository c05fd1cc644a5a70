"""Which classes a payload may name: the ``allowed_classes`` of json serializers.

A record names its serializer, but which classes its payload may build comes from the
reader's configuration only: a serializer's own ``allowed_classes``, else the
``json_allowed_classes`` setting. Classes may be given as dotted names
(``"myapp.models.Point"``), imported here when the configuration is read, never while
data is read.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

from moorage.config.settings import MoorageSettings, get_settings
from moorage.errors import ConfigurationError
from moorage.serializers.base import Classes, Serializer
from moorage.serializers.json_values import qualified_name

__all__ = [
    "AllowedClasses",
    "allowed_classes_from_settings",
    "reading_serializer",
    "resolve_allowed_classes",
]


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


def resolve_allowed_classes(value: Any) -> Classes:
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


def allowed_classes_from_settings() -> Classes:
    """The ``json_allowed_classes`` setting, resolved to classes (and remembered)."""
    global _from_settings
    names = tuple(get_settings().json_allowed_classes)
    if not names:
        return ()
    known = _from_settings
    if known is not None and known[0] == names:
        return known[1]
    try:
        classes = resolve_allowed_classes(names)
    except ConfigurationError as exc:
        from moorage.config.problems import value_error  # loaded only when a setting is bad

        raise value_error(
            "json_allowed_classes", list(names), str(exc), list(MoorageSettings.model_fields)
        ) from None
    _from_settings = (names, classes)
    return classes


def reading_serializer(described: Serializer, configured: Serializer | None) -> Serializer:
    """The serializer that decodes a payload whose record names ``described``: that
    type, allowing only the classes the reader configured (``configured``'s list where it
    has one, else the ``json_allowed_classes`` setting), never what the record says."""
    if described.trusted_classes() is None:  # it builds no classes by name (pickle)
        return described
    classes = configured.trusted_classes() if configured is not None else None
    if classes is None:
        classes = allowed_classes_from_settings()
    return described.with_trusted_classes(classes)


#: A field of classes a payload may name: classes or dotted names in, dotted names out.
AllowedClasses = Annotated[
    Classes,
    PlainValidator(resolve_allowed_classes),
    PlainSerializer(lambda classes: [qualified_name(c) for c in classes], return_type=list),
]
