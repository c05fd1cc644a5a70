"""Plugins: hook specifications, the registry of storages, serializers and lock managers,
and building one from a URL or a name."""

from moorage.plugins.hookspecs import hookimpl, hookspec
from moorage.plugins.lazy import lazy_exports, lazy_factory
from moorage.plugins.registry import ENTRY_POINT_GROUP, get_registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "get_registry",
    "hookimpl",
    "hookspec",
    "lazy_exports",
    "lazy_factory",
]
