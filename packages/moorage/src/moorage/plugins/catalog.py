"""Which serializer class a type name means, now that plugins can be seen.

`Serializer(type="msgpack")`, a stored record's serializer description and the
``serializer`` setting all name a type. The serializers layer asks its `SerializerTypes`
(`moorage.serializers.base`); this module is the one that answers from the plugin
registry: a plugin's registration first, then a `Serializer` subclass declared in this
process. It installs itself when imported, and the `moorage.serializers` face imports it,
so the answer is the same however moorage was first imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from moorage.config.settings import MoorageSettings, get_settings
from moorage.errors import SerializationError
from moorage.serializers.base import (
    Serializer,
    declared_serializer_class,
    use_serializer_types,
)

if TYPE_CHECKING:
    from moorage.plugins.registry import Registry

__all__ = ["RegisteredTypes", "default_serializer", "lookup_serializer_class"]


def lookup_serializer_class(type_name: str) -> type[Serializer] | None:
    """The class for ``type_name``: a plugin's registration first, then declared subclasses."""
    registry = _registry()
    if registry.provides("serializer", type_name):
        cls: type[Serializer] = registry.lookup("serializer", type_name)
        return cls
    return declared_serializer_class(type_name)


class RegisteredTypes:
    """The `~moorage.serializers.base.SerializerTypes` backed by the plugin registry."""

    def find(self, type_name: str) -> type[Serializer] | None:
        return lookup_serializer_class(type_name)

    def missing(self, type_name: str) -> str:
        return _registry().missing_message("serializer", type_name)

    def generation(self) -> object:
        return _registry()


use_serializer_types(RegisteredTypes())


def default_serializer() -> Serializer:
    """The serializer the ``serializer`` setting names. A type that no plugin or class
    provides raises `ConfigurationError` naming where the setting was made and the
    closest known type.

    Checked here, where the setting is used, rather than while the settings are read: a
    type may come from a `Serializer` subclass in the user's code, imported after the
    settings were first read, and plugins must not load while the settings lock is held.
    """
    name = get_settings().serializer
    try:
        return Serializer(type=name)
    except SerializationError as exc:
        from moorage.config.problems import value_error  # loaded only when it is wrong

        raise value_error(
            "serializer", name, str(exc), list(MoorageSettings.model_fields)
        ) from None


_get_registry: Callable[[], Registry] | None = None


def _registry() -> Registry:
    """The plugin registry, imported on first use (with pluggy and the entry points): a
    program that imports moorage but builds nothing from a name pays nothing for it.
    The import runs once: every read asks (`RegisteredTypes.generation`), and an import
    statement costs more than the rest of the lookup."""
    global _get_registry
    if _get_registry is None:
        from moorage.plugins.registry import get_registry

        _get_registry = get_registry
    return _get_registry()
