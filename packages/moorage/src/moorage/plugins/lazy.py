"""A factory for plugin packages that load their client library on first use (their
faces use `moorage.faces.lazy_exports`).

Registering a backend then costs nothing: its client library (s3fs, the Azure SDK,
redis-py) is imported when a URL of its scheme is first used, not whenever the registry
loads, and ``import moorage_s3`` stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_factory"]


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
