"""Helpers for plugin packages that load their client library on first use.

Registering a backend then costs nothing: its client library (s3fs, the Azure SDK,
redis-py) is imported when a URL of its scheme is first used, not whenever the registry
loads, and ``import moorage_s3`` stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports", "lazy_factory"]


def lazy_factory(target: str) -> Callable[..., Any]:
    """A factory for ``"package.module:Class"`` that imports it on its first call."""
    module_name, _, attribute = target.partition(":")
    found: list[Callable[..., Any]] = []

    def factory(url: str, **options: Any) -> Any:
        if not found:
            found.append(getattr(importlib.import_module(module_name), attribute))
        return found[0](url, **options)

    factory.__name__ = factory.__qualname__ = attribute
    factory.__doc__ = f"Build a {target} (imported on first use)."
    return factory


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module below ``package``)
    when ``name`` is first read."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
