"""Package faces that load their names on first use.

A face (a package's ``__init__.py``) hands on names defined in its modules. Where those
modules are costly to import, or sit in another layer, the face hands them on lazily:
``__getattr__ = lazy_exports(__name__, {"Name": "module"})`` imports the module the first
time ``Name`` is read and keeps the value in the package, so the next read costs nothing.
Type checkers see the names through an ``if TYPE_CHECKING:`` import beside it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` when
    ``name`` is first read: a module below ``package`` (``"storage"``), or, with a dot, a
    module named in full (``"moorage.format.record"``)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if "." in module else f"{package}.{module}"
        value = getattr(importlib.import_module(path), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
