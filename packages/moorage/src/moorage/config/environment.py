"""Reading the settings without pydantic-settings when only the environment sets them.

Importing pydantic-settings costs a fresh process about 80 ms (it brings dotenv,
argparse, email and more), which was most of a second process's first task call and of
``moorage ls``. In the common case (no ``moorage.toml``, no ``[tool.moorage]`` table in
``pyproject.toml``, no keyword arguments, ``MOORAGE_*`` variables only for plain
settings) the sources reduce to "each variable's text, validated by the model", which
`read_environment` does itself, as pydantic-settings would: variable names are matched
without regard to case and values are passed as text.

Anything else (a settings file, a nested setting given as JSON, two spellings of one
variable, a pyproject.toml that does not parse, a value that fails validation) answers
None, and the caller reads the settings the full way, which also words the errors.

Validating with the model would build its pydantic schema (about 8 ms in a fresh
process), so the plain spellings of each setting (``"1000"``, ``"true"``, ``"2.5"``,
``"never"``) are converted here, by `_CONVERT`, as the model's own types and validators
would convert them, and the model is made with ``model_construct``. A value spelled any
other way goes through the model. tests/config checks both against pydantic-settings,
and that `_CONVERT` covers every plain setting.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

__all__ = ["read_environment"]

ENV_PREFIX = "moorage_"
_PLAIN = (str, int, float, bool, Path, SecretStr, type(None))


class _Unsure(ValueError):
    """A spelling `_CONVERT` leaves to the model's own validation."""


_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_DIGITS = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")


def _text(value: str) -> str:
    return value


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _Unsure(value)


def _whole(minimum: int) -> Callable[[str], int]:
    def convert(value: str) -> int:
        if not _DIGITS.fullmatch(value) or int(value) < minimum:
            raise _Unsure(value)
        return int(value)

    return convert


def _path(value: str) -> Path:
    if not value or "\x00" in value:
        raise _Unsure(value)
    return Path(value).expanduser()  # the model's ``_expand`` validator


def _seconds(value: str) -> float | None:
    # The model's ``_never`` and ``_positive`` validators, for plain decimals.
    if value.strip().lower() in ("", "none", "null", "never"):
        return None
    if not _DECIMAL.fullmatch(value) or not float(value) > 0:
        raise _Unsure(value)
    return float(value)


def _secret(value: str) -> SecretStr:
    return SecretStr(value)


def _record_format(value: str) -> str:
    if value not in ("moorage", "prefect"):
        raise _Unsure(value)
    return value


#: Each plain setting, and how its variable's text becomes the value the model would
#: give it. Defaults that a validator changes are listed in `_VALIDATED_DEFAULTS`.
_CONVERT: dict[str, Callable[[str], Any]] = {
    "storage": _text,
    "local_storage_path": _path,
    "metadata_storage": _text,
    "serializer": _text,
    "lock_manager": _text,
    "persist_by_default": _flag,
    "tasks_default_persist_result": _flag,
    "task_scheduling_storage": _text,
    "cache_max_entries": _whole(0),
    "cache_max_bytes": _whole(0),
    "lock_hold_timeout": _seconds,
    "signing_key": _secret,
    "record_format": _record_format,
    "accept_unsigned_prefect_records": _flag,
    "max_payload_bytes": _whole(1),
}
_VALIDATED_DEFAULTS: dict[str, Callable[[Any], Any]] = {
    "local_storage_path": lambda default: Path(default).expanduser(),
}


def _construct(model: Any, values: dict[str, str]) -> Any:
    """The model made from ``values`` without building its schema; `_Unsure` if a value
    is not spelled plainly."""
    converted = {name: _CONVERT[name](text) for name, text in values.items()}
    for name, validate in _VALIDATED_DEFAULTS.items():
        if name not in converted:
            converted[name] = validate(model.model_fields[name].default)
    for name, info in model.model_fields.items():
        # pydantic would inspect the signature of ``list`` and ``dict`` (about 5 ms, the
        # first time) to learn that they take no argument.
        if name not in converted and info.default_factory in (list, dict):
            converted[name] = info.default_factory()
    return model.model_construct(_fields_set=set(values), **converted)


def _is_plain(annotation: Any) -> bool:
    """Whether pydantic-settings hands a variable for this field over as its text (not
    parsed as JSON): scalars, Literals and unions of them."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return True
    if origin is typing.Union or origin is types.UnionType:
        return all(_is_plain(arg) for arg in typing.get_args(annotation))
    return annotation in _PLAIN


def _no_settings_files(cwd: str) -> bool:
    """True when neither settings file in ``cwd`` contributes: no ``moorage.toml``, and a
    ``pyproject.toml`` that is absent, or parses and has no ``tool`` key naming moorage."""
    if os.path.exists(os.path.join(cwd, "moorage.toml")):
        return False
    try:
        with open(os.path.join(cwd, "pyproject.toml"), "rb") as file:
            text = file.read()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    import tomllib

    try:
        document = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    tool = document.get("tool")
    return tool is None or (isinstance(tool, dict) and "moorage" not in tool)


def read_environment(model: Any, cwd: str) -> Any | None:
    """``model`` (the settings class) validated from the ``MOORAGE_*`` variables, when
    they are its only source and all of them are plain; else None."""
    fields = model.model_fields
    values: dict[str, str] = {}
    for name, value in os.environ.items():
        lowered = name.lower()
        if not lowered.startswith(ENV_PREFIX):
            continue
        field = lowered[len(ENV_PREFIX) :]
        info = fields.get(field)
        if info is None:
            continue  # not a setting (MOORAGE_PLUGINS, say): ignored, as before
        if field in values or not _is_plain(info.annotation):
            return None
        values[field] = value
    if not _no_settings_files(cwd):
        return None
    try:
        return _construct(model, values)
    except (_Unsure, KeyError):
        pass
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError:
        return None
