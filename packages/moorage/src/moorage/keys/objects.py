"""Hashers for classes that describe their own fields: pydantic models, dataclasses
and attrs classes. Each is found by a check of the class (no library is imported) and
hashed by its fields' values, so equal objects get equal keys in every process.

Fields that take no part in equality (``field(compare=False)``, attrs' ``eq=False``)
take no part in the key either: they are caches and handles, not the value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = [
    "hash_attrs",
    "hash_dataclass",
    "hash_pydantic",
    "is_attrs_instance",
    "is_dataclass_instance",
    "is_pydantic_model",
]


def is_pydantic_model(value: Any) -> bool:
    """A pydantic (v2) model instance."""
    cls = type(value)
    return hasattr(cls, "model_fields") and hasattr(cls, "__pydantic_fields_set__")


def hash_pydantic(value: Any) -> Any:
    return value.model_dump(mode="python", round_trip=True)


def is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def hash_dataclass(value: Any) -> Any:
    return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare]


def is_attrs_instance(value: Any) -> bool:
    return hasattr(type(value), "__attrs_attrs__")


def hash_attrs(value: Any) -> Any:
    fields = type(value).__attrs_attrs__
    return [(f.name, getattr(value, f.name)) for f in fields if f.eq]
