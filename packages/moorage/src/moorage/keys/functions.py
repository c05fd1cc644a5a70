"""What identifies a function or class in a cache key, without pickling it.

An importable function is its qualified name: the receiver of a key looks it up by that
name, as pickle does. A function that cannot be found by name (a lambda, a local
function or class) adds a hash of its source, or where no source is readable (made by
``exec``, typed at a REPL) of its compiled code and the Python version. A lambda adds
its compiled code too: its source is the whole line it sits on, which may hold several.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

__all__ = ["code_material", "function_material", "qualified_name"]


def qualified_name(fn: Any) -> str:
    """``module.qualname`` of a function or class (of its type, for other callables)."""
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not isinstance(qualname, str):
        qualname = type(fn).__qualname__
    return f"{module}.{qualname}"


def function_material(fn: Any) -> tuple[str, Any]:
    """`qualified_name`, and what identifies the code where the name does not (None for
    an importable function): the source, or without one the compiled code and the
    Python version. A lambda adds its compiled code to its source, which is the whole
    line it sits on and may hold several lambdas."""
    name = qualified_name(fn)
    if "<" not in name:  # importable by name: <locals>, <lambda> are not
        return name, None
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return name, ("compiled", sys.version_info[:2], code_material(fn))
    if "<lambda>" in name:
        return name, (source, sys.version_info[:2], code_material(fn))
    return name, source


def code_material(fn: Any) -> Any:
    """What identifies a function without source: its code objects, recursively (the
    bytecode, constants and names), or its qualified name if it has no code."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__qualname__", type(fn).__qualname__)
    return _code_parts(code)


def _code_parts(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(_const(c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names, code.co_varnames)


def _const(value: Any) -> Any:
    """A constant of compiled code, as plain data. Frozensets (``x in {"a", "b"}``)
    are sorted: their repr follows string hashing, which differs per process."""
    if isinstance(value, types.CodeType):
        return _code_parts(value)
    if isinstance(value, frozenset):
        return ("frozenset", sorted(repr(item) for item in value))
    if isinstance(value, tuple):
        return tuple(_const(item) for item in value)
    return repr(value)
