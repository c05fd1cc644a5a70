"""Plugins: hook specifications, the registry of storages, serializers and lock managers,
and building one from a URL or a name.

The names load on first use: importing a module of this package (the serializer catalog,
say) costs no pluggy or entry-point machinery until a registry is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moorage.faces import lazy_exports

if TYPE_CHECKING:
    from moorage.plugins.hookspecs import hookimpl, hookspec
    from moorage.plugins.lazy import lazy_factory
    from moorage.plugins.registry import ENTRY_POINT_GROUP, get_registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "get_registry",
    "hookimpl",
    "hookspec",
    "lazy_exports",
    "lazy_factory",
]

_LAZY = {
    "ENTRY_POINT_GROUP": "moorage.plugins.registry",
    "get_registry": "moorage.plugins.registry",
    "hookimpl": "moorage.plugins.hookspecs",
    "hookspec": "moorage.plugins.hookspecs",
    "lazy_factory": "moorage.plugins.lazy",
}

__getattr__ = lazy_exports(__name__, _LAZY)
