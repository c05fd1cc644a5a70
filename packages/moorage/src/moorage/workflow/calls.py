"""What tasks and flows share: binding a call's arguments to parameter names, and
travelling (pickled by reference where importable, else rebuilt from their options)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

__all__ = [
    "asks_for_results",
    "attribute_path",
    "bind",
    "importable_as",
    "plain_names",
    "rebuild",
]


def bind(
    signature: inspect.Signature, names: tuple[str, ...] | None, args: Any, kwargs: Any
) -> dict[str, Any]:
    if names is not None and len(args) + len(kwargs) == len(names):
        # Every parameter given and none is variadic: there are no defaults to fill in.
        parameters = dict(zip(names, args, strict=False))
        if kwargs:
            rest = names[len(args) :]
            if set(kwargs) != set(rest):
                return bind(signature, None, args, kwargs)  # inspect names the error
            parameters.update((name, kwargs[name]) for name in rest)
        return parameters
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def plain_names(signature: inspect.Signature) -> tuple[str, ...] | None:
    """The parameter names, when every parameter is a plain positional-or-keyword one."""
    kinds = {p.kind for p in signature.parameters.values()}
    if kinds <= {inspect.Parameter.POSITIONAL_OR_KEYWORD}:
        return tuple(signature.parameters)
    return None


def importable_as(obj: object, fn: Callable[..., Any]) -> str | None:
    """The qualified name under which ``obj`` (a task or flow made from ``fn``) is found
    in ``fn``'s module, as the decorator leaves it; None if it is not found there."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    qualname = getattr(fn, "__qualname__", None)
    if module is None or not isinstance(qualname, str) or "<locals>" in qualname:
        return None
    return qualname if attribute_path(module, qualname, None) is obj else None


_MISSING: Any = object()


def attribute_path(root: Any, qualname: str, default: Any = _MISSING) -> Any:
    """``root.a.b`` for ``qualname`` "a.b"; ``default`` where a part is missing, or
    `AttributeError` when no default is given."""
    found = root
    for part in qualname.split("."):
        found = getattr(found, part) if default is _MISSING else getattr(found, part, default)
    return found


def asks_for_results(*options: object) -> bool:
    """Whether any option saying where or how results are stored was given: Prefect
    then persists results even when ``persist_result`` is left unset."""
    return any(option is not None for option in options)


def rebuild(cls: type[Any], fn: Callable[..., Any], options: dict[str, Any]) -> Any:
    """Unpickle a task or flow that is not importable by name (a local or a lambda):
    built again from its function and options, with none of its process's state."""
    return cls(fn, **options)
